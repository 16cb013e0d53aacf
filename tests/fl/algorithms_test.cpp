// Mechanics of each algorithm on problems small enough to compute the
// expected numbers directly.
#include <catch2/catch.hpp>

#include <cmath>

#include "fixture.h"
#include "fl/local_training.h"
#include "model/sequential.h"
#include "run/experiment.h"
#include "optim/server_optimizer.h"

using fedsim::ClientReport;
using fedsim::ServerOptimizer;
using fedsim::testing::Fixture;
using nlohmann::json;

namespace {

void RequireClose(const Eigen::VectorXf& a, const Eigen::VectorXf& b, double tol) {
  REQUIRE(a.size() == b.size());
  const double err = (a - b).cwiseAbs().maxCoeff();
  INFO("max abs difference " << err);
  CHECK(err <= tol);
}

// SCAFFOLD in NIID-Bench's form with local momentum 0.9 and 7 local steps.
void UseNiidBenchMomentum(Fixture& f) {
  f.cfg.algorithm.local_steps = 7;
  f.cfg.algorithm.momentum = 0.9;
  f.cfg.algorithm.scaffold_variant = "niid_bench";
  f.s.sgd = fedsim::Sgd(0.9f, 0.0f);
}

}  // namespace

TEST_CASE("fedprox: the proximal term enters the second step exactly", "[fl][algorithms]") {
  // Two full-batch steps: w1 = w0 - lr g(w0);  w2 = w1 - lr (g(w1) + mu (w1 - w0)).
  Fixture f("fedprox");
  f.cfg.algorithm.mu = 0.7;
  f.cfg.algorithm.batch_size = 0;
  f.cfg.algorithm.local_steps = 2;
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm);
  algo->Setup(f.p(), 30);
  Eigen::VectorXf up(f.p());
  algo->LocalUpdate(f.ctx, f.Task(4, 0.1f), f.w0.data(), up.data(), f.s);
  const Eigen::VectorXf w1 = f.w0 - 0.1f * f.FullGradient(4, f.w0);
  const Eigen::VectorXf w2 = w1 - 0.1f * (f.FullGradient(4, w1) + 0.7f * (w1 - f.w0));
  RequireClose(up, w2 - f.w0, 1e-6);
}

TEST_CASE("fedprox: a larger mu keeps the client nearer the global model", "[fl][algorithms]") {
  Fixture f("fedprox");
  f.cfg.algorithm.local_epochs = 3;
  double last = 1e30;
  for (double mu : {0.0, 1.0, 10.0, 100.0}) {
    f.cfg.algorithm.mu = mu;
    auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm);
    algo->Setup(f.p(), 30);
    Eigen::VectorXf up(f.p());
    algo->LocalUpdate(f.ctx, f.Task(2, 0.005f), f.w0.data(), up.data(), f.s);
    INFO("mu " << mu);
    CHECK(up.norm() < last);
    if (mu == 100.0) CHECK(up.norm() < 0.5 * last);
    last = up.norm();
  }
}

TEST_CASE("feddyn: client gradient state and server h after one round", "[fl][algorithms]") {
  Fixture f("feddyn");
  f.cfg.algorithm.alpha = 0.5;
  fedsim::FedDyn algo(f.cfg.algorithm);
  algo.Setup(f.p(), 5);  // m = 5 clients in the population, 2 in the cohort
  Eigen::VectorXf u0(f.p()), u1(f.p());
  std::vector<ClientReport> reps;
  reps.push_back(algo.LocalUpdate(f.ctx, f.Task(0, 0.05f), f.w0.data(), u0.data(), f.s));
  reps.push_back(algo.LocalUpdate(f.ctx, f.Task(1, 0.05f), f.w0.data(), u1.data(), f.s));
  CHECK(reps[0].weight == 1.0);
  // First round: the gradient state was 0, so local training is plain SGD on
  // L_k + (alpha/2)||theta - theta0||^2, and afterwards g_k = -alpha Delta_k.
  CHECK(algo.client_state()->ClientsWithState() == 2);
  const Eigen::VectorXf mean = 0.5f * (u0 + u1);
  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, mean, reps, 0);
  // h = -alpha (1/m) sum_k Delta_k = -0.5 * (2/5) * mean;  theta = theta0 + mean - h/alpha.
  const Eigen::VectorXf h = -0.5f * 0.4f * mean;
  RequireClose(algo.h(), h, 1e-7);
  RequireClose(global, f.w0 + mean - h / 0.5f, 1e-6);
}

