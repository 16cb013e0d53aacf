#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "model/model.h"
#include "model/sequential.h"

using fedsim::Rng;

TEST_CASE("mlp: parameter counts of the McMahan et al. models", "[model]") {
  fedsim::ModelConfig cfg;
  cfg.kind = "mlp";
  cfg.hidden = {200, 200};
  CHECK(fedsim::CreateModel(cfg, 784, 10)->num_params() == 199210);  // the 2NN
  cfg.hidden = {200};
  CHECK(fedsim::CreateModel(cfg, 784, 10)->num_params() == 159010);
  cfg.kind = "softmax";
  cfg.hidden = {};
  CHECK(fedsim::CreateModel(cfg, 784, 10)->num_params() == 7850);
}

TEST_CASE("softmax: loss and gradient at zero parameters in closed form", "[model]") {
  // With W = 0, b = 0 every class has probability 1/C: loss = log C, and
  // dL/db_c = mean_i (1/C - [y_i == c]), dL/dW_jc = mean_i x_ij (1/C - [y_i == c]).
  const auto mp = fedsim::MakeDenseStack({2, 3}, 1.0, "softmax");
  const auto& m = *mp;
  std::vector<float> params(m.num_params(), 0.0f), grad(m.num_params());
  const float x[] = {1.0f, 2.0f, -1.0f, 0.5f};
  const int y[] = {0, 2};
  auto ws = m.NewWorkspace(2);
  const double loss = m.LossAndGradient(params.data(), x, y, 2, grad.data(), *ws);
  CHECK(loss == Approx(std::log(3.0)));
  // W is 2x3 column-major: W(j, c) at j + 2c; b at 6 + c.
  const double third = 1.0 / 3.0;
  CHECK(grad[6 + 0] == Approx(((third - 1) + third) / 2));
  CHECK(grad[6 + 1] == Approx(third));
  CHECK(grad[6 + 2] == Approx((third + (third - 1)) / 2));
  CHECK(grad[0 + 2 * 0] == Approx((1.0 * (third - 1) + -1.0 * third) / 2));
  CHECK(grad[1 + 2 * 2] == Approx((2.0 * third + 0.5 * (third - 1)) / 2));
}

TEST_CASE("mlp: analytic gradient matches central finite differences", "[model]") {
  const auto mp = fedsim::MakeDenseStack({5, 7, 4, 3}, 1.0, "mlp");
  const auto& m = *mp;
  Rng rng(11);
  std::vector<float> params(m.num_params()), grad(m.num_params());
  m.Init(params.data(), rng);
  const int b = 6;
  std::vector<float> x(b * 5);
  for (auto& v : x) v = static_cast<float>(rng.Normal());
  const int y[] = {0, 1, 2, 2, 1, 0};
  auto ws = m.NewWorkspace(b);
  m.LossAndGradient(params.data(), x.data(), y, b, grad.data(), *ws);
  std::vector<float> dummy(m.num_params());
  const float eps = 1e-3f;
  int checked = 0;
  for (int64_t i = 0; i < m.num_params(); ++i) {
    const float saved = params[i];
    params[i] = saved + eps;
    const double lp = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
    params[i] = saved - eps;
    const double lm = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
    params[i] = saved;
    const double fd = (lp - lm) / (2.0 * eps);
    INFO("parameter " << i);
    CHECK(grad[i] == Approx(fd).margin(2e-3).epsilon(2e-2));
    ++checked;
  }
  CHECK(checked == 5 * 7 + 7 + 7 * 4 + 4 + 4 * 3 + 3);
}

TEST_CASE("mlp: evaluation agrees with the training loss", "[model]") {
  const auto mp = fedsim::MakeDenseStack({4, 8, 3}, 1.0, "mlp");
  const auto& m = *mp;
  Rng rng(5);
  fedsim::Dataset d;
  d.x.resize(10, 4);
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 4; ++j) d.x(i, j) = static_cast<float>(rng.Normal());
  d.y = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
  d.num_classes = 3;
  std::vector<float> params(m.num_params()), grad(m.num_params());
  m.Init(params.data(), rng);
  auto ws = m.NewWorkspace(10);
  const double loss = m.LossAndGradient(params.data(), d.x.data(), d.y.data(), 10, grad.data(), *ws);
  const fedsim::EvalSums e = m.Evaluate(params.data(), d.x.data(), d.y.data(), 10, *ws);
  CHECK(e.count == 10);
  CHECK(e.loss_sum / 10 == Approx(loss).epsilon(1e-5));
  CHECK(e.correct >= 0);
  CHECK(e.correct <= 10);
}

