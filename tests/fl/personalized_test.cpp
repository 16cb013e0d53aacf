// Personalised algorithms (Ditto, APFL, pFedMe, Per-FedAvg, FedPer, FedRep,
// LG-FedAvg): each update checked against the paper's rule computed here from
// full-batch gradients, and a short run on label-skewed clients where each
// client's personal model beats FedAvg's global model on its own test rows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "fixture.h"
#include "model/sequential.h"
#include "run/experiment.h"

using fedsim::ClientReport;
using fedsim::testing::Fixture;
using nlohmann::json;

namespace {

void RequireClose(const Eigen::VectorXf& a, const Eigen::VectorXf& b, double tol) {
  REQUIRE(a.size() == b.size());
  const double err = (a - b).cwiseAbs().maxCoeff();
  INFO("max abs difference " << err);
  CHECK(err <= tol);
}

// Full-batch local steps, so every minibatch gradient is the client's full
// gradient (up to the order of summation).
void FullBatch(Fixture& f, int steps) {
  f.cfg.algorithm.batch_size = 0;
  f.cfg.algorithm.local_steps = steps;
}

// Rebuilds the fixture's model, scratch and initial weights from
// f.cfg.model.
void UseModel(Fixture& f) {
  f.model = fedsim::CreateModel(f.cfg.model, f.data.train.dim(), f.data.train.num_classes);
  const int64_t p = f.model->num_params();
  f.s.ws = f.model->NewWorkspace(f.ctx.max_chunk);
  f.s.params.resize(p);
  f.s.grad.resize(p);
  f.s.grad_acc.resize(p);
  f.s.extra.resize(p);
  f.ctx.model = f.model.get();
  f.w0.resize(p);
  fedsim::Rng init(5);
  f.model->Init(f.w0.data(), init);
}

// Swaps the fixture's softmax for a 2-layer MLP (hidden width 4): layers.0
// and layers.1, for the layer-split algorithms.
void UseMlp(Fixture& f) {
  f.cfg.model.kind = "mlp";
  f.cfg.model.hidden = {4};
  UseModel(f);
}

// Ditto on the fixture's 30 clients: `steps` full-batch local steps, lambda.
std::unique_ptr<fedsim::Algorithm> MakeDitto(Fixture& f, int steps, double lambda) {
  FullBatch(f, steps);
  f.cfg.personalization.lambda = lambda;
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(f.p(), 30);
  return algo;
}

// The model client k predicts with, given the global model.
Eigen::VectorXf Personal(fedsim::Algorithm& algo, Fixture& f, int client, const Eigen::VectorXf& global) {
  algo.PersonalModel(f.ctx, f.Task(client, 0.1f, 1), global.data(), f.s);
  return f.s.params;
}

}  // namespace

TEST_CASE("model ranges: mlp and cnn name one weight and one bias per layer, in layout order", "[model][pfl]") {
  const auto mlp = fedsim::MakeDenseStack({5, 3, 2}, 1.0, "mlp");
  const auto r = mlp->ParamRanges();
  REQUIRE(r.size() == 4);
  CHECK(r[0].name == "layers.0.weight");
  CHECK(r[0].size == 15);
  CHECK(r[1].name == "layers.0.bias");
  CHECK(r[1].offset == 15);
  CHECK(r[3].name == "layers.1.bias");
  CHECK(r[3].offset + r[3].size == mlp->num_params());
  fedsim::ModelConfig mc;
  mc.kind = "cnn_lenet";
  const auto cnn = fedsim::CreateModel(mc, 784, 10, std::nullopt, {1, 28, 28});
  int64_t end = 0;
  int tensors = 0;
  for (const auto& t : cnn->ParamRanges()) {
    CHECK(t.offset == end);
    CHECK(t.name.rfind("layers.", 0) == 0);
    end = t.offset + t.size;
    ++tensors;
  }
  CHECK(end == cnn->num_params());
  CHECK(tensors == 10);  // 2 conv + 3 dense layers
}

