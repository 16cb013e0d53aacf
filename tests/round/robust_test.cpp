// Robust aggregation rules against hand-computed results, the attacks'
// transformations of uploads and data, and runs with attackers: determinism
// across threads, checkpoint and resume.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/error.h"
#include "privacy/input_perturbation.h"
#include "round/aggregator.h"
#include "round/attack.h"
#include "round/upload_transform.h"
#include "run/experiment.h"

using nlohmann::json;

namespace {

// Aggregates the columns of `u` (one update per column) with robust.*
// settings `robust`; weights default to 1.
struct Aggregate {
  Eigen::VectorXd mean;       // sum / denominator
  json record;
};
Aggregate RunRule(const json& robust, const Eigen::MatrixXf& u, std::vector<double> weights = {}, int round = 0,
                  fedsim::Aggregator* reuse = nullptr, int threads = 2) {
  const fedsim::Config cfg = fedsim::ParseConfig({{"robust", robust}}, "test");
  std::unique_ptr<fedsim::Aggregator> own;
  fedsim::Aggregator* agg = reuse;
  if (!agg) {
    own = fedsim::MakeRobustAggregator(cfg, u.rows(), threads, nullptr);
    agg = own.get();
  }
  const int n = static_cast<int>(u.cols());
  std::vector<fedsim::ClientReport> reports(static_cast<size_t>(n));
  std::vector<char> keep(static_cast<size_t>(n), 1);
  for (int i = 0; i < n; ++i) {
    reports[static_cast<size_t>(i)].weight = weights.empty() ? 1.0 : weights[static_cast<size_t>(i)];
    reports[static_cast<size_t>(i)].client = i;
  }
  agg->Begin(round, n);
  agg->AddBlock(u, 0, n, reports, keep);
  const fedsim::AggregateResult r = agg->Finish(reports, keep);
  return {*r.sum / r.denominator, r.record};
}

Eigen::MatrixXf Cols(std::initializer_list<std::initializer_list<float>> rows) {
  // rows: one row per coordinate, one value per update
  Eigen::MatrixXf m(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(rows.begin()->size()));
  int i = 0;
  for (const auto& r : rows) {
    int j = 0;
    for (float v : r) m(i, j++) = v;
    ++i;
  }
  return m;
}

json RunExp(const json& j, int threads = 2, const std::string& out = "", int stop_after = 0, bool resume = false) {
  fedsim::RunOptions o;
  o.threads = threads;
  o.out_dir = out;
  o.stop_after_round = stop_after;
  o.resume = resume;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
}

// The Fashion-MNIST sample (images, so a backdoor can be stamped), 20 clients.
json ImageRun() {
  return {{"experiment", {{"rounds", 3}, {"seed", 5}}},
          {"data",
           {{"dataset", "mnist_idx"},
            {"path", FEDSIM_SOURCE_DIR "/datasets/fmnist-sample"},
            {"num_clients", 20},
            {"partition", {{"kind", "iid"}}},
            {"max_train_samples", 2000},
            {"max_test_samples", 300}}},
          {"model", {{"kind", "mlp"}, {"hidden", {32}}}},
          {"algorithm", {{"clients_per_round", 10}, {"batch_size", 20}, {"lr", 0.05}}}};
}

std::string TempDir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("fedsim_robust_" + name);
  std::filesystem::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("robust: coordinate-wise median, with even counts and ties", "[round][robust]") {
  // Even n: the mean of the middle two; ties count as values.
  const Aggregate even = RunRule({{"rule", "median"}}, Cols({{3, 1, 4, 2}, {5, 5, 1, 5}}));
  CHECK(even.mean[0] == 2.5);
  CHECK(even.mean[1] == 5.0);
  const Aggregate odd = RunRule({{"rule", "median"}}, Cols({{1, 9, 3, 7, 5}}), {1, 1, 1, 1, 100});
  CHECK(odd.mean[0] == 5.0);  // weights do not move the median
}

TEST_CASE("robust: trimmed mean cuts floor(trim n) values at each end", "[round][robust]") {
  const Aggregate t = RunRule({{"rule", "trimmed_mean"}, {"trim", 0.2}}, Cols({{1, 9, 3, 7, 5}, {10, 0, 0, 0, 100}}));
  CHECK(t.mean[0] == Approx(5.0));
  CHECK(t.mean[1] == Approx(10.0 / 3.0));
  // trim = 0.1 of 5 cuts nothing: the plain (unweighted) mean.
  CHECK(RunRule({{"rule", "trimmed_mean"}, {"trim", 0.1}}, Cols({{1, 9, 3, 7, 5}})).mean[0] == Approx(5.0));
  // 0.29 x 100 is 28.999999999999996 in doubles; the cut is still 29 at each
  // end: of the values k^2, k = 0..99, the mean of k = 29..70.
  Eigen::MatrixXf sq(1, 100);
  for (int k = 0; k < 100; ++k) sq(0, k) = static_cast<float>(k * k);
  double want = 0.0;
  for (int k = 29; k <= 70; ++k) want += k * k;
  want /= 42.0;
  CHECK(RunRule({{"rule", "trimmed_mean"}, {"trim", 0.29}}, sq).mean[0] == Approx(want).epsilon(1e-6));
}

TEST_CASE("robust: the median, trimmed mean and Bulyan's coordinate step equal their sort-based definitions",
          "[round][robust]") {
  // Random values with ties (a grid of 7 levels), every n from 1 to 40 and
  // 100, 37 coordinates (two full sorting batches of 16 and a partial one).
  std::mt19937 gen(3);
  std::uniform_int_distribution<int> level(-3, 3);
  std::normal_distribution<float> z;
  for (int n : {1, 2, 3, 4, 5, 8, 16, 17, 31, 32, 33, 40, 100}) {
    Eigen::MatrixXf u(37, n);
    for (int c = 0; c < 37; ++c) {
      for (int k = 0; k < n; ++k) u(c, k) = c % 2 ? static_cast<float>(level(gen)) : z(gen);
    }
    const Aggregate med = RunRule({{"rule", "median"}}, u);
    const Aggregate trim = RunRule({{"rule", "trimmed_mean"}, {"trim", 0.2}}, u);
    const int cut = static_cast<int>(std::floor(0.2 * n));
    for (int c = 0; c < 37; ++c) {
      std::vector<float> v;
      for (int k = 0; k < n; ++k) v.push_back(u(c, k));
      std::sort(v.begin(), v.end());
      const double m =
          n % 2 ? v[static_cast<size_t>(n / 2)]
                : 0.5 * (static_cast<double>(v[static_cast<size_t>(n / 2 - 1)]) + v[static_cast<size_t>(n / 2)]);
      CHECK(med.mean[c] == m);
      double s = 0.0;
      for (int k = cut; k < n - cut; ++k) s += v[static_cast<size_t>(k)];
      CHECK(trim.mean[c] == s / (n - 2 * cut));
      if (n < 3) continue;
      // Bulyan with f = 0 keeps every update, then the n values nearest the
      // median, summed nearest first (a stable sort by distance).
      std::vector<int> idx(static_cast<size_t>(n));
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
        return std::abs(v[static_cast<size_t>(a)] - m) < std::abs(v[static_cast<size_t>(b)] - m);
      });
      double b = 0.0;
      for (int k : idx) b += v[static_cast<size_t>(k)];
      CHECK(RunRule({{"rule", "bulyan"}, {"byzantine", 0}}, u.row(c)).mean[0] == b / n);
    }
  }
}

