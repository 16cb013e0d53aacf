// The layer engine (model/sequential.h): gradients against finite
// differences for every layer type and every preset, an LSTM step and the
// norms against their closed forms, dropout's determinism, the presets'
// published parameter counts, and spec errors that name the entry and field.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "fl/algorithm.h"
#include "model/cnn.h"
#include "model/sequential.h"
#include "run/experiment.h"

using fedsim::ModelInput;
using fedsim::Rng;
using fedsim::Sequential;
using nlohmann::json;

namespace {

ModelInput Image(int c, int h, int w) { return {c * h * w, {c, h, w}, 0}; }
ModelInput Flat(int d) { return {d, {}, 0}; }
ModelInput Tokens(int t, int vocab) { return {t, {t}, vocab}; }

Sequential Make(const json& spec, const ModelInput& in, int classes, const std::string& kind = "sequential") {
  return Sequential(spec, in, {}, classes, 1.0, kind);
}

// b samples of the model's input: normal features, or token ids.
std::vector<float> Inputs(const ModelInput& in, int b, Rng& rng) {
  std::vector<float> x(static_cast<size_t>(b) * in.dim);
  for (auto& v : x) {
    v = in.vocab_size > 0 ? static_cast<float>(rng.UniformInt(static_cast<uint64_t>(in.vocab_size)))
                          : static_cast<float>(rng.Normal());
  }
  return x;
}

std::vector<int> Labels(int b, int classes, Rng& rng) {
  std::vector<int> y(static_cast<size_t>(b));
  for (auto& v : y) v = static_cast<int>(rng.UniformInt(static_cast<uint64_t>(classes)));
  return y;
}

// Parameters from Init, with norms' scales and shifts moved off 1 and 0 so
// that their gradients are exercised in general position.
std::vector<float> Params(const Sequential& m, Rng& rng) {
  std::vector<float> p(static_cast<size_t>(m.num_params()));
  m.Init(p.data(), rng);
  for (const auto& r : m.ParamRanges()) {
    if (r.name.find("gamma") != std::string::npos || r.name.find("beta") != std::string::npos) {
      for (int64_t i = 0; i < r.size; ++i) p[static_cast<size_t>(r.offset + i)] += 0.3f * static_cast<float>(rng.Normal());
    }
  }
  return p;
}

struct Problem {
  std::vector<float> x;
  std::vector<int> y;
  int b;
};

double Loss(const Sequential& m, std::vector<float>& p, const Problem& pr, fedsim::Workspace& ws,
            std::vector<float>& scratch) {
  ws.noise = {42, 0};
  return m.LossAndGradient(p.data(), pr.x.data(), pr.y.data(), pr.b, scratch.data(), ws);
}

// Central differences for every parameter (or `max_coords` of them spread
// evenly), eps = 1e-3. A coordinate passes within 3e-4 + 3% of the finite
// difference; at most `allowed` may fail (a ReLU or a max-pool window that
// switches inside [p - eps, p + eps]).
void CheckCoordinates(const Sequential& m, const Problem& pr, uint64_t seed, int max_coords = 600,
                      int allowed = 0) {
  Rng rng(seed);
  std::vector<float> p = Params(m, rng);
  auto ws = m.NewWorkspace(pr.b);
  std::vector<float> grad(p.size()), scratch(p.size());
  Loss(m, p, pr, *ws, grad);
  const int64_t n = m.num_params();
  const int64_t step = std::max<int64_t>(1, n / max_coords);
  const float eps = 1e-3f;
  int failures = 0, checked = 0;
  for (int64_t i = 0; i < n; i += step) {
    const float saved = p[static_cast<size_t>(i)];
    p[static_cast<size_t>(i)] = saved + eps;
    const double lp = Loss(m, p, pr, *ws, scratch);
    p[static_cast<size_t>(i)] = saved - eps;
    const double lm = Loss(m, p, pr, *ws, scratch);
    p[static_cast<size_t>(i)] = saved;
    const double fd = (lp - lm) / (2.0 * static_cast<double>(eps));
    const double g = grad[static_cast<size_t>(i)];
    ++checked;
    if (std::abs(g - fd) > 3e-4 + 3e-2 * std::abs(fd)) {
      ++failures;
      if (failures > allowed) {
        INFO("parameter " << i << ": analytic " << g << ", finite difference " << fd);
        CHECK(false);
      }
    }
  }
  CHECK(checked > 0);
  CHECK(failures <= allowed);
}

// For large models: per parameter tensor, the derivative along the
// tensor's own gradient direction u (and along u plus a random direction)
// against a central difference with a step of 5e-4 in parameter norm, to
// 3% + 2e-3 (a larger step crosses too many ReLU kinks along u; a smaller
// one drowns in the float loss's rounding). A wrong gradient in any tensor
// changes its derivative along u.
void CheckDirections(const Sequential& m, const Problem& pr, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> p = Params(m, rng);
  auto ws = m.NewWorkspace(pr.b);
  std::vector<float> grad(p.size()), scratch(p.size());
  Loss(m, p, pr, *ws, grad);
  for (const auto& r : m.ParamRanges()) {
    double norm = 0.0;
    for (int64_t i = 0; i < r.size; ++i) norm += std::pow(grad[static_cast<size_t>(r.offset + i)], 2);
    norm = std::sqrt(norm);
    INFO(r.name << " (" << r.size << " parameters), gradient norm " << norm);
    if (norm < 1e-6) continue;  // e.g. embedding rows no token used
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<double> d(static_cast<size_t>(r.size));
      double dn = 0.0;
      for (int64_t i = 0; i < r.size; ++i) {
        d[static_cast<size_t>(i)] = grad[static_cast<size_t>(r.offset + i)] / norm + (pass ? rng.Normal() / std::sqrt(static_cast<double>(r.size)) : 0.0);
        dn += d[static_cast<size_t>(i)] * d[static_cast<size_t>(i)];
      }
      dn = std::sqrt(dn);
      double analytic = 0.0;
      for (int64_t i = 0; i < r.size; ++i) {
        d[static_cast<size_t>(i)] /= dn;
        analytic += d[static_cast<size_t>(i)] * grad[static_cast<size_t>(r.offset + i)];
      }
      const double h = 5e-4;
      std::vector<float> saved(p.begin() + r.offset, p.begin() + r.offset + r.size);
      for (int64_t i = 0; i < r.size; ++i) p[static_cast<size_t>(r.offset + i)] = static_cast<float>(saved[static_cast<size_t>(i)] + h * d[static_cast<size_t>(i)]);
      const double lp = Loss(m, p, pr, *ws, scratch);
      for (int64_t i = 0; i < r.size; ++i) p[static_cast<size_t>(r.offset + i)] = static_cast<float>(saved[static_cast<size_t>(i)] - h * d[static_cast<size_t>(i)]);
      const double lm = Loss(m, p, pr, *ws, scratch);
      std::copy(saved.begin(), saved.end(), p.begin() + r.offset);
      const double fd = (lp - lm) / (2.0 * h);
      INFO("direction " << pass << ": analytic " << analytic << ", finite difference " << fd);
      CHECK(analytic == Approx(fd).epsilon(3e-2).margin(2e-3));
    }
  }
}

Problem MakeProblem(const ModelInput& in, int b, int classes, uint64_t seed) {
  Rng rng(seed);
  Problem pr;
  pr.x = Inputs(in, b, rng);
  pr.y = Labels(b, classes, rng);
  pr.b = b;
  return pr;
}

json L(const char* type, json fields = json::object()) {
  fields["type"] = type;
  return fields;
}

// Two models that must be the same computation (the engine against the
// hand-written Cnn): the same initial parameters from the same seed, and the
// same loss, gradient and evaluation sums bit for bit on a batch of b.
void CheckSameBits(const fedsim::Model& a, const fedsim::Model& b, int batch, uint64_t seed) {
  REQUIRE(a.num_params() == b.num_params());
  Eigen::VectorXf p1(a.num_params()), p2(b.num_params());
  Rng r1(seed), r2(seed);
  a.Init(p1.data(), r1);
  b.Init(p2.data(), r2);
  CHECK(p1 == p2);
  const Problem pr = MakeProblem(Image(1, 28, 28), batch, 10, seed + 1);
  auto w1 = a.NewWorkspace(batch);
  auto w2 = b.NewWorkspace(batch);
  Eigen::VectorXf g1(a.num_params()), g2(b.num_params());
  CHECK(a.LossAndGradient(p1.data(), pr.x.data(), pr.y.data(), batch, g1.data(), *w1) ==
        b.LossAndGradient(p2.data(), pr.x.data(), pr.y.data(), batch, g2.data(), *w2));
  CHECK(g1 == g2);
  const auto e1 = a.Evaluate(p1.data(), pr.x.data(), pr.y.data(), batch, *w1);
  const auto e2 = b.Evaluate(p2.data(), pr.x.data(), pr.y.data(), batch, *w2);
  CHECK(e1.loss_sum == e2.loss_sum);
  CHECK(e1.correct == e2.correct);
}

}  // namespace

