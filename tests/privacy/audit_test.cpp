// Privacy audits (audit.*): the epsilon of two Gaussians against the analytic
// Gaussian mechanism, the ROC summary by hand, the canary estimate on a single
// Gaussian release of known epsilon, and real runs (threads, refusals).
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "privacy/mechanisms.h"
#include "round/privacy_audit.h"
#include "run/experiment.h"
#include "../run_helpers.h"

using nlohmann::json;

TEST_CASE("the epsilon of two equal-variance Gaussians is the analytic Gaussian mechanism's", "[audit]") {
  for (double s : {0.5, 1.0, 2.0, 4.0}) {
    for (double delta : {1e-5, 1e-3}) {
      const double want = fedsim::GaussianMechanismEpsilon(1.0, s, delta);
      CHECK(fedsim::EpsilonOfGaussians(0.0, s, 1.0, s, delta) == Approx(want).epsilon(1e-6));
      // Shifted and scaled: only the standardised distance matters.
      CHECK(fedsim::EpsilonOfGaussians(3.0, 2 * s, 5.0, 2 * s, delta) == Approx(want).epsilon(1e-6));
    }
  }
  CHECK(fedsim::EpsilonOfGaussians(0.0, 1.0, 0.0, 1.0, 1e-5) == 0.0);
  // Unequal variances: the wider one can be told apart in its tails, so
  // epsilon grows with the ratio even at equal means.
  const double e2 = fedsim::EpsilonOfGaussians(0.0, 1.0, 0.0, 2.0, 1e-5);
  const double e3 = fedsim::EpsilonOfGaussians(0.0, 1.0, 0.0, 3.0, 1e-5);
  CHECK(e2 > 0.0);
  CHECK(e3 > e2);
}

TEST_CASE("ROC summary by hand", "[audit]") {
  // Positives 3, 4, 5 against negatives 1, 2, 3: 3 beats two and ties one
  // (2.5), 4 and 5 beat all three: AUC = 8.5 / 9. At FPR 0 the threshold is
  // the largest negative (3): TPR = 2/3; at FPR 1/3 it is 2: TPR 1.
  const auto r = fedsim::Roc({3, 4, 5}, {1, 2, 3}, {0.0, 1.0 / 3.0});
  CHECK(r.auc == Approx(8.5 / 9.0));
  CHECK(r.tpr_at[0] == Approx(2.0 / 3.0));
  CHECK(r.tpr_at[1] == Approx(1.0));
}

TEST_CASE("the canary estimate of one Gaussian release is close to its epsilon", "[audit]") {
  // 1,000 canaries all inserted (q = 1) into a sum in d = 50,000 dimensions,
  // clip norm 1, plus N(0, sigma^2) noise per coordinate: each canary's
  // cosine with the release is a Gaussian mechanism of sensitivity 1 and
  // noise sigma, up to the other canaries' cross terms (variance k / d = 0.02).
  // The estimate's error comes from fitting 1,000 cosines (the mean's standard
  // error is 3% of the distance, which epsilon amplifies about 3-fold).
  const double sigma = 1.0, delta = 1e-5;
  fedsim::Config cfg = fedsim::ParseConfig(
      json{{"privacy", {{"mode", "central"}, {"clip_norm", 1.0}, {"delta", delta}, {"noise_multiplier", sigma}}},
           {"audit", {{"canaries", 1000}, {"unobserved", 1000}}}},
      "test");
  const int64_t d = 50000;
  fedsim::PrivacyAudit audit(cfg, d, 1.0);
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(d);
  CHECK(audit.Insert(0, sum) == 1000);
  fedsim::Rng noise(7);
  for (int64_t j = 0; j < d; ++j) sum[j] += sigma * noise.Normal();
  const Eigen::VectorXf initial = Eigen::VectorXf::Zero(d), final_model = sum.cast<float>();
  const json a = audit.FinishCanaries(initial, final_model, 1.0, 2);
  const double want = fedsim::GaussianMechanismEpsilon(1.0, std::sqrt(sigma * sigma + 1000.0 / d), delta);
  const double got = a["epsilon_estimate"].get<double>();
  INFO("estimate " << got << " against " << want << ": " << a.dump());
  CHECK(std::abs(got - want) / want < 0.25);
  // The unobserved canaries sample the null N(0, 1/d).
  CHECK(a["unobserved_cosine"]["std"].get<double>() == Approx(1.0 / std::sqrt(50000.0)).epsilon(0.1));
  CHECK(std::abs(a["unobserved_cosine"]["mean"].get<double>()) < 4.0 / std::sqrt(50000.0 * 1000.0));
  CHECK(a["unobserved_cosine"]["std"].get<double>() == Approx(a["inserted_cosine"]["std"].get<double>()).epsilon(0.2));
}