TEST_CASE("feddyn and scaffold: held-out clients are not in the population m (N) of the server step",
          "[fl][algorithms]") {
  // 10 clients, 4 held out (data.holdout_clients): h and c divide by the 6 that train.
  const std::vector<int> trainers = {0, 2, 3, 5, 8, 9};
  {
    Fixture f("feddyn");
    f.cfg.algorithm.alpha = 0.5;
    fedsim::FedDyn algo(f.cfg.algorithm);
    algo.Setup(f.p(), 10);
    algo.SetTrainingClients(trainers);
    Eigen::VectorXf u(f.p());
    const ClientReport rep = algo.LocalUpdate(f.ctx, f.Task(2, 0.05f), f.w0.data(), u.data(), f.s);
    Eigen::VectorXf global = f.w0;
    algo.ServerUpdate(global, u, {rep}, 0);
    RequireClose(algo.h(), -0.5f * (1.0f / 6.0f) * u, 1e-7);  // -alpha (|P| / m) mean, m = 6 not 10
  }
  for (const char* variant : {"paper", "niid_bench"}) {
    INFO("scaffold_variant " << variant);
    Fixture f("scaffold");
    f.cfg.algorithm.local_steps = 3;
    f.cfg.algorithm.scaffold_variant = variant;
    fedsim::Scaffold algo(f.cfg.algorithm);
    algo.Setup(f.p(), 10);
    algo.SetTrainingClients(trainers);
    Eigen::VectorXf up(2 * f.p());
    const ClientReport rep = algo.LocalUpdate(f.ctx, f.Task(3, 0.05f), f.w0.data(), up.data(), f.s);
    Eigen::VectorXf global = f.w0;
    algo.ServerUpdate(global, up, {rep}, 0);
    // One report: the paper's form c = (1/6) Delta c_3; NIID-Bench's uploads
    // Delta c_3 / n_3 with weight n_3, and c = Delta c_3 / 6 again.
    const Eigen::VectorXf dc = std::string(variant) == "paper" ? Eigen::VectorXf(up.tail(f.p()))
                                                                : Eigen::VectorXf(rep.weight * up.tail(f.p()));
    RequireClose(algo.c(), dc / 6.0f, 1e-6);
  }
}

TEST_CASE("scaffold: option II control variates after one round", "[fl][algorithms]") {
  Fixture f("scaffold");
  f.cfg.algorithm.local_steps = 7;
  fedsim::Scaffold algo(f.cfg.algorithm);
  algo.Setup(f.p(), 10);
  CHECK(algo.UploadSize() == 2 * f.p());
  Eigen::VectorXf up(2 * f.p());
  const ClientReport rep = algo.LocalUpdate(f.ctx, f.Task(3, 0.05f), f.w0.data(), up.data(), f.s);
  CHECK(rep.steps == 7);
  // c = c_i = 0: c_i+ = (x - y) / (K lr) = -Delta y / (7 * 0.05).
  const Eigen::VectorXf dy = up.head(f.p()), dc = up.tail(f.p());
  RequireClose(dc, -dy / (7 * 0.05f), 1e-5);
  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, up, {rep}, 0);
  RequireClose(global, f.w0 + dy, 1e-7);     // eta_g = 1
  RequireClose(algo.c(), 0.1f * dc, 1e-7);   // |S|/N = 1/10
  // Second round: the client's gradient is corrected by c - c_i.
  Eigen::VectorXf up2(2 * f.p());
  algo.LocalUpdate(f.ctx, f.Task(3, 0.05f, 1), global.data(), up2.data(), f.s);
  CHECK(up2.tail(f.p()).norm() > 0.0f);
}

TEST_CASE("scaffold niid_bench: local momentum, Delta c / n_i with weight n_i, c gains sum Delta c_i / N",
          "[fl][algorithms]") {
  Fixture f("scaffold");
  UseNiidBenchMomentum(f);
  fedsim::Scaffold algo(f.cfg.algorithm);
  algo.Setup(f.p(), 10);
  CHECK_FALSE(algo.uniform_weights());
  CHECK(algo.server_reads_reports());
  const float lr = 0.05f, k_lr = 7 * lr;
  Eigen::VectorXf u3(2 * f.p()), u5(2 * f.p());
  const ClientReport r3 = algo.LocalUpdate(f.ctx, f.Task(3, lr), f.w0.data(), u3.data(), f.s);
  const ClientReport r5 = algo.LocalUpdate(f.ctx, f.Task(5, lr), f.w0.data(), u5.data(), f.s);
  const double n3 = static_cast<double>(f.part[3].size()), n5 = static_cast<double>(f.part[5].size());
  REQUIRE(n3 != n5);
  CHECK(r3.weight == n3);
  CHECK(r5.weight == n5);
  // c = c_i = 0 in the first round: no correction, so Delta y is plain
  // momentum SGD's, bit for bit.
  f.s.params = f.w0;
  fedsim::TrainLocalSgd(f.ctx, f.Task(3, lr), f.s, nullptr);
  const Eigen::VectorXf dy3 = u3.head(f.p()), dy5 = u5.head(f.p());
  CHECK((dy3.array() == (f.s.params - f.w0).array()).all());
  // Delta c_i = -Delta y_i / (K lr), sent divided by n_i.
  const Eigen::VectorXf dc3 = -dy3 / k_lr, dc5 = -dy5 / k_lr;
  RequireClose(u3.tail(f.p()) * static_cast<float>(n3), dc3, 1e-5);
  // The weighted mean the aggregator forms; the server averages the models by
  // sample count and adds (dc3 + dc5) / N to c.
  const Eigen::VectorXf mean = (static_cast<float>(n3) * u3 + static_cast<float>(n5) * u5) / static_cast<float>(n3 + n5);
  Eigen::VectorXf global = f.w0;
  algo.ServerUpdate(global, mean, {r3, r5}, 0);
  RequireClose(global, f.w0 + (static_cast<float>(n3) * dy3 + static_cast<float>(n5) * dy5) / static_cast<float>(n3 + n5),
               1e-6);
  RequireClose(algo.c(), (dc3 + dc5) / 10.0f, 1e-5);
}