TEST_CASE("layers: every layer type's gradient matches finite differences", "[model][layers]") {
  SECTION("dense, tanh, sigmoid") {
    const json spec = {L("dense", {{"units", 7}}), L("tanh"), L("dense", {{"units", 5}}), L("sigmoid"), L("dense")};
    const auto m = Make(spec, Flat(6), 3);
    CheckCoordinates(m, MakeProblem(Flat(6), 4, 3, 1), 2);
  }
  SECTION("conv2d with stride and padding, maxpool2d, flatten") {
    const json spec = {L("conv2d", {{"filters", 3}, {"kernel", 3}, {"stride", 2}, {"padding", 1}}), L("tanh"),
                       L("maxpool2d", {{"kernel", 2}, {"stride", 1}}), L("flatten"), L("dense")};
    const auto m = Make(spec, Image(2, 7, 7), 3);
    CheckCoordinates(m, MakeProblem(Image(2, 7, 7), 3, 3, 3), 4, 600, 3);
  }
  SECTION("grouped conv2d, relu, avgpool2d") {
    const json spec = {L("conv2d", {{"filters", 4}, {"kernel", 3}, {"groups", 2}, {"padding", "same"}}), L("relu"),
                       L("avgpool2d", {{"kernel", 2}}), L("dense", {{"units", 5}}), L("sigmoid"), L("dense")};
    const auto m = Make(spec, Image(4, 6, 6), 3);
    CheckCoordinates(m, MakeProblem(Image(4, 6, 6), 3, 3, 5), 6, 600, 3);
  }
  SECTION("groupnorm, global_avgpool, conv2d without bias") {
    const json spec = {L("conv2d", {{"filters", 4}, {"kernel", 3}, {"bias", false}}), L("groupnorm", {{"groups", 2}}),
                       L("tanh"), L("global_avgpool"), L("dense")};
    const auto m = Make(spec, Image(2, 5, 5), 3);
    CheckCoordinates(m, MakeProblem(Image(2, 5, 5), 3, 3, 7), 8);
  }
  SECTION("layernorm on flat features and on an image's channels") {
    const json flat = {L("dense", {{"units", 6}}), L("layernorm"), L("tanh"), L("dense")};
    CheckCoordinates(Make(flat, Flat(5), 3), MakeProblem(Flat(5), 4, 3, 9), 10);
    const json image = {L("conv2d", {{"filters", 3}, {"kernel", 2}}), L("layernorm"), L("dense")};
    CheckCoordinates(Make(image, Image(2, 4, 4), 3), MakeProblem(Image(2, 4, 4), 3, 3, 11), 12);
  }
  SECTION("dropout (training masks fixed by the seed)") {
    const json spec = {L("dense", {{"units", 8}}), L("tanh"), L("dropout", {{"rate", 0.5}}), L("dense")};
    CheckCoordinates(Make(spec, Flat(5), 3), MakeProblem(Flat(5), 4, 3, 13), 14);
  }
  SECTION("embedding, stacked lstm, last step") {
    const json spec = {L("embedding", {{"dim", 3}}), L("lstm", {{"units", 4}, {"return_sequences", true}}),
                       L("lstm", {{"units", 3}}), L("dense")};
    CheckCoordinates(Make(spec, Tokens(5, 6), 3), MakeProblem(Tokens(5, 6), 3, 3, 15), 16);
  }
  SECTION("embedding, stacked gru") {
    const json spec = {L("embedding", {{"dim", 3}}), L("gru", {{"units", 4}, {"return_sequences", true}}),
                       L("gru", {{"units", 3}}), L("dense")};
    CheckCoordinates(Make(spec, Tokens(5, 6), 3), MakeProblem(Tokens(5, 6), 3, 3, 23), 24);
  }
  SECTION("lstm sequences through layernorm, a per-step dense and last_step") {
    const json spec = {L("embedding", {{"dim", 3}}), L("lstm", {{"units", 4}, {"return_sequences", true}}),
                       L("layernorm"), L("dense", {{"units", 3}}), L("tanh"), L("last_step"), L("dense")};
    CheckCoordinates(Make(spec, Tokens(4, 5), 2), MakeProblem(Tokens(4, 5), 3, 2, 17), 18);
  }
  SECTION("residual blocks: identity and a strided 1x1 projection") {
    const json block = {{"type", "residual"},
                        {"layers", {L("conv2d", {{"filters", 2}, {"kernel", 3}, {"padding", 1}}), L("tanh"),
                                    L("conv2d", {{"filters", 2}, {"kernel", 3}, {"padding", 1}})}}};
    const json down = {{"type", "residual"},
                       {"projection", true},
                       {"layers", {L("conv2d", {{"filters", 3}, {"kernel", 3}, {"padding", 1}, {"stride", 2}}),
                                   L("groupnorm", {{"groups", 3}}), L("tanh")}}};
    const json spec = {L("conv2d", {{"filters", 2}, {"kernel", 1}}), block, L("tanh"), down, L("dense")};
    CheckCoordinates(Make(spec, Image(1, 6, 6), 3), MakeProblem(Image(1, 6, 6), 2, 3, 19), 20);
  }
}

TEST_CASE("layers: fedpara's factorised dense and conv2d layers: gradients, the old CNN's bits, a run",
          "[model][layers][fedpara]") {
  SECTION("finite differences through a factorised conv2d, dense layers and a residual block") {
    const json block = {{"type", "residual"},
                        {"layers", {L("conv2d", {{"filters", 3}, {"kernel", 3}, {"padding", 1}}), L("tanh")}}};
    // avgpool, not maxpool: one factor entry moves every weight of its
    // layer, so a near-tie in any max-pool window flips along many
    // coordinates at once (seen at gamma 0: 25 of 600 off by up to 30%).
    const json spec = {L("conv2d", {{"filters", 3}, {"kernel", 3}, {"padding", 1}}), L("tanh"), block,
                       L("avgpool2d", {{"kernel", 2}}), L("dense", {{"units", 5}}), L("tanh"),
                       L("dense", {{"bias", false}})};
    for (const double gamma : {0.0, 0.5}) {
      INFO("gamma " << gamma);
      const Sequential m(spec, Image(2, 6, 6), {}, 3, 1.0, "sequential", "model.layers", gamma);
      CheckCoordinates(m, MakeProblem(Image(2, 6, 6), 3, 3, 31), 32, 600, 0);
    }
  }
  SECTION("cnn_mcmahan's layers under fedpara are fedpara_cnn_mcmahan, bit for bit") {
    const json relu = L("relu");
    auto conv = [](int f, int k, int pad) { return L("conv2d", {{"filters", f}, {"kernel", k}, {"padding", pad}}); };
    const json mcmahan = {conv(32, 5, 2), relu, L("maxpool2d", {{"kernel", 2}}), conv(64, 5, 2), relu,
                          L("maxpool2d", {{"kernel", 2}}), L("dense", {{"units", 512}}), relu, L("dense")};
    const Sequential seq(mcmahan, Image(1, 28, 28), {}, 10, 1.0, "sequential", "model.layers", 0.3);
    const auto cnn = fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0, 0.3);
    REQUIRE(seq.num_params() == cnn->num_params());
    CHECK(seq.num_params() < 1663370 / 2);
    CHECK(seq.TrainFlopsPerBatch() == Approx(cnn->TrainFlopsPerBatch()).epsilon(1e-12));
    const auto r1 = seq.ParamRanges(), r2 = cnn->ParamRanges();
    REQUIRE(r1.size() == r2.size());
    for (size_t i = 0; i < r1.size(); ++i) {
      CHECK(r1[i].name == r2[i].name);
      CHECK(r1[i].offset == r2[i].offset);
    }
    CheckSameBits(seq, *cnn, 7, 5);
  }
  SECTION("a preset trains under fedpara end to end, uploading its factors") {
    auto config = [](const std::string& algo) {
      json j = {{"experiment", {{"rounds", 2}}},
                {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                          {"num_clients", 4}, {"max_train_samples", 200}, {"max_test_samples", 100},
                          {"partition", {{"kind", "iid"}}}}},
                {"model", {{"kind", "tff_emnist_cnn"}}},
                {"algorithm", {{"name", algo}, {"clients_per_round", 2}, {"batch_size", 20}, {"lr", 0.05}}}};
      return fedsim::ParseConfig(j, "test");
    };
    fedsim::RunOptions o1, o2;
    o1.threads = 1;
    o2.threads = 2;
    const json a = fedsim::RunExperiment(config("fedpara"), o1);
    const json b = fedsim::RunExperiment(config("fedpara"), o2);
    CHECK(a["summary"]["status"] == "completed");
    CHECK(std::isfinite(a["summary"]["final_test_loss"].get<double>()));
    CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
    const json avg = fedsim::RunExperiment(config("fedavg"), o1);
    const int64_t up = a["rounds"][0]["round_bytes_up"].get<int64_t>();
    CHECK(up == 2 * 4 * a["model"]["num_params"].get<int64_t>());
    CHECK(up < avg["rounds"][0]["round_bytes_up"].get<int64_t>() / 2);
  }
}

