// FedProx Synthetic(alpha, beta) (Li et al., "Federated Optimization in
// Heterogeneous Networks", MLSys 2020), following the reference generators
// data/synthetic_*/generate_synthetic.py and data/synthetic_iid/generate_iid.py
// of github.com/litian96/FedProx:
//
//   n_k = int(lognormal(4, 2)) + 50 samples for user k
//   u_k ~ N(0, alpha^2)            mean of W_k and b_k
//   B_k ~ N(0, beta^2)             mean of v_k's coordinates
//   v_k ~ N(B_k, I)                user k's feature centre
//   W_k (d x C), b_k (C) ~ N(u_k, 1) entrywise
//   x ~ N(v_k, Sigma), Sigma = diag(j^-1.2), j = 1..d
//   y = argmax(x W_k + b_k)
//
// IID variant (generate_iid.py): one W, b ~ N(0, 1) for every user and v_k = 0;
// alpha and beta are not used. Each user's samples are shuffled and the first
// int(0.9 n_k) go to train, the rest to test.
//
// Random streams: (kDataGen, 0, 0) draws the per-user priors (n_k, u_k, B_k)
// and the shared IID model; (kDataGen, 1, k) draws user k's v_k, W_k, b_k and
// samples; (kDataSplit, 0, k) shuffles user k's samples before the split.
#include <climits>
#include <cmath>
#include <numeric>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fmath.h"
#include "core/rng.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

void FillNormal(Eigen::MatrixXd& m, Rng& rng, double mean) {
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = rng.Normal(mean, 1.0);
}

void FillNormal(Eigen::VectorXd& v, Rng& rng, double mean) {
  for (Eigen::Index i = 0; i < v.size(); ++i) v[i] = rng.Normal(mean, 1.0);
}

}  // namespace

FederatedData GenerateSynthetic(const SyntheticConfig& cfg, uint64_t seed) {
  const int users = cfg.num_users;
  const int d = cfg.num_features;
  const int classes = cfg.num_classes;
  if (users < 1 || d < 1 || classes < 2) {
    throw InputError(
        fmt::format("data.synthetic: need num_users >= 1, num_features >= 1 and num_classes >= 2 "
                    "(got {}, {}, {})",
                    users, d, classes));
  }

  Rng prior = DeriveStream(seed, Stream::kDataGen, 0, 0);
  std::vector<int64_t> n(users);
  for (int k = 0; k < users; ++k) {
    // lognormal(4, 2) exceeds 2^31 with probability ~1e-18; a sample count
    // that large cannot be indexed, so it is refused rather than clipped.
    const double draw = prior.LogNormal(4.0, 2.0);
    if (!(draw < static_cast<double>(INT_MAX - 50))) {
      throw InputError(
          fmt::format("data.synthetic: user {} drew lognormal(4, 2) = {:.3g} samples, more than fedsim "
                      "can index; try another experiment.seed",
                      k, draw));
    }
    n[k] = static_cast<int64_t>(draw) + 50;
  }
  std::vector<double> u(users), b_mean(users);
  for (int k = 0; k < users; ++k) u[k] = prior.Normal(0.0, cfg.alpha);
  for (int k = 0; k < users; ++k) b_mean[k] = prior.Normal(0.0, cfg.beta);
  Eigen::MatrixXd w_shared(d, classes);
  Eigen::VectorXd b_shared(classes);
  if (cfg.iid) {
    FillNormal(w_shared, prior, 0.0);
    FillNormal(b_shared, prior, 0.0);
  }

  std::vector<int64_t> n_train(users);
  int64_t total_train = 0, total_test = 0;
  for (int k = 0; k < users; ++k) {
    n_train[k] = static_cast<int64_t>(0.9 * static_cast<double>(n[k]));
    total_train += n_train[k];
    total_test += n[k] - n_train[k];
  }
  if (total_train + total_test > INT_MAX) {
    throw InputError(fmt::format("data.synthetic: {} users drew {} samples in all, more than fedsim can index", users,
                                 total_train + total_test));
  }

  Eigen::VectorXd sd(d);
  for (int j = 0; j < d; ++j) sd[j] = std::sqrt(fm::Pow(static_cast<double>(j + 1), -1.2));

  FederatedData out;
  out.num_users = users;
  Dataset& train = out.train;
  Dataset& test = out.test;
  train.x.resize(total_train, d);
  test.x.resize(total_test, d);
  train.y.resize(total_train);
  test.y.resize(total_test);
  train.user.resize(total_train);
  test.user.resize(total_test);
  train.num_classes = test.num_classes = classes;

  int64_t train_row = 0, test_row = 0;
  Eigen::VectorXd v(d), x(d), logits(classes);
  Eigen::MatrixXd w(d, classes);
  Eigen::VectorXd b(classes);
  for (int k = 0; k < users; ++k) {
    Rng rng = DeriveStream(seed, Stream::kDataGen, 1, static_cast<uint64_t>(k));
    if (cfg.iid) {
      v.setZero();
      w = w_shared;
      b = b_shared;
    } else {
      FillNormal(v, rng, b_mean[k]);
      FillNormal(w, rng, u[k]);
      FillNormal(b, rng, u[k]);
    }
    std::vector<int64_t> order(n[k]);
    std::iota(order.begin(), order.end(), int64_t{0});
    Rng split = DeriveStream(seed, Stream::kDataSplit, 0, static_cast<uint64_t>(k));
    split.Shuffle(order.begin(), order.end());
    // Sample i of user k goes to the row its shuffled position selects.
    std::vector<int64_t> position(n[k]);
    for (int64_t p = 0; p < n[k]; ++p) position[order[p]] = p;

    for (int64_t i = 0; i < n[k]; ++i) {
      for (int j = 0; j < d; ++j) x[j] = v[j] + sd[j] * rng.Normal();
      for (int c = 0; c < classes; ++c) {
        double z = b[c];
        for (int j = 0; j < d; ++j) z += x[j] * w(j, c);
        logits[c] = z;
      }
      Eigen::Index label = 0;
      logits.maxCoeff(&label);  // first maximum, as numpy's argmax
      const int64_t p = position[i];
      Dataset& dst = p < n_train[k] ? train : test;
      const int64_t row = p < n_train[k] ? train_row + p : test_row + (p - n_train[k]);
      dst.x.row(row) = x.transpose().cast<float>();
      dst.y[row] = static_cast<int>(label);
      dst.user[row] = k;
    }
    train_row += n_train[k];
    test_row += n[k] - n_train[k];
  }
  out.description = fmt::format("synthetic{}: {} users, {} train / {} test, {} features, {} classes",
                                cfg.iid ? " iid" : fmt::format("({}, {})", cfg.alpha, cfg.beta), users, total_train,
                                total_test, d, classes);
  return out;
}

}  // namespace fedsim