TEST_CASE("robust: Krum and Multi-Krum pick by the sum of the n - f - 2 nearest squared distances",
          "[round][robust]") {
  // Points 0, 1, 2, 10, 11 with f = 1 (2 neighbours): scores 5, 2, 5, 65, 82.
  const Eigen::MatrixXf u = Cols({{0, 1, 2, 10, 11}});
  const Aggregate k = RunRule({{"rule", "krum"}, {"byzantine", 1}}, u);
  CHECK(k.mean[0] == 1.0);
  CHECK(k.record["included"] == 1);
  // m = 3: the scores 2, 5, 5 (ties kept in cohort order): points 1, 0, 2.
  CHECK(RunRule({{"rule", "multikrum"}, {"byzantine", 1}, {"selected", 3}}, u).mean[0] == Approx(1.0));
  // m = n - f = 4: 0, 1, 2 and 10.
  CHECK(RunRule({{"rule", "multikrum"}, {"byzantine", 1}}, u).mean[0] == Approx(3.25));
  // Too few updates for f is an error naming the key.
  CHECK_THROWS_WITH(RunRule({{"rule", "krum"}, {"byzantine", 3}}, u),
                    Catch::StartsWith("robust.byzantine: robust.rule=krum needs at least 6 updates"));
}

TEST_CASE("robust: Bulyan keeps n - 2f updates by repeated Krum, then the n - 4f values nearest the median",
          "[round][robust]") {
  // f = 1, n = 7: repeated Krum picks 2, 1, 3, 0, 4 (see robust_aggregator.cpp
  // for the neighbours rule); per coordinate the 3 values nearest the median
  // 2 are 2, 1, 3: the outliers +-100 never count.
  const Aggregate b = RunRule({{"rule", "bulyan"}, {"byzantine", 1}}, Cols({{0, 1, 2, 3, 4, 100, -100}}));
  CHECK(b.mean[0] == Approx(2.0));
  CHECK(b.record["included"] == 5);
  CHECK_THROWS_WITH(RunRule({{"rule", "bulyan"}, {"byzantine", 2}}, Cols({{0, 1, 2, 3, 4, 100, -100}})),
                    Catch::Contains("needs at least 11 updates"));
}

