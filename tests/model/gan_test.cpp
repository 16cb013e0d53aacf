// FedGAN's networks: gradients of both losses against finite differences, the
// losses in closed form, and the sample-quality figures on hand-made
// predicted distributions.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "model/gan.h"

using fedsim::GanConfig;
using fedsim::GanNets;
using fedsim::GanWorkspace;
using fedsim::Rng;

namespace {

GanConfig TinyConfig() {
  GanConfig c;
  c.latent_dim = 3;
  c.generator_hidden = {4, 5};
  c.discriminator_hidden = {6};
  c.leaky_slope = 0.2;
  return c;
}

std::vector<float> Normals(size_t n, Rng& rng, double scale = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.Normal());
  return v;
}

// Central differences of f at params[i], compared with grad[i].
template <class F>
int CheckGradient(std::vector<float>& params, const std::vector<float>& grad, F&& f) {
  const float eps = 1e-2f;
  int checked = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const float saved = params[i];
    params[i] = saved + eps;
    const double lp = f();
    params[i] = saved - eps;
    const double lm = f();
    params[i] = saved;
    const double fd = (lp - lm) / (2.0 * eps);
    INFO("parameter " << i << " of " << params.size());
    CHECK(grad[i] == Approx(fd).margin(1e-4).epsilon(2e-2));
    ++checked;
  }
  return checked;
}

}  // namespace

TEST_CASE("gan: parameter counts of the default networks", "[model][gan]") {
  const GanNets nets(GanConfig{}, 784);
  CHECK(nets.generator.num_params() == 64 * 256 + 256 + 256 * 784 + 784);  // 218,128
  CHECK(nets.discriminator.num_params() == 784 * 256 + 256 + 256 + 1);     // 201,217
  CHECK(nets.num_params() == 419345);
  CHECK(nets.disc_offset() == 218128);
}

TEST_CASE("gan: discriminator loss gradient matches finite differences", "[model][gan]") {
  const GanNets nets(TinyConfig(), 5);
  Rng rng(3);
  std::vector<float> wd(static_cast<size_t>(nets.discriminator.num_params()));
  nets.discriminator.Init(wd.data(), rng);
  for (auto& w : wd) w *= 3.0f;  // large enough that the logits leave the linear part of the sigmoid
  const int b = 4;
  const std::vector<float> real = Normals(b * 5, rng), fake = Normals(b * 5, rng);
  GanWorkspace ws(nets, b);
  std::vector<float> grad(wd.size()), unused(wd.size());
  fedsim::DiscriminatorLossAndGradient(nets, wd.data(), real.data(), fake.data(), b, grad.data(), ws);
  const int n = CheckGradient(wd, grad, [&] {
    return fedsim::DiscriminatorLossAndGradient(nets, wd.data(), real.data(), fake.data(), b, unused.data(), ws);
  });
  CHECK(n == 5 * 6 + 6 + 6 + 1);
}

TEST_CASE("gan: generator loss gradient matches finite differences", "[model][gan]") {
  const GanNets nets(TinyConfig(), 5);
  Rng rng(4);
  std::vector<float> wg(static_cast<size_t>(nets.generator.num_params()));
  std::vector<float> wd(static_cast<size_t>(nets.discriminator.num_params()));
  nets.generator.Init(wg.data(), rng);
  nets.discriminator.Init(wd.data(), rng);
  for (auto& w : wd) w *= 3.0f;
  const int b = 4;
  const std::vector<float> z = Normals(b * 3, rng);
  GanWorkspace ws(nets, b);
  std::vector<float> grad(wg.size()), unused(wg.size());
  fedsim::GeneratorForward(nets, wg.data(), z.data(), b, ws);
  const std::vector<float> wd_before = wd;
  fedsim::GeneratorLossAndGradient(nets, wg.data(), wd.data(), z.data(), b, grad.data(), ws);
  const int n = CheckGradient(wg, grad, [&] {
    fedsim::GeneratorForward(nets, wg.data(), z.data(), b, ws);
    return fedsim::GeneratorLossAndGradient(nets, wg.data(), wd.data(), z.data(), b, unused.data(), ws);
  });
  CHECK(n == 3 * 4 + 4 + 4 * 5 + 5 + 5 * 5 + 5);
  CHECK(wd == wd_before);  // the generator step leaves the discriminator alone
}

