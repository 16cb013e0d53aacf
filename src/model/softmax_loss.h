// Softmax cross-entropy over a batch of logits, shared by the dense models.
#pragma once

#include <Eigen/Core>

#include <cmath>

namespace fedsim {

// g holds the b x C logits (one row per sample) on entry and dLoss/dlogits =
// (softmax - onehot(y)) / b on return; returns the mean loss over the batch
// (log-sum-exp with the row maximum subtracted, accumulated in double).
template <class Mat>
double SoftmaxCrossEntropyGrad(Mat&& g, const int* y) {
  const int b = static_cast<int>(g.rows());
  double loss = 0.0;
  const float inv_b = 1.0f / static_cast<float>(b);
  for (int i = 0; i < b; ++i) {
    const float m = g.row(i).maxCoeff();
    const float zy = g(i, y[i]);
    g.row(i).array() = (g.row(i).array() - m).exp();
    const float sum = g.row(i).sum();
    loss += std::log(static_cast<double>(sum)) + m - zy;
    g.row(i) *= inv_b / sum;
    g(i, y[i]) -= inv_b;
  }
  return loss / b;
}

}  // namespace fedsim