TEST_CASE("mlp: the presets run on the layer engine's rows layout", "[model]") {
  // W (in x out, column-major) then b per layer, named layers.0, layers.1;
  // drawn uniform(+-1/sqrt(in)) in that order; logits one row per sample.
  const auto m = fedsim::MakeDenseStack({3, 4, 2}, 1.0, "mlp");
  CHECK(m->kind() == "mlp");
  CHECK(m->Describe() == "mlp 3-4-2 (26 parameters)");
  const auto r = m->ParamRanges();
  REQUIRE(r.size() == 4);
  CHECK(r[0].name == "layers.0.weight");
  CHECK(r[0].size == 12);
  CHECK(r[2].name == "layers.1.weight");
  CHECK(r[2].offset == 16);
  std::vector<float> p(static_cast<size_t>(m->num_params()));
  Rng rng(9), same(9);
  m->Init(p.data(), rng);
  for (size_t i = 0; i < 16; ++i) CHECK(p[i] == static_cast<float>(same.Uniform(-1 / std::sqrt(3.0), 1 / std::sqrt(3.0))));
  // Logits by hand: h = relu(x W0 + b0), z = h W1 + b1, for two samples.
  const float x[] = {1.0f, -2.0f, 0.5f, 0.0f, 3.0f, -1.0f};
  auto ws = m->NewWorkspace(2);
  const float* z = m->Logits(p.data(), x, 2, *ws);
  for (int n = 0; n < 2; ++n) {
    for (int c = 0; c < 2; ++c) {
      double zc = p[static_cast<size_t>(24 + c)];
      for (int j = 0; j < 4; ++j) {
        double h = p[static_cast<size_t>(12 + j)];
        for (int i = 0; i < 3; ++i) h += x[n * 3 + i] * p[static_cast<size_t>(i + 3 * j)];
        zc += std::max(h, 0.0) * p[static_cast<size_t>(16 + j + 4 * c)];
      }
      CHECK(z[n + 2 * c] == Approx(zc).epsilon(1e-5));  // b x classes, column-major
    }
  }
  // The rows layout has dense and relu layers only.
  const nlohmann::json conv = {{{"type", "conv2d"}, {"filters", 2}, {"kernel", 1}}, {{"type", "dense"}}};
  CHECK_THROWS_WITH(fedsim::Sequential(conv, {4, {1, 2, 2}, 0, false, 0}, {}, 2, 1.0, "mlp", "model.layers", -1.0,
                                       fedsim::Sequential::Layout::kRows),
                    Catch::Contains("model.layers[0].type") && Catch::Contains("dense and relu layers only"));
  const nlohmann::json relu_first = {{{"type", "relu"}}, {{"type", "dense"}}};
  CHECK_THROWS_WITH(fedsim::Sequential(relu_first, {4, {}, 0, false, 0}, {}, 2, 1.0, "mlp", "model.layers", -1.0,
                                       fedsim::Sequential::Layout::kRows),
                    Catch::Contains("model.layers[0].type") && Catch::Contains("a dense first"));
}

TEST_CASE("mlp: the rows layout reads image data as flat rows, in the data's order", "[model]") {
  // An image-shaped input (3 channels) must not be reordered to HWC: the
  // logits equal those of the same model built on flat 12-feature rows.
  const fedsim::Sequential img(fedsim::DenseStackLayers({2}), {12, {3, 2, 2}, 0, false, 0}, {}, 2, 1.0, "softmax",
                               "model.layers", -1.0, fedsim::Sequential::Layout::kRows);
  const auto flat = fedsim::MakeDenseStack({12, 2}, 1.0, "softmax");
  std::vector<float> p(static_cast<size_t>(flat->num_params()));
  Rng rng(4);
  flat->Init(p.data(), rng);
  std::vector<float> x(24);
  for (auto& v : x) v = static_cast<float>(rng.Normal());
  auto wi = img.NewWorkspace(2), wf = flat->NewWorkspace(2);
  const float* zi = img.Logits(p.data(), x.data(), 2, *wi);
  const float* zf = flat->Logits(p.data(), x.data(), 2, *wf);
  for (int k = 0; k < 4; ++k) CHECK(zi[k] == zf[k]);
}
