// Whether a client is online, on the simulated clock (system.availability_model).
//
//   constant  online with probability system.availability, independently at
//             each round or dispatch (the synchronous rounds' model);
//   diurnal   online with probability availability x a daily curve of the
//             client's local hour (docs/system.md): the client's time zone
//             is drawn once from (seed, kSystem, kZoneStream, client);
//   trace     online exactly inside the client's intervals of a CSV trace
//             (client,online_from,online_until in simulated seconds).
//
// A dispatch draws one uniform u for the client; with the diurnal model the
// client is online while its availability p(t) stays above u, so it goes
// offline, and loses its work, when p(t) falls below u before it reports.
// Everything is a pure function of (config, seed, client, time, u).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace fedsim {

class Availability {
 public:
  // Reads system.trace for availability_model = trace (InputError naming the
  // file and line on bad rows). Trace rows of clients >= num_clients are
  // not used (counted in Describe).
  Availability(const SystemConfig& cfg, uint64_t seed, int num_clients);

  // Probability that `client` is online at time t (trace: 0 or 1).
  double Probability(int client, double t) const;
  // Online at t for the dispatch draw u in [0, 1).
  bool Online(int client, double t, double u) const { return u < Probability(client, t); }
  // When a client online at t0 (with draw u) goes offline before t1, the
  // time it does so; +inf when it stays online until t1. Diurnal: checked
  // every kDiurnalStep seconds and at t1.
  double LeavesAt(int client, double t0, double t1, double u) const;
  // Whether a client offline at t with draw u can be online at some later
  // time with the same u: never with the constant model; diurnal: u is below
  // the curve's peak, availability; trace: the client has an interval that
  // ends after t.
  bool CanComeOnline(int client, double t, double u) const;
  // The last moment any client is online (+inf unless a trace).
  double last_online() const { return last_online_; }
  // The client's time zone offset in hours (diurnal), else 0.
  double ZoneHours(int client) const;
  // metrics.json's "availability" object.
  nlohmann::json Describe() const;

  static constexpr double kDiurnalStep = 300.0;
  static constexpr double kInf = std::numeric_limits<double>::infinity();

 private:
  void LoadTrace(const std::string& path, int num_clients);
  // The trace interval of `client` that contains t, or null.
  const std::pair<double, double>* IntervalAt(int client, double t) const;

  std::string model_;
  double availability_;
  DiurnalConfig diurnal_;
  uint64_t seed_;
  std::vector<std::vector<std::pair<double, double>>> intervals_;  // trace: per client, sorted, disjoint
  int64_t trace_rows_ = 0, trace_rows_unused_ = 0, trace_clients_ = 0;
  double last_online_ = kInf;
};

}  // namespace fedsim
