// FedGAN's round loop: the server's weighted averaging of both networks,
// determinism across thread counts, resumption, and its config rules.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "core/config.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "fl/checkpoint.h"
#include "fl/fedgan.h"
#include "run/experiment.h"

using nlohmann::json;

namespace {

// A small FedGAN run on the first 300 images of datasets/fmnist-sample,
// 3 clients with a Dirichlet partition (unequal sizes), tiny networks.
json TinyGanConfig() {
  return {{"experiment", {{"rounds", 2}, {"seed", uint64_t{7}}}},
          {"data",
           {{"dataset", "mnist_idx"},
            {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
            {"num_clients", 3},
            {"max_train_samples", 300},
            {"max_test_samples", 100},
            {"partition", {{"kind", "dirichlet"}, {"alpha", 0.5}}}}},
          {"algorithm", {{"name", "fedgan"}, {"clients_per_round", 3}, {"batch_size", 16}, {"local_steps", 3}}},
          {"gan",
           {{"latent_dim", 8},
            {"generator_hidden", {16}},
            {"discriminator_hidden", {16}},
            {"generator_lr", 1e-3},
            {"discriminator_lr", 1e-3},
            {"judge_kind", "softmax"},
            {"judge_epochs", 1},
            {"eval_samples", 300},
            {"grid", 3}}}};
}

std::string TempDir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("fedsim_fedgan_" + name);
  std::filesystem::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("fedgan: the new global pair is the data-size-weighted mean of the clients' pairs", "[fl][fedgan]") {
  json j = TinyGanConfig();
  j["experiment"]["rounds"] = 1;
  const fedsim::Config cfg = fedsim::ParseConfig(j, "test");
  const std::string out = TempDir("mean");
  fedsim::RunOptions opt;
  opt.threads = 2;
  opt.out_dir = out;
  const json m = fedsim::RunExperiment(cfg, opt);  // the federated driver with FedGAN's trainer
  REQUIRE(m["summary"]["status"] == "completed");
  const fedsim::CheckpointReader ck(out + "/checkpoint.bin");

  // The same clients trained by hand from the same initial pair and streams.
  const fedsim::FederatedData data = fedsim::LoadData(cfg.data, 7);
  const fedsim::Partition part = fedsim::MakePartition(data.train, 3, cfg.data.partition, 7);
  const fedsim::GanNets nets(cfg.gan, data.train.dim());
  const int64_t p = nets.num_params();
  const Eigen::VectorXf global = ck.F32("global", p);
  Eigen::VectorXf init(p);
  fedsim::Rng gi = fedsim::DeriveStream(7, fedsim::Stream::kModelInit, 0, 0);
  nets.generator.Init(init.data(), gi);
  fedsim::Rng di = fedsim::DeriveStream(7, fedsim::Stream::kModelInit, 0, 1);
  nets.discriminator.Init(init.data() + nets.disc_offset(), di);
  const auto settings = fedsim::GanTrainSettings::FromConfig(cfg);
  fedsim::GanScratch scratch(nets, 16);
  Eigen::VectorXd expected = Eigen::VectorXd::Zero(p);
  double total = 0.0;
  std::vector<size_t> sizes;
  for (int k = 0; k < 3; ++k) {
    Eigen::VectorXf w = init, mom = Eigen::VectorXf::Zero(p), var = Eigen::VectorXf::Zero(p);
    int64_t t = 0;
    fedsim::Rng rng = fedsim::DeriveStream(7, fedsim::Stream::kLocalTrain, 0, static_cast<uint64_t>(k));
    const auto rep = fedsim::TrainGanClient(nets, settings, data.train, part[static_cast<size_t>(k)], rng, 1e-3f,
                                            1e-3f, w.data(), mom.data(), var.data(), &t, scratch);
    CHECK(rep.steps == 3);
    CHECK(t == 3);
    CHECK(rep.weight == static_cast<double>(part[static_cast<size_t>(k)].size()));
    CHECK((w - init).norm() > 0.0f);  // both networks moved
    CHECK((w.tail(p - nets.disc_offset()) - init.tail(p - nets.disc_offset())).norm() > 0.0f);
    expected += rep.weight * w.cast<double>();
    total += rep.weight;
    sizes.push_back(part[static_cast<size_t>(k)].size());
  }
  expected /= total;
  REQUIRE((sizes[0] != sizes[1] || sizes[1] != sizes[2]));  // the weights matter
  CHECK((global.cast<double>() - expected).cwiseAbs().maxCoeff() < 1e-6);
  // Bytes: both networks down and up for each of the 3 clients.
  CHECK(m["summary"]["bytes_up"].get<int64_t>() == 3 * p * 4);
  CHECK(m["summary"]["bytes_down"].get<int64_t>() == 3 * p * 4);
  std::filesystem::remove_all(out);
}

TEST_CASE("fedgan: bitwise identical metrics for 1 and 2 threads, and the quality keys", "[fl][fedgan][determinism]") {
  const fedsim::Config cfg = fedsim::ParseConfig(TinyGanConfig(), "test");
  fedsim::RunOptions o1, o2;
  o1.threads = 1;
  o2.threads = 2;
  const json a = fedsim::RunExperiment(cfg, o1), b = fedsim::RunExperiment(cfg, o2);
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  const json& last = a["rounds"].back();
  int64_t judged = 0;
  for (const auto& c : last["class_histogram"]) judged += c.get<int64_t>();
  CHECK(judged == 300);
  CHECK(last["classes_covered"].get<int>() >= 1);
  CHECK(last["effective_classes"].get<double>() == Approx(std::exp(last["class_entropy"].get<double>())));
  CHECK(last["inception_score"].get<double>() >= 1.0);
  CHECK(std::isfinite(last["generator_loss"].get<double>()));
  CHECK(a["judge"]["test_accuracy"].get<double>() > 0.3);  // 1 epoch of softmax regression on 300 images
  CHECK(a["summary"]["final_classes_covered"] == last["classes_covered"]);
}

TEST_CASE("fedgan: a run stopped after round 1 and resumed equals an uninterrupted run", "[fl][fedgan][checkpoint]") {
  json j = TinyGanConfig();
  j["experiment"]["rounds"] = 3;
  const fedsim::Config cfg = fedsim::ParseConfig(j, "test");
  const std::string full = TempDir("full"), part = TempDir("part");
  fedsim::RunOptions o;
  o.threads = 2;
  o.out_dir = full;
  const json a = fedsim::RunExperiment(cfg, o);
  o.out_dir = part;
  o.stop_after_round = 1;
  const json stopped = fedsim::RunExperiment(cfg, o);
  CHECK(stopped["summary"]["status"] == "interrupted");
  o.stop_after_round = 0;
  o.resume = true;
  const json b = fedsim::RunExperiment(cfg, o);
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  CHECK(std::filesystem::exists(part + "/samples/round_0003.pgm"));
  std::filesystem::remove_all(full);
  std::filesystem::remove_all(part);
}

TEST_CASE("fedgan: config rules and data range", "[fl][fedgan]") {
  auto parse = [](json j) { return fedsim::ParseConfig(j, "x"); };
  json j = TinyGanConfig();
  j["privacy"] = {{"mode", "central"}};
  CHECK_THROWS_WITH(parse(j), Catch::Contains("fedgan has no differential privacy"));
  j = TinyGanConfig();
  j["data"]["standardize"] = true;
  CHECK_THROWS_WITH(parse(j), Catch::Contains("data.standardize"));
  j = TinyGanConfig();
  j["algorithm"]["batch_size"] = 0;
  CHECK_THROWS_WITH(parse(j), Catch::Contains("algorithm.batch_size"));
  j = TinyGanConfig();
  j["secure_aggregation"] = {{"enabled", true}};
  CHECK_THROWS_WITH(parse(j), Catch::Contains("secure_aggregation.enabled"));
  // Synthetic(1,1) features are Gaussian, not pixels in [0, 1].
  json s = {{"algorithm", {{"name", "fedgan"}}}, {"experiment", {{"rounds", 1}}}};
  fedsim::RunOptions o;
  CHECK_THROWS_AS(fedsim::RunExperiment(parse(s), o), fedsim::InputError);
}
