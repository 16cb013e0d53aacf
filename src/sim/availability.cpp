#include "sim/availability.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fmath.h"
#include "core/rng.h"

namespace fedsim {
namespace {

// The time-zone stream's "round" (the device stream uses ~0).
constexpr uint64_t kZoneStream = ~uint64_t{0} - 1;
constexpr double kPi = 3.14159265358979323846;

// Parses one number of a trace row; InputError naming file, line and field.
double ParseField(const std::string& text, const std::string& path, int64_t line, const char* field) {
  const char* b = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(b, &end);
  while (end && (*end == ' ' || *end == '\t' || *end == '\r')) ++end;
  if (text.empty() || end == b || *end != '\0' || !std::isfinite(v)) {
    throw InputError(fmt::format("{}:{}: {}: expected a number, got '{}'", path, line, field, text));
  }
  return v;
}

}  // namespace

Availability::Availability(const SystemConfig& cfg, uint64_t seed, int num_clients)
    : model_(cfg.availability_model), availability_(cfg.availability), diurnal_(cfg.diurnal), seed_(seed) {
  if (model_ == "trace") LoadTrace(cfg.trace, num_clients);
}

void Availability::LoadTrace(const std::string& path, int num_clients) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("system.trace: cannot open '{}'", path));
  intervals_.assign(static_cast<size_t>(num_clients), {});
  std::string text;
  int64_t line = 0;
  bool header = false;
  last_online_ = 0.0;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.empty() || text[0] == '#') continue;
    std::vector<std::string> f;
    std::stringstream ss(text);
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    if (!header) {
      header = true;
      if (f.size() != 3 || f[0] != "client" || f[1] != "online_from" || f[2] != "online_until") {
        throw InputError(fmt::format("{}:{}: expected the header 'client,online_from,online_until', got '{}'", path,
                                     line, text));
      }
      continue;
    }
    if (f.size() != 3) {
      throw InputError(fmt::format("{}:{}: expected 3 fields (client,online_from,online_until), got {}", path, line,
                                   f.size()));
    }
    const double c = ParseField(f[0], path, line, "client");
    const double from = ParseField(f[1], path, line, "online_from");
    const double until = ParseField(f[2], path, line, "online_until");
    if (c < 0 || c != std::floor(c) || c > 2e9) {
      throw InputError(fmt::format("{}:{}: client: expected a client id >= 0, got '{}'", path, line, f[0]));
    }
    if (from < 0 || !(until > from)) {
      throw InputError(fmt::format("{}:{}: expected 0 <= online_from < online_until, got {} and {}", path, line,
                                   f[1], f[2]));
    }
    ++trace_rows_;
    if (c >= num_clients) {
      ++trace_rows_unused_;
      continue;
    }
    intervals_[static_cast<size_t>(c)].push_back({from, until});
    last_online_ = std::max(last_online_, until);
  }
  if (!header) throw InputError(fmt::format("{}: empty trace (expected the header client,online_from,online_until)", path));
  for (auto& v : intervals_) {
    if (v.empty()) continue;
    ++trace_clients_;
    // Sorted and merged, so that a client's intervals are disjoint.
    std::sort(v.begin(), v.end());
    size_t k = 0;
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i].first <= v[k].second) {
        v[k].second = std::max(v[k].second, v[i].second);
      } else {
        v[++k] = v[i];
      }
    }
    v.resize(k + 1);
  }
}

const std::pair<double, double>* Availability::IntervalAt(int client, double t) const {
  const auto& v = intervals_[static_cast<size_t>(client)];
  // The last interval starting at or before t.
  auto it = std::upper_bound(v.begin(), v.end(), t,
                             [](double x, const std::pair<double, double>& iv) { return x < iv.first; });
  if (it == v.begin()) return nullptr;
  --it;
  return t < it->second ? &*it : nullptr;
}

double Availability::ZoneHours(int client) const {
  if (model_ != "diurnal") return 0.0;
  Rng rng = DeriveStream(seed_, Stream::kSystem, kZoneStream, static_cast<uint64_t>(client));
  return rng.Uniform() * diurnal_.timezone_spread_h;
}

double Availability::Probability(int client, double t) const {
  if (model_ == "constant") return availability_;
  if (model_ == "trace") return IntervalAt(client, t) ? 1.0 : 0.0;
  const double h = std::fmod(t / 3600.0 + ZoneHours(client), 24.0);
  const double a = diurnal_.amplitude;
  return availability_ * (1.0 - a + a * 0.5 * (1.0 + fm::Cos(2.0 * kPi * (h - diurnal_.peak_hour) / 24.0)));
}

bool Availability::CanComeOnline(int client, double t, double u) const {
  if (model_ == "constant") return false;
  if (model_ == "trace") {
    const auto& v = intervals_[static_cast<size_t>(client)];
    return !v.empty() && v.back().second > t;
  }
  return u < availability_;
}

double Availability::LeavesAt(int client, double t0, double t1, double u) const {
  if (model_ == "constant") return kInf;
  if (model_ == "trace") {
    const auto* iv = IntervalAt(client, t0);
    if (!iv) return t0;
    return iv->second < t1 ? iv->second : kInf;
  }
  for (double t = t0 + kDiurnalStep;; t += kDiurnalStep) {
    const double at = std::min(t, t1);
    if (!Online(client, at, u)) return at;
    if (at >= t1) return kInf;
  }
}

nlohmann::json Availability::Describe() const {
  nlohmann::json j = {{"model", model_}};
  if (model_ == "constant") j["availability"] = availability_;
  if (model_ == "diurnal") {
    j.update({{"availability", availability_}, {"amplitude", diurnal_.amplitude}, {"peak_hour", diurnal_.peak_hour},
              {"timezone_spread_h", diurnal_.timezone_spread_h}});
  }
  if (model_ == "trace") {
    j.update({{"trace_rows", trace_rows_}, {"trace_rows_unused", trace_rows_unused_},
              {"clients_in_trace", trace_clients_}, {"last_online_s", last_online_}});
  }
  return j;
}

}  // namespace fedsim
