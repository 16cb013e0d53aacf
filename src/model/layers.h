// The layers of the layer engine (sequential.h), internal to src/model/.
//
// A layer sees a batch of b samples as one matrix (layouts in sequential.h),
// reads its parameters at params + offset, writes its output into its
// Buffers and, backwards, the gradient of its parameters (overwriting its
// slice of grad) and, when asked, of its input. The driver (ForwardChain,
// BackwardChain) applies a layer's fused activation after Forward and its
// derivative before Backward.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "model/model.h"
#include "model/packed_gemm.h"

namespace fedsim::seq {

// What one sample looks like between two layers.
struct Shape {
  enum class Kind { kFlat, kImage, kSeq, kTokens };
  Kind kind = Kind::kFlat;
  int c = 1;  // features (flat), channels (image), features per step (sequence), vocabulary (tokens)
  int h = 1, w = 1;  // image
  int t = 1;         // sequence and tokens: steps

  static Shape Flat(int f) { return {Kind::kFlat, f, 1, 1, 1}; }
  static Shape Image(int c, int h, int w) { return {Kind::kImage, c, h, w, 1}; }
  static Shape Seq(int f, int t) { return {Kind::kSeq, f, 1, 1, t}; }
  static Shape Tokens(int t, int vocab) { return {Kind::kTokens, vocab, 1, 1, t}; }

  // Floats per sample.
  int64_t size() const {
    switch (kind) {
      case Kind::kImage: return static_cast<int64_t>(c) * h * w;
      case Kind::kSeq: return static_cast<int64_t>(c) * t;
      case Kind::kTokens: return t;
      default: return c;
    }
  }
  // Columns per sample of the activation matrix (c rows).
  int64_t columns() const {
    return kind == Kind::kImage ? static_cast<int64_t>(h) * w : kind == Kind::kSeq ? t : 1;
  }
  bool operator==(const Shape& o) const { return kind == o.kind && c == o.c && h == o.h && w == o.w && t == o.t; }
  // "image [32, 14, 14]", "flat [128]", "sequence [80 steps x 8]", "tokens [80]".
  std::string Str() const;
};

// A layer's memory in one workspace.
struct Buffers {
  Eigen::VectorXf out;     // the layer's output (after its fused activation)
  Eigen::VectorXf saved;   // kept from forward to backward (masks, normalised values, gates)
  Eigen::VectorXf saved2;  // a second such buffer (norm statistics, LSTM cell states)
  Eigen::VectorXf tmp;     // backward scratch
  std::vector<int32_t> idx;    // max-pool winners, token ids
  std::vector<Buffers> inner;  // residual: one per inner layer, then the projection
  PackedLhs pack[2];           // lstm, gru: recurrent matrices packed once per pass
};

// Scratch shared by the layers of one workspace (one layer uses it at a time).
struct Shared {
  Eigen::VectorXf cols;  // the im2col matrix of one chunk of samples
  int conv_chunk = 1;    // samples per im2col chunk (a model constant)
};

// One pass over a batch.
struct Pass {
  bool training = false;      // dropout draws masks only when training
  uint64_t seed = 0;          // Workspace::Noise
  int64_t first_sample = 0;   // index of the batch's first sample in the step
  Shared* shared = nullptr;
};

enum class Act { kNone, kRelu, kTanh, kSigmoid };

class Layer {
 public:
  virtual ~Layer() = default;

  std::string type;   // the spec's type
  std::string name;   // "layers.3" or the spec's name
  int id = 0;         // position in a depth-first walk of all layers (keys dropout masks)
  Shape in, out;
  int64_t offset = 0;  // first parameter
  int64_t count = 0;   // parameters (a residual block: all of its layers')
  Act act = Act::kNone;
  bool local = false;  // the spec's "local": the layer's parameters stay on each client (fedbn)