TEST_CASE("layers: model.kind = cnn_mcmahan and cnn_lenet run on the engine with Cnn's bits, FedPara too",
          "[model][layers][fedpara]") {
  struct Case {
    const char* kind;
    std::optional<double> gamma;
  };
  for (const Case& c : {Case{"cnn_mcmahan", {}}, Case{"cnn_lenet", {}}, Case{"cnn_mcmahan", 0.5},
                        Case{"cnn_lenet", 0.0}, Case{"cnn_lenet", 1.0}}) {
    INFO(c.kind << " fedpara " << (c.gamma ? *c.gamma : -1.0));
    fedsim::ModelConfig mc;
    mc.kind = c.kind;
    const auto engine = fedsim::CreateModel(mc, 784, 10, c.gamma, {1, 28, 28});
    REQUIRE(dynamic_cast<const Sequential*>(engine.get()) != nullptr);
    CHECK(engine->kind() == (c.gamma ? "fedpara_" : "") + std::string(c.kind));
    const auto cnn = std::string(c.kind) == "cnn_mcmahan" ? fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0, c.gamma)
                                                          : fedsim::MakeCnnLeNet(1, 28, 28, 10, 1.0, c.gamma);
    REQUIRE(engine->num_params() == cnn->num_params());
    CHECK(engine->TrainFlopsPerSample() == cnn->TrainFlopsPerSample());
    CHECK(engine->TrainFlopsPerBatch() == Approx(cnn->TrainFlopsPerBatch()).epsilon(1e-12));
    for (int batch : {1, 10, 64}) CheckSameBits(*engine, *cnn, batch, 9 + batch);
  }
  // A factorised layer describes itself as its plain form does, with its rank.
  fedsim::ModelConfig mc;
  mc.kind = "cnn_mcmahan";
  CHECK(fedsim::CreateModel(mc, 784, 10, 0.1, {1, 28, 28})->Describe() ==
        "fedpara_cnn_mcmahan 1x28x28 -> conv5x5 s1 p2 conv2d fedpara rank 2 -> 32x28x28 relu -> maxpool2x2 s2 "
        "maxpool2d -> 32x14x14 -> conv5x5 s1 p2 conv2d fedpara rank 9 -> 64x14x14 relu -> maxpool2x2 s2 maxpool2d "
        "-> 64x7x7 -> dense fedpara rank 43 -> 512 relu -> dense fedpara rank 4 -> 10 (324632 parameters)");
}

TEST_CASE("layers: every preset's gradient matches finite differences on a tiny batch", "[model][layers][presets]") {
  struct Case {
    const char* kind;
    ModelInput in;
    int classes;
  };
  for (const Case& c : {Case{"leaf_femnist_cnn", Image(1, 28, 28), 62}, Case{"tff_emnist_cnn", Image(1, 28, 28), 62},
                        Case{"niid_cifar_cnn", Image(3, 32, 32), 10}, Case{"resnet20_gn", Image(3, 32, 32), 10},
                        Case{"leaf_shakespeare_lstm", Tokens(80, 80), 80}, Case{"sent140_lstm", Tokens(25, 50), 2}}) {
    INFO(c.kind);
    const Sequential m(fedsim::PresetLayers(c.kind), c.in, {}, c.classes, 1.0, c.kind);
    if (std::string(c.kind) == "niid_cifar_cnn") {
      // So small a ReLU/max-pool net on 2 samples crosses kinks along its
      // gradient within any step the float loss resolves (4.8%, 3.2% off at
      // steps 2e-3, 5e-4): coordinate by coordinate instead, up to 2% kinks
      // allowed (7 of 600 at eps 1e-3 measured).
      CheckCoordinates(m, MakeProblem(c.in, 2, c.classes, 21), 22, 600, 12);
    } else {
      CheckDirections(m, MakeProblem(c.in, 2, c.classes, 21), 22);
    }
  }
}

TEST_CASE("layers: presets have their published parameter counts", "[model][layers][presets]") {
  auto count = [](const char* kind, const ModelInput& in, int classes) {
    fedsim::ModelConfig cfg;
    cfg.kind = kind;
    return fedsim::CreateModel(cfg, in.dim, classes, std::nullopt, in.shape, in.vocab_size)->num_params();
  };
  // conv 5x5x32 same 832, conv 5x5x64 same 51,264, dense 3136 -> 2048
  // 6,424,576, dense 2048 -> 62 127,038.
  CHECK(count("leaf_femnist_cnn", Image(1, 28, 28), 62) == 6603710);
  // embedding 80 x 8 640; LSTM 8 -> 256: 4 (256 (8 + 256) + 256) 271,360;
  // LSTM 256 -> 256: 525,312; dense 256 -> 80: 20,560.
  CHECK(count("leaf_shakespeare_lstm", Tokens(80, 80), 80) == 817872);
  // conv 3x3x32 320, conv 3x3x64 18,496, dense 12*12*64 -> 128 1,179,776, dense 128 -> 62 7,998.
  CHECK(count("tff_emnist_cnn", Image(1, 28, 28), 62) == 1206590);
  CHECK(count("niid_cifar_cnn", Image(3, 32, 32), 10) == 62006);
  // LEAF's sent140 model: embedding (V x 100), LSTM 100 -> 100 twice
  // (80,400 each), dense 100 -> 128 12,928, dense 128 -> 2 258. LEAF's
  // GloVe vocabulary (400,000 words + the unknown id) gives 40,174,086.
  CHECK(count("sent140_lstm", Tokens(25, 400001), 2) == 400001LL * 100 + 173986);
  CHECK(count("sent140_lstm", Tokens(25, 10001), 2) == 10001LL * 100 + 173986);
  // ResNet-20: conv 3x3x16 432 + GN 32; stage 1: 3 x (2 x 2,304 + 2 x 32);
  // stage 2: 4,608 + 9,216 + 128 + 1x1 projection 512, then 2 x 18,560;
  // stage 3: 18,432 + 36,864 + 256 + projection 2,048, then 2 x 73,984;
  // dense 64 -> 10 650.
  CHECK(count("resnet20_gn", Image(3, 32, 32), 10) == 272282);
  // Next-token data (every step predicted) keeps the counts.
  auto count_next = [](const char* kind, int t, int vocab) {
    fedsim::ModelConfig cfg;
    cfg.kind = kind;
    return fedsim::CreateModel(cfg, t + 1, vocab, std::nullopt, {t + 1}, vocab, true)->num_params();
  };
  // TFF's StackOverflow model on its 10,000 words + pad, oov, bos, eos:
  // embedding 10,004 x 96 960,384; LSTM 96 -> 670: 4 (670 (96 + 670) + 670)
  // 2,055,560; dense 670 -> 96 64,416; dense 96 -> 10,004 970,388.
  CHECK(count_next("tff_stackoverflow_lstm", 20, 10004) == 4050748);
  // TFF's Shakespeare: 86 characters + pad, oov, bos, eos.
  CHECK(count_next("leaf_shakespeare_lstm", 80, 90) == 820522);
}

namespace {

// Next-token data: rows of t + 1 ids, every step predicted.
ModelInput NextTokens(int t, int vocab) { return {t + 1, {t + 1}, vocab, true, 0}; }

// b rows of t + 1 ids in [1, vocab) whose last `pads[n]` ids are pad (0), as TFF's padded rows.
Problem NextTokenProblem(int t, int vocab, const std::vector<int>& pads, uint64_t seed) {
  Rng rng(seed);
  Problem pr;
  pr.b = static_cast<int>(pads.size());
  for (int n = 0; n < pr.b; ++n) {
    for (int i = 0; i <= t; ++i) {
      pr.x.push_back(i > t - pads[static_cast<size_t>(n)]
                         ? 0.0f
                         : static_cast<float>(1 + rng.UniformInt(static_cast<uint64_t>(vocab - 1))));
    }
  }
  pr.y.assign(static_cast<size_t>(pr.b), 0);  // unused: the targets are the rows' ids
  return pr;
}

}  // namespace

