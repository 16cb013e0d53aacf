// The layer engine: a model described by a list of layers (model.kind =
// sequential with model.layers, or a preset of the literature's benchmark
// models) over one flat float32 parameter vector. Every layer views its own
// slice of that vector; the slices follow the list order, and each one is
// named (ParamRanges) so that algorithms can address layers.
//
// Activations of a batch of b samples are column-major matrices:
//   flat     F x b                      (one column per sample)
//   image    C x (b * H * W)            (each sample's H x W positions, HWC:
//                                        channels fastest, as in conv_ops.h)
//   sequence F x (T * b), time-major    (column t * b + n is step t of sample n)
// so a dense layer, a convolution (after im2col), an LSTM's input projection
// and its per-step recurrence are each one GEMM over the batch.
//
// The spec (docs/models.md lists every type and field): dense, conv2d,
// maxpool2d, avgpool2d, global_avgpool, flatten, relu, tanh, sigmoid,
// dropout, groupnorm, layernorm, batchnorm, embedding, lstm, gru, last_step,
// residual. An activation that follows a dense or conv2d layer is applied in
// place on its output (no extra buffer or pass). The last layer's output must be flat with
// one value per class (a final dense without "units" gets the class count);
// the loss is softmax cross-entropy as for every fedsim model.
//
// Errors in a spec are InputErrors naming the entry and field, e.g.
// "model.layers[2].kernel: ..." (inside a residual block
// "model.layers[4].layers[1].filters"), and, where the model does not fit the
// data, the data key too.
//
// Next-token data (ModelInput::next_token, Dataset::next_token): a sample is
// T + 1 token ids; the model reads the first T and its last layer must output
// a sequence of T steps with one value per class, scored against ids [1, T]
// (step t against id t + 1) by the mean softmax cross-entropy over the
// targets that are not pad_id, in the batch as a whole; Evaluate's sums count
// those targets, not samples.
//
// Thread-safety: immutable after construction; each thread passes its own
// Workspace. No layer allocates memory per batch: every buffer is sized in
// NewWorkspace.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model.h"

namespace fedsim {

namespace seq {
class Layer;
}

// What the data gives the first layer.
struct ModelInput {
  int dim = 0;               // features per sample (Dataset::dim())
  std::vector<int> shape;    // Dataset::shape: {C, H, W} images, {T} tokens, or empty
  int vocab_size = 0;        // Dataset::vocab_size: > 0 for token data
  bool next_token = false;   // Dataset::next_token: rows of T + 1 ids, every step predicted
  int pad_id = 0;            // Dataset::pad_id: a target not scored
};

class Sequential : public Model {
 public:
  // How flat activations are laid out. kColumns: one column per sample, as
  // above. kRows (the softmax and mlp presets, MakeDenseStack): b x width
  // column-major, one row per sample, the layout of fedsim's first dense
  // models, whose results those presets keep bit for bit; dense and relu
  // layers only, every sample a flat row of features, a batch never split
  // into sub-batches, and Logits b x classes.
  enum class Layout { kColumns, kRows };

  // Builds the layers of `spec` (a JSON array of layer objects) for `input`
  // (input_shape, if not empty, overrides the data's image shape) and
  // `num_classes` classes. `where` prefixes error paths ("model.layers", or
  // "model.kind=NAME: layers" for a preset). fedpara_gamma >= 0
  // (algorithm.name = fedpara) factorises every dense and conv2d layer
  // (seq::ParseLayers). Throws InputError.
  Sequential(const nlohmann::json& spec, const ModelInput& input, const std::vector<int>& input_shape,
             int num_classes, double init_scale, std::string kind, std::string where = "model.layers",
             double fedpara_gamma = -1.0, Layout layout = Layout::kColumns);
  ~Sequential() override;