TEST_CASE("robust: RFA is the smoothed Weiszfeld iteration from the weighted mean", "[round][robust]") {
  const std::vector<double> x{0, 1, 10}, w{1, 1, 2};
  double z = (0 * 1 + 1 * 1 + 10 * 2) / 4.0;  // 5.25
  for (int it = 0; it < 2; ++it) {
    double num = 0, den = 0;
    for (int k = 0; k < 3; ++k) {
      const double b = w[static_cast<size_t>(k)] / std::max(1e-6, std::abs(z - x[static_cast<size_t>(k)]));
      num += b * x[static_cast<size_t>(k)];
      den += b;
    }
    z = num / den;
  }
  const Aggregate r = RunRule({{"rule", "rfa"}, {"iterations", 2}}, Cols({{0, 1, 10}}), w);
  CHECK(r.mean[0] == Approx(z).epsilon(1e-12));
  // Many iterations reach the geometric median; in 1-D with equal weights,
  // the median 1.
  CHECK(RunRule({{"rule", "rfa"}, {"iterations", 200}}, Cols({{0, 1, 10}})).mean[0] == Approx(1.0).margin(1e-3));
}

TEST_CASE("robust: centered clipping moves the last aggregate by the mean clipped difference", "[round][robust]") {
  const fedsim::Config cfg = fedsim::ParseConfig(
      {{"robust", {{"rule", "centered_clipping"}, {"clip_norm", 1.0}, {"iterations", 1}}}}, "test");
  auto agg = fedsim::MakeRobustAggregator(cfg, 1, 2, nullptr);
  const Eigen::MatrixXf u = Cols({{0.5f, 3.0f, -4.0f}});
  const json robust = {{"rule", "centered_clipping"}, {"clip_norm", 1.0}, {"iterations", 1}};
  // From 0: clip(0.5) + clip(3) + clip(-4) = 0.5 + 1 - 1.
  CHECK(RunRule(robust, u, {}, 0, agg.get()).mean[0] == Approx(1.0 / 6.0));
  // Round 2 starts from 1/6: 1/3 + 1 - 1, over 3.
  CHECK(RunRule(robust, u, {}, 1, agg.get()).mean[0] == Approx(1.0 / 6.0 + 1.0 / 9.0));
}

TEST_CASE("robust: norm bounding scales each update to norm <= M before the weighted mean", "[round][robust]") {
  const Aggregate nb =
      RunRule({{"rule", "norm_bound"}, {"clip_norm", 1.0}}, Cols({{3.0f, 0.3f}, {4.0f, 0.4f}}), {1.0, 3.0});
  CHECK(nb.mean[0] == Approx((0.6 + 3 * 0.3) / 4));
  CHECK(nb.mean[1] == Approx((0.8 + 3 * 0.4) / 4));
}

TEST_CASE("robust: the buffered mean is the plain aggregator's sum bit for bit", "[round][robust]") {
  Eigen::MatrixXf u = Eigen::MatrixXf::Random(40000, 7);
  const std::vector<double> w{3, 1, 4, 1, 5, 9, 2};
  const fedsim::Config cfg = fedsim::ParseConfig(json::object(), "test");
  auto plain = fedsim::MakePlainAggregator(cfg, u.rows(), 7, 2);
  std::vector<fedsim::ClientReport> reports(7);
  std::vector<char> keep(7, 1);
  for (int i = 0; i < 7; ++i) reports[static_cast<size_t>(i)].weight = w[static_cast<size_t>(i)];
  plain->Begin(0, 7);
  plain->AddBlock(u.leftCols(4), 0, 4, reports, keep);
  plain->AddBlock(u.rightCols(3), 4, 3, reports, keep);
  const fedsim::AggregateResult p = plain->Finish(reports, keep);
  const Eigen::VectorXd expected = *p.sum / p.denominator;
  for (int threads : {1, 2}) {
    const Aggregate m = RunRule({{"rule", "mean"}}, u, w, 0, nullptr, threads);
    CHECK((m.mean - expected).cwiseAbs().maxCoeff() == 0.0);
  }
}