TEST_CASE("layers: next-token data, every step scored against the next id, pads not scored", "[model][layers][lstm]") {
  // embedding (dim 2) -> per-step dense to the 4 classes: step t's logits are
  // W E[x_t] + b, its target x_{t+1}. The loss is the mean over the batch's
  // non-pad targets; Evaluate's sums count targets.
  const json spec = {L("embedding", {{"dim", 2}}), L("dense")};
  const int t_n = 3, vocab = 4;
  const auto m = Make(spec, NextTokens(t_n, vocab), vocab);
  REQUIRE(m.num_params() == 4 * 2 + 2 * 4 + 4);
  Rng rng(3);
  std::vector<float> p = Params(m, rng);
  // Rows: [1 2 3 1] (3 targets), [2 0 0 0] (1 pad input, 3 pad targets: none scored), [3 1 0 0] (1 target).
  const std::vector<float> x = {1, 2, 3, 1, 2, 0, 0, 0, 3, 1, 0, 0};
  const std::vector<int> y = {0, 0, 0};
  auto ws = m.NewWorkspace(3);
  std::vector<float> grad(p.size());
  const double loss = m.LossAndGradient(p.data(), x.data(), y.data(), 3, grad.data(), *ws);
  // By hand in double: E is 2 x 4 (column = id), W 4 x 2 column-major after it, b last.
  auto logit = [&](int id, int k) {
    double z = p[static_cast<size_t>(16 + k)];
    for (int j = 0; j < 2; ++j) z += p[static_cast<size_t>(8 + j * 4 + k)] * p[static_cast<size_t>(id * 2 + j)];
    return z;
  };
  double sum = 0.0;
  int64_t correct = 0;
  const std::vector<std::pair<int, int>> scored = {{1, 2}, {2, 3}, {3, 1}, {3, 1}};  // (input, target)
  for (const auto& [in, target] : scored) {
    double mx = -1e300, lse = 0.0;
    int arg = 0;
    for (int k = 0; k < vocab; ++k) {
      if (logit(in, k) > mx) {
        mx = logit(in, k);
        arg = k;
      }
    }
    for (int k = 0; k < vocab; ++k) lse += std::exp(logit(in, k) - mx);
    sum += std::log(lse) + mx - logit(in, target);
    correct += arg == target;
  }
  CHECK(loss == Approx(sum / 4).epsilon(1e-5));
  const fedsim::EvalSums e = m.Evaluate(p.data(), x.data(), y.data(), 3, *ws);
  CHECK(e.count == 4);
  CHECK(e.correct == correct);
  CHECK(e.loss_sum == Approx(sum).epsilon(1e-5));
  // Token 0 (pad) is an input only in row 2, whose targets are all pad: its embedding gets no gradient.
  CHECK(grad[0] == 0.0f);
  CHECK(grad[1] == 0.0f);
  // A batch of pads only scores nothing: loss 0, gradient 0.
  const std::vector<float> pads = {2, 0, 0, 0};
  CHECK(m.LossAndGradient(p.data(), pads.data(), y.data(), 1, grad.data(), *ws) == 0.0);
  CHECK(std::all_of(grad.begin(), grad.end(), [](float g) { return g == 0.0f; }));
  // A target that is not a class is an error, not a read out of bounds.
  const std::vector<float> bad = {1, 2, 3, 9};
  CHECK_THROWS_WITH(m.LossAndGradient(p.data(), bad.data(), y.data(), 1, grad.data(), *ws),
                    Catch::Matchers::Contains("target 9 at step 2 of a sample is not a class in [0, 4)"));
}

TEST_CASE("layers: next-token gradients match finite differences; sub-batches give the batch's mean",
          "[model][layers][lstm]") {
  SECTION("embedding, lstm over every step, per-step dense") {
    const json spec = {L("embedding", {{"dim", 3}}), L("lstm", {{"units", 4}, {"return_sequences", true}}),
                       L("dense")};
    CheckCoordinates(Make(spec, NextTokens(5, 6), 6), NextTokenProblem(5, 6, {0, 2, 4}, 31), 32);
  }
  SECTION("gru, layernorm") {
    const json spec = {L("embedding", {{"dim", 3}}), L("gru", {{"units", 4}, {"return_sequences", true}}),
                       L("layernorm"), L("dense")};
    CheckCoordinates(Make(spec, NextTokens(4, 5), 5), NextTokenProblem(4, 5, {1, 0, 3}, 33), 34);
  }
  SECTION("the recurrent presets on next-token data") {
    for (const char* kind : {"leaf_shakespeare_lstm", "tff_stackoverflow_lstm"}) {
      INFO(kind);
      const ModelInput in = NextTokens(6, 30);
      const Sequential m(fedsim::PresetLayers(kind, true), in, {}, 30, 1.0, kind);
      CheckDirections(m, NextTokenProblem(6, 30, {0, 3}, 35), 36);
    }
  }
  SECTION("a batch larger than a workspace's sub-batch") {
    // TFF's StackOverflow shape: 10,004 classes x 20 steps of logits per
    // sample, so a 64 MiB workspace holds only a few samples at a time.
    fedsim::ModelConfig cfg;
    cfg.kind = "tff_stackoverflow_lstm";
    const ModelInput in = NextTokens(20, 10004);
    const auto m = fedsim::MakeSequential(cfg, in, 10004);
    const int b = 48;
    std::vector<int> pads(b);
    for (int n = 0; n < b; ++n) pads[static_cast<size_t>(n)] = n % 7 * 3;
    const Problem pr = NextTokenProblem(20, 10004, pads, 37);
    Rng rng(38);
    std::vector<float> p = Params(*m, rng);
    auto big = m->NewWorkspace(b);
    std::vector<float> g(p.size()), g_one(p.size()), acc(p.size(), 0.0f);
    const double loss = m->LossAndGradient(p.data(), pr.x.data(), pr.y.data(), b, g.data(), *big);
    // The same batch one sample at a time, weighted by each sample's targets.
    auto one = m->NewWorkspace(1);
    double sum = 0.0;
    int64_t targets = 0;
    for (int n = 0; n < b; ++n) targets += 20 - pads[static_cast<size_t>(n)];
    for (int n = 0; n < b; ++n) {
      const int k = 20 - pads[static_cast<size_t>(n)];
      const double l = m->LossAndGradient(p.data(), pr.x.data() + static_cast<size_t>(n) * 21, pr.y.data(), 1,
                                          g_one.data(), *one);
      sum += l * k;
      for (size_t i = 0; i < p.size(); ++i) acc[i] += g_one[i] * static_cast<float>(k) / static_cast<float>(targets);
    }
    CHECK(loss == Approx(sum / static_cast<double>(targets)).epsilon(1e-5));
    double worst = 0.0, norm = 0.0;
    for (size_t i = 0; i < p.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(g[i] - acc[i])));
      norm = std::max(norm, static_cast<double>(std::abs(acc[i])));
    }
    INFO("largest difference " << worst << ", largest entry " << norm);
    CHECK(worst <= 1e-5 * norm);
  }
}

TEST_CASE("layers: next-token data needs a model that outputs every step", "[model][layers]") {
  const json flat = {L("embedding", {{"dim", 3}}), L("lstm", {{"units", 4}}), L("dense")};
  CHECK_THROWS_WITH(Make(flat, NextTokens(5, 6), 6),
                    Catch::Matchers::Contains("model.layers[2]: next-token data") &&
                        Catch::Matchers::Contains("a sequence of 5 steps x 6 classes, but it outputs flat [6]"));
  fedsim::ModelConfig cfg;
  cfg.kind = "mlp";
  cfg.hidden = {8};
  CHECK_THROWS_WITH(fedsim::CreateModel(cfg, 6, 6, std::nullopt, {6}, 6, true),
                    Catch::Matchers::Contains("model.kind: mlp predicts one class per sample"));
}

