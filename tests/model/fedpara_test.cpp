#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "model/fedpara.h"
#include "model/sequential.h"

using fedsim::FedParaRank;
using fedsim::MakeDenseStack;
using fedsim::Rng;

namespace {

// Offsets of one factorised layer's blocks: X1 (in x R), Y1 (out x R), X2,
// Y2, then the bias (the rows-layout FedPara layer, FedParaDenseRows).
struct Blocks {
  int64_t x1, y1, x2, y2, b;
  int r;
};

std::vector<Blocks> FactorBlocks(const std::vector<int>& sizes, double gamma) {
  std::vector<Blocks> out;
  int64_t at = 0;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const int64_t in = sizes[l], o = sizes[l + 1];
    const int r = FedParaRank(sizes[l], sizes[l + 1], gamma);
    Blocks blk{};
    blk.r = r;
    blk.x1 = at;
    blk.y1 = blk.x1 + in * r;
    blk.x2 = blk.y1 + o * r;
    blk.y2 = blk.x2 + in * r;
    blk.b = blk.y2 + o * r;
    at = blk.b + o;
    out.push_back(blk);
  }
  return out;
}

Eigen::MatrixXf Factor(const std::vector<float>& p, int64_t offset, int rows, int r) {
  return Eigen::Map<const Eigen::MatrixXf>(p.data() + offset, rows, r);
}

}  // namespace

TEST_CASE("fedpara: rank formula on hand-computed cases", "[model][fedpara]") {
  // 784 x 200: r_min = ceil(sqrt(200)) = 15, r_max = floor(156800 / 1968) = 79.
  CHECK(FedParaRank(784, 200, 0.0) == 15);
  CHECK(FedParaRank(784, 200, 1.0) == 79);
  CHECK(FedParaRank(784, 200, 0.1) == 22);  // ceil(13.5 + 7.9)
  CHECK(FedParaRank(784, 200, 0.5) == 47);  // 7.5 + 39.5
  // 200 x 200: r_min = 15, r_max = 40000 / 800 = 50.
  CHECK(FedParaRank(200, 200, 0.0) == 15);
  CHECK(FedParaRank(200, 200, 1.0) == 50);
  CHECK(FedParaRank(200, 200, 0.1) == 19);  // ceil(13.5 + 5)
  CHECK(FedParaRank(200, 200, 0.5) == 33);  // ceil(32.5)
  // 200 x 10: r_min = ceil(sqrt(10)) = 4, r_max = floor(2000 / 420) = 4.
  CHECK(FedParaRank(200, 10, 0.0) == 4);
  CHECK(FedParaRank(200, 10, 1.0) == 4);
  // Symmetric in (m, n); perfect squares are not rounded up.
  CHECK(FedParaRank(200, 784, 0.1) == FedParaRank(784, 200, 0.1));
  CHECK(FedParaRank(100, 400, 0.0) == 10);
  CHECK(FedParaRank(1, 50, 0.7) == 1);
  // Tiny layers where r_max < r_min keep the full-rank minimum.
  CHECK(FedParaRank(4, 3, 0.0) == 2);
  CHECK(FedParaRank(4, 3, 1.0) == 2);
  // The rank at gamma = 1 never exceeds the dense layer's parameter count.
  for (int m : {10, 64, 200, 784, 1000}) {
    for (int n : {10, 64, 200, 500}) {
      const int r = FedParaRank(m, n, 1.0);
      if (r > static_cast<int>(std::ceil(std::sqrt(std::min(m, n))))) {
        CHECK(2 * r * (m + n) <= m * n);
      }
    }
  }
  CHECK_THROWS_AS(FedParaRank(10, 10, 1.5), fedsim::InputError);
  CHECK_THROWS_AS(FedParaRank(0, 10, 0.5), fedsim::InputError);
}

