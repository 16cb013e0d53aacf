// Server optimizers: how the server turns the aggregated client update Delta
// (a pseudo-gradient pointing downhill) into a step on the global model x.
//   sgd      x <- x + eta * Delta
//   momentum v <- beta * v + Delta;  x <- x + eta * v          (FedAvgM; Hsu et al. 2019)
//   adagrad  m <- b1 m + (1-b1) Delta;  v <- v + Delta^2;                 x <- x + eta m / (sqrt(v) + tau)
//   adam     m <- b1 m + (1-b1) Delta;  v <- b2 v + (1-b2) Delta^2;       x <- x + eta m / (sqrt(v) + tau)
//   yogi     m <- b1 m + (1-b1) Delta;  v <- v - (1-b2) Delta^2 sign(v - Delta^2);  x <- x + eta m / (sqrt(v) + tau)
// The last three are FedAdagrad, FedAdam and FedYogi of Reddi et al.,
// "Adaptive Federated Optimization", ICLR 2021 (Algorithm 2): no bias
// correction; m starts at 0 and v at tau^2.
// Averaged ranges (SetAveraged: a model's state, batchnorm's running
// statistics) take none of these: x <- x + Delta there, the clients' mean;
// their first moment stays 0 and their second is never read.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fedsim {

class ServerOptimizer {
 public:
  enum class Kind { kSgd, kMomentum, kAdagrad, kAdam, kYogi };

  ServerOptimizer(Kind kind, double eta, double beta1, double beta2, double tau)
      : kind_(kind), eta_(eta), beta1_(beta1), beta2_(beta2), tau_(tau) {}

  // One step on x with the aggregated update delta.
  void Step(Eigen::VectorXf& x, const Eigen::VectorXf& delta);
  // (begin, size) ranges of x that a step sets to the clients' mean instead.
  void SetAveraged(std::vector<std::pair<int64_t, int64_t>> ranges) { averaged_ = std::move(ranges); }

  // State for inspection and tests: momentum / first moment, second moment.
  const Eigen::VectorXf& m() const { return m_; }
  const Eigen::VectorXf& v() const { return v_; }
  // For checkpoints: the moments as they stand (empty before the first step).
  void SetState(Eigen::VectorXf m, Eigen::VectorXf v) {
    m_ = std::move(m);
    v_ = std::move(v);
  }

 private:
  // The step of kind_ on every coordinate.
  void Apply(Eigen::VectorXf& x, const Eigen::VectorXf& delta);

  Kind kind_;
  double eta_, beta1_, beta2_, tau_;
  Eigen::VectorXf m_, v_;
  std::vector<std::pair<int64_t, int64_t>> averaged_;
  Eigen::VectorXf masked_;  // delta with the averaged ranges zeroed
};

}  // namespace fedsim
