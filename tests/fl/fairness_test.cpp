// Mechanics of the fairness algorithms, q-FFL (q-FedAvg) and AFL, against
// numbers computed by hand or from the papers' formulas written out here
// independently of src/fl/qffl.cpp and src/fl/afl.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include <cmath>
#include <numeric>

#include "fixture.h"
#include "run/experiment.h"

using fedsim::Afl;
using fedsim::ClientReport;
using fedsim::QFfl;
using fedsim::testing::Fixture;

namespace {

void RequireClose(const Eigen::VectorXf& a, const Eigen::VectorXf& b, double tol) {
  REQUIRE(a.size() == b.size());
  const double err = (a - b).cwiseAbs().maxCoeff();
  INFO("max abs difference " << err);
  CHECK(err <= tol);
}

// Mean loss of client k's training rows at w, from the model directly.
double ClientLoss(Fixture& f, int client, const Eigen::VectorXf& w) {
  const auto& rows = f.part[static_cast<size_t>(client)];
  fedsim::RowMatrix x(rows.size(), f.data.train.dim());
  f.data.train.Rows(rows.data(), static_cast<int>(rows.size()), x.data());
  std::vector<int> y;
  for (int r : rows) y.push_back(f.data.train.y[static_cast<size_t>(r)]);
  auto ws = f.model->NewWorkspace(static_cast<int>(rows.size()));
  Eigen::VectorXf g(f.p());
  return f.model->LossAndGradient(w.data(), x.data(), y.data(), static_cast<int>(rows.size()), g.data(), *ws);
}

// Client k's local-SGD end point from w: FedAvg's client side, which q-FFL
// and AFL share (same shuffle stream for the same round and client).
Eigen::VectorXf LocalSolution(Fixture& f, int client, float lr, const Eigen::VectorXf& w) {
  fedsim::AlgorithmConfig c = f.cfg.algorithm;
  c.name = "fedavg";
  auto fedavg = fedsim::CreateAlgorithm(c);
  fedavg->Setup(f.p(), 30);
  Eigen::VectorXf up(f.p());
  fedavg->LocalUpdate(f.ctx, f.Task(client, lr), w.data(), up.data(), f.s);
  return w + up;
}

}  // namespace

TEST_CASE("qffl: the upload by hand", "[fl][algorithms][fairness]") {
  // w = (1, 2), w_bar = (0.5, 2.5), F = 2, q = 2, L = 10:
  // w - w_bar = (0.5, -0.5), ||.||^2 = 0.5, F^q = 4, q F^(q-1) L ||.||^2 = 2*2*10*0.5 = 20.
  const float w[2] = {1.0f, 2.0f}, w_bar[2] = {0.5f, 2.5f};
  float up[3];
  QFfl::WriteUpload(w, w_bar, 2, 2.0, 2.0, 10.0, up);
  CHECK(up[0] == Approx(2.0));
  CHECK(up[1] == Approx(-2.0));
  CHECK(up[2] == Approx(24.0));
  // q = 0: [w - w_bar ; 1]
  QFfl::WriteUpload(w, w_bar, 2, 2.0, 0.0, 10.0, up);
  CHECK(up[0] == Approx(0.5));
  CHECK(up[1] == Approx(-0.5));
  CHECK(up[2] == Approx(1.0));
  // A client with zero loss: F = 1e-10 keeps F^(q-1) finite for q < 1.
  QFfl::WriteUpload(w, w_bar, 2, 0.0, 0.5, 10.0, up);
  CHECK(std::isfinite(up[2]));
}

