// Client optimizer: SGD with heavy-ball momentum and L2 weight decay, as in
// PyTorch's torch.optim.SGD (dampening 0, no Nesterov):
//   g <- grad + weight_decay * w;  v <- momentum * v + g;  w <- w - lr * v.
// With momentum 0 this is plain SGD. The velocity buffer belongs to one thread
// and is reset at the start of each client's local training.
#pragma once

#include <Eigen/Core>

#include <cstdint>

namespace fedsim {

class Sgd {
 public:
  Sgd(float momentum, float weight_decay) : momentum_(momentum), weight_decay_(weight_decay) {}

  // Zeroes the velocity for a model of n parameters.
  void Reset(int64_t n) {
    if (momentum_ != 0.0f) velocity_.setZero(n);
  }

  void Step(float* params, const float* grad, int64_t n, float lr) {
    Eigen::Map<Eigen::VectorXf> w(params, n);
    Eigen::Map<const Eigen::VectorXf> g(grad, n);
    if (momentum_ == 0.0f) {
      if (weight_decay_ == 0.0f) {
        w -= lr * g;
      } else {
        w -= lr * (g + weight_decay_ * w);
      }
      return;
    }
    velocity_ = momentum_ * velocity_ + g + weight_decay_ * w;
    w -= lr * velocity_;
  }

  // The momentum velocity (empty without momentum), for checkpoints.
  const Eigen::VectorXf& velocity() const { return velocity_; }
  void set_velocity(const Eigen::VectorXf& v) { velocity_ = v; }

 private:
  float momentum_;
  float weight_decay_;
  Eigen::VectorXf velocity_;
};

}  // namespace fedsim