  std::string kind() const override { return kind_; }
  int64_t num_params() const override { return num_params_; }
  // The input, each layer with its output shape, and the parameter count.
  std::string Describe() const override;
  // 2 x multiply-adds of forward, weight gradients and input gradients (no
  // input gradient below the first layer with parameters).
  double TrainFlopsPerSample() const override;
  // FedPara layers: forming their weights and mapping dW back, per pass.
  double TrainFlopsPerBatch() const override;
  // Per layer, in list order: dense, conv2d and lstm weights uniform(+-
  // init_scale / sqrt(fan_in)) then their biases with the same bound (an
  // LSTM's fan_in is its units, as PyTorch's nn.LSTM, and its forget-gate
  // biases get +1, Keras' unit_forget_bias); embeddings uniform(+-0.05
  // init_scale) (Keras' default); norm scales 1, shifts 0. Dense and conv2d
  // draw exactly as Cnn::Init, so a spec of cnn_mcmahan's layers starts from
  // the same parameters as model.kind=cnn_mcmahan.
  void Init(float* params, Rng& rng) const override;
  // Buffers for batches of up to max_batch; a batch larger than the engine's
  // memory budget (64 MiB of activations) is processed in sub-batches.
  std::unique_ptr<Workspace> NewWorkspace(int max_batch) const override;
  double LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                         Workspace& ws) const override;
  EvalSums Evaluate(const float* params, const float* x, const int* y, int b, Workspace& ws) const override;
  // One range per parameter tensor, named "<layer>.<tensor>": layer names are
  // "layers.<i>" (or the spec's "name"), "layers.<i>.layers.<j>" inside a
  // residual block and "layers.<i>.projection" for its shortcut; tensors are
  // weight and bias (dense, conv2d, embedding), gamma and beta (norms),
  // kernel, recurrent and bias (lstm).
  std::vector<ParamRange> ParamRanges() const override;
  // Next-token data: the targets of the b rows x that are scored (checking
  // each is a class); b otherwise.
  int64_t ScoredTargets(const float* x, int b) const override;
  // batchnorm's running statistics (a batch must then fit one sub-batch:
  // LossAndGradient refuses a larger one).
  bool HasState() const override { return has_state_; }
  void UpdateState(float* params, const Workspace& ws) const override;

  // The logits (classes x b, one column per sample; b x classes in the rows
  // layout) of a forward pass in evaluation mode (dropout off). Valid until
  // ws is next used.
  const float* Logits(const float* params, const float* x, int b, Workspace& ws) const;

 private:
  class Ws;
  void Forward(const float* params, const float* x, int b, bool training, Ws& ws) const;
  double ChunkLossAndGradient(const float* params, const float* x, const int* y, int b, float* grad, Ws& ws) const;
  // Next-token data: the sum of the chunk's target losses; grad = the
  // gradient of that sum times inv_targets.
  double ChunkNextTokenLoss(const float* params, const float* x, int b, float inv_targets, float* grad, Ws& ws) const;
  int steps() const { return input_.dim - 1; }

  std::vector<std::unique_ptr<seq::Layer>> layers_;
  std::vector<bool> needs_input_grad_;  // per layer: some earlier layer has parameters
  ModelInput input_;
  int num_classes_ = 0;
  int64_t num_params_ = 0;
  double init_scale_ = 1.0;
  double fedpara_gamma_ = -1.0;
  bool rows_ = false;  // Layout::kRows
  int conv_chunk_ = 1;
  bool has_state_ = false;
  std::string kind_;
};

// The presets of the layer engine (model.kind): leaf_femnist_cnn,
// leaf_shakespeare_lstm, tff_emnist_cnn, niid_cifar_cnn, sent140_lstm,
// tff_stackoverflow_lstm, resnet20_gn. Sources and parameter counts in
// docs/models.md.
bool IsPreset(const std::string& kind);
// The preset's layer spec (its final dense has no "units": the class count).
// every_step (next-token data): a recurrent preset's last recurrent layer
// returns every step, so the model predicts at every step.
nlohmann::json PresetLayers(const std::string& kind, bool every_step = false);

// The layers of the softmax and mlp presets: dense layers of the given
// widths named layers.0, layers.1, ..., with a ReLU after each but the last.
nlohmann::json DenseStackLayers(const std::vector<int>& widths);

// model.kind = softmax (sizes {in, classes}) or mlp (sizes {in, hidden...,
// classes}): DenseStackLayers in the rows layout. Parameters per layer W
// (in x out, column-major) then b, all drawn uniform(+-init_scale /
// sqrt(in)) in that order. fedpara_gamma >= 0 factorises every layer
// (FedPara, kind "fedpara"). Throws InputError for fewer than two sizes or
// a size below 1.
std::unique_ptr<Sequential> MakeDenseStack(const std::vector<int>& sizes, double init_scale, const std::string& kind,
                                           double fedpara_gamma = -1.0);

// model.kind = sequential (cfg.layers) or a preset, for this data.
std::unique_ptr<Sequential> MakeSequential(const ModelConfig& cfg, const ModelInput& input, int num_classes,
                                           double fedpara_gamma = -1.0);

}  // namespace fedsim