TEST_CASE("qffl: one round of two clients equals the paper's q-FedAvg step", "[fl][algorithms][fairness]") {
  for (double q : {0.0, 0.5, 2.0}) {
    INFO("q " << q);
    Fixture f("qffl");
    f.cfg.algorithm.q = q;
    const float lr = 0.05f;
    QFfl algo(f.cfg.algorithm);
    algo.Setup(f.p(), 30);
    CHECK(algo.UploadSize() == f.p() + 1);
    Eigen::VectorXf u3(f.p() + 1), u8(f.p() + 1);
    std::vector<ClientReport> reps;
    reps.push_back(algo.LocalUpdate(f.ctx, f.Task(3, lr), f.w0.data(), u3.data(), f.s));
    reps.push_back(algo.LocalUpdate(f.ctx, f.Task(8, lr), f.w0.data(), u8.data(), f.s));
    CHECK(reps[0].weight == 1.0);
    const double f3 = ClientLoss(f, 3, f.w0), f8 = ClientLoss(f, 8, f.w0);
    CHECK(reps[0].start_loss == Approx(f3).epsilon(1e-6));
    CHECK(reps[1].start_loss == Approx(f8).epsilon(1e-6));

    // Algorithm 2 of Li et al. (2020) with L = 1/lr, written out in double.
    const double L = 1.0 / lr;
    Eigen::VectorXd sum_delta = Eigen::VectorXd::Zero(f.p());
    double sum_h = 0.0;
    std::vector<Eigen::VectorXf> w_bars;
    for (auto [k, F] : {std::pair<int, double>{3, f3}, {8, f8}}) {
      const Eigen::VectorXf w_bar = LocalSolution(f, k, lr, f.w0);
      w_bars.push_back(w_bar);
      const Eigen::VectorXd dw = L * (f.w0 - w_bar).cast<double>();
      sum_delta += std::pow(F, q) * dw;
      sum_h += q * std::pow(F, q - 1.0) * dw.squaredNorm() + L * std::pow(F, q);
    }
    const Eigen::VectorXf expected = f.w0 - (sum_delta / sum_h).cast<float>();

    Eigen::VectorXf global = f.w0;
    algo.ServerUpdate(global, 0.5f * (u3 + u8), reps, 0);
    const double step = (expected - f.w0).cwiseAbs().maxCoeff();
    REQUIRE(step > 1e-4);  // the round moved the model
    RequireClose(global, expected, 1e-5 * step + 1e-7);
    if (q == 0.0) {
      // q = 0: the plain mean of the clients' local models (FedAvg with equal weights).
      RequireClose(global, 0.5f * (w_bars[0] + w_bars[1]), 1e-6);
    }
  }
}

TEST_CASE("qffl: an explicit Lipschitz estimate replaces 1/lr", "[fl][algorithms][fairness]") {
  Fixture f("qffl");
  f.cfg.algorithm.q = 1.0;
  Eigen::VectorXf a(f.p() + 1), b(f.p() + 1);
  QFfl by_lr(f.cfg.algorithm);
  by_lr.Setup(f.p(), 30);
  by_lr.LocalUpdate(f.ctx, f.Task(5, 0.02f), f.w0.data(), a.data(), f.s);
  f.cfg.algorithm.qffl_lipschitz = 50.0;  // = 1 / 0.02
  QFfl explicit_l(f.cfg.algorithm);
  explicit_l.Setup(f.p(), 30);
  explicit_l.LocalUpdate(f.ctx, f.Task(5, 0.02f), f.w0.data(), b.data(), f.s);
  RequireClose(a, b, 1e-6 * a.cwiseAbs().maxCoeff());
}

