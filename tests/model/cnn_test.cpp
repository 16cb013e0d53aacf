#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/cnn.h"
#include "model/conv_ops.h"
#include "model/fedpara.h"

using fedsim::Cnn;
using fedsim::CnnLayer;
using fedsim::Rng;

namespace {

std::vector<float> RandomVector(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (auto& e : v) e = static_cast<float>(rng.Normal());
  return v;
}

// The small network of the gradient check: 2 x 10 x 10 input, conv 3x3x2
// pad 1 -> ReLU -> max-pool 2 -> conv 3x3x3 stride 2 pad 1 -> ReLU ->
// overlapping max-pool 2 stride 1 -> dense 5 -> ReLU -> dense 3.
Cnn SmallCnn(int conv_chunk = 0) {
  using L = CnnLayer;
  return Cnn(2, 10, 10,
             {L::Conv(2, 3, 1, 1), L::Relu(), L::MaxPool(2, 2), L::Conv(3, 3, 2, 1), L::Relu(), L::MaxPool(2, 1),
              L::Dense(5), L::Relu(), L::Dense(3)},
             1.0, "cnn_small", conv_chunk);
}

// Where the network is not smooth: the sign of every ReLU output and the
// argmax of every max-pool window. The loss is a smooth function of the
// parameters on a set where this pattern is constant.
std::vector<int32_t> KinkPattern(const Cnn& m, const float* params, const float* x, int b,
                                 fedsim::Workspace& ws) {
  std::vector<int32_t> pattern;
  fedsim::WindowGeometry shape;  // input shape of the current layer
  shape.channels = 2;
  shape.height = shape.width = 10;
  for (size_t l = 0; l < m.layers().size(); ++l) {
    const CnnLayer& layer = m.layers()[l];
    const int size = static_cast<int>(shape.in_size());
    if (layer.type == CnnLayer::Type::kRelu) {
      const float* a = m.Activations(params, x, b, static_cast<int>(l), ws);
      for (int i = 0; i < b * size; ++i) pattern.push_back(a[i] > 0.0f);
      continue;
    }
    fedsim::WindowGeometry g = shape;
    g.kernel = layer.kernel;
    g.stride = layer.stride;
    g.padding = layer.padding;
    if (layer.type == CnnLayer::Type::kMaxPool) {
      const float* a = m.Activations(params, x, b, static_cast<int>(l) - 1, ws);
      std::vector<float> in(a, a + b * size), out(static_cast<size_t>(b * g.col_cols() * g.channels));
      std::vector<int32_t> argmax(out.size());
      fedsim::MaxPoolForward(g, in.data(), b, out.data(), argmax.data());
      pattern.insert(pattern.end(), argmax.begin(), argmax.end());
    }
    if (layer.type == CnnLayer::Type::kDense) {
      shape.channels = layer.out;
      shape.height = shape.width = 1;
    } else {
      shape.channels = layer.type == CnnLayer::Type::kConv ? layer.out : shape.channels;
      shape.height = g.out_height();
      shape.width = g.out_width();
    }
  }
  return pattern;
}

}  // namespace

TEST_CASE("cnn: parameter counts of the McMahan and NIID-Bench CNNs", "[model][cnn]") {
  // conv 5x5x32: 25*32 + 32 = 832; conv 5x5x64: 800*64 + 64 = 51,264;
  // dense 7*7*64 -> 512: 3136*512 + 512 = 1,606,144; dense 512 -> 10: 5,130.
  auto mcmahan = fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0);
  CHECK(mcmahan->num_params() == 1663370);
  CHECK(mcmahan->kind() == "cnn_mcmahan");
  // 28 -conv5-> 24 -pool-> 12 -conv5-> 8 -pool-> 4, so the flattened features
  // are 16*4*4 = 256 (NIID-Bench's SimpleCNNMNIST input_dim).
  // conv 5x5x6: 25*6 + 6 = 156; conv 5x5x16: 150*16 + 16 = 2,416;
  // dense 256 -> 120: 30,840; dense 120 -> 84: 10,164; dense 84 -> 10: 850.
  auto lenet = fedsim::MakeCnnLeNet(1, 28, 28, 10, 1.0);
  CHECK(lenet->num_params() == 44426);
  CHECK(lenet->kind() == "cnn_lenet");
  // On 3 x 32 x 32 (NIID-Bench's SimpleCNN for CIFAR-10): 456 + 2,416 +
  // (400*120 + 120) + 10,164 + 850 = 62,006.
  CHECK(fedsim::MakeCnnLeNet(3, 32, 32, 10, 1.0)->num_params() == 62006);
  CHECK_THAT(mcmahan->Describe(), Catch::Contains("1663370 parameters"));
  CHECK_THAT(lenet->Describe(), Catch::Contains("16x4x4"));
}