TEST_CASE("layer splits count a named layer, or a block with named inner layers, as one layer",
          "[model][pfl]") {
  // 6 flat features -> dense 4 "trunk" -> residual block (dense 4 named
  // "inner", tanh) -> dense 3 named "head". Sizes: trunk 6*4+4 = 28, block
  // 4*4+4 = 20, head 4*3+3 = 15.
  fedsim::ModelConfig mc;
  mc.kind = "sequential";
  mc.layers = nlohmann::json::array(
      {{{"type", "dense"}, {"units", 4}, {"name", "trunk"}},
       {{"type", "residual"}, {"layers", {{{"type", "dense"}, {"units", 4}, {"name", "inner"}}, {{"type", "tanh"}}}}},
       {{"type", "dense"}, {"name", "head"}}});
  const auto model = fedsim::CreateModel(mc, 6, 3);
  REQUIRE(model->num_params() == 63);
  std::vector<int> layer_of;
  for (const auto& r : model->ParamRanges()) layer_of.push_back(r.layer);
  CHECK(layer_of == std::vector<int>{0, 0, 1, 1, 2, 2});
  auto shared_bytes = [&](const std::string& name, int personal) {
    fedsim::AlgorithmConfig ac;
    ac.name = name;
    fedsim::PersonalizationConfig pc;
    pc.personal_layers = personal;
    auto algo = fedsim::CreateAlgorithm(ac, pc);
    algo->Setup(model->num_params(), 4);
    algo->SetModel(*model);
    return algo->PlannedUploadBytes();
  };
  // Before, "head.weight" and "head.bias" were two layers: FedPer kept the
  // bias alone personal and averaged the head's weights.
  CHECK(shared_bytes("fedper", 1) == 4 * (63 - 15));
  CHECK(shared_bytes("fedper", 2) == 4 * (63 - 15 - 20));
  CHECK(shared_bytes("lgfedavg", 1) == 4 * (63 - 28));
  CHECK(shared_bytes("lgfedavg", 2) == 4 * (63 - 28 - 20));
  CHECK_THROWS_WITH(shared_bytes("fedper", 3), Catch::Matchers::Contains("3 of the 3 parameterised layers"));
}

TEST_CASE("fedrep: the frozen body keeps its batchnorm statistics through the head epochs",
          "[fl][pfl][batchnorm]") {
  // lr 0: no weight moves, so only the training forward passes move the
  // body's running statistics. With the body frozen during the head epochs,
  // its statistics after the round are the body epoch's alone, whatever the
  // number of head epochs. (Before, each head epoch moved them as well.)
  Fixture f("fedrep");
  fedsim::ModelConfig mc;
  mc.kind = "sequential";
  mc.layers = nlohmann::json::array({{{"type", "dense"}, {"units", 6}},
                                     {{"type", "batchnorm"}},
                                     {{"type", "relu"}},
                                     {{"type", "dense"}}});
  const auto model = fedsim::CreateModel(mc, f.data.train.dim(), f.data.train.num_classes);
  const int64_t p = model->num_params();
  f.ctx.model = model.get();
  f.s.ws = model->NewWorkspace(4096);
  f.s.params.resize(p);
  f.s.grad.resize(p);
  f.s.grad_acc.resize(p);
  f.s.extra.resize(p);
  Eigen::VectorXf w0(p);
  fedsim::Rng init(5);
  model->Init(w0.data(), init);
  f.cfg.algorithm.batch_size = 10;
  f.cfg.algorithm.local_epochs = 1;
  std::vector<int64_t> state;
  for (const auto& r : model->ParamRanges()) {
    for (int64_t i = r.offset; r.state && i < r.offset + r.size; ++i) state.push_back(i);
  }
  REQUIRE(state.size() == 12);
  auto body_state = [&](int head_epochs) {
    fedsim::PersonalizationConfig pc;
    pc.personal_layers = 1;
    pc.head_epochs = head_epochs;
    auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, pc);
    algo->Setup(p, 30);
    algo->SetModel(*model);
    Eigen::VectorXf up(p);
    algo->LocalUpdate(f.ctx, f.Task(3, 0.0f), w0.data(), up.data(), f.s);
    std::vector<float> out;
    for (int64_t i : state) out.push_back(w0[i] + up[i]);
    return out;
  };
  const std::vector<float> none = body_state(0);
  CHECK(none != std::vector<float>(none.size(), 0.0f));
  CHECK(body_state(2) == none);
}

