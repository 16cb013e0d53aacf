// Stage 3b: the server collects the cohort's transformed uploads into one sum.
//
// The aggregator is fed the cohort block by block, in cohort order (AddBlock
// on the root process, which holds every upload of the block), and returns
// the sum, the denominator of the mean, who is in the sum and what the
// collection cost. Implementations:
//   plain   the float64 weighted sum in client order (coordinates split over
//           threads, each coordinate summed client by client): bitwise the
//           same for any thread or process count; with a cost-model HE scheme
//           (paillier_model, bfv, ckks) it also reports what encryption would
//           have cost;
//   secure  SecAgg / SecAgg+ or real Paillier (secure/secure_sum.h): the
//           server learns only the sum of the fixed-point uploads of the
//           clients that made it (weighted: see secure_aggregator.cpp).
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "fl/algorithm.h"

namespace fedsim {

struct AggregateResult {
  // The sum of the included uploads (weighted as the aggregator says) and
  // what it is divided by for the mean (the included weights' sum).
  Eigen::VectorXd* sum = nullptr;
  double denominator = 0.0;
  // Nothing may reach the model this round (the secure protocol failed).
  bool failed = false;
  // Bytes the round's uploads took on the wire, summed over the cohort; and
  // extra bytes down the protocol needed.
  int64_t bytes_up = 0, bytes_down = 0;
  // The wire size the simulated clock charges each member's upload, and
  // the protocol's extra round trips.
  std::vector<int64_t> member_bytes_up;
  int round_trips = 0;
  // The record's "secure_aggregation" / "encryption" object (null if none),
  // under the key `record_key`.
  nlohmann::json record = nullptr;
  std::string record_key;
};

class Aggregator {
 public:
  virtual ~Aggregator() = default;
  virtual std::string name() const = 0;
  // Starts a round of `cohort` members (the round fails here when too few
  // clients are left for a secure protocol; Finish then reports it).
  virtual void Begin(int round, int cohort) = 0;
  // Adds members [b0, b0 + nb) of the cohort: column i of `uploads` is
  // member b0 + i's upload; reports and keep are indexed by cohort position.
  // A member with keep = 0 is left out. Root process only.
  virtual void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                        const std::vector<char>& keep) = 0;
  // Finishes the round: `keep` loses the members the sum does not contain,
  // `reports` of the members get the weight the server saw.
  virtual AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) = 0;
  // State carried between rounds (centered clipping's center), for checkpoints.
  virtual void Save(CheckpointWriter& w) const {}
  virtual void Load(const CheckpointReader& r) {}
};

// The aggregator a config asks for. upload_size: floats per upload;
// max_cohort: the largest cohort; threads: workers for the sum;
// weight_bound: the largest weight a client can report (a public bound; the
// weighted secure sum scales by it).
std::unique_ptr<Aggregator> MakeAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads,
                                           double weight_bound);

// The buffered aggregator of robust.rule (and of any run with attackers):
// it keeps the round's uploads (cohort x upload_size floats), lets an
// omniscient attack (alie, ipm) replace the attackers' uploads, and applies
// the rule (round/robust_aggregator.cpp). plan: the attackers (may be null).
std::unique_ptr<Aggregator> MakeRobustAggregator(const Config& cfg, int64_t upload_size, int threads,
                                                 const class AttackPlan* plan);

std::unique_ptr<Aggregator> MakePlainAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads);
std::unique_ptr<Aggregator> MakeSecureAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads,
                                                 double weight_bound);

// True when the config sums uploads through a secure protocol.
bool SecureAggregation(const Config& cfg);
// True when the server learns only the cohort's sum: a secure protocol, or a
// modelled encryption scheme (paillier_model, bfv, ckks) whose sum fedsim
// takes in the clear (what the attacks in audit.* may look at).
bool ServerSeesOnlySum(const Config& cfg);

}  // namespace fedsim