TEST_CASE("fedpara: parameter count is 2R(m+n) + n per layer", "[model][fedpara]") {
  struct Case {
    std::vector<int> sizes;
    double gamma;
  };
  for (const Case& c : {Case{{784, 200, 200, 10}, 0.1}, Case{{784, 200, 200, 10}, 0.5},
                        Case{{60, 30, 5}, 0.3}, Case{{5, 6, 4, 3}, 0.0}, Case{{128, 64}, 1.0}}) {
    const auto m = MakeDenseStack(c.sizes, 1.0, "mlp", c.gamma);
    int64_t expected = 0;
    for (size_t l = 0; l + 1 < c.sizes.size(); ++l) {
      const int64_t in = c.sizes[l], out = c.sizes[l + 1];
      expected += 2 * FedParaRank(c.sizes[l], c.sizes[l + 1], c.gamma) * (in + out) + out;
    }
    CHECK(m->num_params() == expected);
    // One weight (the four factors) and one bias range per layer, tiling the vector.
    const auto ranges = m->ParamRanges();
    REQUIRE(ranges.size() == 2 * (c.sizes.size() - 1));
    CHECK(ranges.back().offset + ranges.back().size == expected);
  }
  // The 2NN by hand at gamma = 0.1: ranks 22, 19, 4.
  const auto nn = MakeDenseStack({784, 200, 200, 10}, 1.0, "mlp", 0.1);
  CHECK(nn->num_params() == 2 * 22 * 984 + 200 + 2 * 19 * 400 + 200 + 2 * 4 * 210 + 10);
  CHECK(nn->kind() == "fedpara");
  CHECK(nn->Describe() == "fedpara 784-200-200-10 gamma=0.1 ranks 22/19/4 (60586 parameters)");
  CHECK_THROWS_AS(MakeDenseStack({784}, 1.0, "mlp", 0.1), fedsim::InputError);
  CHECK_THROWS_AS(MakeDenseStack({784, 0, 10}, 1.0, "mlp", 0.1), fedsim::InputError);
  CHECK_THROWS_AS(MakeDenseStack({784, 10}, 1.0, "mlp", 1.5), fedsim::InputError);
}

TEST_CASE("fedpara: the 2NN at gamma 0.1 sends at least 3x fewer bytes", "[model][fedpara]") {
  const auto m = MakeDenseStack({784, 200, 200, 10}, 1.0, "mlp", 0.1);
  CHECK(3 * m->num_params() <= 199210);
  CHECK(m->TrainFlopsPerSample() == MakeDenseStack({784, 200, 200, 10}, 1.0, "mlp")->TrainFlopsPerSample());
  // Forming each W and mapping dW back: 2 (6R + 3) m n per layer.
  CHECK(m->TrainFlopsPerBatch() == 2.0 * ((6 * 22 + 3) * 784.0 * 200 + (6 * 19 + 3) * 200.0 * 200 + (6 * 4 + 3) * 200.0 * 10));
}

TEST_CASE("fedpara: analytic gradient matches central finite differences", "[model][fedpara]") {
  {
    const auto mp = MakeDenseStack({5, 6, 4, 3}, 1.0, "mlp", 0.0);
    const auto& m = *mp;
    for (const Blocks& blk : FactorBlocks({5, 6, 4, 3}, 0.0)) CHECK(blk.r >= 2);
    Rng rng(17);
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
    int64_t checked = 0;
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
    CHECK(checked == 2 * 3 * 11 + 6 + 2 * 2 * 10 + 4 + 2 * 2 * 7 + 3);
  }
}

