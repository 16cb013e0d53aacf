#include "round/async_scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/fmath.h"
#include "core/rng.h"

namespace fedsim {
namespace {

// Clients asked for one free slot before it waits for async.retry_s.
constexpr int kMaxTries = 1000;
// Draws that may hit a busy or already-asked client before a scan.
constexpr int kMaxRedraws = 32;
// Retries with nobody training before the run is declared stalled.
constexpr int64_t kMaxIdleRetries = 1000000;

}  // namespace

double StalenessWeight(const AsyncConfig& cfg, int staleness) {
  const double s = staleness;
  if (cfg.staleness == "constant") return 1.0;
  if (cfg.staleness == "polynomial") return fm::Pow(1.0 + s, -cfg.staleness_a);
  return s <= cfg.staleness_b ? 1.0 : 1.0 / (cfg.staleness_a * (s - cfg.staleness_b) + 1.0);  // hinge
}

AsyncScheduler::AsyncScheduler(const Config& cfg, const SystemModel& system, const Availability& availability,
                               std::vector<int> pool, int num_clients, std::function<LocalWork(int)> work,
                               std::function<int64_t(int)> down_bytes, int64_t up_bytes)
    : cfg_(cfg.async),
      sys_(cfg.system),
      system_(system),
      availability_(availability),
      pool_(std::move(pool)),
      work_(std::move(work)),
      down_bytes_(std::move(down_bytes)),
      up_bytes_(up_bytes),
      seed_(cfg.experiment.seed),
      buffer_size_(cfg.algorithm.mode == "fedasync" ? 1 : cfg.async.buffer_size),
      busy_(static_cast<size_t>(num_clients), 0),
      asked_now_(static_cast<size_t>(num_clients), 0) {}

int AsyncScheduler::DrawClient() {
  const uint64_t n = pool_.size();
  auto free = [&](int c) { return !busy_[static_cast<size_t>(c)] && !asked_now_[static_cast<size_t>(c)]; };
  for (int k = 0; k < kMaxRedraws; ++k) {
    Rng rng = DeriveStream(seed_, Stream::kAsync, attempt_++, 0);
    const int c = pool_[rng.UniformInt(n)];
    if (free(c)) return c;
  }
  // Most of the pool is training or was asked: the first free client from a
  // random position.
  Rng rng = DeriveStream(seed_, Stream::kAsync, attempt_++, 0);
  const uint64_t start = rng.UniformInt(n);
  for (uint64_t i = 0; i < n; ++i) {
    const int c = pool_[(start + i) % n];
    if (free(c)) return c;
  }
  return -1;
}

void AsyncScheduler::Stall(const std::string& why) {
  stalled_ = true;
  stall_reason_ = why;
}

void AsyncScheduler::FillSlot(double t) {
  int c = -1;
  // A client found offline that can come online later with the same draw
  // (diurnal or trace availability: p(t) moves, u does not) is skipped for
  // the rest of this call only, so a later retry under the same version may
  // find it online. Any other stays asked until the next version, as in the
  // synchronous plan's one draw per round (always so with the constant model).
  std::vector<int> offline_here;
  auto release_offline = [&] {
    for (int o : offline_here) asked_now_[static_cast<size_t>(o)] = 0;
  };
  for (int tries = 0; tries < kMaxTries; ++tries) {
    c = DrawClient();
    if (c < 0) break;
    asked_now_[static_cast<size_t>(c)] = 1;
    // The client's luck under this version: the synchronous plan's draws
    // (online, dropout, this round's speed) and when a dropout happens.
    Rng luck = DeriveStream(seed_, Stream::kSystem, static_cast<uint64_t>(version_), static_cast<uint64_t>(c));
    const double u_online = luck.Uniform(), u_drop = luck.Uniform(), z_speed = luck.Normal(), u_when = luck.Uniform();
    if (!availability_.Online(c, t, u_online)) {
      ++counts_.offline;
      if (availability_.CanComeOnline(c, t, u_online)) {
        offline_here.push_back(c);
      } else {
        asked_.push_back(c);
      }
      continue;
    }
    asked_.push_back(c);
    const Device dev = system_.DeviceOf(c);
    const double flops = dev.flops * fm::Exp(sys_.compute.round_sigma * z_speed);
    const LocalWork w = work_(c);
    const int64_t down = down_bytes_(c);
    const double total = SystemModel::TransferSeconds(down, dev.down_bps, dev.latency_s) +
                         system_.ComputeSeconds(flops, w.samples, w.steps) +
                         SystemModel::TransferSeconds(up_bytes_, dev.up_bps, dev.latency_s);
    AsyncDispatch d;
    d.seq = seq_++;
    d.client = c;
    d.version = version_;
    d.start_s = t;
    d.end_s = t + total;
    if (u_drop < sys_.dropout) {
      d.lost = 1;
      d.end_s = t + u_when * total;
    } else if (const double leaves = availability_.LeavesAt(c, t, d.end_s, u_online); leaves < d.end_s) {
      d.lost = 2;
      d.end_s = leaves;
    }
    ++counts_.dispatched;
    counts_.bytes_down += down;
    busy_[static_cast<size_t>(c)] = 1;
    ++in_flight_;
    idle_retries_ = 0;
    events_.insert({d.end_s, c, d.seq, d});
    if (!d.lost) pending_.push_back(d);
    release_offline();
    return;
  }
  release_offline();
  // Nobody could be asked: the slot tries again later, unless nothing can
  // ever change.
  ++counts_.retries;
  if (in_flight_ == 0) {
    if (t >= availability_.last_online()) {
      Stall(fmt::format("no client is online after {:.1f} s (the end of system.trace)", availability_.last_online()));
      return;
    }
    if (c < 0 && offline_here.empty()) {
      Stall(fmt::format("at {:.1f} s every training client was asked under model version {} and none is training, "
                        "so the buffer of {} updates cannot fill (fewer clients report than async.buffer_size)",
                        t, version_, buffer_size_));
      return;
    }
    if (++idle_retries_ > kMaxIdleRetries) {
      Stall(fmt::format("no client was online for {} retries of {} s", kMaxIdleRetries, cfg_.retry_s));
      return;
    }
  }
  events_.insert({t + cfg_.retry_s, -1, seq_++, AsyncDispatch()});
  ++retry_events_;
}

AsyncStep AsyncScheduler::Next() {
  if (!started_) {
    started_ = true;
    for (int i = 0; i < cfg_.concurrency && !stalled_; ++i) FillSlot(0.0);
  }
  while (!stalled_) {
    if (events_.empty()) {
      Stall("no client is training and no slot is waiting");
      break;
    }
    const Event ev = *events_.begin();
    events_.erase(events_.begin());
    ++counts_.events;
    now_ = ev.time;
    if (ev.client < 0) {
      --retry_events_;
      FillSlot(now_);
      continue;
    }
    busy_[static_cast<size_t>(ev.client)] = 0;
    --in_flight_;
    if (ev.d.lost) {
      ++(ev.d.lost == 1 ? counts_.dropped : counts_.left);
      FillSlot(now_);
      continue;
    }
    const int staleness = version_ - ev.d.version;
    if (cfg_.max_staleness >= 0 && staleness > cfg_.max_staleness) {
      ++counts_.stale;
      discarded_.push_back(ev.d.seq);
      FillSlot(now_);
      continue;
    }
    buffer_.push_back({ev.d, staleness});
    if (static_cast<int>(buffer_.size()) < buffer_size_) {
      FillSlot(now_);
      continue;
    }
    AsyncStep step;
    step.version = version_;
    step.time_s = now_;
    step.train = std::move(pending_);
    step.buffer = std::move(buffer_);
    step.discarded = std::move(discarded_);
    step.counts = counts_;
    pending_.clear();
    buffer_.clear();
    discarded_.clear();
    counts_ = AsyncCounts();
    ++version_;
    for (int c : asked_) asked_now_[static_cast<size_t>(c)] = 0;
    asked_.clear();
    FillSlot(now_);  // the freed slot gets the new version
    // Slots waiting for a retry try at once: the new version makes every
    // client that was asked under the old one available again.
    // (A scan of the queue, only when some slot is waiting.)
    int64_t waiting = 0;
    for (auto it = events_.begin(); retry_events_ > 0 && it != events_.end();) {
      if (it->client < 0) {
        ++waiting;
        --retry_events_;
        it = events_.erase(it);
      } else {
        ++it;
      }
    }
    for (int64_t i = 0; i < waiting && !stalled_; ++i) FillSlot(now_);
    step.in_flight = in_flight_;
    return step;
  }
  AsyncStep step;
  step.version = version_;
  step.time_s = now_;
  step.counts = counts_;
  step.in_flight = in_flight_;
  step.stalled = true;
  step.stall_reason = stall_reason_;
  return step;
}

nlohmann::json ToJson(const AsyncDispatch& d) {
  return nlohmann::json::array({d.seq, d.client, d.version, d.start_s, d.end_s, d.lost});
}

AsyncDispatch DispatchFromJson(const nlohmann::json& j) {
  AsyncDispatch d;
  d.seq = j.at(0).get<int64_t>();
  d.client = j.at(1).get<int>();
  d.version = j.at(2).get<int>();
  d.start_s = j.at(3).get<double>();
  d.end_s = j.at(4).get<double>();
  d.lost = j.at(5).get<int>();
  return d;
}

namespace {

nlohmann::json CountsJson(const AsyncCounts& c) {
  return nlohmann::json::array(
      {c.dispatched, c.offline, c.dropped, c.left, c.stale, c.retries, c.bytes_down, c.events});
}

AsyncCounts CountsFromJson(const nlohmann::json& j) {
  AsyncCounts c;
  c.dispatched = j.at(0).get<int64_t>();
  c.offline = j.at(1).get<int64_t>();
  c.dropped = j.at(2).get<int64_t>();
  c.left = j.at(3).get<int64_t>();
  c.stale = j.at(4).get<int64_t>();
  c.retries = j.at(5).get<int64_t>();
  c.bytes_down = j.at(6).get<int64_t>();
  c.events = j.at(7).get<int64_t>();
  return c;
}

}  // namespace

nlohmann::json AsyncScheduler::Save() const {
  // Times are doubles: nlohmann writes them with 17 significant digits, so
  // they read back bit for bit.
  nlohmann::json events = nlohmann::json::array(), pending = nlohmann::json::array(), buffer = nlohmann::json::array();
  for (const Event& e : events_) {
    events.push_back(e.client < 0 ? nlohmann::json::array({e.time, e.seq}) : ToJson(e.d));
  }
  for (const AsyncDispatch& d : pending_) pending.push_back(d.seq);
  for (const AsyncArrival& a : buffer_) buffer.push_back({ToJson(a.dispatch), a.staleness});
  return {{"started", started_},   {"version", version_},    {"now", now_},          {"seq", seq_},
          {"attempt", attempt_},   {"events", events},       {"pending", pending},   {"buffer", buffer},
          {"asked", asked_},       {"counts", CountsJson(counts_)}, {"idle_retries", idle_retries_},
          {"discarded", discarded_}};
}

void AsyncScheduler::Load(const nlohmann::json& j) {
  started_ = j.at("started").get<bool>();
  version_ = j.at("version").get<int>();
  now_ = j.at("now").get<double>();
  seq_ = j.at("seq").get<int64_t>();
  attempt_ = j.at("attempt").get<uint64_t>();
  idle_retries_ = j.at("idle_retries").get<int64_t>();
  counts_ = CountsFromJson(j.at("counts"));
  events_.clear();
  std::fill(busy_.begin(), busy_.end(), 0);
  std::fill(asked_now_.begin(), asked_now_.end(), 0);
  in_flight_ = 0;
  retry_events_ = 0;
  std::map<int64_t, AsyncDispatch> by_seq;
  for (const auto& e : j.at("events")) {
    if (e.size() == 2) {
      events_.insert({e.at(0).get<double>(), -1, e.at(1).get<int64_t>(), AsyncDispatch()});
      ++retry_events_;
      continue;
    }
    const AsyncDispatch d = DispatchFromJson(e);
    if (d.client < 0 || static_cast<size_t>(d.client) >= busy_.size()) {
      throw InputError(fmt::format("checkpoint: async event of client {} outside the population", d.client));
    }
    events_.insert({d.end_s, d.client, d.seq, d});
    busy_[static_cast<size_t>(d.client)] = 1;
    ++in_flight_;
    by_seq[d.seq] = d;
  }
  pending_.clear();
  for (const auto& s : j.at("pending")) {
    auto it = by_seq.find(s.get<int64_t>());
    if (it == by_seq.end()) throw InputError("checkpoint: an untrained async dispatch is not among the events");
    pending_.push_back(it->second);
  }
  buffer_.clear();
  for (const auto& b : j.at("buffer")) buffer_.push_back({DispatchFromJson(b.at(0)), b.at(1).get<int>()});
  asked_ = j.at("asked").get<std::vector<int>>();
  discarded_ = j.at("discarded").get<std::vector<int64_t>>();
  for (int c : asked_) {
    if (c < 0 || static_cast<size_t>(c) >= asked_now_.size()) throw InputError("checkpoint: async asked client out of range");
    asked_now_[static_cast<size_t>(c)] = 1;
  }
}

}  // namespace fedsim
