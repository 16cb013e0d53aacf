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
// Thread-safety: immutable after construction; each thread passes its own
// Workspace.
#pragma once

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
  // before it and may not come first. init_scale as in Mlp. conv_chunk:
  // samples per im2col chunk; 0 (the default) picks the most whose column
  // matrix fits in 4 MiB (at least 1). Throws InputError for a bad list or a
  // window that does not fit its input.
  Cnn(int channels, int height, int width, std::vector<CnnLayer> layers, double init_scale, std::string kind,
      int conv_chunk = 0);

  std::string kind() const override { return kind_; }
  int64_t num_params() const override { return num_params_; }
  // Input shape, each layer with its output shape, and the parameter count.
  std::string Describe() const override;
  // 2 x multiply-adds of the forward GEMMs, the weight-gradient GEMMs and the
  // input-gradient GEMMs (none below the first parameterised layer).
  double TrainFlopsPerSample() const override;
  // Weights and biases uniform(+-init_scale / sqrt(fan_in)), fan_in =
  // in_channels * k * k for a convolution (PyTorch's default).
  void Init(float* params, Rng& rng) const override;
  // Allocates every buffer a batch of up to max_batch needs: activations,
  // argmax indices, the im2col matrix of one chunk and two gradient buffers.
  std::unique_ptr<Workspace> NewWorkspace(int max_batch) const override;
  double LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                         Workspace& ws) const override;
  EvalSums Evaluate(const float* params, const float* x, const int* y, int b, Workspace& ws) const override;

  // Runs the forward pass on the b rows of x and returns the output of
  // layers()[layer] for the batch: b images in HWC order (b x out features
  // for Dense), after the ReLU when one follows. Valid until ws is next used.
  // For tests and diagnostics. REQUIRES: b <= ws's max_batch.
  const float* Activations(const float* params, const float* x, int b, int layer, Workspace& ws) const;

  const std::vector<CnnLayer>& layers() const { return layers_; }
  // Samples per im2col chunk.
  int conv_chunk() const { return conv_chunk_; }

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

    int64_t in_size() const { return geom.in_size(); }
    int64_t out_size() const { return static_cast<int64_t>(out_c) * out_h * out_w; }
    double Macs() const;  // forward multiply-adds per sample
  };

  // Runs the forward pass; leaves each op's output in ws.act, the logits
  // (classes x b) in the last.
  void Forward(const float* params, const float* x, int b, Ws& ws) const;

  int channels_, height_, width_;
  std::vector<CnnLayer> layers_;
  std::vector<Op> ops_;
  int conv_chunk_ = 1;
  int64_t num_params_ = 0;
  double init_scale_;
  std::string kind_;
};

// McMahan et al. 2017's CNN: conv 5x5x32 'same' -> ReLU -> max-pool 2 ->
// conv 5x5x64 'same' -> ReLU -> max-pool 2 -> dense 512 -> ReLU -> dense
// classes. 1,663,370 parameters on 1 x 28 x 28 with 10 classes. kind
// "cnn_mcmahan".
std::unique_ptr<Cnn> MakeCnnMcMahan(int channels, int height, int width, int classes, double init_scale);

// NIID-Bench's simple CNN (SimpleCNNMNIST on 28 x 28, SimpleCNN on 32 x 32):
// conv 5x5x6 -> ReLU -> max-pool 2 -> conv 5x5x16 -> ReLU -> max-pool 2 ->
// dense 120 -> ReLU -> dense 84 -> ReLU -> dense classes, no padding. 44,426
// parameters on 1 x 28 x 28 with 10 classes. kind "cnn_lenet".
std::unique_ptr<Cnn> MakeCnnLeNet(int channels, int height, int width, int classes, double init_scale);

}  // namespace fedsim
