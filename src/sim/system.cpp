#include "sim/system.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/fmath.h"
#include "core/rng.h"
#include "sim/availability.h"

namespace fedsim {
namespace {

// The per-client device stream uses this "round" (rounds use 0, 1, ...).
constexpr uint64_t kStatic = ~uint64_t{0};

}  // namespace

SystemModel::SystemModel(const SystemConfig& cfg, uint64_t seed, double flops_per_sample, double flops_per_batch)
    : cfg_(cfg), seed_(seed), flops_per_sample_(flops_per_sample), flops_per_batch_(flops_per_batch) {
  if (cfg_.compute.distribution == "profiles") {
    const double total = std::accumulate(cfg_.profiles.share.begin(), cfg_.profiles.share.end(), 0.0);
    double run = 0.0;
    for (double s : cfg_.profiles.share) cumulative_share_.push_back((run += s) / total);
  }
}

Device SystemModel::DeviceOf(int client) const {
  Rng rng = DeriveStream(seed_, Stream::kSystem, kStatic, static_cast<uint64_t>(client));
  Device d;
  double gflops = cfg_.compute.gflops, up = cfg_.network.up_mbps, down = cfg_.network.down_mbps,
         latency_ms = cfg_.network.latency_ms;
  if (!cumulative_share_.empty()) {
    const double u = rng.Uniform();
    size_t i = 0;
    while (i + 1 < cumulative_share_.size() && u >= cumulative_share_[i]) ++i;
    d.profile = static_cast<int>(i);
    gflops = cfg_.profiles.gflops[i];
    up = cfg_.profiles.up_mbps[i];
    down = cfg_.profiles.down_mbps[i];
    latency_ms = cfg_.profiles.latency_ms[i];
  }
  // Draws are taken whether or not a spread is configured, so changing one
  // sigma does not reshuffle the other quantities.
  const double z_compute = rng.Normal(), z_net = rng.Normal();
  d.flops = gflops * 1e9 * fm::Exp(cfg_.compute.sigma * z_compute);
  const double net = fm::Exp(cfg_.network.sigma * z_net);
  d.up_bps = up * 1e6 * net;
  d.down_bps = down * 1e6 * net;
  d.latency_s = latency_ms * 1e-3;
  return d;
}

double SystemModel::TransferSeconds(int64_t bytes, double bps, double latency_s) {
  return latency_s + 8.0 * static_cast<double>(bytes) / bps;
}

double SystemModel::ComputeSeconds(double flops_per_s, int64_t samples, int64_t steps) const {
  return (static_cast<double>(samples) * flops_per_sample_ + static_cast<double>(steps) * flops_per_batch_) /
         flops_per_s;
}

std::vector<ClientPlan> SystemModel::Plan(int round, const std::vector<int>& sampled, const std::vector<LocalWork>& work,
                                          const std::vector<int64_t>& down_bytes, int64_t up_bytes, int batch,
                                          int keep, const Availability* availability, double start_s) const {
  std::vector<ClientPlan> plan(sampled.size());
  const double deadline = cfg_.deadline_s;
  for (size_t i = 0; i < sampled.size(); ++i) {
    const int c = sampled[i];
    ClientPlan& p = plan[i];
    p.device = DeviceOf(c);
    const Device& d = p.device;
    Rng rng = DeriveStream(seed_, Stream::kSystem, static_cast<uint64_t>(round), static_cast<uint64_t>(c));
    const double u_online = rng.Uniform(), u_drop = rng.Uniform(), z_speed = rng.Normal();
    p.flops = d.flops * fm::Exp(cfg_.compute.round_sigma * z_speed);
    p.download_s = TransferSeconds(down_bytes[i], d.down_bps, d.latency_s);
    const double upload_s = TransferSeconds(up_bytes, d.up_bps, d.latency_s);
    p.expected_s = p.download_s + ComputeSeconds(p.flops, work[i].samples, work[i].steps) + upload_s;
    const bool online = availability ? availability->Online(c, start_s, u_online) : u_online < cfg_.availability;
    if (!online) {
      p.fate = Fate::kOffline;
    } else if (u_drop < cfg_.dropout) {
      p.fate = Fate::kDropped;
    } else if (const double leaves = availability ? availability->LeavesAt(c, start_s, start_s + p.expected_s, u_online)
                                                   : Availability::kInf;
               leaves < start_s + p.expected_s) {
      p.fate = Fate::kDropped;  // went offline before its report
      p.leave_s = leaves - start_s;
    } else if (deadline > 0.0 && p.expected_s > deadline) {
      p.fate = Fate::kLate;
      if (cfg_.partial_work && work[i].steps > 1) {
        // The steps that fit between the download and the upload.
        const double budget = deadline - p.download_s - upload_s;
        const double step_flops = static_cast<double>(batch) * flops_per_sample_ + flops_per_batch_;
        const double fit = budget > 0.0 ? std::floor(budget * p.flops / step_flops) : 0.0;
        if (fit >= 1.0) {
          p.fate = Fate::kTrain;
          p.max_steps = std::min<int64_t>(work[i].steps - 1, static_cast<int64_t>(fit));
          p.expected_s = p.download_s + ComputeSeconds(p.flops, p.max_steps * batch, p.max_steps) + upload_s;
        }
      }
    }
  }
  if (keep >= 0) {
    // Over-selection: the first `keep` planned reports are used.
    std::vector<size_t> order;
    for (size_t i = 0; i < plan.size(); ++i) {
      if (plan[i].fate == Fate::kTrain) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return plan[a].expected_s < plan[b].expected_s; });
    for (size_t j = static_cast<size_t>(keep); j < order.size(); ++j) plan[order[j]].fate = Fate::kSurplus;
  }
  return plan;
}

double SystemModel::ReportSeconds(const ClientPlan& plan, int64_t samples, int64_t steps, int64_t up_bytes,
                                  int round_trips) const {
  const Device& d = plan.device;
  return plan.download_s + ComputeSeconds(plan.flops, samples, steps) +
         TransferSeconds(up_bytes, d.up_bps, d.latency_s) + 2.0 * round_trips * d.latency_s;
}

double SystemModel::RoundSeconds(const std::vector<double>& report_s, bool waited_for_missing) const {
  if (cfg_.deadline_s > 0.0 && waited_for_missing) return cfg_.deadline_s;
  double t = 0.0;
  for (double s : report_s) t = std::max(t, s);
  return t;
}

}  // namespace fedsim