TEST_CASE("layers: the old kinds' architectures as specs have their counts; the CNN's match bit for bit",
          "[model][layers]") {
  const json relu = L("relu");
  auto conv = [](int f, int k, int pad) { return L("conv2d", {{"filters", f}, {"kernel", k}, {"padding", pad}}); };
  const json mcmahan = {conv(32, 5, 2), relu, L("maxpool2d", {{"kernel", 2}}), conv(64, 5, 2), relu,
                        L("maxpool2d", {{"kernel", 2}}), L("dense", {{"units", 512}}), relu, L("dense")};
  const json lenet = {conv(6, 5, 0), relu, L("maxpool2d", {{"kernel", 2}}), conv(16, 5, 0), relu,
                      L("maxpool2d", {{"kernel", 2}}), L("dense", {{"units", 120}}), relu, L("dense", {{"units", 84}}),
                      relu, L("dense")};
  const json mlp = {L("dense", {{"units", 200}}), relu, L("dense", {{"units", 200}}), relu, L("dense")};
  fedsim::ModelConfig c;
  c.kind = "mlp";
  c.hidden = {200, 200};
  CHECK(Make(mlp, Flat(784), 10).num_params() == fedsim::CreateModel(c, 784, 10)->num_params());
  c.kind = "softmax";
  c.hidden.clear();
  CHECK(Make(json::array({L("dense")}), Flat(784), 10).num_params() == fedsim::CreateModel(c, 784, 10)->num_params());
  CHECK(Make(lenet, Image(1, 28, 28), 10).num_params() == 44426);
  CHECK(Make(lenet, Image(3, 32, 32), 10).num_params() == 62006);

  // Same layout, init draws and operations as Cnn: the same parameters, loss
  // and gradient. (Bit for bit given the same memory alignment, as fedsim's
  // own Eigen-allocated vectors have: Eigen's vectorised column sums start
  // at an aligned address, so a differently aligned buffer sums the bias
  // gradients in another order, a difference of about 1e-8.)
  const auto seq = Make(mcmahan, Image(1, 28, 28), 10);
  const auto cnn = fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0);
  REQUIRE(seq.num_params() == 1663370);
  CheckSameBits(seq, *cnn, 7, 5);
}

TEST_CASE("layers: an LSTM step by hand", "[model][layers][lstm]") {
  // Tokens -> embedding (dim 1, E = [0.5, -1]) -> LSTM (H = 2) -> dense 2
  // with W = I, b = 0, so the logits are h_T. Gate rows in Keras' order i,
  // f, c, o, each with its own weights.
  const json spec = {L("embedding", {{"dim", 1}, {"vocab", 2}}), L("lstm", {{"units", 2}}), L("dense")};
  const auto m = Make(spec, Tokens(3, 2), 2);
  REQUIRE(m.num_params() == 2 + (8 * 1 + 8 * 2 + 8) + (4 + 2));
  std::vector<float> p(static_cast<size_t>(m.num_params()));
  p[0] = 0.5f;
  p[1] = -1.0f;
  const double w[8] = {0.3, -0.2, 0.5, 0.1, -0.4, 0.7, 0.2, -0.6};  // kernel rows (4H x 1)
  double u[8][2];                                                  // recurrent (4H x H)
  double bias[8];
  for (int r = 0; r < 8; ++r) {
    p[static_cast<size_t>(2 + r)] = static_cast<float>(w[r]);
    for (int k = 0; k < 2; ++k) {
      u[r][k] = 0.1 * (r + 1) * (k == 0 ? 1.0 : -0.5);
      p[static_cast<size_t>(2 + 8 + k * 8 + r)] = static_cast<float>(u[r][k]);  // column-major
    }
    bias[r] = 0.05 * (r - 3);
    p[static_cast<size_t>(2 + 8 + 16 + r)] = static_cast<float>(bias[r]);
  }
  const int64_t d = 2 + 32;
  p[static_cast<size_t>(d + 0)] = 1.0f;  // dense W (2 x 2) = I
  p[static_cast<size_t>(d + 3)] = 1.0f;
  const std::vector<float> x = {1, 0, 1};  // tokens -> inputs -1, 0.5, -1
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  double h[2] = {0, 0}, c[2] = {0, 0};
  for (float tok : x) {
    const double in = tok == 0 ? 0.5 : -1.0;
    double z[8];
    for (int r = 0; r < 8; ++r) z[r] = w[r] * in + u[r][0] * h[0] + u[r][1] * h[1] + bias[r];
    for (int j = 0; j < 2; ++j) {
      const double i = sig(z[j]), f = sig(z[2 + j]), g = std::tanh(z[4 + j]), o = sig(z[6 + j]);
      c[j] = f * c[j] + i * g;
      h[j] = o * std::tanh(c[j]);
    }
  }
  auto ws = m.NewWorkspace(1);
  const float* logits = m.Logits(p.data(), x.data(), 1, *ws);
  CHECK(logits[0] == Approx(h[0]).margin(1e-6));
  CHECK(logits[1] == Approx(h[1]).margin(1e-6));
  // Init sets the forget gate's biases to 1 (Keras' unit_forget_bias).
  Rng rng(1);
  std::vector<float> q(p.size());
  m.Init(q.data(), rng);
  for (int j = 0; j < 2; ++j) CHECK(q[static_cast<size_t>(2 + 24 + 2 + j)] > 0.29f);
}

TEST_CASE("layers: a GRU step by hand", "[model][layers][gru]") {
  // Tokens -> embedding (dim 1) -> GRU (H = 2) -> dense 2 with W = I: the
  // logits are h_T. Gate rows in the order z, r, n (Keras, reset_after = false).
  const json spec = {L("embedding", {{"dim", 1}, {"vocab", 2}}), L("gru", {{"units", 2}}), L("dense")};
  const auto m = Make(spec, Tokens(3, 2), 2);
  REQUIRE(m.num_params() == 2 + (6 + 12 + 6) + 6);
  std::vector<float> p(static_cast<size_t>(m.num_params()));
  p[0] = 0.5f;
  p[1] = -1.0f;
  double w[6], u[6][2], bias[6];
  for (int r = 0; r < 6; ++r) {
    w[r] = 0.2 * (r % 3) - 0.3 + 0.05 * r;
    p[static_cast<size_t>(2 + r)] = static_cast<float>(w[r]);
    for (int k = 0; k < 2; ++k) {
      u[r][k] = 0.15 * (r + 1) * (k == 0 ? -1.0 : 0.7);
      p[static_cast<size_t>(2 + 6 + k * 6 + r)] = static_cast<float>(u[r][k]);
    }
    bias[r] = 0.1 * (r - 2);
    p[static_cast<size_t>(2 + 18 + r)] = static_cast<float>(bias[r]);
  }
  p[26] = 1.0f;  // dense W = I
  p[29] = 1.0f;
  const std::vector<float> x = {0, 1, 1};
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  double h[2] = {0, 0};
  for (float tok : x) {
    const double in = tok == 0 ? 0.5 : -1.0;
    double z[2], r[2], n[2];
    for (int j = 0; j < 2; ++j) {
      z[j] = sig(w[j] * in + u[j][0] * h[0] + u[j][1] * h[1] + bias[j]);
      r[j] = sig(w[2 + j] * in + u[2 + j][0] * h[0] + u[2 + j][1] * h[1] + bias[2 + j]);
    }
    const double rh[2] = {r[0] * h[0], r[1] * h[1]};
    for (int j = 0; j < 2; ++j) n[j] = std::tanh(w[4 + j] * in + u[4 + j][0] * rh[0] + u[4 + j][1] * rh[1] + bias[4 + j]);
    for (int j = 0; j < 2; ++j) h[j] = z[j] * h[j] + (1 - z[j]) * n[j];
  }
  auto ws = m.NewWorkspace(1);
  const float* logits = m.Logits(p.data(), x.data(), 1, *ws);
  CHECK(logits[0] == Approx(h[0]).margin(1e-6));
  CHECK(logits[1] == Approx(h[1]).margin(1e-6));
}