TEST_CASE("scaffold niid_bench: without momentum it takes the paper's steps", "[fl][algorithms]") {
  // With momentum 0, y - lr (g + c - c_i) and (y - lr g) - lr (c - c_i) agree
  // up to rounding, so from the same state both forms move alike; the second
  // round has c - c_i != 0.
  auto two_rounds = [](const std::string& variant, Eigen::VectorXf& up) {
    Fixture f("scaffold");
    f.cfg.algorithm.local_steps = 5;
    f.cfg.algorithm.scaffold_variant = variant;
    fedsim::Scaffold algo(f.cfg.algorithm);
    algo.Setup(f.p(), 10);
    Eigen::VectorXf u(2 * f.p());
    const ClientReport r = algo.LocalUpdate(f.ctx, f.Task(4, 0.05f), f.w0.data(), u.data(), f.s);
    Eigen::VectorXf global = f.w0;
    algo.ServerUpdate(global, u, {r}, 0);  // one client: the mean is its upload
    up.resize(2 * f.p());
    const ClientReport r2 = algo.LocalUpdate(f.ctx, f.Task(4, 0.05f, 1), global.data(), up.data(), f.s);
    up.tail(f.p()) *= static_cast<float>(r2.weight);  // Delta c_i itself
    return algo.c();
  };
  Eigen::VectorXf paper, niid;
  const Eigen::VectorXf c_paper = two_rounds("paper", paper);
  const Eigen::VectorXf c_niid = two_rounds("niid_bench", niid);
  RequireClose(c_niid, c_paper, 1e-6);
  REQUIRE(c_paper.norm() > 0.0f);
  const int64_t p = c_paper.size();
  REQUIRE(paper.head(p).norm() > 0.0f);
  RequireClose(niid.head(p), paper.head(p), 1e-4 * paper.head(p).cwiseAbs().maxCoeff());
  RequireClose(niid.tail(p), paper.tail(p), 1e-4 * paper.tail(p).cwiseAbs().maxCoeff());
}

TEST_CASE("scaffold niid_bench: the correction moves the weights K lr (c - c_i), outside the momentum buffer",
          "[fl][algorithms]") {
  // After a round with one client of 10, c = Delta c / 10 and c_i = Delta c,
  // so c - c_i = -9 c. In the next round, at a small lr, Delta y differs from
  // plain momentum SGD's over the same batches by -K lr (c - c_i), up to the
  // curvature's second-order effect. Inside the momentum buffer the shift
  // would be lr (c - c_i) sum_k (1 - rho^k) / (1 - rho): 3.3x larger here.
  Fixture f("scaffold");
  UseNiidBenchMomentum(f);
  fedsim::Scaffold algo(f.cfg.algorithm);
  algo.Setup(f.p(), 10);
  Eigen::VectorXf u(2 * f.p());
  const ClientReport r = algo.LocalUpdate(f.ctx, f.Task(3, 0.05f), f.w0.data(), u.data(), f.s);
  Eigen::VectorXf x = f.w0;
  algo.ServerUpdate(x, u, {r}, 0);
  const Eigen::VectorXf delta = -9.0f * algo.c();
  REQUIRE(delta.norm() > 0.0f);
  const float lr = 1e-4f;
  Eigen::VectorXf u2(2 * f.p());
  algo.LocalUpdate(f.ctx, f.Task(3, lr, 1), x.data(), u2.data(), f.s);
  f.s.params = x;
  fedsim::TrainLocalSgd(f.ctx, f.Task(3, lr, 1), f.s, nullptr);
  const Eigen::VectorXf shift = u2.head(f.p()) - (f.s.params - x);
  const Eigen::VectorXf expected = -7.0f * lr * delta;
  const double rel = (shift - expected).norm() / expected.norm();
  INFO("relative difference " << rel);
  CHECK(rel < 0.01);
}

