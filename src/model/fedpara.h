// FedPara's factorised layers (Hyeon-Woo, Ye-Bin, Oh, "FedPara: Low-Rank
// Hadamard Product Parameterization for Communication-Efficient Federated
// Learning", ICLR 2022): the rank rule, the factors' init bound and cost, and
// the dense factor's form and gradient. The layers themselves are the layer
// engine's (layers.cpp): FedParaLayer wraps a dense or conv2d layer, and
// FedParaDenseRows is the factorised dense layer of the softmax and mlp
// presets (algorithm.name = fedpara with model.kind = softmax or mlp).
//
// A factorised dense layer with fan_in m and fan_out n has the weight
//   W = (X1 Y1^T) o (X2 Y2^T),   X1, X2 in R^{m x R},  Y1, Y2 in R^{n x R},
// where o is the elementwise (Hadamard) product, plus a dense bias b in R^n.
// rank(W) can reach R^2 while the layer holds only 2R(m+n) + n parameters.
// Only the factors and biases live in the flat parameter vector, so a client
// trains and sends the factors: bytes on the wire = num_params() * 4.
#pragma once

#include "model/model.h"

namespace fedsim {

// The rank R of both Hadamard factors of an m x n FedPara layer for the
// parameter ratio gamma in [0, 1]:
//
//   R = ceil((1 - gamma) * r_min + gamma * r_max),
//   r_min = ceil(sqrt(min(m, n)))     smallest R with R^2 >= min(m, n), so the
//                                      Hadamard product can be full rank;
//   r_max = floor(m n / (2 (m + n)))   largest R with 2R(m + n) <= m n, i.e. the
//                                      factors hold no more than the dense W.
//
// Source: the Flower FedPara baseline's fully connected layer (adap/flower,
// baselines/fedpara/fedpara/models.py, Linear._calc_from_ratio), which
// interpolates with the paper's ratio gamma exactly so, ceil and floor
// included. The authors' own notebook (South-hw/FedPara_ICLR22) covers only
// convolutions; it takes gamma as a target fraction of the dense parameter
// count and keeps R >= max(ceil(sqrt(m)), ceil(sqrt(n))), a different rule.
//
// Deviation for tiny layers: where r_max < r_min (FedPara cannot beat the dense
// layer while staying full rank, e.g. 4 x 3) r_max is raised to r_min, so R =
// r_min for every gamma; the unclamped formula would give R < r_min, or even 0.
//
// REQUIRES: m >= 1, n >= 1, 0 <= gamma <= 1 (throws InputError otherwise).
int FedParaRank(int m, int n, double gamma);

// The rank R of both Hadamard factors of a FedPara convolution with `in`
// input channels, `out` output channels and a k x k kernel (Proposition 3 of
// the paper, below), for the ratio gamma in [0, 1]:
//
//   r_min = ceil(sqrt(min(in, out)))    smallest R with R^2 >= min(in, out)
//   r_max = the largest R with 2 (k^2 R^2 + (in + out) R) <= in out k^2,
//           i.e. the two factors hold no more than the dense kernel
//   R = ceil((1 - gamma) * r_min + gamma * r_max)
//
// Source: the Flower FedPara baseline's Conv2d._calc_from_ratio (adap/flower,
// baselines/fedpara/fedpara/models.py), which interpolates so; it takes
// r_max as the floor of the positive root of k^2 R^2 + (in + out) R -
// in out k^2 / 2 = 0, computed here exactly in integers. The same clamp as
// FedParaRank: r_max is raised to r_min where it is smaller (tiny layers).
//
// REQUIRES: in, out, kernel >= 1, 0 <= gamma <= 1 (throws InputError otherwise).
int FedParaConvRank(int in, int out, int kernel, double gamma);

// One Hadamard factor of a FedPara convolution in Cnn's weight layout (the
// column-major out x (k^2 in) matrix whose column p * in + c belongs to kernel
// position p = kh * k + kw and input channel c). Proposition 3 of the paper
// writes a factor as the tensor T x1 X x2 Y; per kernel position p that is
//
//   W_p = X T_p Y^T    (out x in),  X in R^{out x R}, Y in R^{in x R}, T_p in R^{R x R},
//
// with T stored as the column-major R x (R k^2) matrix [T_0 ... T_{k^2-1}], so
// that entry (x, p R + y) is T[x, y, kh, kw]. `positions` is k^2.
//
// Form: writes z = X T (out x R k^2, kept for the backward pass) and w.
void FedParaConvForm(int out, int in, int positions, int rank, const float* t, const float* x, const float* y,
                     float* z, float* w);
// Backward of FedParaConvForm: with g = dL/dW (out x k^2 in) and z from the
// forward pass, overwrites
//   dT_p = X^T g_p Y,   dX = sum_p g_p Y T_p^T,   dY = sum_p g_p^T X T_p.
// h is scratch of out x R k^2 floats.
void FedParaConvGrad(int out, int in, int positions, int rank, const float* g, const float* t, const float* x,
                     const float* y, const float* z, float* h, float* dt, float* dx, float* dy);

// The pieces shared by the FedPara Cnn and the layer engine's FedParaLayer,
// for a layer with weight W (out x in k^2, column-major, Cnn's layout) and
// `positions` = k^2 (1 for a dense layer).
//
// Init: the bound of the uniform draw of every factor entry when the plain
// layer draws W uniform(+-bound). Each entry has variance s^2; a dense
// factor's entry sum_r x_r y_r has variance R s^4, a convolution factor's
// R^2 s^6, and W = W1 o W2 the product of its factors' variances: R^2 s^8
// (dense) or R^4 s^12 (convolution). Matching bound^2 / 3 gives
// s^2 = (bound^2 / (3 R^2))^(1/4) or (bound^2 / (3 R^4))^(1/6).
double FedParaFactorBound(bool conv, int rank, double bound);
// Multiply-adds of one pass that do not depend on the batch: forming both
// factors and W = W1 o W2, then mapping dW back onto the factors.
double FedParaPassMacs(bool conv, int out, int in, int positions, int rank);
// A dense factor W_f = X Y^T (out x in; X out x R, Y in x R), and its
// backward from g = dL/dW_f: dX = g Y, dY = g^T X.
void FedParaDenseForm(int out, int in, int rank, const float* x, const float* y, float* w);
void FedParaDenseGrad(int out, int in, int rank, const float* g, const float* x, const float* y, float* dx, float* dy);

}  // namespace fedsim