TEST_CASE("afl: Euclidean projection onto the simplex, by hand", "[fl][algorithms][fairness]") {
  struct Case {
    std::vector<double> in, out;
  };
  const std::vector<Case> cases = {
      {{0.5, 0.5}, {0.5, 0.5}},                 // already on the simplex
      {{1.0, 1.0}, {0.5, 0.5}},                 // theta = 0.5
      {{2.0, 0.0}, {1.0, 0.0}},                 // theta = 1
      {{3.0, 1.0}, {1.0, 0.0}},                 // rho = 1, theta = 2
      {{0.6, 0.3, 0.4}, {0.5, 0.2, 0.3}},       // rho = 3, theta = 0.1
      {{1.0, 0.2, -0.5}, {0.9, 0.1, 0.0}},      // rho = 2, theta = 0.1
      {{0.0, 0.0, 0.0}, {1 / 3.0, 1 / 3.0, 1 / 3.0}},  // theta = -1/3
      // sorted 0.5, 0.2, 0.1, -1: j = 3 gives 0.1 - (0.8 - 1)/3 > 0, j = 4 gives
      // -1 - (-0.2 - 1)/4 = -0.7 <= 0, so rho = 3 and theta = -0.2/3.
      {{-1.0, 0.5, 0.2, 0.1}, {0.0, 0.5 + 0.2 / 3, 0.2 + 0.2 / 3, 0.1 + 0.2 / 3}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<double> v = cases[i].in;
    Afl::ProjectOntoSimplex(v);
    INFO("case " << i);
    for (size_t j = 0; j < v.size(); ++j) CHECK(v[j] == Approx(cases[i].out[j]).margin(1e-12));
    CHECK(std::accumulate(v.begin(), v.end(), 0.0) == Approx(1.0));
  }
}

TEST_CASE("afl: two rounds of two clients, model and mixture weights by hand", "[fl][algorithms][fairness]") {
  Fixture f("afl");
  const double gamma = 0.001;
  f.cfg.algorithm.afl_lambda_lr = gamma;
  f.cfg.algorithm.server_lr = 1.0;
  const int n = 30;
  const float lr = 0.05f;
  Afl algo(f.cfg.algorithm);
  algo.Setup(f.p(), n);
  for (double l : algo.lambda()) CHECK(l == Approx(1.0 / n));

  // Round 0, lambda uniform: u_k = N (1/N) (w_k - w) = FedAvg's delta.
  Eigen::VectorXf u3(f.p()), u7(f.p());
  std::vector<ClientReport> reps;
  reps.push_back(algo.LocalUpdate(f.ctx, f.Task(3, lr), f.w0.data(), u3.data(), f.s));
  reps.push_back(algo.LocalUpdate(f.ctx, f.Task(7, lr), f.w0.data(), u7.data(), f.s));
  reps[0].client = 3;  // set by the round loop
  reps[1].client = 7;
  const Eigen::VectorXf w3 = LocalSolution(f, 3, lr, f.w0), w7 = LocalSolution(f, 7, lr, f.w0);
  RequireClose(u3, w3 - f.w0, 1e-6);
  RequireClose(u7, w7 - f.w0, 1e-6);
  const double f3 = ClientLoss(f, 3, f.w0), f7 = ClientLoss(f, 7, f.w0);
  CHECK(reps[0].start_loss == Approx(f3).epsilon(1e-6));

  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, 0.5f * (u3 + u7), reps, 0);
  RequireClose(global, f.w0 + 0.5f * ((w3 - f.w0) + (w7 - f.w0)), 1e-6);
  // lambda + gamma v with v_k = (N/m) F_k = 15 F_k at k = 3, 7: the added mass
  // a = a3 + a7 < 1, so the projection subtracts a / N from every entry and
  // clips none.
  const double a3 = gamma * 15 * f3, a7 = gamma * 15 * f7;
  REQUIRE(a3 + a7 < 1.0);
  const double theta = (a3 + a7) / n;
  const std::vector<double>& lambda = algo.lambda();
  CHECK(lambda[3] == Approx(1.0 / n + a3 - theta));
  CHECK(lambda[7] == Approx(1.0 / n + a7 - theta));
  CHECK(lambda[0] == Approx(1.0 / n - theta));
  CHECK(std::accumulate(lambda.begin(), lambda.end(), 0.0) == Approx(1.0));
  CHECK(lambda[3] > lambda[0]);

  // Round 1: client 3's upload is N lambda_3 (w_3' - w).
  Eigen::VectorXf u(f.p());
  algo.LocalUpdate(f.ctx, f.Task(3, lr), global.data(), u.data(), f.s);
  const Eigen::VectorXf w3b = LocalSolution(f, 3, lr, global);
  RequireClose(u, static_cast<float>(n * lambda[3]) * (w3b - global), 1e-6);
}

