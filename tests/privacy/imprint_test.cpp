// The malicious server's imprint attack (audit.imprint): the bins of a
// hand-built layer give planted samples back exactly, from one gradient and
// from a weighted sum of two clients' gradients; a bin holding two samples
// recovers nothing; real runs are the same for 1 and 2 threads, leave the
// honest model alone on attack rounds, and bad configs are refused.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/sequential.h"
#include "round/imprint.h"
#include "../run_helpers.h"

using nlohmann::json;

namespace {

constexpr int kIn = 6, kHidden = 5, kClasses = 3;

// Sample i of `means`: 6 values around means[i] (their mean is exactly
// means[i]), different in shape from sample to sample.
std::vector<float> Samples(const std::vector<float>& means) {
  std::vector<float> x;
  for (size_t i = 0; i < means.size(); ++i) {
    const float wiggle[kIn] = {0.3f, -0.2f, 0.1f, -0.4f, 0.25f, -0.05f};
    for (int j = 0; j < kIn; ++j) x.push_back(means[i] + wiggle[(j + i) % kIn] * (1.0f + 0.5f * i));
  }
  return x;
}

struct Fixture {
  std::unique_ptr<fedsim::Sequential> net = fedsim::MakeDenseStack({kIn, kHidden, kClasses}, 1.0, "mlp");
  const fedsim::Sequential& model = *net;
  Eigen::VectorXf global, crafted;
  std::unique_ptr<fedsim::ImprintAttack> attack;

  // Three bins on the brightness: [-0.5, 0.3), [0.3, 0.6), [0.6, inf); the
  // next layer reads them through small weights, so that no sample's softmax
  // saturates (a saturated sample has g(x) = 0 and leaves no trace).
  Fixture() {
    global.resize(model.num_params());
    fedsim::Rng rng(11);
    model.Init(global.data(), rng);
    const fedsim::ImprintLayout layout = fedsim::ImprintLayoutOf(model, 3, kIn);
    Eigen::VectorXf v(kClasses);
    v << 0.07f, -0.04f, 0.09f;
    attack = std::make_unique<fedsim::ImprintAttack>(layout, Eigen::VectorXf::Constant(kIn, 1.0f / kIn),
                                                     std::vector<double>{-0.5, 0.3, 0.6}, v, 1);
    attack->Craft(global, crafted);
  }

  // The mean gradient of the crafted model on `x` (rows) with labels `y`.
  Eigen::VectorXf Gradient(const std::vector<float>& x, const std::vector<int>& y) const {
    Eigen::VectorXf g(model.num_params());
    auto ws = model.NewWorkspace(static_cast<int>(y.size()));
    model.LossAndGradient(crafted.data(), x.data(), y.data(), static_cast<int>(y.size()), g.data(), *ws);
    return g;
  }
};

// The largest |a - b| over the sample's values.
float MaxError(const Eigen::VectorXf& a, const std::vector<float>& x, int row) {
  return (a - Eigen::Map<const Eigen::VectorXf>(x.data() + row * kIn, kIn)).cwiseAbs().maxCoeff();
}

}  // namespace

TEST_CASE("imprint: the crafted layer is the bins and the next layer reads them alike", "[audit]") {
  Fixture f;
  const fedsim::ImprintLayout& l = f.attack->layout();
  for (int b = 0; b < 3; ++b) {
    CHECK(f.crafted.segment(l.w0 + b * kIn, kIn).isApproxToConstant(1.0f / kIn));
    for (int j = 0; j < kClasses; ++j) CHECK(f.crafted[l.w1 + j * kHidden + b] == f.crafted[l.w1 + j * kHidden]);
  }
  CHECK(f.crafted[l.b0 + 1] == Approx(-0.3));
  // The units past the bins keep the honest model's weights.
  CHECK(f.crafted.segment(l.w0 + 3 * kIn, 2 * kIn) == f.global.segment(l.w0 + 3 * kIn, 2 * kIn));
  CHECK(f.crafted[l.w1 + 4] == f.global[l.w1 + 4]);
}

TEST_CASE("imprint: three samples in three bins come back exactly from one batch gradient", "[audit]") {
  Fixture f;
  const std::vector<float> x = Samples({0.1f, 0.45f, 0.8f});
  const Eigen::VectorXf g = f.Gradient(x, {0, 1, 2});
  const auto c = f.attack->Invert(g.data());
  REQUIRE(c.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(c[i].bin == i);
    CHECK(MaxError(c[i].x, x, i) < 1e-4f);
  }
  // An update -lr g (FedSGD's upload) inverts the same.
  const Eigen::VectorXf up = -0.05f * g;
  const auto c2 = f.attack->Invert(up.data());
  REQUIRE(c2.size() == 3);
  CHECK(MaxError(c2[1].x, x, 1) < 1e-4f);
}

TEST_CASE("imprint: the weighted sum of two clients' uploads still gives every sample back", "[audit]") {
  // What the server holds under secure aggregation: n_A u_A + n_B u_B.
  Fixture f;
  const std::vector<float> a = Samples({0.1f, 0.8f}), b = Samples({0.45f});
  const Eigen::VectorXf sum = 2.0f * (-0.1f * f.Gradient(a, {2, 0})) + 1.0f * (-0.1f * f.Gradient(b, {1}));
  const auto c = f.attack->Invert(sum.data());
  REQUIRE(c.size() == 3);
  CHECK(MaxError(c[0].x, a, 0) < 1e-4f);
  CHECK(MaxError(c[1].x, b, 0) < 1e-4f);
  CHECK(MaxError(c[2].x, a, 1) < 1e-4f);
}