TEST_CASE("cnn: flops per sample count forward, weight and input gradients", "[model][cnn]") {
  // Forward MACs: conv1 32*25*784 = 627,200; conv2 64*800*196 = 10,035,200;
  // dense 3136*512 = 1,605,632; dense 512*10 = 5,120. The first convolution
  // has no input gradient.
  auto m = fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0);
  const double macs = 2.0 * 627200 + 3.0 * (10035200 + 1605632 + 5120);
  CHECK(m->TrainFlopsPerSample() == Approx(2.0 * macs));
}

TEST_CASE("cnn: rejects malformed layer lists", "[model][cnn]") {
  using L = CnnLayer;
  CHECK_THROWS_AS(Cnn(1, 8, 8, {L::Conv(2, 3)}, 1.0, "x"), fedsim::InputError);
  CHECK_THROWS_AS(Cnn(1, 8, 8, {L::Relu(), L::Dense(2)}, 1.0, "x"), fedsim::InputError);
  CHECK_THROWS_AS(Cnn(1, 4, 4, {L::Conv(2, 5), L::Dense(2)}, 1.0, "x"), fedsim::InputError);
  CHECK_THROWS_AS(Cnn(1, 4, 4, {L::MaxPool(2, 0), L::Dense(2)}, 1.0, "x"), fedsim::InputError);
  CHECK_NOTHROW(Cnn(1, 4, 4, {L::Conv(2, 5, 1, 1), L::Dense(2)}, 1.0, "x"));
}

TEST_CASE("cnn: 1x1 convolution with identity-like weights by hand", "[model][cnn]") {
  // 2 x 2 x 3 input, 3 output channels: out0 = in0 + 0.5, out1 = in1,
  // out2 = in0 - in1 - 0.25. W is 3 x 2 column-major (column = input channel).
  Cnn m(2, 2, 3, {CnnLayer::Conv(3, 1), CnnLayer::Dense(2)}, 1.0, "cnn_1x1");
  std::vector<float> params(static_cast<size_t>(m.num_params()), 0.0f);
  const float w[] = {1, 0, 1, 0, 1, -1}, bias[] = {0.5f, 0.0f, -0.25f};
  std::copy(w, w + 6, params.begin());
  std::copy(bias, bias + 3, params.begin() + 6);
  const float x[] = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60};  // channel 0, then channel 1 (CHW)
  auto ws = m.NewWorkspace(1);
  const float* out = m.Activations(params.data(), x, 1, 0, *ws);
  for (int p = 0; p < 6; ++p) {
    INFO("pixel " << p);
    const float in0 = x[p], in1 = x[6 + p];
    CHECK(out[3 * p + 0] == in0 + 0.5f);
    CHECK(out[3 * p + 1] == in1);
    CHECK(out[3 * p + 2] == in0 - in1 - 0.25f);
  }
}

TEST_CASE("cnn: strided padded convolution matches a direct convolution", "[model][cnn]") {
  const int cin = 2, h = 5, w = 6, cout = 3, k = 3, s = 2, p = 1;
  const int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
  Cnn m(cin, h, w, {CnnLayer::Conv(cout, k, s, p), CnnLayer::Dense(2)}, 1.0, "cnn_direct");
  Rng rng(3);
  std::vector<float> params(static_cast<size_t>(m.num_params()));
  m.Init(params.data(), rng);
  const int b = 2;
  const std::vector<float> x = RandomVector(static_cast<size_t>(b) * cin * h * w, rng);
  auto ws = m.NewWorkspace(b);
  const float* out = m.Activations(params.data(), x.data(), b, 0, *ws);
  const int rows = k * k * cin;
  for (int n = 0; n < b; ++n) {
    for (int o = 0; o < cout; ++o) {
      for (int i = 0; i < oh; ++i) {
        for (int j = 0; j < ow; ++j) {
          double acc = params[static_cast<size_t>(rows * cout + o)];
          for (int c = 0; c < cin; ++c) {
            for (int kh = 0; kh < k; ++kh) {
              for (int kw = 0; kw < k; ++kw) {
                const int hi = i * s - p + kh, wi = j * s - p + kw;
                if (hi < 0 || hi >= h || wi < 0 || wi >= w) continue;
                const float wt = params[static_cast<size_t>(o + cout * ((kh * k + kw) * cin + c))];
                acc += wt * x[static_cast<size_t>(((n * cin + c) * h + hi) * w + wi)];
              }
            }
          }
          INFO("sample " << n << " channel " << o << " at " << i << "," << j);
          CHECK(out[((n * oh + i) * ow + j) * cout + o] == Approx(acc).margin(1e-5));
        }
      }
    }
  }
}