TEST_CASE("scaffold niid_bench: secure sums refuse it, naming the reason", "[fl][algorithms]") {
  json j = {{"experiment", {{"rounds", 1}}},
            {"algorithm", {{"name", "scaffold"}, {"scaffold_variant", "niid_bench"}}},
            {"secure_aggregation", {{"enabled", true}}}};
  fedsim::RunOptions o;
  o.threads = 1;
  CHECK_THROWS_WITH(fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o),
                    Catch::Contains("secure_aggregation.enabled") &&
                        Catch::Contains("its server step reads each client's report"));
  j.erase("secure_aggregation");
  j["encryption"] = {{"scheme", "paillier"}};
  CHECK_THROWS_WITH(fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o),
                    Catch::Contains("encryption.scheme") && Catch::Contains("reads each client's report"));
}

TEST_CASE("fednova: normalised averaging with unequal local steps", "[fl][algorithms]") {
  CHECK(fedsim::FedNovaNormA(4, 0.0) == 4.0);
  CHECK(fedsim::FedNovaNormA(3, 0.5) == Approx(1.0 + 1.5 + 1.75));
  fedsim::AlgorithmConfig cfg;
  cfg.name = "fednova";
  fedsim::FedNova algo(cfg);
  algo.Setup(2, 2);
  // Two clients with n = 1 and 3 samples, tau = 2 and 4 steps; d_i = Delta_i / tau_i.
  ClientReport a, b;
  a.weight = 1, a.norm_a = 2;
  b.weight = 3, b.norm_a = 4;
  const Eigen::Vector2f da(1.0f, 0.0f), db(0.0f, 2.0f);  // already normalised uploads
  const Eigen::VectorXf mean = (1 * da + 3 * db) / 4.0f;
  Eigen::VectorXf x = Eigen::VectorXf::Zero(2);
  algo.ServerUpdate(x, mean, {a, b}, 0);
  const double tau_eff = (1 * 2 + 3 * 4) / 4.0;
  CHECK(algo.last_tau_eff() == Approx(tau_eff));
  CHECK(x[0] == Approx(tau_eff * 0.25));
  CHECK(x[1] == Approx(tau_eff * 1.5));
}

TEST_CASE("fednova: with equal local steps it is FedAvg", "[fl][algorithms]") {
  fedsim::Config c;
  c.data.synthetic.iid = true;
  c.algorithm.local_steps = 5;  // every client takes the same number of steps
  c.experiment.rounds = 5;
  fedsim::RunOptions o;
  o.threads = 1;
  const json avg = fedsim::RunExperiment(c, o);
  c.algorithm.name = "fednova";
  const json nova = fedsim::RunExperiment(c, o);
  for (int r = 0; r < 5; ++r) {
    CHECK(nova["rounds"][r]["test_loss"].get<double>() ==
          Approx(avg["rounds"][r]["test_loss"].get<double>()).epsilon(1e-4));
  }
}

TEST_CASE("server optimizers: one step of each by hand", "[fl][algorithms][optim]") {
  const double eta = 0.1, b1 = 0.9, b2 = 0.99, tau = 0.01;
  Eigen::VectorXf delta(2);
  delta << 1.0f, 0.001f;
  auto step = [&](ServerOptimizer::Kind k) {
    ServerOptimizer opt(k, eta, b1, b2, tau);
    Eigen::VectorXf x = Eigen::VectorXf::Zero(2);
    opt.Step(x, delta);
    return std::make_pair(x, opt);
  };
  const double m0 = (1 - b1) * 1.0, m1 = (1 - b1) * 0.001;
  const double v_init = tau * tau;
  {
    auto [x, opt] = step(ServerOptimizer::Kind::kYogi);
    // v - (1-b2) d^2 sign(v - d^2): d = 1 > tau -> sign -1, v grows;
    // d = 0.001 < tau -> sign +1, v shrinks.
    const double v0 = v_init + (1 - b2) * 1.0;
    const double v1 = v_init - (1 - b2) * 1e-6;
    CHECK(opt.v()[0] == Approx(v0));
    CHECK(opt.v()[1] == Approx(v1));
    CHECK(x[0] == Approx(eta * m0 / (std::sqrt(v0) + tau)));
    CHECK(x[1] == Approx(eta * m1 / (std::sqrt(v1) + tau)));
  }
  {
    auto [x, opt] = step(ServerOptimizer::Kind::kAdam);
    const double v0 = b2 * v_init + (1 - b2) * 1.0;
    CHECK(opt.v()[0] == Approx(v0));
    CHECK(x[0] == Approx(eta * m0 / (std::sqrt(v0) + tau)));
  }
  {
    auto [x, opt] = step(ServerOptimizer::Kind::kAdagrad);
    CHECK(opt.v()[0] == Approx(v_init + 1.0));
    CHECK(x[1] == Approx(eta * m1 / (std::sqrt(v_init + 1e-6) + tau)));
  }
  {
    ServerOptimizer opt(ServerOptimizer::Kind::kMomentum, eta, 0.5, 0, 0);
    Eigen::VectorXf x = Eigen::VectorXf::Zero(2);
    opt.Step(x, delta);
    opt.Step(x, delta);  // v = 1.5 delta after two steps; x = eta (1 + 1.5) delta
    CHECK(x[0] == Approx(eta * 2.5));
  }
}

