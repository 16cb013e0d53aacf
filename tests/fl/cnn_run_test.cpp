// The CNNs run under every algorithm (fedpara re-parameterises their layers).
#include <catch2/catch.hpp>

#include <cmath>

#include "fl/algorithm.h"
#include "run/experiment.h"

using nlohmann::json;

TEST_CASE("cnn_lenet runs with every algorithm, deterministically", "[fl][cnn]") {
  for (const auto& entry : fedsim::GetCatalog().algorithms) {
    if (entry.generative) continue;         // fedgan trains its own generator and discriminator
    INFO(entry.name);
    json j = {{"experiment", {{"rounds", 2}}},
              {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                        {"num_clients", 4}, {"max_train_samples", 200}, {"max_test_samples", 100},
                        {"partition", {{"kind", "iid"}}}}},
              {"model", {{"kind", "cnn_lenet"}}},
              {"algorithm", {{"name", entry.name}, {"clients_per_round", 2}, {"batch_size", 10}}}};
    if (entry.name == "fedbn") {  // LeNet's first layers with FedBN's local batch norms
      j["model"] = {{"kind", "sequential"},
                    {"layers", json::array({{{"type", "conv2d"}, {"filters", 6}, {"kernel", 5}},
                                            {{"type", "batchnorm"}, {"local", true}}, {{"type", "relu"}},
                                            {{"type", "maxpool2d"}, {"kernel", 2}},
                                            {{"type", "dense"}, {"units", 32}},
                                            {{"type", "batchnorm"}, {"local", true}}, {{"type", "relu"}},
                                            {{"type", "dense"}}})}};
    }
    const fedsim::Config cfg = fedsim::ParseConfig(j, "test");
    fedsim::RunOptions o1, o2;
    o1.threads = 1;
    o2.threads = 2;
    const json a = fedsim::RunExperiment(cfg, o1), b = fedsim::RunExperiment(cfg, o2);
    CHECK(a["summary"]["status"] == "completed");
    CHECK(std::isfinite(a["summary"]["final_test_loss"].get<double>()));
    CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  }
}

TEST_CASE("fedpara on cnn_lenet learns and sends only the factors", "[fl][cnn][fedpara]") {
  // The 1,000-image Fashion-MNIST sample, 10 IID clients, 5 per round, 15
  // rounds. Measured (seed 1, g++ 12, x86-64): final accuracy 0.590, train
  // loss 2.30 in round 1 and 1.21 in round 15; chance is 0.1.
  json j = {{"experiment", {{"rounds", 15}}},
            {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                      {"num_clients", 10}, {"standardize", true}, {"partition", {{"kind", "iid"}}}}},
            {"model", {{"kind", "cnn_lenet"}}},
            {"algorithm", {{"name", "fedpara"}, {"clients_per_round", 5}, {"batch_size", 10}, {"lr", 0.1}}},
            {"metrics", {{"eval_every", 5}}}};
  fedsim::RunOptions o;
  o.threads = 2;
  const json m = fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
  CHECK(m["model"]["kind"] == "fedpara_cnn_lenet");
  // Factors and biases of the five layers (ranks 1/4/14/12/4), 2.5x fewer
  // than the dense LeNet's 44,426.
  const int64_t p = 70 + 992 + 10648 + 4980 + 762;
  CHECK(m["model"]["num_params"] == p);
  CHECK(m["summary"]["bytes_up"] == 15 * 5 * 4 * p);
  CHECK(m["summary"]["bytes_down"] == 15 * 5 * 4 * p);
  const double acc = m["summary"]["final_test_accuracy"].get<double>();
  CHECK(acc >= 0.59 - 0.05);
  CHECK(acc <= 0.59 + 0.05);
}