TEST_CASE("attacks: ALIE and IPM replace the attackers' updates from the benign ones", "[round][attack]") {
  CHECK(fedsim::AlieZMax(50, 12) == Approx(0.58284).epsilon(1e-4));  // Phi^-1(0.72)
  CHECK(fedsim::AlieZMax(10, 0) == 0.0);  // no attacker: nothing to hide among
  // A majority of attackers (s <= 0) keeps the z of s = 1, Phi^-1(0.9) for
  // n = 10, rather than dropping to 0 (the benign mean) past m = 5.
  CHECK(fedsim::AlieZMax(10, 5) == Approx(1.28155).epsilon(1e-4));
  CHECK(fedsim::AlieZMax(10, 6) == fedsim::AlieZMax(10, 5));
  CHECK(fedsim::AlieZMax(10, 10) == fedsim::AlieZMax(10, 5));
  // Benign members 0, 1: coordinate 0 has mean 2, std 1; coordinate 1 mean 6, std 2.
  fedsim::AttackConfig alie;
  alie.kind = "alie";
  alie.z = 1.5;
  Eigen::MatrixXf u = Cols({{1, 3, 100, 7}, {4, 8, 100, 7}});
  const std::vector<char> bad{0, 0, 1, 0}, kept{1, 1, 1, 0};  // member 3 was dropped: not benign
  CHECK(fedsim::ApplyOmniscientAttack(alie, u, bad, kept, 2) == 1.5);
  CHECK(u(0, 2) == Approx(0.5));
  CHECK(u(1, 2) == Approx(3.0));
  CHECK(u(0, 3) == 7.0);
  fedsim::AttackConfig ipm;
  ipm.kind = "ipm";
  ipm.epsilon = 0.5;
  Eigen::MatrixXf v = Cols({{1, 3, 100}, {4, 8, 100}});
  fedsim::ApplyOmniscientAttack(ipm, v, {0, 0, 1}, {1, 1, 1}, 1);
  CHECK(v(0, 2) == Approx(-1.0));
  CHECK(v(1, 2) == Approx(-3.0));
}

TEST_CASE("attacks: the malicious set, and the upload transform of sign flipping and boosting", "[round][attack]") {
  fedsim::AttackConfig a;
  a.kind = "sign_flip";
  a.fraction = 0.1;
  a.boost = 2.0;
  a.start_round = 3;
  const fedsim::AttackPlan plan(a, 100, 7);
  REQUIRE(plan.clients().size() == 10);
  CHECK(fedsim::AttackPlan(a, 100, 7).clients() == plan.clients());
  CHECK(fedsim::AttackPlan(a, 100, 8).clients() != plan.clients());
  const int bad = plan.clients()[0];
  int good = 0;
  while (plan.malicious(good)) ++good;
  auto t = fedsim::MakeAttackTransform(plan, 7);
  Eigen::VectorXf x(3);
  fedsim::ClientReport rep;
  for (const auto& [round, client, expected] :
       {std::tuple{2, bad, 1.0f}, std::tuple{1, bad, 1.0f}, std::tuple{3, good, 1.0f}}) {
    x << 1, -2, 3;
    fedsim::ClientUpload u{round - 1, client, x.data(), 3, &rep, 0};
    t->Apply(u);
    CHECK(x[1] == -2.0f * expected);  // not acting yet (rounds 1, 2) or benign
  }
  x << 1, -2, 3;
  fedsim::ClientUpload u{2, bad, x.data(), 3, &rep, 0};  // round 3
  t->Apply(u);
  CHECK(x[0] == -2.0f);
  CHECK(x[1] == 4.0f);
  a.count = 3;
  CHECK_THROWS_WITH(fedsim::AttackPlan(a, 100, 7), "attack.count: set attack.count or attack.fraction, not both");
  a.fraction = 0.0;
  a.count = 101;
  CHECK_THROWS_WITH(fedsim::AttackPlan(a, 100, 7), "attack.count: 101 attackers in a population of 100 clients");
  // With held-out clients the attackers come from the clients that train,
  // and the fraction is of them: 0.1 of 50 trainers is 5.
  std::vector<int> pool;
  for (int c = 0; c < 100; c += 2) pool.push_back(c);
  a.count = 0;
  a.fraction = 0.1;
  const fedsim::AttackPlan among(a, 100, 7, pool);
  REQUIRE(among.clients().size() == 5);
  for (int c : among.clients()) CHECK(c % 2 == 0);
  a.fraction = 0.0;
  a.count = 51;
  CHECK_THROWS_WITH(fedsim::AttackPlan(a, 100, 7, pool),
                    Catch::StartsWith("attack.count: 51 attackers in a population of 50 clients that train"));
}

