// Building blocks of the dense layers that keep one row per sample (the
// softmax and mlp presets' rows layout, FedGAN's nets): a dense layer's
// forward and backward passes on b x width column-major activation buffers,
// and the softmax cross-entropy gradient. The first layer reads the batch
// rows as given (row-major b x in).
#pragma once

#include <Eigen/Core>

#include <cmath>

#include "core/fmath.h"
#include "data/dataset.h"

namespace fedsim {

// z (b x out) = a (b x in) W (in x out) + 1 bias^T, then ReLU if relu.
inline void DenseForward(const float* a, bool a_row_major, const float* w, const float* bias, int b, int in, int out,
                         bool relu, float* z_out) {
  Eigen::Map<const Eigen::MatrixXf> wm(w, in, out);
  Eigen::Map<Eigen::MatrixXf> z(z_out, b, out);
  if (a_row_major) {
    z.noalias() = Eigen::Map<const RowMatrix>(a, b, in) * wm;
  } else {
    z.noalias() = Eigen::Map<const Eigen::MatrixXf>(a, b, in) * wm;
  }
  z.rowwise() += Eigen::Map<const Eigen::VectorXf>(bias, out).transpose();
  if (relu) z = z.cwiseMax(0.0f);
}

// With gl = dL/dz (b x out): dw (in x out) = a^T gl and db (out) = column sums.
inline void DenseParamGrad(const float* a, bool a_row_major, const float* gl, int b, int in, int out, float* dw,
                           float* db) {
  Eigen::Map<const Eigen::MatrixXf> g(gl, b, out);
  Eigen::Map<Eigen::MatrixXf> d(dw, in, out);
  if (a_row_major) {
    d.noalias() = Eigen::Map<const RowMatrix>(a, b, in).transpose() * g;
  } else {
    d.noalias() = Eigen::Map<const Eigen::MatrixXf>(a, b, in).transpose() * g;
  }
  Eigen::Map<Eigen::VectorXf>(db, out) = g.colwise().sum().transpose();
}

// dL/d(layer input): gp (b x in) = gl W^T.
inline void DenseInputProduct(const float* gl, const float* w, int b, int in, int out, float* gp) {
  Eigen::Map<Eigen::MatrixXf>(gp, b, in).noalias() =
      Eigen::Map<const Eigen::MatrixXf>(gl, b, out) * Eigen::Map<const Eigen::MatrixXf>(w, in, out).transpose();
}

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
    const float sum = fm::ExpShiftedInPlace(g.row(i), m);
    loss += fm::Log(static_cast<double>(sum)) + m - zy;
    g.row(i) *= inv_b / sum;
    g(i, y[i]) -= inv_b;
  }
  return loss / b;
}

}  // namespace fedsim