TEST_CASE("cnn: max-pool routes the gradient to the argmax", "[model][cnn]") {
  // One 4 x 4 image with 2 channels (HWC); channel 1 is channel 0 negated.
  fedsim::WindowGeometry g;
  g.channels = 2;
  g.height = g.width = 4;
  g.kernel = g.stride = 2;
  const float plane[16] = {1, 5, 2, 0,   //
                           3, 4, 7, 6,   //
                           9, 8, 0, 1,   //
                           2, 2, 3, -1};
  std::vector<float> in(32);
  for (int i = 0; i < 16; ++i) {
    in[2 * i] = plane[i];
    in[2 * i + 1] = -plane[i];
  }
  std::vector<float> out(8), in_grad(32, 99.0f);
  std::vector<int32_t> argmax(8);
  fedsim::MaxPoolForward(g, in.data(), 1, out.data(), argmax.data());
  const float max0[] = {5, 7, 9, 3}, max1[] = {-1, 0, -2, 1};
  // Pixels in row-major order; the tie -2, -2 in window 2 goes to the first.
  const int where0[] = {1, 6, 8, 14}, where1[] = {0, 3, 12, 15};
  for (int q = 0; q < 4; ++q) {
    CHECK(out[2 * q] == max0[q]);
    CHECK(out[2 * q + 1] == max1[q]);
    CHECK(argmax[2 * q] == 2 * where0[q]);
    CHECK(argmax[2 * q + 1] == 2 * where1[q] + 1);
  }
  const float out_grad[] = {1, 10, 2, 20, 3, 30, 4, 40};
  fedsim::MaxPoolBackward(g, out_grad, argmax.data(), 1, in_grad.data());
  std::vector<float> expect(32, 0.0f);
  for (int q = 0; q < 4; ++q) {
    expect[2 * where0[q]] = out_grad[2 * q];
    expect[2 * where1[q] + 1] = out_grad[2 * q + 1];
  }
  CHECK(in_grad == expect);

  // Overlapping windows (3 x 3, stride 1, on 4 x 4): 9 wins two windows and
  // 8 the other two; each collects the gradients of the windows it won.
  g.channels = 1;
  g.kernel = 3;
  g.stride = 1;
  std::vector<float> single(plane, plane + 16), out4(4), grad4(16);
  std::vector<int32_t> arg4(4);
  fedsim::MaxPoolForward(g, single.data(), 1, out4.data(), arg4.data());
  CHECK(out4 == std::vector<float>{9, 8, 9, 8});
  const float og[] = {1, 2, 3, 4};
  fedsim::MaxPoolBackward(g, og, arg4.data(), 1, grad4.data());
  CHECK(grad4[8] == 1 + 3);
  CHECK(grad4[9] == 2 + 4);
  CHECK(grad4[0] == 0.0f);
}

TEST_CASE("cnn: max-pool forward matches its definition with ties and NaN", "[model][cnn]") {
  // Output (oh, ow, c) is the first maximum, in (kh, kw) scan order, of the
  // window's values that compare greater than the running one (a NaN never
  // replaces and is never replaced); argmax is its HWC input index. Values
  // from {-1, 0, 1, 2} make ties common; a few NaNs are sprinkled in. Covers
  // the 2x2 fixed-channel paths (6, 16, 32, 64 channels) and the general loop.
  // {channels, height, width, kernel, stride, padding}
  const fedsim::WindowGeometry cases[] = {{6, 24, 24, 2, 2, 0}, {16, 8, 8, 2, 2, 0}, {32, 7, 9, 2, 2, 0},
                                          {64, 4, 6, 2, 2, 0},  {3, 9, 7, 2, 2, 0},  {6, 9, 9, 3, 2, 0}};
  Rng rng(33);
  for (const fedsim::WindowGeometry& g : cases) {
    const int count = 2;
    std::vector<float> x(static_cast<size_t>(count * g.in_size()));
    for (float& v : x) {
      const uint64_t r = rng.NextU64() % 64;
      v = r == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(static_cast<int>(r % 4) - 1);
    }
    const int64_t out_img = static_cast<int64_t>(g.out_height()) * g.out_width() * g.channels;
    std::vector<float> out(static_cast<size_t>(count * out_img));
    std::vector<int32_t> arg(out.size());
    fedsim::MaxPoolForward(g, x.data(), count, out.data(), arg.data());
    int64_t wrong = 0;
    for (int n = 0; n < count; ++n)
      for (int oh = 0; oh < g.out_height(); ++oh)
        for (int ow = 0; ow < g.out_width(); ++ow)
          for (int c = 0; c < g.channels; ++c) {
            const float* img = x.data() + n * g.in_size();
            int32_t best = -1;
            for (int kh = 0; kh < g.kernel; ++kh)
              for (int kw = 0; kw < g.kernel; ++kw) {
                const int32_t i = ((oh * g.stride + kh) * g.width + ow * g.stride + kw) * g.channels + c;
                if (best < 0 || img[i] > img[best]) best = i;
              }
            const size_t o = static_cast<size_t>(n * out_img + (static_cast<int64_t>(oh) * g.out_width() + ow) * g.channels + c);
            const bool same_value = std::isnan(img[best]) ? std::isnan(out[o]) : out[o] == img[best];
            if (arg[o] != best || !same_value) ++wrong;
          }
    INFO("channels " << g.channels << ", " << g.height << "x" << g.width << ", kernel " << g.kernel << ", stride "
                     << g.stride);
    CHECK(wrong == 0);
  }
}