TEST_CASE("afl: label domains group the clients by their most frequent label", "[fl][algorithms][fairness]") {
  Fixture f("afl");
  const double gamma = 0.001;
  f.cfg.algorithm.afl_lambda_lr = gamma;
  f.cfg.algorithm.afl_domains = "labels";
  f.cfg.algorithm.server_lr = 1.0;
  const int n = 30;
  const float lr = 0.05f;
  Afl algo(f.cfg.algorithm);
  algo.Setup(f.p(), n);
  algo.SetClients(f.data.train, f.part);
  // The expected domains, counted here: each client's most frequent label
  // (ties to the smaller), domains numbered in label order.
  std::vector<int> top(n);
  std::set<int> labels;
  for (int k = 0; k < n; ++k) {
    std::map<int, int> count;
    for (int r : f.part[static_cast<size_t>(k)]) ++count[f.data.train.y[static_cast<size_t>(r)]];
    int best = -1;
    for (const auto& [label, c] : count) {
      if (best < 0 || c > count[best]) best = label;
    }
    top[static_cast<size_t>(k)] = best;
    labels.insert(best);
  }
  const std::vector<int> order(labels.begin(), labels.end());
  const int d = static_cast<int>(order.size());
  REQUIRE(d > 1);
  REQUIRE(d < n);  // Synthetic(1,1)'s users share majority labels
  REQUIRE(algo.lambda().size() == static_cast<size_t>(d));
  std::vector<int> size(static_cast<size_t>(d), 0);
  for (int k = 0; k < n; ++k) {
    const int g = static_cast<int>(std::find(order.begin(), order.end(), top[static_cast<size_t>(k)]) - order.begin());
    CHECK(algo.domain_of()[static_cast<size_t>(k)] == g);
    ++size[static_cast<size_t>(g)];
  }
  CHECK(algo.domain_size() == size);

  // One round with clients 3 and 7: u_k = (N lambda_g / N_g)(w_k - w) with
  // lambda_g = 1/D; v_g = (N / (m N_g)) sum of the domain's sampled losses.
  Eigen::VectorXf u3(f.p()), u7(f.p());
  std::vector<ClientReport> reps;
  reps.push_back(algo.LocalUpdate(f.ctx, f.Task(3, lr), f.w0.data(), u3.data(), f.s));
  reps.push_back(algo.LocalUpdate(f.ctx, f.Task(7, lr), f.w0.data(), u7.data(), f.s));
  reps[0].client = 3;
  reps[1].client = 7;
  const int g3 = algo.domain_of()[3], g7 = algo.domain_of()[7];
  const double s3 = static_cast<double>(n) / d / size[static_cast<size_t>(g3)];
  const double s7 = static_cast<double>(n) / d / size[static_cast<size_t>(g7)];
  RequireClose(u3, static_cast<float>(s3) * (LocalSolution(f, 3, lr, f.w0) - f.w0), 1e-6);
  RequireClose(u7, static_cast<float>(s7) * (LocalSolution(f, 7, lr, f.w0) - f.w0), 1e-6);
  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, 0.5f * (u3 + u7), reps, 0);
  std::vector<double> want(static_cast<size_t>(d), 1.0 / d);
  want[static_cast<size_t>(g3)] += gamma * n / 2.0 / size[static_cast<size_t>(g3)] * ClientLoss(f, 3, f.w0);
  want[static_cast<size_t>(g7)] += gamma * n / 2.0 / size[static_cast<size_t>(g7)] * ClientLoss(f, 7, f.w0);
  Afl::ProjectOntoSimplex(want);
  for (int g = 0; g < d; ++g) CHECK(algo.lambda()[static_cast<size_t>(g)] == Approx(want[static_cast<size_t>(g)]));
}

