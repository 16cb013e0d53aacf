// Convolutional networks built from a layer list: Conv2D, MaxPool2D, ReLU and
// Dense layers ending in a softmax cross-entropy output.
//
// Inputs are rows of channels * height * width floats in (C, H, W) order (for
// Fashion-MNIST 1 x 28 x 28: the 784 pixels row by row). Internally every
// image is kept in HWC order (channels fastest), so a batch of activations is
// a column-major channels x (batch * H * W) matrix and each convolution is one
// GEMM, W (out x k*k*in) times the im2col matrix of the batch (see
// conv_ops.h). Dense layers see the flattened HWC features (Flatten is
// implicit) and compute Z (out x batch) = W A + b.
//
// Parameter layout, layer by layer in list order (pooling and ReLU have none):
//   Conv2D: W as a column-major out_channels x (k * k * in_channels) matrix,
//           column (kh * k + kw) * in_channels + c, then b (out_channels).
//   Dense:  W as a column-major out x in matrix, in indexing the flattened
//           HWC input ((h * width + w) * channels + c), then b (out).
//
// Each convolution processes the batch in chunks of a fixed number of samples
// (a model constant, so results never depend on the workspace or the batch
// split): im2col of the chunk, then one GEMM per pass. The chunk's column
// matrix is kept small enough to stay in cache, which is faster than one GEMM
// over the whole batch and bounds the workspace.
//
// FedPara (Hyeon-Woo et al., ICLR 2022; fedpara.h). Built with a gamma, every
// convolution and dense layer becomes a low-rank Hadamard product whose
// factors, not W, are the parameters; W is formed from them once per batch
// (into the workspace) and then used exactly as the plain weight above.
//   Conv2D (Proposition 3): W = W1 o W2, each factor per kernel position p
//     W_p = X T_p Y^T (FedParaConvForm), rank R = FedParaConvRank(in, out, k,
//     gamma). Layout: T1 (R x R k^2), X1 (out x R), Y1 (in x R), T2, X2, Y2,
//     then b (out); 2 (R^2 k^2 + R (out + in)) + out parameters.
//   Dense: W = (X1 Y1^T) o (X2 Y2^T), X (out x R), Y (in x R), R =
//     FedParaRank(in, out, gamma) as for the dense layers. Layout: X1, Y1, X2, Y2,
//     then b (out); 2 R (out + in) + out parameters.
// Every block is column-major.
//
// Thread-safety: immutable after construction; each thread passes its own
// Workspace.
#pragma once

#include <optional>

#include "model/conv_ops.h"
#include "model/model.h"

namespace fedsim {

struct CnnLayer {
  enum class Type { kConv, kMaxPool, kRelu, kDense };
  Type type = Type::kDense;
  int out = 0;      // conv: output channels; dense: output features
  int kernel = 0;   // conv and pool: k of the k x k window
  int stride = 1;   // conv and pool
  int padding = 0;  // conv: zeros added on each side

  static CnnLayer Conv(int out_channels, int kernel, int stride = 1, int padding = 0) {
    return {Type::kConv, out_channels, kernel, stride, padding};
  }
  static CnnLayer MaxPool(int kernel, int stride) { return {Type::kMaxPool, 0, kernel, stride, 0}; }
  static CnnLayer Relu() { return {Type::kRelu, 0, 0, 1, 0}; }
  static CnnLayer Dense(int out) { return {Type::kDense, out, 0, 1, 0}; }
};

class Cnn : public Model {
 public:
  // Images of channels x height x width; the last layer must be Dense (its
  // out is the number of classes). A ReLU applies to the output of the layer
  // before it and may not come first. init_scale as in the dense layers. conv_chunk:
  // samples per im2col chunk; 0 (the default) picks the most whose column
  // matrix fits in 4 MiB (at least 1). Throws InputError for a bad list or a
  // window that does not fit its input.
  // With fedpara_gamma set, every Conv2D and Dense layer is FedPara's
  // (above) with that rank ratio; InputError if it is outside [0, 1].
  Cnn(int channels, int height, int width, std::vector<CnnLayer> layers, double init_scale, std::string kind,
      int conv_chunk = 0, std::optional<double> fedpara_gamma = std::nullopt);