TEST_CASE("cnn: im2col matches its definition entry by entry", "[model][cnn]") {
  // Row (kh * k + kw) * C + c of the column of output (oh, ow) of image n is
  // input (c, oh*s - p + kh, ow*s - p + kw), 0 outside the image. The
  // geometries cover the fixed-span fast paths (5x5 on 1, 3 and 6 channels,
  // 3x3 on 1 and 32) with and without padding, and the general path.
  // {channels, height, width, kernel, stride, padding}
  const fedsim::WindowGeometry cases[] = {{1, 28, 28, 5, 1, 0}, {1, 9, 7, 5, 1, 2},  {6, 12, 12, 5, 1, 0},
                                          {6, 8, 9, 5, 2, 1},   {3, 7, 5, 3, 2, 1},  {2, 6, 6, 2, 2, 0},
                                          {3, 11, 9, 5, 1, 0},  {3, 10, 10, 5, 1, 2}, {1, 8, 9, 3, 1, 1},
                                          {32, 7, 6, 3, 1, 0}};
  Rng rng(21);
  for (const fedsim::WindowGeometry& g : cases) {
    const int count = 3;
    const auto x = RandomVector(static_cast<size_t>(count * g.in_size()), rng);
    std::vector<float> cols(static_cast<size_t>(count * g.col_rows() * g.col_cols()), -7.0f);
    fedsim::Im2Col(g, x.data(), count, cols.data());
    int64_t wrong = 0;
    for (int n = 0; n < count; ++n)
      for (int oh = 0; oh < g.out_height(); ++oh)
        for (int ow = 0; ow < g.out_width(); ++ow)
          for (int kh = 0; kh < g.kernel; ++kh)
            for (int kw = 0; kw < g.kernel; ++kw)
              for (int c = 0; c < g.channels; ++c) {
                const int h = oh * g.stride - g.padding + kh, w = ow * g.stride - g.padding + kw;
                const bool inside = h >= 0 && h < g.height && w >= 0 && w < g.width;
                const float want =
                    inside ? x[static_cast<size_t>(n * g.in_size() + (static_cast<int64_t>(h) * g.width + w) * g.channels + c)]
                           : 0.0f;
                const int64_t column = (static_cast<int64_t>(n) * g.out_height() + oh) * g.out_width() + ow;
                const int64_t row = (static_cast<int64_t>(kh) * g.kernel + kw) * g.channels + c;
                if (cols[static_cast<size_t>(column * g.col_rows() + row)] != want) ++wrong;
              }
    INFO("channels " << g.channels << ", " << g.height << "x" << g.width << ", kernel " << g.kernel << ", stride "
                     << g.stride << ", padding " << g.padding);
    CHECK(wrong == 0);
  }
}