TEST_CASE("attacks: data poisoning relabels or triggers copies of the attackers' own rows", "[round][attack]") {
  // 1 x 4 x 4 images, 6 rows of 2 clients, bytes 10 * row.
  fedsim::Dataset d;
  d.byte_storage = true;
  d.shape = {1, 4, 4};
  d.num_classes = 3;
  d.byte_scale = Eigen::RowVectorXf::Constant(16, 1.0f / 255);
  d.byte_shift = Eigen::RowVectorXf::Zero(16);
  for (int r = 0; r < 6; ++r) {
    d.bytes.insert(d.bytes.end(), 16, static_cast<uint8_t>(10 * r));
    d.y.push_back(r % 3);
  }
  const fedsim::Partition part{{0, 2, 4}, {1, 3, 5}};
  fedsim::AttackConfig a;
  a.kind = "label_flip";
  a.mapping = "reverse";
  a.count = 1;
  const fedsim::AttackPlan plan(a, 2, 1);
  const int c = plan.clients()[0];
  const fedsim::PoisonedTraining lf = fedsim::PoisonTraining(d, part, plan, 1);
  REQUIRE(lf.train.size() == 9);
  CHECK(lf.partition[static_cast<size_t>(1 - c)] == part[static_cast<size_t>(1 - c)]);
  const std::vector<int>& rows = lf.partition[static_cast<size_t>(c)];
  CHECK(rows == std::vector<int>{6, 7, 8});
  for (int k = 0; k < 3; ++k) {
    const int src = part[static_cast<size_t>(c)][static_cast<size_t>(k)];
    CHECK(lf.train.y[static_cast<size_t>(6 + k)] == 2 - d.y[static_cast<size_t>(src)]);
    CHECK(lf.train.bytes[static_cast<size_t>(6 + k) * 16] == 10 * src);
  }
  // Backdoor: lround(0.5 * 3) = 2 of the 3 rows replaced by triggered copies labelled 1.
  a.kind = "backdoor";
  a.target = 1;
  a.trigger_size = 2;
  const fedsim::AttackPlan bp(a, 2, 1);
  const fedsim::PoisonedTraining bd = fedsim::PoisonTraining(d, part, bp, 1);
  REQUIRE(bd.train.size() == 8);
  const int bc = bp.clients()[0];
  int replaced = 0;
  for (int r : bd.partition[static_cast<size_t>(bc)]) {
    if (r < 6) continue;
    ++replaced;
    CHECK(bd.train.y[static_cast<size_t>(r)] == 1);
    for (int px = 0; px < 16; ++px) {
      const bool corner = px / 4 >= 2 && px % 4 >= 2;
      const uint8_t v = bd.train.bytes[static_cast<size_t>(r) * 16 + static_cast<size_t>(px)];
      if (corner) CHECK(v == 255);
      if (!corner) CHECK(v != 255);
    }
  }
  CHECK(replaced == 2);
  // With input perturbation the attacker poisons its clean rows, then its
  // device clips (and noises) them: a triggered row is the clean row with the
  // trigger, scaled to L2 norm <= C, never the largest noisy feature. Benign
  // rows are those of the perturbed data. Noise 0 and C = 0.5 make the
  // values closed-form.
  fedsim::InputPerturbationConfig ip;
  ip.features = "gaussian";
  ip.feature_clip = 0.5;
  const fedsim::PoisonedTraining pb = fedsim::PoisonTraining(d, part, bp, 1, &ip, 1e-5);
  fedsim::Dataset perturbed = d;
  fedsim::PerturbTrainingData(perturbed, part, ip, 1e-5, 1);
  REQUIRE_FALSE(pb.train.byte_storage);
  for (int r : pb.partition[static_cast<size_t>(1 - bc)]) CHECK(pb.train.x.row(r) == perturbed.x.row(r));
  REQUIRE(pb.partition == bd.partition);  // the same rows chosen and triggered
  const fedsim::RowMatrix clean_rows = bd.train.Dense();
  int noisy_triggers = 0;
  for (int r : pb.partition[static_cast<size_t>(bc)]) {
    if (r < 6) continue;
    ++noisy_triggers;
    // The clean triggered row: the source row's bytes / 255, the corner at 1.0.
    const Eigen::RowVectorXf clean = clean_rows.row(r);
    const double norm = clean.cast<double>().norm();
    CHECK(pb.train.x(r, 15) == Approx(0.5 / norm).epsilon(1e-5));
    CHECK(pb.train.x(r, 15) == Approx(pb.train.x.row(r).maxCoeff()));
  }
  CHECK(noisy_triggers == 2);
  // The triggered test set: every non-target row, triggered, labelled the target.
  const fedsim::Dataset t = fedsim::TriggeredTestSet(d, a);
  CHECK(t.size() == 4);
  for (int r = 0; r < 4; ++r) CHECK(t.y[static_cast<size_t>(r)] == 1);
  CHECK(t.bytes[15] == 255);
  CHECK(t.bytes[0] == 0);
  a.target = 7;
  CHECK_THROWS_WITH(fedsim::TriggeredTestSet(d, a), "attack.target: 7 is not a label of this data (3 classes)");
}