TEST_CASE("layers: groupnorm and layernorm against their closed forms", "[model][layers]") {
  // groupnorm (2 groups) on a 4 x 2 x 2 image, then flatten: the output
  // (HWC) is the logits.
  const auto gn = Make(json::array({L("groupnorm", {{"groups", 2}, {"epsilon", 1e-3}}), L("flatten")}), Image(4, 2, 2), 16);
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[static_cast<size_t>(i)] = static_cast<float>(std::sin(1.7 * i) * (1 + i % 3));
  std::vector<float> p = {1.5f, -0.5f, 2.0f, 1.0f, 0.1f, 0.2f, -0.3f, 0.4f};  // gamma (4), beta (4)
  auto ws = gn.NewWorkspace(1);
  const float* y = gn.Logits(p.data(), x.data(), 1, *ws);
  for (int g = 0; g < 2; ++g) {
    double mean = 0, var = 0;
    for (int c = 2 * g; c < 2 * g + 2; ++c) {
      for (int s = 0; s < 4; ++s) mean += x[static_cast<size_t>(c * 4 + s)] / 8.0;  // input is CHW
    }
    for (int c = 2 * g; c < 2 * g + 2; ++c) {
      for (int s = 0; s < 4; ++s) var += std::pow(x[static_cast<size_t>(c * 4 + s)] - mean, 2) / 8.0;
    }
    for (int c = 2 * g; c < 2 * g + 2; ++c) {
      for (int s = 0; s < 4; ++s) {
        const double want = p[static_cast<size_t>(c)] * (x[static_cast<size_t>(c * 4 + s)] - mean) / std::sqrt(var + 1e-3) +
                            p[static_cast<size_t>(4 + c)];
        CHECK(y[s * 4 + c] == Approx(want).margin(1e-5));
      }
    }
  }
  // layernorm over 5 features.
  const auto ln = Make(json::array({L("layernorm")}), Flat(5), 5);
  std::vector<float> v = {1.0f, -2.0f, 0.5f, 3.0f, 0.0f};
  std::vector<float> q = {1.0f, 2.0f, 0.5f, -1.0f, 1.0f, 0.0f, 0.1f, 0.0f, -0.2f, 0.3f};
  auto lws = ln.NewWorkspace(1);
  const float* z = ln.Logits(q.data(), v.data(), 1, *lws);
  const double mean = (1.0 - 2.0 + 0.5 + 3.0 + 0.0) / 5.0;
  double var = 0;
  for (float e : v) var += (e - mean) * (e - mean) / 5.0;
  for (int j = 0; j < 5; ++j) {
    CHECK(z[j] == Approx(q[static_cast<size_t>(j)] * (v[static_cast<size_t>(j)] - mean) / std::sqrt(var + 1e-5) +
                         q[static_cast<size_t>(5 + j)])
                      .margin(1e-5));
  }
}

TEST_CASE("layers: dropout masks follow the seed and the sample, not the batch split", "[model][layers][dropout]") {
  const json spec = {L("dense", {{"units", 16}}), L("relu"), L("dropout", {{"rate", 0.3}}), L("dense")};
  const auto m = Make(spec, Flat(5), 3);
  const Problem pr = MakeProblem(Flat(5), 6, 3, 30);
  Rng rng(31);
  std::vector<float> p = Params(m, rng);
  auto ws = m.NewWorkspace(6);
  std::vector<float> g1(p.size()), g2(p.size());
  ws->noise = {7, 0};
  const double a = m.LossAndGradient(p.data(), pr.x.data(), pr.y.data(), 6, g1.data(), *ws);
  ws->noise = {7, 0};
  const double b = m.LossAndGradient(p.data(), pr.x.data(), pr.y.data(), 6, g2.data(), *ws);
  CHECK(a == b);
  CHECK(std::equal(g1.begin(), g1.end(), g2.begin()));
  ws->noise = {8, 0};
  CHECK(m.LossAndGradient(p.data(), pr.x.data(), pr.y.data(), 6, g2.data(), *ws) != a);
  // The batch in two calls with first_sample 0 and 3 draws the same masks.
  ws->noise = {7, 0};
  const double h1 = m.LossAndGradient(p.data(), pr.x.data(), pr.y.data(), 3, g2.data(), *ws);
  ws->noise = {7, 3};
  const double h2 = m.LossAndGradient(p.data(), pr.x.data() + 15, pr.y.data() + 3, 3, g2.data(), *ws);
  CHECK((h1 + h2) / 2 == Approx(a).epsilon(1e-6));
  // Evaluation never drops: it equals the training loss at rate 0.
  const auto keep = Make({L("dense", {{"units", 16}}), L("relu"), L("dropout", {{"rate", 0.0}}), L("dense")}, Flat(5), 3);
  const double train = keep.LossAndGradient(p.data(), pr.x.data(), pr.y.data(), 6, g2.data(), *ws);
  CHECK(m.Evaluate(p.data(), pr.x.data(), pr.y.data(), 6, *ws).loss_sum / 6 == Approx(train).epsilon(1e-6));
}

TEST_CASE("layers: a sequential CNN with dropout trains identically on 1 and 2 threads", "[model][layers][dropout]") {
  const json spec = {L("conv2d", {{"filters", 4}, {"kernel", 5}}), L("relu"), L("maxpool2d", {{"kernel", 2}}),
                     L("dropout", {{"rate", 0.25}}), L("dense", {{"units", 32}}), L("relu"), L("dense")};
  json j = {{"experiment", {{"rounds", 2}}},
            {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                      {"num_clients", 4}, {"max_train_samples", 200}, {"max_test_samples", 100},
                      {"partition", {{"kind", "iid"}}}}},
            {"model", {{"kind", "sequential"}, {"layers", spec}}},
            {"algorithm", {{"clients_per_round", 3}, {"batch_size", 10}, {"lr", 0.05}}}};
  const fedsim::Config cfg = fedsim::ParseConfig(j, "test");
  fedsim::RunOptions o1, o2;
  o1.threads = 1;
  o2.threads = 2;
  const json a = fedsim::RunExperiment(cfg, o1), b = fedsim::RunExperiment(cfg, o2);
  CHECK(a["summary"]["status"] == "completed");
  CHECK(a["model"]["kind"] == "sequential");
  CHECK(std::isfinite(a["summary"]["final_test_loss"].get<double>()));
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
}

TEST_CASE("layers: batchnorm's gradient matches finite differences (training mode, batch statistics)",
          "[model][layers][batchnorm]") {
  SECTION("an image's channels over the batch and positions") {
    const json spec = {L("conv2d", {{"filters", 3}, {"kernel", 3}}), L("batchnorm"), L("tanh"), L("global_avgpool"),
                       L("dense")};
    CheckCoordinates(Make(spec, Image(2, 5, 5), 3), MakeProblem(Image(2, 5, 5), 4, 3, 41), 42);
  }
  SECTION("flat features over the batch, inside a residual block") {
    const json block = {{"type", "residual"},
                        {"layers", {L("dense", {{"units", 6}}), L("batchnorm", {{"momentum", 0.3}}), L("tanh")}}};
    const json spec = {L("dense", {{"units", 6}}), L("batchnorm"), L("tanh"), block, L("dense")};
    CheckCoordinates(Make(spec, Flat(5), 3), MakeProblem(Flat(5), 6, 3, 43), 44);
  }
}