namespace {

json Run(const json& j, int threads) { return fedsim::testing::RunJson(j, threads); }

// Synthetic(1,1), 30 clients, softmax, central DP with canaries.
json AuditBase() {
  return {{"experiment", {{"rounds", 5}}},
          {"algorithm", {{"clients_per_round", 10}, {"local_epochs", 5}}},
          {"privacy", {{"mode", "central"}, {"noise_multiplier", 0.5}, {"clip_norm", 1.0}}},
          {"audit", {{"canaries", 40}, {"membership", true}, {"membership_samples", 300}}}};
}

}  // namespace

TEST_CASE("audits attach to a run, are the same for 1 and 2 threads and leave the clients' counts alone",
          "[audit][run]") {
  const json one = Run(AuditBase(), 1), two = Run(AuditBase(), 2);
  const json& a = one["summary"]["audit"];
  CHECK(a == two["summary"]["audit"]);
  CHECK(a["canaries"]["canaries"] == 40);
  CHECK(a["canaries"]["epsilon_estimate"].is_number());
  CHECK(a["canaries"]["accountant_epsilon"] == one["summary"]["epsilon"]);
  CHECK(a["membership"]["members"] == 300);
  CHECK(a["membership"]["auc"].get<double>() > 0.0);
  int inserted = 0;
  for (const auto& r : one["rounds"]) {
    inserted += r["stages"]["audit"]["canaries_inserted"].get<int>();
    CHECK(r["cohort"] == 10);  // canaries are not clients
  }
  // About q k = 10/30 x 40 canaries a round.
  CHECK(inserted > 25);
  CHECK(inserted < 110);
  // Without canaries the run's other figures keep their meaning: same cohort, bytes.
  json plain = AuditBase();
  plain.erase("audit");
  const json p = Run(plain, 2);
  CHECK(p["summary"]["bytes_up"] == one["summary"]["bytes_up"]);
}

TEST_CASE("the canary audit is refused where it cannot measure anything", "[audit][config]") {
  json j = AuditBase();
  j["privacy"] = {{"mode", "none"}};
  CHECK_THROWS_WITH(Run(j, 1), Catch::Contains("audit.canaries"));
  j = AuditBase();
  j["secure_aggregation"] = {{"enabled", true}};
  CHECK_THROWS_WITH(Run(j, 1), Catch::Contains("audit.canaries"));
}

TEST_CASE("reconstruction: one sample's gradient gives the sample back; a sum or noise does not", "[audit][run]") {
  // FedSGD on Fashion-MNIST's sample with one image per client: each upload
  // is one sample's gradient, so the server recovers every image exactly.
  json j = {{"experiment", {{"rounds", 2}}},
            {"data", {{"dataset", "mnist_idx"}, {"path", FEDSIM_SOURCE_DIR "/datasets/fmnist-sample"},
                      {"num_clients", 40}, {"max_train_samples", 40}, {"partition", {{"kind", "iid"}}}}},
            {"model", {{"kind", "mlp"}, {"hidden", {32}}}},
            {"algorithm", {{"name", "fedsgd"}, {"clients_per_round", 8}, {"lr", 0.1}}},
            {"audit", {{"reconstruction", true}}}};
  const json exact = Run(j, 2);
  const json& r = exact["summary"]["audit"]["reconstruction"];
  CHECK(r["attacked"] == 16);
  CHECK(r["exact"] == 16);
  CHECK(r["mean_psnr"].get<double>() > 60.0);
  CHECK(Run(j, 1)["summary"]["audit"] == exact["summary"]["audit"]);
  // Local DP noise on each upload: nothing exact any more.
  json noisy = j;
  noisy["privacy"] = {{"mode", "local"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}};
  const json noisy_run = Run(noisy, 2);
  const json& rn = noisy_run["summary"]["audit"]["reconstruction"];
  CHECK(rn["exact"] == 0);
  CHECK(rn["mean_psnr"].get<double>() < r["mean_psnr"].get<double>() - 20.0);
  // Secure aggregation: the server inverts the cohort's sum, a mixture of 8 images.
  json secure = j;
  secure["secure_aggregation"] = {{"enabled", true}, {"range", 8.0}};
  const json secure_run = Run(secure, 2);
  const json& rs = secure_run["summary"]["audit"]["reconstruction"];
  CHECK(rs["attacked"] == 2);  // one sum a round
  CHECK(rs["exact"] == 0);
  // Refused where the first layer is not a dense layer with bias.
  json cnn = j;
  cnn["model"] = {{"kind", "cnn_lenet"}};
  CHECK_THROWS_WITH(Run(cnn, 1), Catch::Contains("audit.reconstruction"));
}