TEST_CASE("cnn: col2im is the adjoint of im2col", "[model][cnn]") {
  // <Im2Col(x), c> = <x, Col2Im(c)> for any x and c, with stride and padding.
  fedsim::WindowGeometry g;
  g.channels = 3;
  g.height = 7;
  g.width = 5;
  g.kernel = 3;
  g.stride = 2;
  g.padding = 1;
  const int count = 2;
  Rng rng(9);
  const auto x = RandomVector(static_cast<size_t>(count * g.in_size()), rng);
  const auto c = RandomVector(static_cast<size_t>(count * g.col_rows() * g.col_cols()), rng);
  std::vector<float> cols(c.size()), back(x.size());
  fedsim::Im2Col(g, x.data(), count, cols.data());
  fedsim::Col2Im(g, c.data(), count, back.data());
  double lhs = 0.0, rhs = 0.0;
  for (size_t i = 0; i < c.size(); ++i) lhs += static_cast<double>(cols[i]) * c[i];
  for (size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(x[i]) * back[i];
  CHECK(lhs == Approx(rhs).epsilon(1e-5));
}

TEST_CASE("cnn: analytic gradient matches central finite differences", "[model][cnn]") {
  Cnn m = SmallCnn();
  Rng rng(11);
  std::vector<float> params(static_cast<size_t>(m.num_params())), grad(params.size());
  m.Init(params.data(), rng);
  const int b = 4;
  const auto x = RandomVector(static_cast<size_t>(b) * 2 * 10 * 10, rng);
  const int y[] = {0, 1, 2, 1};
  auto ws = m.NewWorkspace(b);
  m.LossAndGradient(params.data(), x.data(), y, b, grad.data(), *ws);
  const std::vector<int32_t> pattern = KinkPattern(m, params.data(), x.data(), b, *ws);
  std::vector<float> dummy(params.size());
  const float eps = 1e-3f;
  int64_t excused = 0;
  for (int64_t i = 0; i < m.num_params(); ++i) {
    float& p = params[static_cast<size_t>(i)];
    const float saved = p;
    p = saved + eps;
    const double lp = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
    bool smooth = KinkPattern(m, params.data(), x.data(), b, *ws) == pattern;
    p = saved - eps;
    const double lm = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
    smooth = smooth && KinkPattern(m, params.data(), x.data(), b, *ws) == pattern;
    p = saved;
    const double fd = (lp - lm) / (2.0 * eps);
    const bool close = grad[static_cast<size_t>(i)] == Approx(fd).margin(2e-4).epsilon(2e-2);
    // Central differences are only valid where no ReLU or max-pool switches
    // inside [p - eps, p + eps]; a mismatch is excused only there. The margin
    // is tighter than mlp_test's 2e-3 (the float noise here is ~4e-5): at
    // 2e-3 a 10% error in one kernel row of Col2Im went unnoticed.
    INFO("parameter " << i << ": analytic " << grad[static_cast<size_t>(i)] << ", finite difference " << fd);
    CHECK((close || !smooth));
    excused += !close;
  }
  // Spatial sizes 10 -conv p1-> 10 -pool 2-> 5 -conv s2 p1-> 3 -pool 2 s1-> 2,
  // so the first dense layer sees 2 * 2 * 3 = 12 features.
  CHECK(m.num_params() == (36 + 2) + (54 + 3) + (12 * 5 + 5) + (5 * 3 + 3));
  CHECK(excused <= m.num_params() / 10);
}

TEST_CASE("cnn: chunked im2col gives the same loss and gradient", "[model][cnn]") {
  Cnn whole = SmallCnn(), chunked = SmallCnn(2);
  REQUIRE(whole.conv_chunk() >= 5);
  Rng rng(21);
  std::vector<float> params(static_cast<size_t>(whole.num_params()));
  whole.Init(params.data(), rng);
  const int b = 5;
  const auto x = RandomVector(static_cast<size_t>(b) * 200, rng);
  const int y[] = {2, 0, 1, 1, 0};
  std::vector<float> g1(params.size()), g2(params.size());
  auto ws1 = whole.NewWorkspace(b);
  auto ws2 = chunked.NewWorkspace(b);
  const double l1 = whole.LossAndGradient(params.data(), x.data(), y, b, g1.data(), *ws1);
  const double l2 = chunked.LossAndGradient(params.data(), x.data(), y, b, g2.data(), *ws2);
  CHECK(l2 == Approx(l1).epsilon(1e-6));
  for (size_t i = 0; i < g1.size(); ++i) {
    INFO("parameter " << i);
    CHECK(g2[i] == Approx(g1[i]).margin(1e-6).epsilon(1e-5));
  }
}

TEST_CASE("cnn: evaluation agrees with the training loss", "[model][cnn]") {
  auto m = fedsim::MakeCnnLeNet(1, 28, 28, 10, 1.0);
  Rng rng(5);
  const int b = 7;
  const auto x = RandomVector(static_cast<size_t>(b) * 784, rng);
  const int y[] = {0, 3, 9, 1, 4, 4, 7};
  std::vector<float> params(static_cast<size_t>(m->num_params())), grad(params.size());
  m->Init(params.data(), rng);
  auto ws = m->NewWorkspace(b);
  const double loss = m->LossAndGradient(params.data(), x.data(), y, b, grad.data(), *ws);
  const fedsim::EvalSums e = m->Evaluate(params.data(), x.data(), y, b, *ws);
  CHECK(e.count == b);
  CHECK(e.loss_sum / b == Approx(loss).epsilon(1e-5));
  CHECK(e.correct >= 0);
  CHECK(e.correct <= b);
  // A batch smaller than the workspace's maximum reuses it.
  const fedsim::EvalSums e3 = m->Evaluate(params.data(), x.data(), y, 3, *ws);
  CHECK(e3.count == 3);
}

// ---------------------------------------------------------------------------
// FedPara convolutions (Hyeon-Woo et al. 2022, Proposition 3) and FedPara
// dense layers inside a Cnn.

namespace {

// The documented layout of one FedPara layer (cnn.h): T1, X1, Y1, T2, X2, Y2, b.
struct FedParaBlocks {
  int64_t t[2], x[2], y[2], b;
};

// Offsets of every parameterised layer of a FedPara Cnn, from the layer list
// and the ranks alone; `in_channels` is the network's input channel count.
std::vector<FedParaBlocks> FedParaLayout(const Cnn& m, const std::vector<int>& in_sizes) {
  std::vector<FedParaBlocks> out;
  int64_t at = 0;
  size_t layer = 0;
  for (const CnnLayer& l : m.layers()) {
    if (l.type != CnnLayer::Type::kConv && l.type != CnnLayer::Type::kDense) continue;
    const int64_t r = m.fedpara_ranks()[layer], in = in_sizes[layer], o = l.out;
    const int64_t core = l.type == CnnLayer::Type::kConv ? r * r * l.kernel * l.kernel : 0;
    FedParaBlocks blk{};
    for (int f = 0; f < 2; ++f) {
      blk.t[f] = at;
      blk.x[f] = at + core;
      blk.y[f] = blk.x[f] + o * r;
      at = blk.y[f] + in * r;
    }
    blk.b = at;
    at += o;
    out.push_back(blk);
    ++layer;
  }
  CHECK(at == m.num_params());
  return out;
}

}  // namespace

TEST_CASE("fedpara cnn: conv rank rule and parameter count 2(R^2 k^2 + R(O+I)) + O", "[model][cnn][fedpara]") {
  using fedsim::FedParaConvRank;
  // 1 -> 32, 5x5: r_min = ceil(sqrt(1)) = 1; r_max: 2(25 R^2 + 33 R) <= 800
  // holds for R = 3 (648) but not 4 (1064).
  CHECK(FedParaConvRank(1, 32, 5, 0.0) == 1);
  CHECK(FedParaConvRank(1, 32, 5, 1.0) == 3);
  CHECK(FedParaConvRank(1, 32, 5, 0.1) == 2);  // ceil(0.9 + 0.3)
  // 32 -> 64, 5x5: r_min = ceil(sqrt(32)) = 6; r_max = 30 (2(22500 + 2880) =
  // 50760 <= 51200 < 2(24025 + 2976)).
  CHECK(FedParaConvRank(32, 64, 5, 0.0) == 6);
  CHECK(FedParaConvRank(32, 64, 5, 1.0) == 30);
  CHECK(FedParaConvRank(32, 64, 5, 0.1) == 9);  // ceil(5.4 + 3.0)
  CHECK(FedParaConvRank(64, 32, 5, 0.1) == 9);  // symmetric in in and out
  // 6 -> 16, 5x5: r_min = 3, r_max = 6 (2(900 + 132) <= 2400 < 2(1225 + 154)).
  CHECK(FedParaConvRank(6, 16, 5, 0.1) == 4);  // ceil(2.7 + 0.6)
  // 2 -> 3, 3x3: r_max = 1 < r_min = 2 is raised to r_min.
  CHECK(FedParaConvRank(2, 3, 3, 1.0) == 2);
  CHECK_THROWS_AS(FedParaConvRank(0, 3, 3, 0.1), fedsim::InputError);
  CHECK_THROWS_AS(FedParaConvRank(2, 3, 3, 1.5), fedsim::InputError);

  // McMahan CNN at gamma 0.1: conv 1->32 (R 2), conv 32->64 (R 9), dense
  // 3136->512 (R 43), dense 512->10 (R 4).
  auto mc = fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0, 0.1);
  CHECK(mc->kind() == "fedpara_cnn_mcmahan");
  CHECK(mc->fedpara_ranks() == std::vector<int>{2, 9, 43, 4});
  const int64_t conv1 = 2 * (2 * 2 * 25 + 2 * (32 + 1)) + 32;
  const int64_t conv2 = 2 * (9 * 9 * 25 + 9 * (64 + 32)) + 64;
  const int64_t dense1 = 2 * 43 * (3136 + 512) + 512, dense2 = 2 * 4 * (512 + 10) + 10;
  CHECK(conv1 == 364);
  CHECK(conv2 == 5842);
  CHECK(mc->num_params() == conv1 + conv2 + dense1 + dense2);
  CHECK(mc->num_params() == 324632);  // 5.1x fewer than the dense 1,663,370
  FedParaLayout(*mc, {1, 32, 3136, 512});
  // LeNet at gamma 0.1: conv 1->6 (R 1), conv 6->16 (R 4), dense 256->120
  // (R 14), 120->84 (R 12), 84->10 (R 4).
  auto le = fedsim::MakeCnnLeNet(1, 28, 28, 10, 1.0, 0.1);
  CHECK(le->fedpara_ranks() == std::vector<int>{1, 4, 14, 12, 4});
  CHECK(le->num_params() == (2 * (25 + 7) + 6) + (2 * (16 * 25 + 4 * 22) + 16) + (2 * 14 * 376 + 120) +
                                (2 * 12 * 204 + 84) + (2 * 4 * 94 + 10));
  FedParaLayout(*le, {1, 6, 256, 120, 84});
  // Without gamma nothing changes.
  CHECK(fedsim::MakeCnnLeNet(1, 28, 28, 10, 1.0)->num_params() == 44426);
  CHECK(fedsim::MakeCnnLeNet(1, 28, 28, 10, 1.0)->fedpara_ranks().empty());
}