  std::string kind() const override { return kind_; }
  int64_t num_params() const override { return num_params_; }
  // Input shape, each layer with its output shape, and the parameter count.
  std::string Describe() const override;
  // 2 x multiply-adds of the forward GEMMs, the weight-gradient GEMMs and the
  // input-gradient GEMMs (none below the first parameterised layer).
  double TrainFlopsPerSample() const override;
  // FedPara: 2 x multiply-adds of forming every W from its factors and of
  // mapping dW back onto the factors, once per batch; 0 otherwise.
  double TrainFlopsPerBatch() const override;
  // Weights and biases uniform(+-init_scale / sqrt(fan_in)), fan_in =
  // in_channels * k * k for a convolution (PyTorch's default). FedPara: the
  // factors uniform with the variance that gives the formed W this init's
  // variance (derivation in cnn.cpp); biases as above.
  void Init(float* params, Rng& rng) const override;
  // Allocates every buffer a batch of up to max_batch needs: activations,
  // argmax indices, the im2col matrix of one chunk and two gradient buffers.
  std::unique_ptr<Workspace> NewWorkspace(int max_batch) const override;
  double LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                         Workspace& ws) const override;
  EvalSums Evaluate(const float* params, const float* x, const int* y, int b, Workspace& ws) const override;
  // "layers.i.weight" and "layers.i.bias" for each Conv2D and Dense entry i
  // of layers(), in layout order (FedPara: "weight" spans the factors).
  std::vector<ParamRange> ParamRanges() const override;

  // Runs the forward pass on the b rows of x and returns the output of
  // layers()[layer] for the batch: b images in HWC order (b x out features
  // for Dense), after the ReLU when one follows. Valid until ws is next used.
  // For tests and diagnostics. REQUIRES: b <= ws's max_batch.
  const float* Activations(const float* params, const float* x, int b, int layer, Workspace& ws) const;

  const std::vector<CnnLayer>& layers() const { return layers_; }
  // Samples per im2col chunk.
  int conv_chunk() const { return conv_chunk_; }
  // FedPara: the rank R of each Conv2D and Dense layer, in list order (empty
  // for a plain CNN).
  std::vector<int> fedpara_ranks() const;

 private:
  class Ws;
  // One parameterised or pooling layer, with a following ReLU folded in.
  struct Op {
    CnnLayer::Type type;
    WindowGeometry geom;  // input shape; window for conv and pool
    int out_c = 0, out_h = 1, out_w = 1;
    bool relu = false;
    bool needs_input_grad = false;  // some parameterised op precedes it
    int layer = 0;                  // index of the op's own entry in layers_
    int64_t w_offset = 0, b_offset = 0;
    // FedPara: rank of both factors (0: a plain W at w_offset) and the factor
    // offsets (t1, t2 unused for Dense).
    int rank = 0;
    int64_t t1 = 0, x1 = 0, y1 = 0, t2 = 0, x2 = 0, y2 = 0;
    int64_t fan_in() const { return type == CnnLayer::Type::kConv ? geom.col_rows() : in_size(); }
    int positions() const { return type == CnnLayer::Type::kConv ? geom.kernel * geom.kernel : 1; }
    // Channels (conv) or features (dense) a weight column sees.
    int w_in() const { return type == CnnLayer::Type::kConv ? geom.channels : static_cast<int>(in_size()); }

    int64_t in_size() const { return geom.in_size(); }
    int64_t out_size() const { return static_cast<int64_t>(out_c) * out_h * out_w; }
    double Macs() const;  // forward multiply-adds per sample
  };

  // Runs the forward pass; leaves each op's output in ws.act, the logits
  // (classes x b) in the last. FedPara: forms every W into ws first.
  void Forward(const float* params, const float* x, int b, Ws& ws) const;
  // FedPara: maps dW (in ws.dw) of op i onto its factors' gradients.
  void FactorGrad(const Op& op, size_t i, const float* params, float* grad, Ws& ws) const;

  int channels_, height_, width_;
  std::vector<CnnLayer> layers_;
  std::vector<Op> ops_;
  int conv_chunk_ = 1;
  int64_t num_params_ = 0;
  double init_scale_;
  std::string kind_;
  std::optional<double> fedpara_gamma_;
};

// McMahan et al. 2017's CNN: conv 5x5x32 'same' -> ReLU -> max-pool 2 ->
// conv 5x5x64 'same' -> ReLU -> max-pool 2 -> dense 512 -> ReLU -> dense
// classes. 1,663,370 parameters on 1 x 28 x 28 with 10 classes. kind
// "cnn_mcmahan", or "fedpara_cnn_mcmahan" with fedpara_gamma (324,632
// parameters at gamma 0.1).
std::unique_ptr<Cnn> MakeCnnMcMahan(int channels, int height, int width, int classes, double init_scale,
                                    std::optional<double> fedpara_gamma = std::nullopt);

// NIID-Bench's simple CNN (SimpleCNNMNIST on 28 x 28, SimpleCNN on 32 x 32):
// conv 5x5x6 -> ReLU -> max-pool 2 -> conv 5x5x16 -> ReLU -> max-pool 2 ->
// dense 120 -> ReLU -> dense 84 -> ReLU -> dense classes, no padding. 44,426
// parameters on 1 x 28 x 28 with 10 classes. kind "cnn_lenet", or
// "fedpara_cnn_lenet" with fedpara_gamma.
std::unique_ptr<Cnn> MakeCnnLeNet(int channels, int height, int width, int classes, double init_scale,
                                  std::optional<double> fedpara_gamma = std::nullopt);

}  // namespace fedsim