TEST_CASE("afl: a client without training rows is in no label domain", "[fl][algorithms][fairness]") {
  Fixture f("afl");
  f.cfg.algorithm.afl_lambda_lr = 0.001;
  f.cfg.algorithm.afl_domains = "labels";
  const int n = 30;
  auto part = f.part;
  part[4].clear();
  part[9].clear();
  Afl algo(f.cfg.algorithm);
  algo.Setup(f.p(), n);
  algo.SetClients(f.data.train, part);
  std::set<int> tops;
  for (int k = 0; k < n; ++k) {
    if (part[static_cast<size_t>(k)].empty()) continue;
    std::vector<int> count(static_cast<size_t>(f.data.train.num_classes), 0);
    for (int r : part[static_cast<size_t>(k)]) ++count[static_cast<size_t>(f.data.train.y[static_cast<size_t>(r)])];
    tops.insert(static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin()));
  }
  // Before, the empty clients took label 0: a domain of their own when no
  // client with rows has label 0 on top, or two extra members of label 0's.
  CHECK(algo.lambda().size() == tops.size());
  CHECK(algo.domain_of()[4] == -1);
  CHECK(algo.domain_of()[9] == -1);
  int members = 0;
  for (int g : algo.domain_size()) members += g;
  CHECK(members == n - 2);
  // Its upload and loss are 0; the server's ascent on lambda skips it.
  Eigen::VectorXf u(f.p());
  u.setConstant(1.0f);
  const std::vector<int> none;
  fedsim::ClientTask task = f.Task(4, 0.05f);
  task.indices = &none;
  ClientReport rep = algo.LocalUpdate(f.ctx, task, f.w0.data(), u.data(), f.s);
  CHECK(u.isZero());
  CHECK(rep.start_loss == 0.0);
  rep.client = 4;
  const std::vector<double> before = algo.lambda();
  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, u, {rep}, 0);
  REQUIRE(algo.lambda().size() == before.size());
  for (size_t g = 0; g < before.size(); ++g) CHECK(algo.lambda()[g] == Approx(before[g]).epsilon(1e-12));
}

TEST_CASE("afl: gamma_lambda = 0 keeps lambda uniform and the step is equal-weight FedAvg", "[fl][algorithms][fairness]") {
  Fixture f("afl");
  f.cfg.algorithm.afl_lambda_lr = 0.0;
  Afl algo(f.cfg.algorithm);
  algo.Setup(f.p(), 30);
  Eigen::VectorXf u(f.p());
  std::vector<ClientReport> reps{algo.LocalUpdate(f.ctx, f.Task(2, 0.05f), f.w0.data(), u.data(), f.s)};
  reps[0].client = 2;
  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, u, reps, 0);
  for (double l : algo.lambda()) CHECK(l == Approx(1.0 / 30));
  RequireClose(global, LocalSolution(f, 2, 0.05f, f.w0), 1e-6);
}

namespace {

// The final model's per-client summaries on Synthetic(1,1) (30
// natural users, a quarter of each user's rows as its own test rows, every
// client scored), for a short run of `name` with `sets`.
nlohmann::json FinalClientSummary(const std::string& name, const std::vector<std::string>& sets) {
  nlohmann::json j = {{"experiment", {{"rounds", 40}}},
                      {"data", {{"client_test_fraction", 0.25}}},
                      {"metrics", {{"client_eval", "all"}, {"eval_every", 40}}},
                      {"algorithm", {{"name", name}, {"lr", 0.05}}}};
  for (const auto& s : sets) fedsim::ApplyOverride(j, s);
  fedsim::RunOptions o;
  o.threads = 2;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o)["summary"];
}

}  // namespace