TEST_CASE("attacks and robust rules in runs: the same bits for 1 and 2 threads, and across a resume",
          "[round][robust][attack][checkpoint]") {
  json j = ImageRun();
  j["attack"] = {{"kind", "backdoor"}, {"fraction", 0.3}, {"boost", 3.0}};
  j["robust"] = {{"rule", "centered_clipping"}, {"clip_norm", 0.5}};
  const json a = RunExp(j, 1), b = RunExp(j, 2);
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  CHECK(a["attack"]["count"] == 6);
  int sampled = 0;
  for (const auto& r : a["rounds"]) {
    sampled += r["robust"]["malicious"].get<int>();
    CHECK(r["backdoor_accuracy"].get<double>() >= 0.0);
  }
  CHECK(sampled > 0);
  // Interrupted after round 1 and resumed: centered clipping's center is in the checkpoint.
  const std::string out = TempDir("resume");
  RunExp(j, 2, out, 1);
  const json resumed = RunExp(j, 2, out, 0, true);
  CHECK(fedsim::StripNondeterministic(resumed)["rounds"] == fedsim::StripNondeterministic(a)["rounds"]);
  std::filesystem::remove_all(out);
}

TEST_CASE("attacks and robust rules are refused where they cannot work, naming the keys", "[round][robust][config]") {
  auto error = [](json j) {
    try {
      fedsim::CheckExperiment(fedsim::ParseConfig(j, "test"));
    } catch (const fedsim::InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error({{"robust", {{"rule", "krum"}}}, {"secure_aggregation", {{"enabled", true}}}}),
             Catch::StartsWith("robust.rule: robust.rule=krum needs each client's upload at the server"));
  // A cost-modelled scheme stands for a server that sees only the sum, as paillier does.
  for (const char* scheme : {"paillier", "paillier_model", "bfv", "ckks"}) {
    CHECK_THAT(error({{"robust", {{"rule", "median"}}}, {"encryption", {{"scheme", scheme}}}}),
               Catch::StartsWith("robust.rule: robust.rule=median needs each client's upload at the server") &&
                   Catch::Contains(std::string("encryption.scheme=") + scheme));
    CHECK_THAT(error({{"attack", {{"kind", "sign_flip"}, {"count", 2}}}, {"encryption", {{"scheme", scheme}}}}),
               Catch::StartsWith("attack.kind: attack.kind=sign_flip needs each client's upload"));
  }
  CHECK_THAT(error({{"robust", {{"rule", "median"}}}, {"privacy", {{"mode", "central"}, {"noise_multiplier", 1.0}}}}),
             Catch::StartsWith("robust.rule: median cannot be combined with privacy.mode=central"));
  CHECK_THAT(error({{"robust", {{"rule", "median"}}}, {"algorithm", {{"name", "scaffold"}}}}),
             Catch::StartsWith("robust.rule: robust.rule=median works on model-delta or gradient uploads"));
  CHECK_THAT(error({{"attack", {{"kind", "scaling"}, {"count", 2}}}}), Catch::StartsWith("attack.boost:"));
  CHECK_THAT(error({{"attack", {{"count", 2}}}}), Catch::StartsWith("attack.count: attackers need an attack"));
  CHECK(error({{"attack", {{"kind", "ipm"}, {"count", 2}}}, {"robust", {{"rule", "bulyan"}}}}) == "");
}