TEST_CASE("ditto: global part is FedAvg, personal v follows the proximal steps", "[fl][algorithms][pfl]") {
  Fixture f("ditto");
  auto algo = MakeDitto(f, 1, 0.5);
  CHECK(algo->personalized());
  const float lr = 0.1f;
  // Before any training the client uses the global model.
  RequireClose(Personal(*algo, f, 3, f.w0), f.w0, 0);
  Eigen::VectorXf up(f.p());
  algo->LocalUpdate(f.ctx, f.Task(3, lr), f.w0.data(), up.data(), f.s);
  const Eigen::VectorXf g0 = f.FullGradient(3, f.w0);
  RequireClose(up, -lr * g0, 1e-6);
  // v starts at w0, so its first step has no proximal pull.
  const Eigen::VectorXf v1 = f.w0 - lr * g0;
  const Eigen::VectorXf w1 = f.w0 + 0.5f * up;  // a global model other than v
  RequireClose(Personal(*algo, f, 3, w1), v1, 1e-6);
  // Round 2 from w1: v2 = v1 - lr (g(v1) + lambda (v1 - w1)).
  algo->LocalUpdate(f.ctx, f.Task(3, lr, 1), w1.data(), up.data(), f.s);
  const Eigen::VectorXf v2 = v1 - lr * (f.FullGradient(3, v1) + 0.5f * (v1 - w1));
  RequireClose(Personal(*algo, f, 3, w1), v2, 1e-6);
  RequireClose(up, -lr * f.FullGradient(3, w1), 1e-6);
}

TEST_CASE("ditto: a diverged personal model is dropped, not kept for good", "[fl][algorithms][pfl]") {
  // lr * lambda = 3 > 2: the proximal factor 1 - lr * lambda has magnitude 2,
  // so v_k's distance to w grows by about 2 per step and overflows. The upload
  // (w's FedAvg steps) stays finite, so only Ditto itself can drop v_k.
  Fixture f("ditto");
  auto algo = MakeDitto(f, 400, 300.0);
  const float lr = 0.01f;
  Eigen::VectorXf up(f.p());
  // A global model away from the client's first v (= w0) pulls v off.
  algo->LocalUpdate(f.ctx, f.Task(3, lr), f.w0.data(), up.data(), f.s);
  const Eigen::VectorXf w1 = f.w0 + Eigen::VectorXf::Constant(f.p(), 0.5f);
  algo->LocalUpdate(f.ctx, f.Task(3, lr, 1), w1.data(), up.data(), f.s);
  CHECK(up.allFinite());
  // v_k was dropped: the client predicts with the global model again.
  RequireClose(Personal(*algo, f, 3, w1), w1, 0);
}

TEST_CASE("layer splits: the server step leaves the global personal part where it was, noise or not",
          "[fl][algorithms][pfl]") {
  for (const std::string name : {"fedper", "lgfedavg"}) {
    INFO(name);
    Fixture f(name);
    UseMlp(f);
    auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
    algo->Setup(f.p(), 30);
    algo->SetModel(*f.model);
    const auto& split = dynamic_cast<const fedsim::LayerSplit&>(*algo);
    const auto [pb, ps] = split.personal_ranges()[0];
    // A mean upload with noise on every coordinate, as central DP makes it.
    Eigen::VectorXf mean(f.p());
    for (int64_t i = 0; i < f.p(); ++i) mean[i] = 0.01f * static_cast<float>((i % 7) - 3);
    Eigen::VectorXf global = f.w0;
    std::vector<ClientReport> reports(3);
    algo->ServerUpdate(global, mean, reports, 0);
    Eigen::VectorXf expect = f.w0 + mean;  // FedAvg's step, server lr 1
    expect.segment(pb, ps) = f.w0.segment(pb, ps);
    RequireClose(global, expect, 1e-7);
    CHECK((global.segment(pb, ps) - f.w0.segment(pb, ps)).cwiseAbs().maxCoeff() == 0.0f);
  }
}