namespace {

// A network with no ReLU or pooling, so the loss is smooth in every
// parameter: 2 x 6 x 6 -> conv 3x3x4 pad 1 -> conv 3x3x3 stride 2 -> dense 3.
// FedPara ranks at gamma 1: conv 2->4 r_min = 2 (r_max 1 raised), conv 4->3
// r_min = r_max = 2, dense 12->3 r_min = r_max = 2.
Cnn SmoothFedParaCnn(std::optional<double> gamma) {
  using L = CnnLayer;
  return Cnn(2, 6, 6, {L::Conv(4, 3, 1, 1), L::Conv(3, 3, 2, 0), L::Dense(3)}, 1.0, "cnn_smooth", 0, gamma);
}

// W of one FedPara layer by the paper's definition, in Cnn's plain layout:
// conv W[o, c, kh, kw] = prod_f sum_{x,y} T_f[x, y, kh, kw] X_f[o, x] Y_f[c, y]
// at column (kh k + kw) C + c; dense W[o, i] = prod_f sum_x X_f[o, x] Y_f[i, x].
std::vector<float> FormByDefinition(const std::vector<float>& p, const FedParaBlocks& blk, int out, int in, int k,
                                    int r, bool conv) {
  const int kk = conv ? k * k : 1;
  std::vector<float> w(static_cast<size_t>(out) * in * kk, 1.0f);
  for (int f = 0; f < 2; ++f) {
    for (int pos = 0; pos < kk; ++pos) {
      for (int c = 0; c < in; ++c) {
        for (int o = 0; o < out; ++o) {
          double v = 0.0;
          for (int x = 0; x < r; ++x) {
            const double xo = p[static_cast<size_t>(blk.x[f] + x * out + o)];
            if (!conv) {
              v += xo * p[static_cast<size_t>(blk.y[f] + x * in + c)];
              continue;
            }
            for (int y = 0; y < r; ++y) {
              // T_f stored R x (R k^2): entry (x, pos R + y).
              const double t = p[static_cast<size_t>(blk.t[f] + (static_cast<int64_t>(pos) * r + y) * r + x)];
              v += t * xo * p[static_cast<size_t>(blk.y[f] + y * in + c)];
            }
          }
          w[static_cast<size_t>((static_cast<int64_t>(pos) * in + c) * out + o)] *= static_cast<float>(v);
        }
      }
    }
  }
  return w;
}

}  // namespace