TEST_CASE("fedpara: with X2 Y2^T all ones it is the mlp with W = X1 Y1^T", "[model][fedpara]") {
  const std::vector<int> sizes{7, 9, 5, 4};
  const auto fptr = MakeDenseStack(sizes, 1.0, "mlp", 0.3);
  const auto mptr = MakeDenseStack(sizes, 1.0, "mlp");
  const auto &f = *fptr, &mlp = *mptr;
  Rng rng(3);
  std::vector<float> fp(f.num_params());
  f.Init(fp.data(), rng);
  const std::vector<Blocks> blk = FactorBlocks(sizes, 0.3);
  // X2 Y2^T = ones: first columns of X2 and Y2 all ones, the rest zero.
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const int in = sizes[l], out = sizes[l + 1], r = blk[l].r;
    REQUIRE(r >= 2);
    for (int64_t i = 0; i < static_cast<int64_t>(in) * r; ++i) fp[blk[l].x2 + i] = i < in ? 1.0f : 0.0f;
    for (int64_t i = 0; i < static_cast<int64_t>(out) * r; ++i) fp[blk[l].y2 + i] = i < out ? 1.0f : 0.0f;
  }
  // The equivalent mlp parameters: W_l = X1 Y1^T, same biases.
  std::vector<float> mp(mlp.num_params());
  int64_t at = 0;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const int in = sizes[l], out = sizes[l + 1], r = blk[l].r;
    Eigen::Map<Eigen::MatrixXf>(mp.data() + at, in, out) =
        Factor(fp, blk[l].x1, in, r) * Factor(fp, blk[l].y1, out, r).transpose();
    at += static_cast<int64_t>(in) * out;
    for (int j = 0; j < out; ++j) mp[at + j] = fp[blk[l].b + j];
    at += out;
  }
  const int b = 8;
  std::vector<float> x(b * sizes[0]);
  for (auto& v : x) v = static_cast<float>(rng.Normal());
  const int y[] = {0, 1, 2, 3, 3, 2, 1, 0};
  std::vector<float> fg(f.num_params()), mg(mlp.num_params());
  auto fws = f.NewWorkspace(b);
  auto mws = mlp.NewWorkspace(b);
  const double floss = f.LossAndGradient(fp.data(), x.data(), y, b, fg.data(), *fws);
  const double mloss = mlp.LossAndGradient(mp.data(), x.data(), y, b, mg.data(), *mws);
  CHECK(floss == Approx(mloss).epsilon(1e-5));

  at = 0;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    const int in = sizes[l], out = sizes[l + 1], r = blk[l].r;
    const Eigen::MatrixXf dw = Eigen::Map<const Eigen::MatrixXf>(mg.data() + at, in, out);
    at += static_cast<int64_t>(in) * out;
    INFO("layer " << l);
    for (int j = 0; j < out; ++j) CHECK(fg[blk[l].b + j] == Approx(mg[at + j]).margin(1e-6).epsilon(1e-4));
    at += out;
    // With W2 = ones: dX1 = dW Y1 and dY1 = dW^T X1.
    const Eigen::MatrixXf dx1 = dw * Factor(fp, blk[l].y1, out, r);
    const Eigen::MatrixXf dy1 = dw.transpose() * Factor(fp, blk[l].x1, in, r);
    CHECK((Factor(fg, blk[l].x1, in, r) - dx1).cwiseAbs().maxCoeff() <= 1e-5f + 1e-4f * dx1.cwiseAbs().maxCoeff());
    CHECK((Factor(fg, blk[l].y1, out, r) - dy1).cwiseAbs().maxCoeff() <= 1e-5f + 1e-4f * dy1.cwiseAbs().maxCoeff());
  }

  fedsim::EvalSums fe = f.Evaluate(fp.data(), x.data(), y, b, *fws);
  fedsim::EvalSums me = mlp.Evaluate(mp.data(), x.data(), y, b, *mws);
  CHECK(fe.loss_sum == Approx(me.loss_sum).epsilon(1e-5));
  CHECK(fe.correct == me.correct);
  CHECK(fe.loss_sum / b == Approx(floss).epsilon(1e-5));
}

TEST_CASE("fedpara: init gives the formed W the dense init's spread", "[model][fedpara]") {
  // Dense: uniform(+-c/sqrt(784)), std c/sqrt(3 * 784).
  for (double gamma : {0.0, 0.1, 0.5, 1.0}) {
    for (double scale : {1.0, 0.5}) {
      const auto f = MakeDenseStack({784, 200}, scale, "softmax", gamma);
      const std::vector<Blocks> blk = FactorBlocks({784, 200}, gamma);
      const int r = blk[0].r;
      for (uint64_t seed : {1u, 2u, 3u}) {
        Rng rng(seed);
        std::vector<float> p(f->num_params());
        f->Init(p.data(), rng);
        const Eigen::MatrixXf w = (Factor(p, blk[0].x1, 784, r) * Factor(p, blk[0].y1, 200, r).transpose())
                                      .cwiseProduct(Factor(p, blk[0].x2, 784, r) *
                                                    Factor(p, blk[0].y2, 200, r).transpose());
        const double mean = w.mean();
        const double var = (w.array() - static_cast<float>(mean)).square().mean();
        const double target = scale / std::sqrt(3.0 * 784);
        INFO("gamma " << gamma << " scale " << scale << " seed " << seed << " rank " << r);
        CHECK(std::sqrt(var) == Approx(target).epsilon(0.1));
      }
    }
  }
}

TEST_CASE("fedpara: evaluation agrees with the training loss", "[model][fedpara]") {
  const auto mp = MakeDenseStack({6, 8, 3}, 1.0, "mlp", 0.5);
  const auto& m = *mp;
  Rng rng(5);
  std::vector<float> params(m.num_params()), grad(m.num_params());
  m.Init(params.data(), rng);
  const int b = 10;
  std::vector<float> x(b * 6);
  for (auto& v : x) v = static_cast<float>(rng.Normal());
  const int y[] = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
  auto ws = m.NewWorkspace(b);
  const double loss = m.LossAndGradient(params.data(), x.data(), y, b, grad.data(), *ws);
  const fedsim::EvalSums e = m.Evaluate(params.data(), x.data(), y, b, *ws);
  CHECK(e.count == b);
  CHECK(e.loss_sum / b == Approx(loss).epsilon(1e-5));
  // A smaller batch in the same workspace.
  const fedsim::EvalSums e3 = m.Evaluate(params.data(), x.data(), y, 3, *ws);
  CHECK(e3.count == 3);
  CHECK(m.Evaluate(params.data(), x.data(), y, 0, *ws).count == 0);
}