TEST_CASE("apfl: v steps on the mixture, the upload is w's FedAvg delta", "[fl][algorithms][pfl]") {
  Fixture f("apfl");
  FullBatch(f, 2);
  f.cfg.personalization.alpha = 0.25;
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(f.p(), 30);
  const float lr = 0.2f, a = 0.25f;
  Eigen::VectorXf up(f.p());
  ClientReport rep = algo->LocalUpdate(f.ctx, f.Task(7, lr), f.w0.data(), up.data(), f.s);
  CHECK(rep.steps == 2);
  CHECK(rep.weight == static_cast<double>(f.part[7].size()));
  // v0 = w0; step 1: vbar = w0.
  Eigen::VectorXf w = f.w0, v = f.w0;
  for (int step = 0; step < 2; ++step) {
    const Eigen::VectorXf vbar = a * v + (1 - a) * w;
    const Eigen::VectorXf gv = f.FullGradient(7, vbar), gw = f.FullGradient(7, w);
    v -= lr * a * gv;
    w -= lr * gw;
  }
  RequireClose(up, w - f.w0, 1e-6);
  // The personal model mixes v with the current global model.
  const Eigen::VectorXf g = f.w0 + up;
  RequireClose(Personal(*algo, f, 7, g), a * v + (1 - a) * g, 1e-6);
}

TEST_CASE("apfl: adaptive alpha follows <v - w, grad F(v_bar)> and is kept per client", "[fl][algorithms][pfl]") {
  Fixture f("apfl");
  FullBatch(f, 3);
  f.cfg.personalization.alpha = 0.25;
  f.cfg.personalization.alpha_lr = 0.5;
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(f.p(), 30);
  const float lr = 0.2f, eta_a = 0.5f;
  // Two rounds from the same global model: the second starts from the first's
  // v and alpha (v != w from its first step on).
  Eigen::VectorXf up(f.p());
  Eigen::VectorXf v = f.w0;
  float a = 0.25f;
  for (int round = 0; round < 2; ++round) {
    algo->LocalUpdate(f.ctx, f.Task(7, lr, round), f.w0.data(), up.data(), f.s);
    Eigen::VectorXf w = f.w0;
    for (int step = 0; step < 3; ++step) {
      const Eigen::VectorXf vbar = a * v + (1 - a) * w;
      const Eigen::VectorXf gv = f.FullGradient(7, vbar), gw = f.FullGradient(7, w);
      const double d = (v - w).cast<double>().dot(gv.cast<double>());
      v -= lr * a * gv;
      w -= lr * gw;
      a = static_cast<float>(std::clamp(a - eta_a * d, 0.0, 1.0));
    }
    RequireClose(up, w - f.w0, 1e-6);
  }
  INFO("alpha after two rounds " << a);
  CHECK(a != 0.25f);  // it moved
  // The personal model mixes with the client's own alpha.
  const Eigen::VectorXf g = f.w0 + up;
  RequireClose(Personal(*algo, f, 7, g), a * v + (1 - a) * g, 1e-5);
  // Another client that never trained: the global model.
  RequireClose(Personal(*algo, f, 8, g), g, 0.0);
}

TEST_CASE("pfedme: K inner steps on theta, w pulled to theta, server step beta", "[fl][algorithms][pfl]") {
  Fixture f("pfedme");
  FullBatch(f, 1);
  f.cfg.personalization.lambda = 2.0;
  f.cfg.personalization.inner_steps = 2;
  f.cfg.personalization.inner_lr = 0.05;
  f.cfg.personalization.beta = 1.5;
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(f.p(), 30);
  CHECK(algo->uniform_weights());
  const float lr = 0.1f, lam = 2.0f, ilr = 0.05f;
  Eigen::VectorXf up(f.p());
  const ClientReport rep = algo->LocalUpdate(f.ctx, f.Task(2, lr), f.w0.data(), up.data(), f.s);
  CHECK(rep.weight == 1.0);
  const Eigen::VectorXf th1 = f.w0 - ilr * f.FullGradient(2, f.w0);  // theta0 = w0: no pull
  const Eigen::VectorXf th2 = th1 - ilr * (f.FullGradient(2, th1) + lam * (th1 - f.w0));
  const Eigen::VectorXf w1 = f.w0 - lr * lam * (f.w0 - th2);
  RequireClose(up, w1 - f.w0, 1e-6);
  RequireClose(Personal(*algo, f, 2, f.w0), th2, 1e-6);
  // Server: w <- (1 - beta) w + beta mean(w_k), here one client.
  Eigen::VectorXf global = f.w0;
  algo->ServerUpdate(global, up, {rep}, 0);
  RequireClose(global, -0.5f * f.w0 + 1.5f * w1, 1e-5);
}