TEST_CASE("imprint: a bin holding two samples recovers neither, and the tap does not count it", "[audit]") {
  Fixture f;
  // 0.4 and 0.5 share the middle bin; 0.9 is alone in the last.
  const std::vector<float> x = Samples({0.4f, 0.5f, 0.9f});
  const Eigen::VectorXf g = f.Gradient(x, {0, 1, 2});
  const auto c = f.attack->Invert(g.data());
  REQUIRE(c.size() == 2);  // the first bin is empty
  CHECK(c[0].bin == 1);
  CHECK(MaxError(c[0].x, x, 0) > 1e-2f);
  CHECK(MaxError(c[0].x, x, 1) > 1e-2f);
  CHECK(MaxError(c[1].x, x, 2) < 1e-4f);
  // Scored by the tap against the client's three rows: one recovered.
  fedsim::Dataset d;
  d.x = Eigen::Map<const fedsim::RowMatrix>(x.data(), 3, kIn);
  d.y = {0, 1, 2};
  d.num_classes = kClasses;
  const std::vector<std::vector<int>> partition = {{0, 1, 2}};
  fedsim::ImprintTap tap(nullptr, *f.attack, d, partition, false);
  tap.Score(g.data(), partition[0]);
  const json r = tap.RoundRecord();
  CHECK(r["candidates"] == 2);
  CHECK(r["recovered"] == 1);
  CHECK(r["within_30db"] == 1);  // the mixture is far from both
  CHECK(r["samples"] == 3);
}

namespace {

// Fashion-MNIST's sample: 20 clients of 10 images, FedSGD on a 64-unit mlp,
// 32 bins on every round.
json ImprintRun() {
  return {{"experiment", {{"rounds", 3}}},
          {"data", {{"dataset", "mnist_idx"}, {"path", FEDSIM_SOURCE_DIR "/datasets/fmnist-sample"},
                    {"num_clients", 20}, {"max_train_samples", 200}, {"partition", {{"kind", "iid"}}}}},
          {"model", {{"kind", "mlp"}, {"hidden", {64}}}},
          {"algorithm", {{"name", "fedsgd"}, {"clients_per_round", 5}, {"lr", 0.1}}},
          {"metrics", {{"eval_every", 1}}},
          {"audit", {{"imprint", {{"bins", 32}}}}}};
}

}  // namespace

TEST_CASE("imprint: a real run recovers samples, is the same for 1 and 2 threads, and does not train on attack rounds",
          "[audit][run]") {
  const json one = fedsim::testing::RunJson(ImprintRun(), 1), two = fedsim::testing::RunJson(ImprintRun(), 2);
  const json& a = one["summary"]["audit"]["imprint"];
  INFO(a.dump());
  CHECK(a == two["summary"]["audit"]["imprint"]);
  CHECK(a["rounds"] == 3);
  CHECK(a["views"] == 15);
  CHECK(a["samples"] == 150);
  // 10 images in 32 bins: about 10 (31/32)^9 = 7.5 of them alone in a bin.
  CHECK(a["recovered"].get<int>() > 60);
  CHECK(a["recovered"].get<int>() <= 150);
  CHECK(a["within_30db"].get<int>() >= a["recovered"].get<int>());
  // Every round attacks, so the honest model never moves.
  const json& rounds = one["rounds"];
  CHECK(rounds[0]["test_loss"] == rounds[2]["test_loss"]);
  // Every second round attacks: round 2 trains.
  json alt = ImprintRun();
  alt["audit"]["imprint"]["every"] = 2;
  const json half = fedsim::testing::RunJson(alt, 2);
  CHECK(half["summary"]["audit"]["imprint"]["rounds"] == 2);
  CHECK(half["rounds"][1]["stages"]["audit"]["imprint"]["attack_round"] == false);
  CHECK(half["rounds"][0]["test_loss"] == rounds[0]["test_loss"]);
  CHECK(half["rounds"][1]["test_loss"] != rounds[1]["test_loss"]);
}

TEST_CASE("imprint: under secure aggregation the cohort's sum still gives samples back", "[audit][run]") {
  json j = ImprintRun();
  j["secure_aggregation"] = {{"enabled", true}, {"range", 8.0}};
  const json s = fedsim::testing::RunJson(j, 2)["summary"]["audit"]["imprint"];
  INFO(s.dump());
  CHECK(s["views"] == 3);  // one sum a round
  CHECK(s["samples"] == 150);
  // 50 images in 32 bins: about 50 (31/32)^49 = 10 alone a round.
  CHECK(s["recovered"].get<int>() > 5);
  // Local DP noise on every upload: nothing exact.
  json noisy = ImprintRun();
  noisy["privacy"] = {{"mode", "local"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}};
  CHECK(fedsim::testing::RunJson(noisy, 2)["summary"]["audit"]["imprint"]["recovered"] == 0);
}

TEST_CASE("imprint: refused where the layer cannot be built", "[audit][config]") {
  auto fails = [](json j, const std::string& what) {
    CHECK_THROWS_WITH(fedsim::testing::RunJson(j, 1), Catch::Contains(what));
  };
  json j = ImprintRun();
  j["model"] = {{"kind", "softmax"}};
  fails(j, "audit.imprint.bins");
  j = ImprintRun();
  j["audit"]["imprint"]["bins"] = 65;
  fails(j, "audit.imprint.bins");
  j = ImprintRun();
  j["audit"]["imprint"]["bins"] = 1;
  fails(j, "audit.imprint.bins");
  j = ImprintRun();
  j["algorithm"]["name"] = "scaffold";
  fails(j, "audit.imprint");
  j = ImprintRun();
  j["audit"]["imprint"]["measurement"] = "colour";
  fails(j, "audit.imprint.measurement");
  j = ImprintRun();
  j["audit"]["membership"] = true;
  j["audit"]["reconstruction"] = true;
  fails(j, "audit.imprint.bins");
}