TEST_CASE("gan: losses in closed form at a zero discriminator", "[model][gan]") {
  // With w_D = 0 every logit is 0, sigma = 1/2: L_D = 2 log 2, L_G = log 2,
  // and the generator gets no gradient (dD/dx = 0).
  const GanNets nets(TinyConfig(), 5);
  Rng rng(6);
  std::vector<float> wg(static_cast<size_t>(nets.generator.num_params()));
  nets.generator.Init(wg.data(), rng);
  std::vector<float> wd(static_cast<size_t>(nets.discriminator.num_params()), 0.0f);
  const int b = 3;
  const std::vector<float> z = Normals(b * 3, rng), real = Normals(b * 5, rng);
  GanWorkspace ws(nets, b);
  const float* fake = fedsim::GeneratorForward(nets, wg.data(), z.data(), b, ws);
  for (int i = 0; i < b * 5; ++i) {
    CHECK(std::abs(fake[i]) < 1.0f);  // tanh output
  }
  std::vector<float> gd(wd.size()), gg(wg.size());
  CHECK(fedsim::DiscriminatorLossAndGradient(nets, wd.data(), real.data(), fake, b, gd.data(), ws) ==
        Approx(2.0 * std::log(2.0)));
  // Output bias gradient: sum over real of -1/(2b) plus sum over fake of +1/(2b) = 0.
  CHECK(gd.back() == Approx(0.0).margin(1e-7));
  CHECK(fedsim::GeneratorLossAndGradient(nets, wg.data(), wd.data(), z.data(), b, gg.data(), ws) ==
        Approx(std::log(2.0)));
  for (float g : gg) CHECK(g == 0.0f);
}

TEST_CASE("gan: quality figures of hand-made predicted distributions", "[model][gan]") {
  using fedsim::SampleQualitySums;
  // Histogram entropy and covered classes.
  CHECK(fedsim::HistogramEntropy({5, 5, 5, 5}) == Approx(std::log(4.0)));
  CHECK(fedsim::HistogramEntropy({7, 0, 0}) == 0.0);
  CHECK(fedsim::HistogramEntropy({0, 0}) == 0.0);
  CHECK(fedsim::HistogramEntropy({1, 3}) == Approx(-(0.25 * std::log(0.25) + 0.75 * std::log(0.75))));
  CHECK(fedsim::ClassesCovered({98, 2, 1, 0}, 0.02) == 1);  // 2/101 and 1/101 are below 2%
  CHECK(fedsim::ClassesCovered({96, 2, 2, 0}, 0.02) == 3);  // exactly 2% counts
  CHECK(fedsim::ClassesCovered({0, 0, 0}, 0.02) == 0);

  // Four samples, three classes. Confident (> 0.9): the first two.
  const double p[4][3] = {{0.95, 0.05, 0.0}, {0.02, 0.97, 0.01}, {0.5, 0.3, 0.2}, {0.1, 0.2, 0.7}};
  SampleQualitySums a(3), b(3);
  a.Add(p[0], 0.9);
  a.Add(p[1], 0.9);
  b.Add(p[2], 0.9);
  b.Add(p[3], 0.9);
  SampleQualitySums s(3);
  s.Merge(a);
  s.Merge(b);
  CHECK(s.count == 4);
  CHECK(s.confident == 2);
  CHECK(s.histogram == std::vector<int64_t>{2, 1, 1});
  const fedsim::SampleQuality q = fedsim::Summarize(s, 0.3);
  CHECK(q.confident_share == 0.5);
  const double h = -(0.5 * std::log(0.5) + 2 * 0.25 * std::log(0.25));
  CHECK(q.class_entropy == Approx(h));
  CHECK(q.effective_classes == Approx(std::exp(h)));
  CHECK(q.classes_covered == 1);  // only class 0 reaches 30%
  // Inception score by its definition: exp(mean_x KL(p(.|x) || mean p)).
  double marg[3] = {0, 0, 0};
  for (const auto& row : p)
    for (int y = 0; y < 3; ++y) marg[y] += row[y] / 4;
  double kl = 0.0;
  for (const auto& row : p)
    for (int y = 0; y < 3; ++y)
      if (row[y] > 0) kl += row[y] * std::log(row[y] / marg[y]) / 4;
  CHECK(q.inception_score == Approx(std::exp(kl)));

  // Extremes: one-hot predictions spread evenly over C classes give IS = C;
  // the same distribution for every sample gives IS = 1.
  SampleQualitySums even(4), same(4);
  for (int i = 0; i < 8; ++i) {
    double onehot[4] = {0, 0, 0, 0};
    onehot[i % 4] = 1.0;
    even.Add(onehot, 0.9);
    const double flat[4] = {0.25, 0.25, 0.25, 0.25};
    same.Add(flat, 0.9);
  }
  CHECK(fedsim::Summarize(even, 0.02).inception_score == Approx(4.0));
  CHECK(fedsim::Summarize(even, 0.02).effective_classes == Approx(4.0));
  CHECK(fedsim::Summarize(even, 0.02).confident_share == 1.0);
  CHECK(fedsim::Summarize(same, 0.02).inception_score == Approx(1.0));
  CHECK(fedsim::Summarize(same, 0.02).confident_share == 0.0);
}