TEST_CASE("server optimizers: averaged ranges (a model's state) take the clients' mean, nothing else",
          "[fl][algorithms][optim][batchnorm]") {
  const double eta = 0.1, b1 = 0.9, b2 = 0.99, tau = 0.01;
  Eigen::VectorXf delta(5);
  delta << 1.0f, -2.0f, 0.5f, 3.0f, 0.001f;
  for (auto kind : {ServerOptimizer::Kind::kSgd, ServerOptimizer::Kind::kMomentum, ServerOptimizer::Kind::kAdam,
                    ServerOptimizer::Kind::kYogi, ServerOptimizer::Kind::kAdagrad}) {
    INFO(static_cast<int>(kind));
    ServerOptimizer plain(kind, eta, b1, b2, tau), split(kind, eta, b1, b2, tau);
    split.SetAveraged({{1, 2}});  // coordinates 1 and 2
    Eigen::VectorXf x0(5);
    x0 << 0.3f, 0.4f, 1.5f, -0.2f, 0.0f;
    Eigen::VectorXf xp = x0, xs = x0;
    for (int t = 0; t < 3; ++t) {
      plain.Step(xp, delta);
      split.Step(xs, delta);
    }
    // The averaged coordinates: three plain means added, x0 + 3 delta.
    CHECK(xs[1] == x0[1] + delta[1] + delta[1] + delta[1]);
    CHECK(xs[2] == x0[2] + delta[2] + delta[2] + delta[2]);
    // The others: exactly the optimizer's steps.
    CHECK(xs[0] == xp[0]);
    CHECK(xs[3] == xp[3]);
    CHECK(xs[4] == xp[4]);
    if (kind != ServerOptimizer::Kind::kSgd) CHECK(split.m()[1] == 0.0f);  // no moment builds up on the state
  }
}