TEST_CASE("layers: batchnorm by hand: batch statistics in training, running statistics in evaluation and their "
          "update", "[model][layers][batchnorm]") {
  // batchnorm on 2 flat features, then a dense layer with W = I, b = 0: the logits are the normalised features.
  const json spec = {L("batchnorm", {{"momentum", 0.25}, {"epsilon", 0.01}}), L("dense", {{"units", 2}})};
  const auto m = Make(spec, Flat(2), 2);
  REQUIRE(m.num_params() == 4 * 2 + 2 * 2 + 2);
  REQUIRE(m.HasState());
  const auto r = m.ParamRanges();
  REQUIRE(r.size() == 6);
  CHECK(r[2].name == "layers.0.running_mean");
  CHECK(r[3].name == "layers.0.running_var");
  Rng rng(1);
  std::vector<float> p(static_cast<size_t>(m.num_params()));
  m.Init(p.data(), rng);
  CHECK(std::vector<float>(p.begin(), p.begin() + 8) == std::vector<float>{1, 1, 0, 0, 0, 0, 1, 1});
  p[0] = 2.0f;   // gamma
  p[3] = -1.0f;  // beta of feature 1
  p[4] = 0.5f;   // running mean of feature 0
  p[6] = 4.0f;   // running variance of feature 0
  for (int i = 8; i < 12; ++i) p[static_cast<size_t>(i)] = (i == 8 || i == 11) ? 1.0f : 0.0f;  // W = I
  p[12] = p[13] = 0.0f;
  // Three samples: feature 0 = 1, 2, 6 (mean 3, biased variance 14/3), feature 1 = 0, 0, 3 (mean 1, variance 2).
  const std::vector<float> x = {1, 0, 2, 0, 6, 3};
  const std::vector<int> y = {0, 1, 1};
  auto ws = m.NewWorkspace(3);
  // Evaluation: the running statistics. Sample 0, feature 0: 2 (1 - 0.5) / sqrt(4 + 0.01).
  const float* z = m.Logits(p.data(), x.data(), 3, *ws);
  CHECK(z[0] == Approx(2.0 * 0.5 / std::sqrt(4.01)).epsilon(1e-6));
  CHECK(z[1] == Approx(0.0 / std::sqrt(1.01) - 1.0).margin(1e-6));
  CHECK(z[4] == Approx(2.0 * 5.5 / std::sqrt(4.01)).epsilon(1e-6));
  // Training: the batch's statistics, in the loss.
  std::vector<float> grad(p.size());
  const double loss = m.LossAndGradient(p.data(), x.data(), y.data(), 3, grad.data(), *ws);
  double want = 0.0;
  const double f0[3] = {1, 2, 6}, f1[3] = {0, 0, 3};
  for (int n = 0; n < 3; ++n) {
    const double a = 2.0 * (f0[n] - 3.0) / std::sqrt(14.0 / 3.0 + 0.01);
    const double b = (f1[n] - 1.0) / std::sqrt(2.0 + 0.01) - 1.0;
    const double zy = y[static_cast<size_t>(n)] == 0 ? a : b;
    want += std::log(std::exp(a) + std::exp(b)) - zy;
  }
  CHECK(loss == Approx(want / 3).epsilon(1e-5));
  for (int i = 4; i < 8; ++i) CHECK(grad[static_cast<size_t>(i)] == 0.0f);  // the state has no gradient
  // The update: r <- 0.75 r + 0.25 x the batch's statistic (the variance unbiased: x 3/2), from the values the
  // forward pass read, whatever the parameters hold now.
  std::vector<float> q = p;
  q[4] = q[5] = q[6] = q[7] = 123.0f;
  m.UpdateState(q.data(), *ws);
  CHECK(q[4] == Approx(0.75 * 0.5 + 0.25 * 3.0).epsilon(1e-6));
  CHECK(q[5] == Approx(0.25 * 1.0).epsilon(1e-6));
  CHECK(q[6] == Approx(0.75 * 4.0 + 0.25 * 7.0).epsilon(1e-6));
  CHECK(q[7] == Approx(0.75 * 1.0 + 0.25 * 3.0).epsilon(1e-6));
  // A batch of one flat sample has no variance: the statistics stay as they
  // were (before, the running variance moved towards 0).
  auto one = m.NewWorkspace(1);
  m.LossAndGradient(p.data(), x.data(), y.data(), 1, grad.data(), *one);
  q = p;
  q[4] = q[5] = q[6] = q[7] = 123.0f;
  m.UpdateState(q.data(), *one);
  CHECK(std::vector<float>(q.begin() + 4, q.begin() + 8) == std::vector<float>(p.begin() + 4, p.begin() + 8));
  // A negative running variance (server noise) counts as 0 in evaluation.
  p[6] = -3.0f;
  z = m.Logits(p.data(), x.data(), 3, *ws);
  CHECK(z[0] == Approx(2.0 * 0.5 / std::sqrt(0.01)).epsilon(1e-5));
}

TEST_CASE("layers: batchnorm in FedAvg: identical on 1 and 2 threads, its statistics reach the global model; "
          "what cannot move them is refused", "[model][layers][batchnorm]") {
  auto config = [](double momentum, const std::string& algo, int batch) {
    const json spec = {L("conv2d", {{"filters", 4}, {"kernel", 5}}), L("batchnorm", {{"momentum", momentum}}),
                       L("relu"), L("maxpool2d", {{"kernel", 2}}), L("dense", {{"units", 16}}), L("batchnorm"),
                       L("relu"), L("dense")};
    json j = {{"experiment", {{"rounds", 2}}},
              {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                        {"num_clients", 4}, {"max_train_samples", 200}, {"max_test_samples", 100},
                        {"partition", {{"kind", "iid"}}}}},
              {"model", {{"kind", "sequential"}, {"layers", spec}}},
              {"algorithm", {{"name", algo}, {"clients_per_round", 3}, {"batch_size", batch}, {"lr", 0.05}}}};
    return fedsim::ParseConfig(j, "test");
  };
  fedsim::RunOptions o1, o2;
  o1.threads = 1;
  o2.threads = 2;
  const json a = fedsim::RunExperiment(config(0.1, "fedavg", 10), o1);
  const json b = fedsim::RunExperiment(config(0.1, "fedavg", 10), o2);
  CHECK(a["summary"]["status"] == "completed");
  CHECK(std::isfinite(a["summary"]["final_test_loss"].get<double>()));
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  // With momentum 0 the first layer's running statistics never move: the evaluation differs.
  const json frozen = fedsim::RunExperiment(config(0.0, "fedavg", 10), o1);
  CHECK(frozen["summary"]["final_test_loss"] != a["summary"]["final_test_loss"]);
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(fedsim::RunExperiment(config(0.1, "feddyn", 10), o1),
                    Contains("algorithm.name: model.kind=sequential has batchnorm layers"));
  // FedAdam steps the weights and averages the running statistics: it runs,
  // identically on 1 and 2 threads, and its statistics are the mean of the
  // clients' (a server step would otherwise move them by eta m / (sqrt(v) + tau)).
  const json adam1 = fedsim::RunExperiment(config(0.1, "fedadam", 10), o1);
  const json adam2 = fedsim::RunExperiment(config(0.1, "fedadam", 10), o2);
  CHECK(adam1["summary"]["status"] == "completed");
  CHECK(std::isfinite(adam1["summary"]["final_test_loss"].get<double>()));
  CHECK(fedsim::StripNondeterministic(adam1).dump() == fedsim::StripNondeterministic(adam2).dump());
  CHECK_THROWS_WITH(fedsim::RunExperiment(config(0.1, "fedavg", 0), o1),
                    Contains("algorithm.batch_size: 0 with batchnorm layers"));
}

TEST_CASE("layers: fedbn keeps the batchnorm layers marked local on each client; the mark is refused elsewhere",
          "[model][layers][batchnorm][fedbn]") {
  auto config = [](const std::string& algo, bool mark) {
    const json bn = mark ? L("batchnorm", {{"local", true}}) : L("batchnorm");
    const json spec = {L("conv2d", {{"filters", 4}, {"kernel", 5}}), bn, L("relu"), L("maxpool2d", {{"kernel", 2}}),
                       L("dense", {{"units", 16}}), bn, L("relu"), L("dense")};
    json j = {{"experiment", {{"rounds", 3}}},
              {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                        {"num_clients", 4}, {"max_train_samples", 200}, {"max_test_samples", 100},
                        {"client_test_fraction", 0.25}, {"partition", {{"kind", "iid"}}}}},
              {"model", {{"kind", "sequential"}, {"layers", spec}}},
              {"metrics", {{"client_eval", "all"}}},
              {"algorithm", {{"name", algo}, {"clients_per_round", 3}, {"batch_size", 10}, {"lr", 0.05}}}};
    return fedsim::ParseConfig(j, "test");
  };
  // The two batchnorm layers' ranges are marked local, the others not.
  const auto cfg = config("fedbn", true);
  const auto model = fedsim::CreateModel(cfg.model, 784, 10, std::nullopt, {1, 28, 28});
  int64_t local = 0;
  for (const auto& r : model->ParamRanges()) {
    INFO(r.name);
    CHECK(r.local == (r.name.rfind("layers.1.", 0) == 0 || r.name.rfind("layers.5.", 0) == 0));
    if (r.local) local += r.size;
  }
  CHECK(local == 4 * 4 + 4 * 16);  // gamma, beta, running mean and variance per channel
  fedsim::RunOptions o1, o2;
  o1.threads = 1;
  o2.threads = 2;
  const json a = fedsim::RunExperiment(cfg, o1);
  const json b = fedsim::RunExperiment(cfg, o2);
  CHECK(a["summary"]["status"] == "completed");
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  // Only the shared part travels.
  CHECK(a["rounds"][0]["round_bytes_up"].get<int64_t>() == 3 * (model->num_params() - local) * 4);
  const json avg = fedsim::RunExperiment(config("fedavg", false), o1);
  CHECK(avg["rounds"][0]["round_bytes_up"].get<int64_t>() == 3 * model->num_params() * 4);
  CHECK(a["summary"]["final_client_accuracy"] != avg["summary"]["final_client_accuracy"]);
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(fedsim::RunExperiment(config("fedavg", true), o1),
                    Contains("is marked \"local\": true, which only algorithm.name=fedbn keeps"));
  CHECK_THROWS_WITH(fedsim::RunExperiment(config("fedbn", false), o1), Contains("marks none"));
  json relu = {{"type", "relu"}, {"local", true}};
  CHECK_THROWS_WITH(Make(json::array({L("dense", {{"units", 4}}), relu, L("dense")}), Flat(8), 3),
                    Contains("model.layers[1].local: a relu layer has no parameters to keep local"));
}