  // Sizes this layer's buffers for `rows` samples.
  virtual void Allocate(Buffers& buf, int rows) const { buf.out.resize(rows * out.size()); }
  virtual void Init(float* /*params*/, Rng& /*rng*/, double /*scale*/) const {}
  // Writes the output of the b samples x into buf.out (activation not applied).
  virtual void Forward(const float* params, const float* x, int b, Buffers& buf, const Pass& pass) const = 0;
  // gy: dL/d(output before the activation), b samples; the layer may
  // overwrite it. Overwrites grad[offset, offset + count) and, if gx is not
  // null, writes dL/dx into gx.
  virtual void Backward(const float* params, const float* x, int b, Buffers& buf, float* gy, float* gx,
                        float* grad, const Pass& pass) const = 0;
  // Forward multiply-adds per sample.
  virtual double Macs() const { return 0.0; }
  // Multiply-adds of one training pass (forward and backward) that do not
  // depend on the batch: FedPara forming its weight and mapping dW back.
  virtual double PassMacs() const { return 0.0; }
  // Appends this layer's parameter tensors.
  virtual void Ranges(std::vector<ParamRange>& /*r*/) const {}
  // Shape and settings for Describe.
  virtual std::string Describe() const;
  // The spatial stride from input to output (a residual block's shortcut
  // takes its layers' product); 0 where no stride maps the input onto the
  // output (global pooling).
  virtual int Stride() const { return 1; }
  // im2col floats per sample of the widest convolution in this layer.
  virtual int64_t ColsPerSample() const { return 0; }
  // Whether an activation may be applied in place on this layer's output.
  virtual bool Fusable() const { return false; }
  // Model state (batchnorm's running statistics): whether this layer has
  // some, and moving it after a local step from the statistics that the
  // last training forward pass on buf saved.
  virtual bool HasState() const { return false; }
  virtual void UpdateState(float* /*params*/, const Buffers& /*buf*/) const {}
};

using LayerList = std::vector<std::unique_ptr<Layer>>;

// Parses the spec list `spec` (error paths `where`[i].field) into layers for
// input `in`, named "<name_prefix>.<i>" unless the spec names them. A final
// dense without units gets `final_units` (0: units are required everywhere).
// next_offset and next_id advance over the new layers. fedpara_gamma >= 0
// (algorithm.name = fedpara) factorises every dense and conv2d layer with
// that rank ratio (FedParaLayer in layers.cpp). rows_layout: the softmax
// and mlp presets' layout (Sequential::Layout::kRows): dense and relu layers
// only, activations one row per sample (DenseRows in layers.cpp).
LayerList ParseLayers(const nlohmann::json& spec, const std::string& where, const std::string& name_prefix, Shape in,
                      int final_units, int64_t& next_offset, int& next_id, double fedpara_gamma = -1.0,
                      int depth = 0, bool rows_layout = false);

// Appends the parameter tensors of the chain, marked local where their
// layer (or an enclosing block) is.
void CollectRanges(const LayerList& layers, std::vector<ParamRange>& r);

// Runs the chain on x (b samples); returns its output.
const float* ForwardChain(const LayerList& layers, const float* params, const float* x, int b,
                          std::vector<Buffers>& bufs, const Pass& pass);
// Backward through the chain: gy holds dL/d(chain output) (overwritten); ga
// and gb are two scratch buffers distinct from gx (gy may be gb), each
// holding b samples of the chain's widest activation; gx receives dL/d(chain input),
// or is null. need_input[i] (null: all true) says whether layer i needs its
// input gradient; below the first layer that needs none, nothing runs.
void BackwardChain(const LayerList& layers, const float* params, const float* x, int b, std::vector<Buffers>& bufs,
                   float* gy, float* ga, float* gb, float* gx, float* grad, const Pass& pass,
                   const std::vector<bool>* need_input = nullptr);
// The widest activation (input or output of a layer) in the chain, per sample.
int64_t WidestActivation(const LayerList& layers);

}  // namespace fedsim::seq
