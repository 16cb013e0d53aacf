// Stage 3a: the client-side pipeline an upload passes before it leaves the
// device: clipping, local DP noise, an attacker's rewrite, compression (in
// that order; a configuration builds the chain once, BuildUploadTransforms).
//
// A transform sees one client's upload at a time and may change its values,
// its reported weight and its wire size. Apply is called concurrently for
// different clients of a round (each on its own thread), so a transform may
// write only to the upload it is given and to its own per-client state of
// that client; its randomness comes from streams derived from (seed, round,
// client), never from a shared generator. Transforms that keep per-client
// state (error feedback) say so (client_state), so the round places each
// client on the process that holds its state, and save it in checkpoints.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "fl/algorithm.h"

namespace fedsim {

// One client's upload while it passes the chain.
struct ClientUpload {
  int round = 0;
  int client = 0;
  float* values = nullptr;  // the upload, `size` floats, changed in place
  int64_t size = 0;
  ClientReport* report = nullptr;  // weight, bytes_up and update_norm may be changed
  int thread = 0;                  // the worker's index (for per-thread scratch)
};

class UploadTransform {
 public:
  virtual ~UploadTransform() = default;
  // The key of its entry in a round record's "stages".
  virtual std::string name() const = 0;
  // Transforms one upload. Thread-safe for distinct clients.
  virtual void Apply(ClientUpload& u) const = 0;
  // The wire size of an upload whose size before this transform is
  // `bytes` (for the simulated system's planning).
  virtual int64_t PlannedBytes(int64_t bytes) const { return bytes; }
  // Diagnostics over the round's cohort (every member's final report, in
  // cohort order; on the root process, which holds them all).
  virtual nlohmann::json RoundMetrics(const std::vector<ClientReport>& reports) const { return nlohmann::json::object(); }
  // Keys of RoundMetrics that a record also carries at its top level (the
  // flat keys older result files have, e.g. clip_fraction).
  virtual std::vector<std::string> flat_keys() const { return {}; }
  // True when Apply sets every client's weight to 1 (clipping for DP).
  virtual bool uniform_weights() const { return false; }
  // Per-client state (error feedback), or null.
  virtual ClientStateStore* client_state() { return nullptr; }
  virtual void Save(CheckpointWriter& w) const {}
  virtual void Load(const CheckpointReader& r) {}
};

// The run's chain, built from the config: clip and local noise when
// privacy.mode is central or local, the attack when `attack` has attackers,
// compression when compression.kind is set.
// kind: what the algorithm uploads; upload_size: floats per upload;
// num_clients: the population; comm: the processes (per-client state is
// placed as the algorithm's). Throws InputError naming the keys of a
// combination that cannot work (compression of an upload that is not a
// delta, compression under a secure sum or central DP).
std::vector<std::unique_ptr<UploadTransform>> BuildUploadTransforms(const Config& cfg, UploadKind kind,
                                                                    double noise_multiplier, int64_t upload_size,
                                                                    int num_clients, int threads, class Comm* comm,
                                                                    const class AttackPlan* attack = nullptr);

// The combination checks of BuildUploadTransforms alone, for `fedsim
// validate` (throws the same InputError).
void CheckUploadTransforms(const Config& cfg, UploadKind kind);
// The same, and whether the algorithm's upload allows clipping with DP noise
// and secure sums (what its UploadKind and server_reads_reports declare).
void CheckUploadTransforms(const Config& cfg, const Algorithm& algo);

// The transforms of the chain, one file each.
std::unique_ptr<UploadTransform> MakeClipTransform(const PrivacyConfig& pc);
std::unique_ptr<UploadTransform> MakeLocalNoiseTransform(const PrivacyConfig& pc, double noise_multiplier,
                                                         uint64_t seed);
std::unique_ptr<UploadTransform> MakeCompressTransform(const Config& cfg, int64_t upload_size, int num_clients,
                                                       int threads, class Comm* comm);

}  // namespace fedsim
