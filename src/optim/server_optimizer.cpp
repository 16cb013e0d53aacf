#include "optim/server_optimizer.h"

namespace fedsim {

void ServerOptimizer::Step(Eigen::VectorXf& x, const Eigen::VectorXf& delta) {
  if (averaged_.empty()) {
    Apply(x, delta);
    return;
  }
  masked_ = delta;
  for (const auto& [begin, size] : averaged_) masked_.segment(begin, size).setZero();
  Apply(x, masked_);
  for (const auto& [begin, size] : averaged_) x.segment(begin, size) += delta.segment(begin, size);
}

void ServerOptimizer::Apply(Eigen::VectorXf& x, const Eigen::VectorXf& delta) {
  const float eta = static_cast<float>(eta_);
  if (kind_ == Kind::kSgd) {
    x += eta * delta;
    return;
  }
  if (m_.size() != delta.size()) m_.setZero(delta.size());
  if (kind_ == Kind::kMomentum) {
    m_ = static_cast<float>(beta1_) * m_ + delta;
    x += eta * m_;
    return;
  }
  if (v_.size() != delta.size()) v_.setConstant(delta.size(), static_cast<float>(tau_ * tau_));
  const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
  m_ = b1 * m_ + (1.0f - b1) * delta;
  const Eigen::ArrayXf d2 = delta.array().square();
  switch (kind_) {
    case Kind::kAdagrad:
      v_.array() += d2;
      break;
    case Kind::kAdam:
      v_.array() = b2 * v_.array() + (1.0f - b2) * d2;
      break;
    case Kind::kYogi:
      v_.array() -= (1.0f - b2) * d2 * (v_.array() - d2).sign();
      break;
    default:
      break;
  }
  x.array() += eta * m_.array() / (v_.array().sqrt() + static_cast<float>(tau_));
}

}  // namespace fedsim