TEST_CASE("fedpara cnn: the formed conv weight is (T1 x1 X1 x2 Y1) o (T2 x1 X2 x2 Y2)", "[model][cnn][fedpara]") {
  Cnn fp = SmoothFedParaCnn(1.0), plain = SmoothFedParaCnn(std::nullopt);
  REQUIRE(fp.fedpara_ranks() == std::vector<int>{2, 2, 2});
  const std::vector<FedParaBlocks> blk = FedParaLayout(fp, {2, 4, 12});
  Rng rng(8);
  std::vector<float> p(static_cast<size_t>(fp.num_params()));
  for (auto& v : p) v = static_cast<float>(rng.Uniform(-1.0, 1.0));
  // The plain CNN's parameters: each W by the definition, the same biases.
  std::vector<float> q;
  const int outs[] = {4, 3, 3}, ins[] = {2, 4, 12};
  for (int l = 0; l < 3; ++l) {
    const std::vector<float> w = FormByDefinition(p, blk[l], outs[l], ins[l], 3, 2, l < 2);
    q.insert(q.end(), w.begin(), w.end());
    q.insert(q.end(), p.begin() + blk[l].b, p.begin() + blk[l].b + outs[l]);
  }
  REQUIRE(static_cast<int64_t>(q.size()) == plain.num_params());
  const int b = 3;
  const auto x = RandomVector(static_cast<size_t>(b) * 72, rng);
  const int y[] = {0, 2, 1};
  auto ws1 = fp.NewWorkspace(b);
  auto ws2 = plain.NewWorkspace(b);
  for (int l = 0; l < 3; ++l) {
    const float* a1 = fp.Activations(p.data(), x.data(), b, l, *ws1);
    const std::vector<float> first(a1, a1 + b * (l == 0 ? 144 : l == 1 ? 12 : 3));
    const float* a2 = plain.Activations(q.data(), x.data(), b, l, *ws2);
    for (size_t i = 0; i < first.size(); ++i) {
      INFO("layer " << l << " value " << i);
      CHECK(first[i] == Approx(a2[i]).margin(1e-5).epsilon(1e-4));
    }
  }
  std::vector<float> g1(p.size()), g2(q.size());
  CHECK(fp.LossAndGradient(p.data(), x.data(), y, b, g1.data(), *ws1) ==
        Approx(plain.LossAndGradient(q.data(), x.data(), y, b, g2.data(), *ws2)).epsilon(1e-5));
}