TEST_CASE("perfedavg: first-order and Hessian-free meta steps; one adaptation step", "[fl][algorithms][pfl]") {
  Fixture f("perfedavg");
  FullBatch(f, 1);
  f.cfg.personalization.adapt_lr = 0.3;
  const float a = 0.3f, beta = 0.1f;
  Eigen::VectorXf up(f.p());
  const Eigen::VectorXf wt = f.w0 - a * f.FullGradient(5, f.w0);
  const Eigen::VectorXf gp = f.FullGradient(5, wt);
  {
    auto fo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
    fo->Setup(f.p(), 30);
    const ClientReport rep = fo->LocalUpdate(f.ctx, f.Task(5, beta), f.w0.data(), up.data(), f.s);
    CHECK(rep.weight == 1.0);
    RequireClose(up, -beta * gp, 1e-6);
    // Personal model: w - alpha g(w) on the whole client (batch_size 0).
    RequireClose(Personal(*fo, f, 5, f.w0), wt, 1e-6);
  }
  f.cfg.personalization.perfedavg = "hf";
  f.cfg.personalization.hf_delta = 1e-2;
  auto hf = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  hf->Setup(f.p(), 30);
  hf->LocalUpdate(f.ctx, f.Task(5, beta), f.w0.data(), up.data(), f.s);
  const float d = 1e-2f;
  const Eigen::VectorXf hvp = (f.FullGradient(5, f.w0 + d * gp) - f.FullGradient(5, f.w0 - d * gp)) / (2 * d);
  RequireClose(up, -beta * (gp - a * hvp), 1e-5);
  // The Hessian term is really there (softmax's Hessian is not zero).
  CHECK((up + beta * gp).norm() > 1e-4);
}

TEST_CASE("fedper and lgfedavg: the personal layers stay on the client, the shared ones are uploaded",
          "[fl][algorithms][pfl]") {
  for (const std::string name : {"fedper", "lgfedavg"}) {
    INFO(name);
    Fixture f(name);
    UseMlp(f);
    FullBatch(f, 1);
    auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
    algo->Setup(f.p(), 30);
    algo->SetModel(*f.model);
    const auto& split = dynamic_cast<const fedsim::LayerSplit&>(*algo);
    const int64_t in = f.data.train.dim(), first = in * 4 + 4;  // layers.0: weight and bias
    const int64_t pb = name == "fedper" ? first : 0, ps = name == "fedper" ? f.p() - first : first;
    REQUIRE(split.personal_ranges().size() == 1);
    CHECK(split.personal_ranges()[0].first == pb);
    CHECK(split.personal_size() == ps);
    CHECK(algo->PlannedUploadBytes() == (f.p() - ps) * 4);
    Eigen::VectorXf up(f.p());
    const float lr = 0.5f;
    const ClientReport rep = algo->LocalUpdate(f.ctx, f.Task(1, lr), f.w0.data(), up.data(), f.s);
    CHECK(rep.bytes_up == (f.p() - ps) * 4);
    Eigen::VectorXf w1 = f.w0 - lr * f.FullGradient(1, f.w0);  // joint training
    Eigen::VectorXf shared = w1 - f.w0;
    shared.segment(pb, ps).setZero();
    RequireClose(up, shared, 1e-6);
    // Personal model: another global's shared part, the client's own personal part.
    const Eigen::VectorXf other = f.w0 + Eigen::VectorXf::Constant(f.p(), 0.01f);
    Eigen::VectorXf expect = other;
    expect.segment(pb, ps) = w1.segment(pb, ps);
    RequireClose(Personal(*algo, f, 1, other), expect, 1e-6);
    RequireClose(Personal(*algo, f, 2, other), other, 0);  // never trained
  }
}

