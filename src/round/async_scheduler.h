// The event-driven scheduler of algorithm.mode = fedbuff | fedasync
// (docs/async.md): asynchronous federated learning on the simulated clock.
//
// async.concurrency clients train at once. A free slot is filled at once: a
// client of the training pool is drawn (stream (seed, kAsync, attempt)),
// skipped if it is training or was already asked under the current model
// version, and asked; if it is offline (system.availability_model) the server
// draws again (an offline client stays asked under the version, unless diurnal
// or trace availability can bring it online later with the same draw: then a
// later retry may ask it again). A dispatched client downloads the current
// model version v, trains for the time its device needs (the system model's
// compute speed and links, its planned work and upload size) and reports at a
// simulated time; it is lost instead if it drops out (system.dropout) or goes
// offline before reporting. Events are processed in the order (time, client,
// dispatch sequence); nothing depends on threads or processes.
//
// A server step happens when the buffer holds async.buffer_size updates
// (fedasync: 1). Each step lists the clients dispatched under the current
// version that will report (they train on the current model, all at once,
// before the step is applied) and the updates it applies with their
// staleness (server steps since their client was dispatched).
//
// The schedule is a pure function of the config, the seed and the planned
// work, so every process computes the same one; the scheduler never sees an
// update. Timing uses the planned upload size, as the synchronous plan does.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "sim/availability.h"
#include "sim/system.h"

namespace fedsim {

// The weight of an update of staleness s (async.staleness).
double StalenessWeight(const AsyncConfig& cfg, int staleness);

struct AsyncDispatch {
  int64_t seq = 0;       // dispatch sequence number, increasing
  int client = 0;
  int version = 0;       // the model version the client downloaded
  double start_s = 0.0;  // dispatch time
  double end_s = 0.0;    // report time, or when the client was lost
  int lost = 0;          // 0: reports; 1: dropped out (system.dropout); 2: went offline while training
};

struct AsyncArrival {
  AsyncDispatch dispatch;
  int staleness = 0;  // server steps since dispatch
};

// What happened between two server steps.
struct AsyncCounts {
  int64_t dispatched = 0;  // clients asked that were online and started
  int64_t offline = 0;     // requests that found their client offline
  int64_t dropped = 0;     // dispatched clients lost to system.dropout
  int64_t left = 0;        // dispatched clients that went offline before reporting
  int64_t stale = 0;       // updates dropped for async.max_staleness
  int64_t retries = 0;     // free slots that found nobody to ask (tried again after async.retry_s)
  int64_t bytes_down = 0;  // model downloads of the dispatched clients
  int64_t events = 0;      // events processed (reports, losses, retries)
};

struct AsyncStep {
  int version = 0;     // the step turns model version `version` into version + 1
  double time_s = 0;   // when the buffer filled
  std::vector<AsyncDispatch> train;   // dispatched under `version` and will report: train now, in seq order
  std::vector<AsyncArrival> buffer;   // the updates the step applies, in arrival order
  std::vector<int64_t> discarded;     // dispatches whose update arrived too stale (async.max_staleness)
  AsyncCounts counts;                 // since the previous step
  int in_flight = 0;                  // clients training when the buffer filled
  bool stalled = false;               // no client can ever report again: the run cannot go on
  std::string stall_reason;
};

class AsyncScheduler {
 public:
  // pool: the clients that train (increasing); work(c), down_bytes(c): a
  // client's planned local work and download; up_bytes: the planned upload.
  AsyncScheduler(const Config& cfg, const SystemModel& system, const Availability& availability, std::vector<int> pool,
                 int num_clients, std::function<LocalWork(int)> work, std::function<int64_t(int)> down_bytes,
                 int64_t up_bytes);

  // Runs events until the next server step (or a stall).
  AsyncStep Next();

  int version() const { return version_; }
  double now() const { return now_; }
  int in_flight() const { return in_flight_; }
  int buffer_size() const { return buffer_size_; }

  // Checkpointing: the whole event state (identical on every process).
  nlohmann::json Save() const;
  void Load(const nlohmann::json& j);

 private:
  struct Event {
    double time;
    int client;  // -1: a retry of a free slot
    int64_t seq;
    AsyncDispatch d;
    bool operator<(const Event& o) const {
      if (time != o.time) return time < o.time;
      if (client != o.client) return client < o.client;
      return seq < o.seq;
    }
  };

  // Fills one free slot at time t; false (and a retry event) if nobody could be asked.
  void FillSlot(double t);
  // The next client to ask under the current version, or -1 if every pool
  // member is training or was asked.
  int DrawClient();
  void Stall(const std::string& why);

  AsyncConfig cfg_;
  SystemConfig sys_;
  const SystemModel& system_;
  const Availability& availability_;
  std::vector<int> pool_;
  std::function<LocalWork(int)> work_;
  std::function<int64_t(int)> down_bytes_;
  int64_t up_bytes_;
  uint64_t seed_;
  int buffer_size_;

  // State (Save/Load).
  bool started_ = false;
  int version_ = 0;
  double now_ = 0.0;
  int64_t seq_ = 0;       // next dispatch (or retry) sequence number
  uint64_t attempt_ = 0;  // next draw of the kAsync stream
  int in_flight_ = 0;
  std::set<Event> events_;
  std::vector<AsyncDispatch> pending_;  // dispatched under version_, will report, not yet trained
  std::vector<AsyncArrival> buffer_;
  std::vector<int64_t> discarded_;      // since the last step
  std::vector<int> asked_;              // clients asked under version_ (in asking order; time-varying
                                        // availability: not those that may come online later)
  AsyncCounts counts_;
  int64_t idle_retries_ = 0;  // consecutive retries with nobody training
  int64_t retry_events_ = 0;  // retry events in events_
  bool stalled_ = false;
  std::string stall_reason_;

  // Derived from the state.
  std::vector<char> busy_;       // per client: training now
  std::vector<char> asked_now_;  // per client: in asked_
};

nlohmann::json ToJson(const AsyncDispatch& d);
AsyncDispatch DispatchFromJson(const nlohmann::json& j);

}  // namespace fedsim