TEST_CASE("scaffold: a model's state takes the clients' mean whatever server_lr", "[fl][algorithms][batchnorm]") {
  fedsim::ModelConfig mc;
  mc.kind = "sequential";
  mc.layers = nlohmann::json::array({{{"type", "dense"}, {"units", 3}}, {{"type", "batchnorm"}}, {{"type", "dense"}}});
  const auto model = fedsim::CreateModel(mc, 4, 2);
  const int64_t p = model->num_params();
  std::vector<bool> is_state(static_cast<size_t>(p), false);
  int64_t state_floats = 0;
  for (const auto& r : model->ParamRanges()) {
    for (int64_t i = r.offset; r.state && i < r.offset + r.size; ++i) is_state[static_cast<size_t>(i)] = true;
    state_floats += r.state ? r.size : 0;
  }
  REQUIRE(state_floats == 6);  // running mean and variance of 3 units
  for (const std::string variant : {"paper", "niid_bench"}) {
    INFO(variant);
    fedsim::AlgorithmConfig ac;
    ac.name = "scaffold";
    ac.server_lr = 0.5;
    ac.scaffold_variant = variant;
    auto algo = fedsim::CreateAlgorithm(ac, {});
    algo->Setup(p, 4);
    algo->SetModel(*model);
    Eigen::VectorXf x = Eigen::VectorXf::LinSpaced(p, -1.0f, 1.0f), mean_upload(2 * p);
    for (int64_t i = 0; i < 2 * p; ++i) mean_upload[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
    const Eigen::VectorXf x0 = x;
    fedsim::ClientReport rep;
    rep.weight = 1.0;
    algo->ServerUpdate(x, mean_upload, {rep}, 1);
    int wrong = 0;
    for (int64_t i = 0; i < p; ++i) {
      const float want = is_state[static_cast<size_t>(i)] ? x0[i] + mean_upload[i] : x0[i] + 0.5f * mean_upload[i];
      wrong += x[i] != want;
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("local training: a batch beyond a workspace is the mean over its scored targets, not its rows",
          "[fl][lstm]") {
  // Next-token rows of 5 ids over a vocabulary of 6 (id 0 the pad): the
  // first 3 rows score all 4 targets, the other 4 only one, so chunks of 3
  // rows hold 12, 3 and 1 scored targets. Weighting the chunks by rows gave
  // the batch's mean over the wrong denominator.
  const int t_n = 4, vocab = 6, n = 7;
  fedsim::Dataset d;
  d.x = fedsim::RowMatrix::Zero(n, t_n + 1);
  for (int i = 0; i < n; ++i) {
    for (int t = 0; t <= t_n; ++t) {
      const bool pad = i >= 3 && t >= 2;
      d.x(i, t) = pad ? 0.0f : static_cast<float>(1 + (3 * i + t) % (vocab - 1));
    }
  }
  d.y.assign(n, 0);
  d.shape = {t_n + 1};
  d.vocab_size = vocab;
  d.num_classes = vocab;
  d.next_token = true;
  const fedsim::Sequential model(json::array({{{"type", "embedding"}, {"dim", 3}},
                                              {{"type", "lstm"}, {"units", 4}, {"return_sequences", true}},
                                              {{"type", "dense"}}}),
                                 fedsim::ModelInput{t_n + 1, {t_n + 1}, vocab, true, 0}, {}, vocab, 1.0, "test");
  const int64_t p = model.num_params();
  Eigen::VectorXf w(p);
  fedsim::Rng init(3);
  model.Init(w.data(), init);
  // The reference: the whole batch at once (Sequential weighs its own
  // sub-batches by targets).
  auto whole = model.NewWorkspace(n);
  Eigen::VectorXf g_ref(p);
  const double loss_ref = model.LossAndGradient(w.data(), d.x.data(), d.y.data(), n, g_ref.data(), *whole);
  fedsim::AlgorithmConfig ac;
  fedsim::TrainContext ctx;
  ctx.model = &model;
  ctx.train = &d;
  ctx.cfg = &ac;
  ctx.max_chunk = 3;
  fedsim::ClientScratch s;
  s.ws = model.NewWorkspace(3);
  s.grad.resize(p);
  s.grad_acc.resize(p);
  s.batch_x.resize(3, t_n + 1);
  s.batch_y.resize(3);
  std::vector<int> rows(n);
  for (int i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = i;
  const double loss = fedsim::BatchGradient(ctx, w.data(), rows.data(), n, s, 0);
  CHECK(loss == Approx(loss_ref).epsilon(1e-6));
  RequireClose(s.grad_acc, g_ref, 1e-6);
  // MeanLoss over the same rows: the per-target mean, too.
  CHECK(fedsim::MeanLoss(ctx, w.data(), rows, s) == Approx(loss_ref).epsilon(1e-6));
}

TEST_CASE("fedsparse: exactly k entries survive and the residual holds the rest", "[fl][algorithms]") {
  Eigen::VectorXf e(8), out(8);
  e << 0.5f, 0, 0, 0, 0, 0, 0, -0.1f;
  const float delta[] = {0.1f, -3.0f, 0.2f, 2.0f, -0.05f, 0.0f, 1.0f, 0.0f};
  std::vector<int> idx;
  Eigen::VectorXf u(8);
  u << 0.6f, -3.0f, 0.2f, 2.0f, -0.05f, 0.0f, 1.0f, -0.1f;
  const int64_t bytes = fedsim::FedSparse::SparsifyWithFeedback(e, delta, 3, false, out.data(), idx);
  Eigen::VectorXf expect_out(8);
  expect_out << 0, -3.0f, 0, 2.0f, 0, 0, 1.0f, 0;
  CHECK(out == expect_out);
  CHECK((out.array() != 0).count() == 3);
  RequireClose(out + e, u, 0);  // nothing lost: sent + residual = e + Delta
  CHECK(bytes == 1 + 3 * 4);    // an 8-entry bitmap (1 byte) beats 3 indices; 3 values
  // Ternary: the kept entries become mu * sign, mu = mean |kept| = 2.
  Eigen::VectorXf e2 = Eigen::VectorXf::Zero(8);
  fedsim::FedSparse::SparsifyWithFeedback(e2, delta, 3, true, out.data(), idx);
  Eigen::VectorXf ternary(8);
  ternary << 0, -2.0f, 0, 2.0f, 0, 0, 2.0f, 0;
  CHECK(out == ternary);
  CHECK(e2[1] == Approx(-1.0f));
  CHECK(e2[6] == Approx(-1.0f));
  CHECK(fedsim::FedSparse::EncodedBytes(1992, 199210, false) == 1992 * 4 + 1992 * 4);
  CHECK(fedsim::FedSparse::EncodedBytes(100000, 199210, true) == 24902 + 4 + 12500);
}

TEST_CASE("fedsparse: DGC momentum correction accumulates a velocity and clears it where sent", "[fl][algorithms]") {
  using fedsim::FedSparse;
  // P = 4, k = 1, m = 0.5; dyadic numbers, so every step is exact.
  Eigen::VectorXf e = Eigen::VectorXf::Zero(4), v = Eigen::VectorXf::Zero(4), out(4), expect(4);
  std::vector<int> idx;
  const float d1[] = {1.0f, 0.5f, -0.25f, 0.0f};
  const float d2[] = {0.125f, 0.5f, 0.375f, 0.0f};
  // Round 1: v = d1, u = e + v = d1, entry 0 is sent; e and v keep the rest.
  FedSparse::SparsifyWithMomentum(e, v, d1, 0.5f, 1, false, out.data(), idx);
  expect << 1.0f, 0, 0, 0;
  CHECK(out == expect);
  expect << 0, 0.5f, -0.25f, 0;
  CHECK(e == expect);
  CHECK(v == expect);  // factor masking: v[0] cleared
  // Round 2: v = 0.5 (0, 0.5, -0.25, 0) + d2 = (0.125, 0.75, 0.25, 0);
  // u = e + v = (0.125, 1.25, 0, 0); entry 1 (1.25) is sent.
  FedSparse::SparsifyWithMomentum(e, v, d2, 0.5f, 1, false, out.data(), idx);
  expect << 0, 1.25f, 0, 0;
  CHECK(out == expect);
  expect << 0.125f, 0, 0, 0;
  CHECK(e == expect);
  expect << 0.125f, 0, 0.25f, 0;
  CHECK(v == expect);
  // Plain error feedback on the same updates sends 0.5 + 0.5 = 1.0 in round 2.
  Eigen::VectorXf e0 = Eigen::VectorXf::Zero(4);
  FedSparse::SparsifyWithFeedback(e0, d1, 1, false, out.data(), idx);
  FedSparse::SparsifyWithFeedback(e0, d2, 1, false, out.data(), idx);
  expect << 0, 1.0f, 0, 0;
  CHECK(out == expect);
  // m = 0 is plain error feedback.
  Eigen::VectorXf e1 = Eigen::VectorXf::Zero(4), v1 = Eigen::VectorXf::Zero(4);
  FedSparse::SparsifyWithMomentum(e1, v1, d1, 0.0f, 1, false, out.data(), idx);
  FedSparse::SparsifyWithMomentum(e1, v1, d2, 0.0f, 1, false, out.data(), idx);
  CHECK(out == expect);
  CHECK(e1 == e0);

  // In a client round the velocity is client state, created only when m > 0.
  for (const double m : {0.0, 0.9}) {
    Fixture f("fedsparse");
    f.cfg.algorithm.momentum_correction = m;
    FedSparse algo(f.cfg.algorithm);
    algo.Setup(f.p(), 30);
    Eigen::VectorXf global = f.w0, up(f.p());
    algo.BeginRound(global, 0, {4}, 1);
    algo.LocalUpdate(f.ctx, f.Task(4, 0.05f), global.data(), up.data(), f.s);
    CHECK(algo.client_state()->Has(4, 0));
    CHECK(algo.client_state()->Has(4, 1) == (m > 0.0));
  }
}

TEST_CASE("fedsparse: the model mask keeps the global model sparse", "[fl][algorithms]") {
  Fixture f("fedsparse");
  f.cfg.algorithm.model_density = 0.25;
  f.cfg.algorithm.update_density = 0.1;
  f.cfg.algorithm.mask_every = 2;
  fedsim::FedSparse algo(f.cfg.algorithm);
  algo.Setup(f.p(), 30);
  Eigen::VectorXf global = f.w0;
  algo.BeginRound(global, 0, {1}, 1);
  const int64_t keep = static_cast<int64_t>(std::ceil(0.25 * f.p()));
  CHECK((global.array() != 0).count() == keep);
  CHECK(algo.DownloadBytes(1) == fedsim::FedSparse::EncodedBytes(keep, f.p(), false));
  Eigen::VectorXf up(f.p());
  const ClientReport rep = algo.LocalUpdate(f.ctx, f.Task(1, 0.05f), global.data(), up.data(), f.s);
  CHECK(((up.array() != 0) && (algo.mask().array() == 0)).count() == 0);  // nothing outside the mask
  CHECK(rep.bytes_up == fedsim::FedSparse::EncodedBytes(static_cast<int64_t>(std::ceil(0.1 * f.p())), f.p(), false));
  algo.ServerUpdate(global, up, {rep}, 0);
  CHECK((global.array() != 0).count() <= keep);
}

TEST_CASE("fedgia: ADMM and gradient clients in closed form", "[fl][algorithms]") {
  Fixture f("fedgia");
  f.cfg.algorithm.sigma = 0.5;
  f.cfg.algorithm.r = 1.5;
  f.cfg.algorithm.k0 = 1;
  f.cfg.algorithm.rho = 0.5;
  fedsim::FedGiA algo(f.cfg.algorithm);
  algo.Setup(f.p(), 30);
  CHECK(algo.CohortSize(10, 30) == 30);
  Eigen::VectorXf x = f.w0;
  std::vector<int> all(30);
  for (int i = 0; i < 30; ++i) all[i] = i;
  algo.BeginRound(x, 0, all, 1);
  int in = 0;
  for (int i = 0; i < 30; ++i) in += algo.InAdmmSubset(i);
  CHECK(in == 15);
  int admm_client = 0, gd_client = 0;
  while (!algo.InAdmmSubset(admm_client)) ++admm_client;
  while (algo.InAdmmSubset(gd_client)) ++gd_client;
  Eigen::VectorXf z(f.p());
  // Not in M: z = x - g / sigma.
  algo.LocalUpdate(f.ctx, f.Task(gd_client, 0.0f), x.data(), z.data(), f.s);
  RequireClose(z, x - f.FullGradient(gd_client, x) / 0.5f, 1e-5);
  // In M with pi = 0 and k0 = 1: x_i = x - g/(r+sigma), pi = sigma (x_i - x), z = x_i + pi/sigma = x - 2g/(r+sigma).
  algo.LocalUpdate(f.ctx, f.Task(admm_client, 0.0f), x.data(), z.data(), f.s);
  RequireClose(z, x - 2.0f * f.FullGradient(admm_client, x) / 2.0f, 1e-5);
}

TEST_CASE("fedgia: the ADMM subset is drawn from the clients that train", "[fl][algorithms]") {
  Fixture f("fedgia");
  f.cfg.algorithm.rho = 0.5;
  fedsim::FedGiA algo(f.cfg.algorithm);
  algo.Setup(f.p(), 30);
  std::vector<int> trainers;  // every third client is held out: 20 train
  for (int i = 0; i < 30; ++i) {
    if (i % 3 != 1) trainers.push_back(i);
  }
  algo.SetTrainingClients(trainers);
  Eigen::VectorXf x = f.w0;
  for (int round = 0; round < 5; ++round) {
    algo.BeginRound(x, round, trainers, 1);
    int in = 0;
    for (int i = 0; i < 30; ++i) {
      if (i % 3 == 1) {
        CHECK_FALSE(algo.InAdmmSubset(i));
      } else {
        in += algo.InAdmmSubset(i);
      }
    }
    CHECK(in == 10);  // ceil(rho * 20), not ceil(rho * 30) = 15
  }
}

TEST_CASE("every algorithm: bitwise identical metrics for 1 and 2 threads", "[fl][algorithms][determinism]") {
  for (const auto& entry : fedsim::GetCatalog().algorithms) {
    if (entry.generative) continue;  // fedgan: tests/fl/fedgan_test.cpp
    fedsim::Config c;
    c.algorithm.name = entry.name;
    c.experiment.rounds = 3;
    c.data.synthetic.num_users = 80;  // more than one aggregation block per cohort
    c.data.num_clients = 80;
    c.algorithm.clients_per_round = 70;
    c.model.kind = "mlp";
    c.model.hidden = {8};
    if (entry.name == "fedbn") {  // the same network, its hidden layer kept on the clients
      c.model.kind = "sequential";
      c.model.hidden.clear();
      c.model.layers = json::array({{{"type", "dense"}, {"units", 8}, {"local", true}}, {{"type", "relu"}},
                                    {{"type", "dense"}}});
    }
    c.algorithm.model_density = entry.name == "fedsparse" ? 0.5 : 1.0;
    c.algorithm.sparse_download = entry.name == "fedsparse";
    INFO(entry.name);
    fedsim::RunOptions o1, o2;
    o1.threads = 1;
    o2.threads = 2;
    const json a = fedsim::StripNondeterministic(fedsim::RunExperiment(c, o1));
    const json b = fedsim::StripNondeterministic(fedsim::RunExperiment(c, o2));
    CHECK(a.dump() == b.dump());
  }
}

TEST_CASE("fedsparse: gradual pruning schedule and sparse download bytes", "[fl][algorithms]") {
  using fedsim::FedSparse;
  CHECK(FedSparse::DensityAt(0, 0.1, 0) == 0.1);
  CHECK(FedSparse::DensityAt(0, 0.1, 10) == Approx(1.0));
  CHECK(FedSparse::DensityAt(5, 0.1, 10) == Approx(0.1 + 0.9 * 0.125));
  CHECK(FedSparse::DensityAt(10, 0.1, 10) == 0.1);

  Fixture f("fedsparse");
  f.cfg.algorithm.sparse_download = true;
  f.cfg.algorithm.update_density = 0.1;
  FedSparse algo(f.cfg.algorithm);
  algo.Setup(f.p(), 30);
  const int64_t dense = f.p() * 4;
  const int64_t sparse = FedSparse::EncodedBytes(static_cast<int64_t>(std::ceil(0.1 * f.p())), f.p(), false);
  Eigen::VectorXf global = f.w0, up(f.p());
  algo.BeginRound(global, 0, {2}, 1);
  CHECK(algo.DownloadBytes(2) == dense);  // round 0: everyone needs the model
  const ClientReport rep = algo.LocalUpdate(f.ctx, f.Task(2, 0.05f), global.data(), up.data(), f.s);
  algo.AfterClient(f.Task(2, 0.05f));  // the round loop's bookkeeping after the block
  algo.ServerUpdate(global, up, {rep}, 0);
  algo.BeginRound(global, 1, {2, 3}, 1);
  CHECK(algo.DownloadBytes(2) == sparse);  // took part in round 0: only the sparse server update
  CHECK(algo.DownloadBytes(3) == dense);   // never took part: the whole model
}