TEST_CASE("fedbn: the layers marked local stay on the client wherever they sit; the rest is uploaded",
          "[fl][algorithms][pfl][fedbn]") {
  Fixture f("fedbn");
  // Two local layers around a shared one: the personal part is two ranges.
  f.cfg.model.kind = "sequential";
  f.cfg.model.layers = json::array({{{"type", "dense"}, {"units", 4}, {"local", true}},
                                    {{"type", "relu"}},
                                    {{"type", "dense"}, {"units", 3}},
                                    {{"type", "dense"}, {"local", true}}});
  UseModel(f);
  const int64_t p = f.model->num_params();
  FullBatch(f, 1);
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(p, 30);
  algo->SetModel(*f.model);
  const auto& split = dynamic_cast<const fedsim::LayerSplit&>(*algo);
  const int64_t d = f.data.train.dim(), first = d * 4 + 4, middle = 4 * 3 + 3;
  const int64_t last = p - first - middle;
  REQUIRE(split.personal_ranges().size() == 2);
  CHECK(split.personal_ranges()[0] == std::pair<int64_t, int64_t>(0, first));
  CHECK(split.personal_ranges()[1] == std::pair<int64_t, int64_t>(first + middle, last));
  CHECK(split.personal_size() == first + last);
  CHECK(algo->PlannedUploadBytes() == middle * 4);
  Eigen::VectorXf up(p);
  const float lr = 0.5f;
  const ClientReport rep = algo->LocalUpdate(f.ctx, f.Task(1, lr), f.w0.data(), up.data(), f.s);
  CHECK(rep.bytes_up == middle * 4);
  const Eigen::VectorXf w1 = f.w0 - lr * f.FullGradient(1, f.w0);
  Eigen::VectorXf shared = w1 - f.w0;
  shared.head(first).setZero();
  shared.tail(last).setZero();
  REQUIRE(shared.segment(first, middle).norm() > 0);
  RequireClose(up, shared, 1e-6);
  // The personal model: the global shared layer, the client's own two local layers.
  const Eigen::VectorXf other = f.w0 + Eigen::VectorXf::Constant(p, 0.01f);
  Eigen::VectorXf expect = other;
  expect.head(first) = w1.head(first);
  expect.tail(last) = w1.tail(last);
  RequireClose(Personal(*algo, f, 1, other), expect, 1e-6);
  RequireClose(Personal(*algo, f, 2, other), other, 0);  // never trained
  // A second round starts from the client's own local layers, not the global copy.
  algo->LocalUpdate(f.ctx, f.Task(1, lr, 1), other.data(), up.data(), f.s);
  Eigen::VectorXf start = other;
  start.head(first) = w1.head(first);
  start.tail(last) = w1.tail(last);
  Eigen::VectorXf w2 = start - lr * f.FullGradient(1, start);
  Eigen::VectorXf shared2 = w2 - other;
  shared2.head(first).setZero();
  shared2.tail(last).setZero();
  RequireClose(up, shared2, 1e-6);

  // No layer marked: refused, naming the key.
  f.cfg.model.layers = json::array({{{"type", "dense"}, {"units", 4}}, {{"type", "dense"}}});
  const auto unmarked = fedsim::CreateModel(f.cfg.model, f.data.train.dim(), f.data.train.num_classes);
  auto other_algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  other_algo->Setup(unmarked->num_params(), 30);
  CHECK_THROWS_WITH(other_algo->SetModel(*unmarked), Catch::Matchers::Contains("marks none"));
}

