// The CNNs run under every algorithm that trains a dense-parameter model.
#include <catch2/catch.hpp>

#include <cmath>

#include "fl/algorithm.h"
#include "fl/runner.h"

using nlohmann::json;

TEST_CASE("cnn_lenet runs with every algorithm, deterministically", "[fl][cnn]") {
  for (const auto& entry : fedsim::GetCatalog().algorithms) {
    if (entry.name == "fedpara") continue;  // dense layers only; the config rejects it
    if (entry.generative) continue;         // fedgan trains its own generator and discriminator
    INFO(entry.name);
    json j = {{"experiment", {{"rounds", 2}}},
              {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                        {"num_clients", 4}, {"max_train_samples", 200}, {"max_test_samples", 100},
                        {"partition", {{"kind", "iid"}}}}},
              {"model", {{"kind", "cnn_lenet"}}},
              {"algorithm", {{"name", entry.name}, {"clients_per_round", 2}, {"batch_size", 10}}}};
    const fedsim::Config cfg = fedsim::ParseConfig(j, "test");
    fedsim::RunOptions o1, o2;
    o1.threads = 1;
    o2.threads = 2;
    const json a = fedsim::RunExperiment(cfg, o1), b = fedsim::RunExperiment(cfg, o2);
    CHECK(a["summary"]["status"] == "completed");
    CHECK(std::isfinite(a["summary"]["final_test_loss"].get<double>()));
    CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  }
  json bad = {{"model", {{"kind", "cnn_mcmahan"}}}, {"algorithm", {{"name", "fedpara"}}}};
  CHECK_THROWS_WITH(fedsim::ParseConfig(bad, "x"), Catch::Contains("fedpara re-parameterises dense layers only"));
}
