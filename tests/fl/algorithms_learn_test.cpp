// Every algorithm learns: 30 rounds on FedProx Synthetic(1,1) (30 natural,
// non-IID users, 10 per round, softmax regression, E=1, B=10, lr 0.01 unless
// the algorithm needs otherwise). Ranges are the measured accuracy (seed 1,
// g++ 12, x86-64) +- 0.03, wide enough for other compilers and CPUs, narrow
// enough to catch a broken update. The chance level is 0.1 and the first
// round's accuracy is about 0.5.
#include <catch2/catch.hpp>

#include "run/experiment.h"

namespace {

double FinalAccuracy(const std::string& name, const std::vector<std::string>& sets) {
  nlohmann::json j = {{"experiment", {{"rounds", 30}}}, {"algorithm", {{"name", name}}}};
  for (const auto& s : sets) fedsim::ApplyOverride(j, s);
  fedsim::RunOptions o;
  o.threads = 2;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o)["summary"]["final_test_accuracy"].get<double>();
}

}  // namespace

TEST_CASE("every algorithm learns on Synthetic(1,1)", "[fl][algorithms][learn]") {
  struct Case {
    std::string name;
    std::vector<std::string> sets;
    double measured;
  };
  const std::vector<Case> cases = {
      {"fedavg", {}, 0.8708},
      {"fedsgd", {"algorithm.lr=0.5"}, 0.85},
      {"fedprox", {"algorithm.mu=0.01"}, 0.8708},
      {"feddyn", {}, 0.9499},
      {"scaffold", {}, 0.9282},
      {"scaffold", {"algorithm.scaffold_variant=niid_bench", "algorithm.momentum=0.5"}, 0.8861},
      {"fednova", {}, 0.9456},
      {"fedavgm", {}, 0.8742},
      {"fedadagrad", {"algorithm.server_lr=0.1"}, 0.8929},
      {"fedadam", {"algorithm.server_lr=0.03"}, 0.8895},
      {"fedyogi", {"algorithm.server_lr=0.03"}, 0.9001},
      {"fedsparse", {}, 0.8402},  // plain error feedback (the default)
      {"fedsparse", {"algorithm.momentum_correction=0.9"}, 0.7833},  // DGC momentum costs accuracy on non-IID data
      {"fedgia", {}, 0.9452},
      {"fedpara", {"algorithm.fedpara_gamma=0.1"}, 0.8402},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const double acc = FinalAccuracy(c.name, c.sets);
    CHECK(acc >= c.measured - 0.03);
    CHECK(acc <= c.measured + 0.03);
  }
}