TEST_CASE("fedrep: head epochs with the body fixed, then body epochs with the new head", "[fl][algorithms][pfl]") {
  Fixture f("fedrep");
  UseMlp(f);
  FullBatch(f, 1);
  f.cfg.algorithm.weight_decay = 0.01;  // frozen parts must not decay
  f.cfg.personalization.head_epochs = 2;
  f.s.sgd = fedsim::Sgd(0.0f, 0.01f);
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(f.p(), 30);
  algo->SetModel(*f.model);
  const int64_t hb = f.data.train.dim() * 4 + 4, hs = f.p() - hb;
  const float lr = 0.5f, wd = 0.01f;
  Eigen::VectorXf up(f.p());
  algo->LocalUpdate(f.ctx, f.Task(1, lr), f.w0.data(), up.data(), f.s);
  // Two full-batch head epochs, then one body step.
  Eigen::VectorXf w = f.w0;
  for (int e = 0; e < 2; ++e) {
    const Eigen::VectorXf g = f.FullGradient(1, w);
    w.segment(hb, hs) -= lr * (g.segment(hb, hs) + wd * w.segment(hb, hs));
  }
  const Eigen::VectorXf g = f.FullGradient(1, w);
  w.head(hb) -= lr * (g.head(hb) + wd * w.head(hb));
  Eigen::VectorXf shared = w - f.w0;
  shared.tail(hs).setZero();
  RequireClose(up, shared, 1e-6);
  RequireClose(Personal(*algo, f, 1, f.w0).tail(hs), w.tail(hs), 1e-6);
}

TEST_CASE("layer split: a one-layer model leaves nothing shared", "[fl][algorithms][pfl]") {
  Fixture f("fedper");
  auto algo = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  algo->Setup(f.p(), 30);
  CHECK_THROWS_WITH(algo->SetModel(*f.model), Catch::Contains("personalization.personal_layers"));
}

TEST_CASE("personalised algorithms: float16 state stores the personal model rounded to halves",
          "[fl][algorithms][pfl][state]") {
  Fixture f("ditto");
  FullBatch(f, 1);
  auto a32 = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  auto a16 = fedsim::CreateAlgorithm(f.cfg.algorithm, f.cfg.personalization);
  a32->Setup(f.p(), 30);
  a16->Setup(f.p(), 30);
  a16->mutable_client_state()->Configure(fedsim::StatePrecision::kFloat16, nullptr);
  Eigen::VectorXf up(f.p());
  a32->LocalUpdate(f.ctx, f.Task(3, 0.1f), f.w0.data(), up.data(), f.s);
  a16->LocalUpdate(f.ctx, f.Task(3, 0.1f), f.w0.data(), up.data(), f.s);
  const Eigen::VectorXf v32 = Personal(*a32, f, 3, f.w0), v16 = Personal(*a16, f, 3, f.w0);
  RequireClose(v16, v32, 1e-2 * v32.cwiseAbs().maxCoeff());
  CHECK(a16->client_state()->Bytes() * 2 == a32->client_state()->Bytes());
}