TEST_CASE("fedpara cnn: analytic gradient matches central finite differences", "[model][cnn][fedpara]") {
  // Smooth network: every parameter, no excuses. The gradient flows through
  // W = W1 o W2 into T, X and Y of both factors of both convolutions.
  {
    Cnn m = SmoothFedParaCnn(1.0);
    Rng rng(13);
    std::vector<float> params(static_cast<size_t>(m.num_params())), grad(params.size()), dummy(params.size());
    m.Init(params.data(), rng);
    const int b = 4;
    const auto x = RandomVector(static_cast<size_t>(b) * 72, rng);
    const int y[] = {2, 0, 1, 2};
    auto ws = m.NewWorkspace(b);
    m.LossAndGradient(params.data(), x.data(), y, b, grad.data(), *ws);
    const float eps = 1e-3f;
    int64_t nonzero = 0;
    for (int64_t i = 0; i < m.num_params(); ++i) {
      float& p = params[static_cast<size_t>(i)];
      const float saved = p;
      p = saved + eps;
      const double lp = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
      p = saved - eps;
      const double lm = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
      p = saved;
      const double fd = (lp - lm) / (2.0 * eps);
      INFO("parameter " << i << ": analytic " << grad[static_cast<size_t>(i)] << ", finite difference " << fd);
      CHECK(grad[static_cast<size_t>(i)] == Approx(fd).margin(2e-4).epsilon(2e-2));
      nonzero += std::fabs(fd) > 1e-3;
    }
    // 2 (4*9 + 2*4 + 2*2) + 4, 2 (4*9 + 2*3 + 2*4) + 3, 2 (2*3 + 2*12) + 3.
    CHECK(m.num_params() == 100 + 103 + 63);
    CHECK(nonzero > m.num_params() / 2);  // the check is not vacuous
  }
  // The small network of the plain gradient check (ReLU, pooling, stride,
  // padding), re-parameterised; mismatches only where a kink is crossed.
  {
    using L = CnnLayer;
    Cnn m(2, 10, 10,
          {L::Conv(2, 3, 1, 1), L::Relu(), L::MaxPool(2, 2), L::Conv(3, 3, 2, 1), L::Relu(), L::MaxPool(2, 1),
           L::Dense(5), L::Relu(), L::Dense(3)},
          1.0, "cnn_small", 0, 0.5);
    Rng rng(11);
    std::vector<float> params(static_cast<size_t>(m.num_params())), grad(params.size()), dummy(params.size());
    m.Init(params.data(), rng);
    const int b = 4;
    const auto x = RandomVector(static_cast<size_t>(b) * 200, rng);
    const int y[] = {0, 1, 2, 1};
    auto ws = m.NewWorkspace(b);
    m.LossAndGradient(params.data(), x.data(), y, b, grad.data(), *ws);
    const std::vector<int32_t> pattern = KinkPattern(m, params.data(), x.data(), b, *ws);
    const float eps = 1e-3f;
    int64_t excused = 0;
    for (int64_t i = 0; i < m.num_params(); ++i) {
      float& p = params[static_cast<size_t>(i)];
      const float saved = p;
      p = saved + eps;
      const double lp = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
      bool smooth = KinkPattern(m, params.data(), x.data(), b, *ws) == pattern;
      p = saved - eps;
      const double lm = m.LossAndGradient(params.data(), x.data(), y, b, dummy.data(), *ws);
      smooth = smooth && KinkPattern(m, params.data(), x.data(), b, *ws) == pattern;
      p = saved;
      const double fd = (lp - lm) / (2.0 * eps);
      const bool close = grad[static_cast<size_t>(i)] == Approx(fd).margin(2e-4).epsilon(2e-2);
      INFO("parameter " << i << ": analytic " << grad[static_cast<size_t>(i)] << ", finite difference " << fd);
      CHECK((close || !smooth));
      excused += !close;
    }
    CHECK(excused <= m.num_params() / 10);
  }
}

TEST_CASE("fedpara cnn: init gives the formed W the plain init's spread", "[model][cnn][fedpara]") {
  // McMahan's second convolution: 64 x 800 formed entries, R = 9. The plain
  // init is uniform(+-1/sqrt(800)), standard deviation 1/sqrt(2400).
  auto m = fedsim::MakeCnnMcMahan(1, 28, 28, 10, 1.0, 0.1);
  const std::vector<FedParaBlocks> blk = FedParaLayout(*m, {1, 32, 3136, 512});
  Rng rng(2);
  std::vector<float> p(static_cast<size_t>(m->num_params()));
  m->Init(p.data(), rng);
  const std::vector<float> w = FormByDefinition(p, blk[1], 64, 32, 5, 9, true);
  double sum = 0.0, sq = 0.0;
  for (float v : w) {
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(w.size()), mean = sum / n;
  const double sd = std::sqrt(sq / n - mean * mean), target = 1.0 / std::sqrt(2400.0);
  CHECK(std::fabs(mean) < 0.1 * target);
  CHECK(sd == Approx(target).epsilon(0.15));
}