TEST_CASE("qffl: q > 0 lifts the worst clients on Synthetic(1,1)", "[fl][algorithms][fairness][learn]") {
  // Li et al. (2020): q-FFL minimises sum_k F_k^(q+1) / (q+1), so a larger q
  // trades the average loss for the worst clients' loss. That shows first
  // and reliably in the losses: over 300 rounds at lr 0.1 (L = 10) the worst
  // 10% of clients' test loss and the spread of the clients' losses fall
  // several-fold. (The accuracy figures of the paper's Table 1 need far more
  // rounds; at 300 their worst 10% moves by a few hundredths either way with
  // the seed and the build, docs/reproductions.md.) Measured (seeds 1, 3):
  // q = 0 worst10 loss 3.75, 3.88, loss variance 1.47, 1.97; q = 1 worst10
  // 2.04, 1.12, variance 0.28, 0.11.
  for (const char* seed : {"1", "3"}) {
    const std::vector<std::string> run = {"experiment.rounds=300", "metrics.eval_every=300", "algorithm.lr=0.1",
                                          std::string("experiment.seed=") + seed};
    auto with = [&](const std::string& q) {
      std::vector<std::string> sets = run;
      sets.push_back("algorithm.q=" + q);
      return FinalClientSummary("qffl", sets);
    };
    const nlohmann::json q0 = with("0"), q1 = with("1");
    const nlohmann::json &l0 = q0["final_client_loss"], &l1 = q1["final_client_loss"];
    INFO("seed " << seed << "\nq=0 " << l0.dump() << "\nq=1 " << l1.dump());
    CHECK(l1["worst10"].get<double>() < 0.7 * l0["worst10"].get<double>());
    CHECK(l1["variance"].get<double>() < 0.5 * l0["variance"].get<double>());
    CHECK(l1["max"].get<double>() < l0["max"].get<double>());
    // The average accuracy stays close.
    CHECK(q1["final_client_accuracy"]["mean"].get<double>() >=
          q0["final_client_accuracy"]["mean"].get<double>() - 0.05);
  }
}

TEST_CASE("afl: learns, and a small ascent on lambda does not hurt the worst clients", "[fl][algorithms][fairness][learn]") {
  // 100 rounds at lr 0.05. Measured (seed 1): lambda fixed (gamma 0) mean
  // 0.866, worst10 0.517, variance 0.0234; gamma 0.0003 mean 0.872, worst10
  // 0.524, variance 0.0220; client-loss variance 0.240 and 0.212. Larger gamma (0.001 and up) concentrates lambda on
  // a few clients, whose N lambda_k-scaled deltas then dominate the step, and
  // lowers every figure (docs/algorithms.md#afl-agnostic-federated-learning).
  const std::vector<std::string> run = {"experiment.rounds=100", "metrics.eval_every=100"};
  std::vector<std::string> a = run, b = run;
  a.push_back("algorithm.afl_lambda_lr=0");
  b.push_back("algorithm.afl_lambda_lr=0.0003");
  const nlohmann::json fixed = FinalClientSummary("afl", a), ascent = FinalClientSummary("afl", b);
  INFO("lambda fixed " << fixed.dump() << "\nlambda ascent " << ascent.dump());
  const nlohmann::json& fa = fixed["final_client_accuracy"];
  const nlohmann::json& aa = ascent["final_client_accuracy"];
  CHECK(fa["mean"].get<double>() > 0.8);  // chance is 0.1
  CHECK(aa["mean"].get<double>() > 0.8);
  // "Does not hurt", with room for the last bits of a build (-march=native or
  // not) moving a client across the 10% line: the measured gains are ~0.01.
  CHECK(aa["worst10"].get<double>() >= fa["worst10"].get<double>() - 0.02);
  CHECK(ascent["final_client_loss"]["variance"].get<double>() <=
        1.05 * fixed["final_client_loss"]["variance"].get<double>());
}