namespace {

// The 1,000-image Fashion-MNIST sample on 10 clients with Dirichlet(0.1)
// label skew, each client's own 25% test rows, a 784-32-10 MLP; all clients
// take part and are scored each round.
json SkewedRun(const std::string& algo, const std::vector<std::string>& sets) {
  json j = {{"experiment", {{"rounds", 15}}},
            {"data",
             {{"dataset", "mnist_idx"},
              {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
              {"num_clients", 10},
              {"standardize", true},
              {"client_test_fraction", 0.25},
              {"partition", {{"kind", "dirichlet"}, {"alpha", 0.1}}}}},
            {"model", {{"kind", "mlp"}, {"hidden", {32}}}},
            {"algorithm", {{"name", algo}, {"clients_per_round", 10}, {"batch_size", 20}, {"lr", 0.05}}},
            {"metrics", {{"client_eval", "all"}, {"eval_every", 15}}}};
  for (const auto& s : sets) fedsim::ApplyOverride(j, s);
  fedsim::RunOptions o;
  o.threads = 2;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
}

}  // namespace

TEST_CASE("personalised models beat FedAvg's global model on label-skewed clients", "[fl][algorithms][pfl][learn]") {
  const double fedavg = SkewedRun("fedavg", {})["summary"]["final_client_accuracy"]["mean"].get<double>();
  struct Case {
    std::string name;
    std::vector<std::string> sets;
  };
  const std::vector<Case> cases = {
      {"ditto", {}},
      {"apfl", {"personalization.alpha=0.5"}},
      {"pfedme", {"personalization.inner_lr=0.05", "personalization.lambda=5"}},
      {"perfedavg", {"personalization.adapt_lr=0.05"}},
      {"perfedavg", {"personalization.adapt_lr=0.05", "personalization.perfedavg=hf"}},
      {"fedper", {}},
      {"fedrep", {"personalization.head_epochs=2"}},
      {"lgfedavg", {}},
  };
  for (const auto& c : cases) {
    const double acc = SkewedRun(c.name, c.sets)["summary"]["final_client_accuracy"]["mean"].get<double>();
    INFO(c.name << " " << (c.sets.empty() ? "" : c.sets.back()) << ": " << acc << " vs fedavg " << fedavg);
    CHECK(acc > fedavg + 0.05);
  }
}

TEST_CASE("personalised algorithms: their extra work counts in train_gflop and on the simulated clock",
          "[fl][algorithms][pfl][system]") {
  // Ditto's global part is FedAvg's training, bit for bit, and its personal
  // part takes as many steps on as many samples: twice the FLOPs. pFedMe
  // computes K = 3 gradients per local step; Per-FedAvg 2 (fo) or 4 (hf);
  // FedRep 2 head epochs before its 1 body epoch. Every client computes
  // longer, so the simulated round is longer too.
  const std::vector<std::string> fast = {"experiment.rounds=3", "metrics.eval_every=3"};
  const json fedavg = SkewedRun("fedavg", fast)["summary"];
  const json ditto = SkewedRun("ditto", fast)["summary"];
  CHECK(ditto["train_samples"] == fedavg["train_samples"]);
  CHECK(ditto["train_gflop"].get<double>() == Approx(2.0 * fedavg["train_gflop"].get<double>()).epsilon(1e-12));
  CHECK(ditto["sim_time_s"].get<double>() > fedavg["sim_time_s"].get<double>());
  struct Case {
    std::string name;
    std::vector<std::string> sets;
    double gradients_per_sample;  // gradient evaluations per training-loss sample
  };
  const std::vector<Case> cases = {
      {"pfedme", {"personalization.inner_steps=3"}, 3.0},
      {"perfedavg", {}, 2.0},
      {"perfedavg", {"personalization.perfedavg=hf"}, 4.0},
      {"fedrep", {"personalization.head_epochs=2"}, 3.0},
  };
  for (const auto& c : cases) {
    std::vector<std::string> sets = fast;
    sets.insert(sets.end(), c.sets.begin(), c.sets.end());
    const json m = SkewedRun(c.name, sets)["summary"];
    INFO(c.name << " " << (c.sets.empty() ? "" : c.sets.back()));
    const double flop_per_sample = m["train_gflop"].get<double>() / m["train_samples"].get<double>();
    const double plain = fedavg["train_gflop"].get<double>() / fedavg["train_samples"].get<double>();
    // Per-FedAvg's extra batches may be smaller at the end of a shuffle: at most the factor.
    CHECK(flop_per_sample <= c.gradients_per_sample * plain * (1 + 1e-9));
    CHECK(flop_per_sample > (c.gradients_per_sample - 0.5) * plain);
    CHECK(m["sim_time_s"].get<double>() > fedavg["sim_time_s"].get<double>());
  }
}

TEST_CASE("personalised algorithms: settings they cannot run are config errors", "[fl][pfl][config]") {
  auto error = [](const std::string& algo, const std::string& set) {
    json j = {{"algorithm", {{"name", algo}}}};
    fedsim::ApplyOverride(j, set);
    try {
      fedsim::ParseConfig(j, "test");
    } catch (const fedsim::InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  for (const std::string algo : {"apfl", "pfedme", "perfedavg"}) {
    INFO(algo);
    CHECK_THAT(error(algo, "algorithm.momentum=0.9"), Catch::Contains("plain gradient steps"));
    CHECK_THAT(error(algo, "privacy.mode=sample"), Catch::Contains("not implemented for " + algo));
  }
  CHECK(error("ditto", "algorithm.momentum=0.9") == "");
  CHECK_THAT(error("ditto", "personalization.alpha=0.5"), Catch::Contains("not read by algorithm.name=ditto"));
  CHECK_THAT(error("fedper", "secure_aggregation.enabled=true"), Catch::Contains("not read by"));
}