TEST_CASE("layers: parameter ranges are named and tile the vector", "[model][layers]") {
  const auto m = Sequential(fedsim::PresetLayers("resnet20_gn"), Image(3, 32, 32), {}, 10, 1.0, "resnet20_gn");
  const auto r = m.ParamRanges();
  int64_t at = 0;
  for (const auto& e : r) {
    CHECK(e.offset == at);
    at += e.size;
  }
  CHECK(at == m.num_params());
  CHECK(r.front().name == "layers.0.weight");
  CHECK(r[1].name == "layers.1.gamma");
  bool projection = false;
  for (const auto& e : r) projection = projection || e.name == "layers.9.projection.weight";
  CHECK(projection);
  const auto lstm = Sequential(fedsim::PresetLayers("leaf_shakespeare_lstm"), Tokens(80, 80), {}, 80, 1.0, "x");
  CHECK(lstm.ParamRanges()[1].name == "layers.1.kernel");
  CHECK(lstm.ParamRanges()[2].name == "layers.1.recurrent");
}

TEST_CASE("layers: spec errors name the entry and the field", "[model][layers]") {
  auto error = [](const json& spec, const ModelInput& in, int classes = 3) {
    try {
      Make(spec, in, classes);
    } catch (const fedsim::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error({L("dense", {{"units", 4}}), L("conv2d", {{"filters", 2}, {"kernel", 3}}), L("dense")}, Image(1, 8, 8)),
             Catch::StartsWith("model.layers[1].type: conv2d needs an image, but layers[0] (dense) outputs flat"));
  CHECK_THAT(error({L("conv2d", {{"filters", 2}, {"kernel", 3}}), L("dense")}, Flat(60)),
             Catch::StartsWith("model.layers[0].type: conv2d needs an image, but the data gives flat [60]") &&
                 Catch::Contains("model.input_shape"));
  CHECK_THAT(error({L("conv2d", {{"filters", 2}, {"kernel", 3}}), L("maxpool2d", {{"kernel", 9}}), L("dense")},
                   Image(1, 8, 8)),
             Catch::StartsWith("model.layers[1].kernel: a 9x9 window does not fit the 6x6 input"));
  CHECK_THAT(error({L("dense", {{"unit", 4}}), L("dense")}, Flat(5)),
             Catch::StartsWith("model.layers[0].unit: unknown field of a dense layer (did you mean 'units'?)"));
  CHECK_THAT(error({L("convolution"), L("dense")}, Flat(5)),
             Catch::StartsWith("model.layers[0].type: unknown layer type 'convolution'"));
  CHECK_THAT(error({L("dense", {{"units", 0}}), L("dense")}, Flat(5)),
             Catch::StartsWith("model.layers[0].units: expected an integer in [1,"));
  CHECK_THAT(error({L("conv2d", {{"kernel", 3}}), L("dense")}, Image(1, 8, 8)),
             Catch::StartsWith("model.layers[0].filters: required"));
  CHECK_THAT(error(json::array({L("dense", {{"units", 4}})}), Flat(5)),
             Catch::StartsWith("model.layers[0]: the last layer must output one value per class (3 classes"));
  CHECK_THAT(error({{{"type", "residual"}, {"layers", {L("conv2d", {{"filters", 4}, {"kernel", 3}, {"padding", 1}})}}},
                    L("dense")},
                   Image(2, 6, 6)),
             Catch::StartsWith("model.layers[0].projection: the block maps image [2, 6, 6] onto image [4, 6, 6]"));
  // A 2x2 max-pool of stride 2 maps 7x7 onto 3x3; a stride-2 shortcut gives
  // 4x4. (Before, a stride-3 shortcut was chosen because it gives 3x3, off
  // the positions the block's outputs are centred on.)
  CHECK_THAT(error({{{"type", "residual"}, {"projection", true}, {"layers", {L("maxpool2d", {{"kernel", 2}})}}},
                    L("dense")},
                   Image(2, 7, 7)),
             Catch::StartsWith("model.layers[0].projection: the block's layers stride by 2 in all, but map 7x7 "
                               "onto 3x3, where a stride-2 1x1 projection gives 4x4"));
  CHECK_THAT(error({{{"type", "residual"}, {"layers", {L("conv2d", {{"filters", 2}, {"kernel", 3}, {"pading", 1}})}}},
                    L("dense")},
                   Image(2, 6, 6)),
             Catch::StartsWith("model.layers[0].layers[0].pading: unknown field of a conv2d layer (did you mean "
                               "'padding'?)"));
  CHECK_THAT(error({L("embedding", {{"dim", 4}}), L("last_step"), L("dense")}, Image(1, 4, 4)),
             Catch::StartsWith("model.layers[0].type: embedding needs token data (a data.dataset with a vocabulary"));
  CHECK_THAT(error({L("dense", {{"units", 4}}), L("dense")}, Tokens(5, 10)),
             Catch::Contains("token ids are read only by an embedding first"));
  CHECK_THAT(error({L("lstm", {{"units", 4}}), L("dense")}, Flat(5)),
             Catch::StartsWith("model.layers[0].type: lstm needs a sequence"));
  CHECK_THAT(error({L("conv2d", {{"filters", 2}, {"kernel", 4}, {"padding", "same"}}), L("dense")}, Image(1, 8, 8)),
             Catch::StartsWith("model.layers[0].padding: \"same\" is supported for stride 1 and odd kernels"));
  CHECK_THAT(error({L("dropout", {{"rate", 1.0}}), L("dense")}, Flat(5)),
             Catch::StartsWith("model.layers[0].rate: expected a number in [0, 1)"));
  // A preset that does not fit the data names the preset and the data.
  fedsim::ModelConfig cfg;
  cfg.kind = "leaf_shakespeare_lstm";
  try {
    fedsim::CreateModel(cfg, 60, 10);
    FAIL("no error");
  } catch (const fedsim::InputError& e) {
    CHECK_THAT(std::string(e.what()), Catch::StartsWith("model.kind=leaf_shakespeare_lstm: layers[0].type: embedding "
                                                        "needs token data") &&
                                          Catch::Contains("data.dataset"));
  }
  cfg.kind = "resnet20_gn";
  CHECK_THROWS_WITH(fedsim::CreateModel(cfg, 60, 10), Catch::Contains("conv2d needs an image") &&
                                                          Catch::Contains("model.input_shape"));
  // FedPara factorises every conv2d and dense layer of a preset; a grouped convolution is refused.
  CHECK(fedsim::CreateModel(cfg, 3072, 10, 0.1, {3, 32, 32})->num_params() <
        fedsim::CreateModel(cfg, 3072, 10, std::nullopt, {3, 32, 32})->num_params());
  cfg.kind = "sequential";
  cfg.layers = json::array({L("conv2d", {{"filters", 4}, {"kernel", 3}, {"groups", 2}}), L("dense")});
  CHECK_THROWS_WITH(fedsim::CreateModel(cfg, 4 * 8 * 8, 10, 0.1, {4, 8, 8}),
                    Catch::StartsWith("model.layers[0].groups: algorithm.name=fedpara factorises convolutions with "
                                      "one group only"));
  // A token id outside the vocabulary is refused, naming the layer.
  const auto m = Make({L("embedding", {{"dim", 2}}), L("last_step"), L("dense")}, Tokens(2, 4), 3);
  std::vector<float> p(static_cast<size_t>(m.num_params())), x = {1, 4};
  auto ws = m.NewWorkspace(1);
  CHECK_THROWS_WITH(m.Logits(p.data(), x.data(), 1, *ws), Catch::StartsWith("model.layers[0]: token 4"));
}

TEST_CASE("layers: model.layers in the config", "[model][layers][config]") {
  json j = {{"model", {{"kind", "sequential"}, {"layers", {L("dense", {{"units", 4}}), L("relu"), L("dense")}}}}};
  const fedsim::Config c = fedsim::ParseConfig(j, "x");
  CHECK(c.model.layers.size() == 3);
  CHECK(fedsim::ToJson(c)["model"]["layers"] == j["model"]["layers"]);
  CHECK(fedsim::CreateModel(c.model, 60, 10)->num_params() == 60 * 4 + 4 + 4 * 10 + 10);
  json bad = {{"model", {{"kind", "sequential"}, {"layers", {{"type", "dense"}}}}}};
  bad["model"]["layers"] = "dense";
  CHECK_THROWS_WITH(fedsim::ParseConfig(bad, "x"), Catch::Contains("model.layers: expected an array of objects"));
  CHECK_THROWS_WITH(fedsim::ParseConfig(json{{"model", {{"kind", "sequential"}}}}, "x"),
                    Catch::Contains("model.layers: model.kind=sequential needs a list of layers"));
  CHECK_THROWS_WITH(fedsim::ParseConfig(json{{"model", {{"layers", {L("dense")}}}}}, "x"),
                    Catch::Contains("model.layers: only read with model.kind=sequential"));
}
