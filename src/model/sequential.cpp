#include "model/sequential.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fmath.h"
#include "model/conv_ops.h"
#include "model/dense_ops.h"
#include "model/layers.h"

namespace fedsim {

namespace {

using nlohmann::json;
using MatMap = Eigen::Map<Eigen::MatrixXf>;
using ConstMatMap = Eigen::Map<const Eigen::MatrixXf>;
using seq::Buffers;
using seq::Shape;

// As Cnn's: one im2col chunk holds at most 4 MiB (conv_chunk samples of the
// widest convolution), so results never depend on the workspace.
constexpr int64_t kColBudgetFloats = int64_t{1} << 20;
// Activation memory of one workspace; a larger batch runs in sub-batches.
constexpr int64_t kActivationBudgetFloats = int64_t{16} << 20;

// exp(v[k] - shift) in place over n contiguous floats, returning their sum in
// index order: the bits of fm::ExpShiftedInPlace (fm::ExpSpan computes
// fm::ExpF's values), with the exponentials vectorised. The every-step loss
// runs it on columns of up to a vocabulary's width (10,004 for StackOverflow).
float ExpShiftedColumn(float* v, int64_t n, float shift) {
  for (int64_t k = 0; k < n; ++k) v[k] -= shift;
  fm::ExpSpan(v, n);
  float sum = 0.0f;
  for (int64_t k = 0; k < n; ++k) sum += v[k];
  return sum;
}

int64_t BufferFloats(const Buffers& b) {
  int64_t n = b.out.size() + b.saved.size() + b.saved2.size() + b.tmp.size() + static_cast<int64_t>(b.idx.size());
  for (const auto& i : b.inner) n += BufferFloats(i);
  return n;
}

}  // namespace

class Sequential::Ws : public Workspace {
 public:
  int max_batch = 0;
  int rows = 0;  // samples per sub-batch
  std::vector<Buffers> bufs;
  seq::Shared shared;
  Eigen::VectorXf input;     // HWC copy of a sub-batch of images with C > 1
  Eigen::VectorXf ga, gb;    // ping-pong gradients
  Eigen::VectorXf sub_grad;  // a sub-batch's gradient (batches larger than rows)
  Eigen::VectorXf tokens;    // next-token data: the T input ids of each row of a sub-batch
  Eigen::VectorXf column;    // next-token data: one step's logits, for Evaluate's softmax
};

Sequential::Sequential(const json& spec, const ModelInput& input, const std::vector<int>& input_shape,
                       int num_classes, double init_scale, std::string kind, std::string where, double fedpara_gamma,
                       Layout layout)
    : input_(input),
      num_classes_(num_classes),
      init_scale_(init_scale),
      fedpara_gamma_(fedpara_gamma),
      rows_(layout == Layout::kRows),
      kind_(std::move(kind)) {
  Shape in = Shape::Flat(input.dim);
  if (rows_) {
    // Every sample is a flat row of features, whatever its data's shape or
    // vocabulary (the features are read in the data's order, as the dense
    // models did).
    if (input.next_token) throw InputError(where + ": the rows layout has no next-token head");
    input_ = ModelInput{input.dim, {}, 0, false, 0};
  } else if (input.next_token && (input.vocab_size <= 0 || input.dim < 2)) {
    throw InputError(fmt::format("{}: next-token data needs token ids (vocab {}) and rows of at least 2 of them ({})",
                                 where, input.vocab_size, input.dim));
  }
  if (rows_) {
    // in stays Flat(input.dim).
  } else if (input.vocab_size > 0) {
    in = Shape::Tokens(input.next_token ? input.dim - 1 : input.dim, input.vocab_size);
  } else {
    const std::vector<int>& s = input_shape.empty() ? input.shape : input_shape;
    if (s.size() == 3) {
      if (static_cast<int64_t>(s[0]) * s[1] * s[2] != input.dim) {
        throw InputError(fmt::format("model.input_shape: [{}, {}, {}] has {} values but samples have {} features", s[0],
                                     s[1], s[2], static_cast<int64_t>(s[0]) * s[1] * s[2], input.dim));
      }
      in = Shape::Image(s[0], s[1], s[2]);
    }
  }
  input_.shape = in.kind == Shape::Kind::kImage ? std::vector<int>{in.c, in.h, in.w} : input_.shape;
  int next_id = 0;
  layers_ = seq::ParseLayers(spec, where, "layers", in, num_classes, num_params_, next_id, fedpara_gamma, 0, rows_);
  const Shape& last = layers_.back()->out;
  if (input.next_token) {
    if (!(last == Shape::Seq(num_classes, in.t))) {
      throw InputError(fmt::format(
          "{}[{}]: next-token data (every step predicted: data.tff_h5.targets = every_step) needs the last layer "
          "to output a sequence of {} steps x {} classes, but it outputs {} (end with an lstm or gru with "
          "\"return_sequences\": true, then a dense)",
          where, spec.size() - 1, in.t, num_classes, last.Str()));
    }
  } else if (last.kind != Shape::Kind::kFlat || last.c != num_classes) {
    throw InputError(fmt::format("{}[{}]: the last layer must output one value per class ({} classes in the data), "
                                 "but it outputs {}",
                                 where, spec.size() - 1, num_classes, last.Str()));
  }
  bool params_before = false;
  int64_t widest_cols = 1;
  for (const auto& l : layers_) {
    has_state_ = has_state_ || l->HasState();
    needs_input_grad_.push_back(params_before);
    params_before = params_before || l->count > 0;
    widest_cols = std::max(widest_cols, l->ColsPerSample());
  }
  conv_chunk_ = static_cast<int>(std::clamp<int64_t>(kColBudgetFloats / widest_cols, 1, 1 << 20));
}

Sequential::~Sequential() = default;

std::string Sequential::Describe() const {
  if (rows_) {
    // The dense models' form: "mlp 784-200-10 (159010 parameters)", under
    // FedPara with gamma and each layer's rank.
    std::string sizes = std::to_string(input_.dim), ranks;
    for (const auto& l : layers_) {
      sizes += "-" + std::to_string(l->out.size());
      ranks += (ranks.empty() ? "" : "/") + l->Describe();
    }
    if (fedpara_gamma_ >= 0.0) {
      return fmt::format("{} {} gamma={} ranks {} ({} parameters)", kind_, sizes, fedpara_gamma_, ranks, num_params_);
    }
    return fmt::format("{} {} ({} parameters)", kind_, sizes, num_params_);
  }
  std::string s = fmt::format("{} {}", kind_,
                              input_.next_token ? fmt::format("tokens {} + 1 (vocab {}, every step predicted)",
                                                              steps(), input_.vocab_size)
                              : input_.vocab_size > 0 ? fmt::format("tokens {} (vocab {})", input_.dim, input_.vocab_size)
                              : input_.shape.size() == 3
                                  ? fmt::format("{}x{}x{}", input_.shape[0], input_.shape[1], input_.shape[2])
                                  : std::to_string(input_.dim));
  for (const auto& l : layers_) s += " -> " + l->Describe();
  return s + fmt::format(" ({} parameters)", num_params_);
}

double Sequential::TrainFlopsPerSample() const {
  double macs = 0.0;
  for (size_t i = 0; i < layers_.size(); ++i) macs += layers_[i]->Macs() * (needs_input_grad_[i] ? 3.0 : 2.0);
  return 2.0 * macs;
}

double Sequential::TrainFlopsPerBatch() const {
  double macs = 0.0;
  for (const auto& l : layers_) macs += l->PassMacs();
  return 2.0 * macs;
}

void Sequential::Init(float* params, Rng& rng) const {
  for (const auto& l : layers_) l->Init(params, rng, init_scale_);
}

void Sequential::UpdateState(float* params, const Workspace& base) const {
  const auto& ws = static_cast<const Ws&>(base);
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->UpdateState(params, ws.bufs[i]);
}

std::vector<ParamRange> Sequential::ParamRanges() const {
  std::vector<ParamRange> r;
  seq::CollectRanges(layers_, r);
  return r;
}

std::unique_ptr<Workspace> Sequential::NewWorkspace(int max_batch) const {
  auto ws = std::make_unique<Ws>();
  ws->max_batch = std::max(1, max_batch);
  // Floats one more sample needs in every layer's buffers (sizes for 2
  // samples minus sizes for 1), and the floats that do not grow with the
  // batch (FedPara's formed weights, norm statistics); then as many samples
  // per sub-batch as the budget allows.
  std::vector<Buffers> one(layers_.size()), two(layers_.size());
  int64_t per_sample = 1, fixed = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->Allocate(one[i], 1);
    layers_[i]->Allocate(two[i], 2);
    const int64_t f1 = BufferFloats(one[i]), f2 = BufferFloats(two[i]);
    per_sample += f2 - f1;
    fixed += std::max<int64_t>(0, 2 * f1 - f2);
  }
  one.clear();
  two.clear();
  const int64_t wide = seq::WidestActivation(layers_);
  per_sample += 2 * wide;
  // The rows layout never splits a batch (its GEMMs' blocking, and so their
  // bits, depend on the batch size).
  ws->rows = rows_ ? ws->max_batch
                   : static_cast<int>(std::clamp<int64_t>(
                         (kActivationBudgetFloats - std::min(fixed, kActivationBudgetFloats / 2)) / per_sample, 1,
                         ws->max_batch));
  const int rows = ws->rows;
  ws->bufs.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) layers_[i]->Allocate(ws->bufs[i], rows);
  ws->ga.resize(rows * wide);
  ws->gb.resize(rows * wide);
  if (input_.vocab_size == 0 && input_.shape.size() == 3 && input_.shape[0] > 1) ws->input.resize(rows * input_.dim);
  if (input_.next_token) {
    ws->tokens.resize(static_cast<int64_t>(rows) * steps());
    ws->column.resize(num_classes_);
  }
  int64_t widest_cols = 0;
  for (const auto& l : layers_) widest_cols = std::max(widest_cols, l->ColsPerSample());
  ws->shared.conv_chunk = conv_chunk_;
  ws->shared.cols.resize(std::min(conv_chunk_, rows) * widest_cols);
  if (rows < ws->max_batch) ws->sub_grad.resize(num_params_);
  return ws;
}

void Sequential::Forward(const float* params, const float* x, int b, bool training, Ws& ws) const {
  const float* in = x;
  if (ws.input.size() > 0) {
    ChwToHwc(input_.shape[0], input_.shape[1], input_.shape[2], x, b, ws.input.data());
    in = ws.input.data();
  } else if (input_.next_token) {
    // The first T ids of each row of T + 1.
    const int t_n = steps();
    for (int n = 0; n < b; ++n) {
      std::copy_n(x + static_cast<int64_t>(n) * (t_n + 1), t_n, ws.tokens.data() + static_cast<int64_t>(n) * t_n);
    }
    in = ws.tokens.data();
  }
  seq::Pass pass;
  pass.training = training;
  pass.seed = ws.noise.seed;
  pass.first_sample = ws.noise.first_sample;
  pass.shared = &ws.shared;
  seq::ForwardChain(layers_, params, in, b, ws.bufs, pass);
}

double Sequential::ChunkLossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                                        Ws& ws) const {
  Forward(params, x, b, true, ws);
  // dLoss/dlogits = (softmax - onehot) / b, one column per sample (one row
  // in the rows layout).
  double loss;
  if (rows_) {
    MatMap g(ws.ga.data(), b, num_classes_);
    g = ConstMatMap(ws.bufs.back().out.data(), b, num_classes_);
    loss = SoftmaxCrossEntropyGrad(g, y);
  } else {
    MatMap g(ws.ga.data(), num_classes_, b);
    g = ConstMatMap(ws.bufs.back().out.data(), num_classes_, b);
    loss = SoftmaxCrossEntropyGrad(g.transpose(), y);
  }
  seq::Pass pass;
  pass.training = true;
  pass.seed = ws.noise.seed;
  pass.first_sample = ws.noise.first_sample;
  pass.shared = &ws.shared;
  const float* in = ws.input.size() > 0 ? ws.input.data() : x;
  // ga holds dL/dlogits; the layers write into gb, then ga, and so on.
  seq::BackwardChain(layers_, params, in, b, ws.bufs, ws.ga.data(), ws.gb.data(), ws.ga.data(), nullptr, grad, pass,
                     &needs_input_grad_);
  return loss;
}

int64_t Sequential::ScoredTargets(const float* x, int b) const {
  if (!input_.next_token) return b;
  const int t_n = steps();
  const auto pad = static_cast<float>(input_.pad_id);
  int64_t n = 0;
  for (int i = 0; i < b; ++i) {
    const float* row = x + static_cast<int64_t>(i) * (t_n + 1);
    for (int t = 1; t <= t_n; ++t) {
      // The embedding checks the inputs; the last id of a row is only a target.
      if (!(row[t] >= 0.0f && row[t] < static_cast<float>(num_classes_))) {
        throw InputError(fmt::format("{}: target {} at step {} of a sample is not a class in [0, {})", kind_, row[t],
                                     t - 1, num_classes_));
      }
      n += row[t] != pad;
    }
  }
  return n;
}

double Sequential::ChunkNextTokenLoss(const float* params, const float* x, int b, float inv_targets, float* grad,
                                      Ws& ws) const {
  Forward(params, x, b, true, ws);
  // Column t * b + n of the logits is step t of sample n; its target is id
  // t + 1 of row n. dLoss/dlogits = (softmax - onehot) * inv_targets on scored
  // columns, 0 on pad targets.
  const int t_n = steps();
  const int64_t cols = static_cast<int64_t>(t_n) * b;
  MatMap g(ws.ga.data(), num_classes_, cols);
  g = ConstMatMap(ws.bufs.back().out.data(), num_classes_, cols);
  double loss = 0.0;
  for (int t = 0; t < t_n; ++t) {
    for (int n = 0; n < b; ++n) {
      const int64_t j = static_cast<int64_t>(t) * b + n;
      const int target = static_cast<int>(x[static_cast<int64_t>(n) * (t_n + 1) + t + 1]);
      auto col = g.col(j);
      if (target == input_.pad_id) {
        col.setZero();
        continue;
      }
      const float m = col.maxCoeff();
      const float zy = col(target);
      const float sum = ExpShiftedColumn(col.data(), num_classes_, m);
      loss += fm::Log(static_cast<double>(sum)) + m - zy;
      col *= inv_targets / sum;
      col(target) -= inv_targets;
    }
  }
  seq::Pass pass;
  pass.training = true;
  pass.seed = ws.noise.seed;
  pass.first_sample = ws.noise.first_sample;
  pass.shared = &ws.shared;
  seq::BackwardChain(layers_, params, ws.tokens.data(), b, ws.bufs, ws.ga.data(), ws.gb.data(), ws.ga.data(), nullptr,
                     grad, pass, &needs_input_grad_);
  return loss;
}

double Sequential::LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                                   Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  if (b > ws.max_batch) {
    throw RunError(fmt::format("{}: batch of {} exceeds the workspace's {}", kind_, b, ws.max_batch));
  }
  if (has_state_ && b > ws.rows) {
    // Sub-batches would each be normalised by their own statistics.
    throw InputError(fmt::format("algorithm.batch_size: model.kind={} has batchnorm layers, which normalise a batch "
                                 "as a whole, but a batch of {} exceeds the {} samples one pass holds here; use a "
                                 "smaller batch",
                                 kind_, b, ws.rows));
  }
  if (input_.next_token) {
    // The mean over the batch's scored targets: every sub-batch's gradient is
    // already scaled by 1 / (the batch's targets), so they add up.
    const int64_t targets = ScoredTargets(x, b);
    Eigen::Map<Eigen::VectorXf> total(grad, num_params_);
    if (targets == 0) {
      total.setZero();
      return 0.0;
    }
    const float inv = 1.0f / static_cast<float>(targets);
    const Workspace::Noise saved = ws.noise;
    double loss = 0.0;
    for (int begin = 0; begin < b; begin += ws.rows) {
      const int nb = std::min(ws.rows, b - begin);
      ws.noise.first_sample = saved.first_sample + begin;
      float* out = begin == 0 ? grad : ws.sub_grad.data();
      loss += ChunkNextTokenLoss(params, x + static_cast<int64_t>(begin) * input_.dim, nb, inv, out, ws);
      if (begin > 0) total += ws.sub_grad;
    }
    ws.noise = saved;
    return loss / static_cast<double>(targets);
  }
  if (b <= ws.rows) return ChunkLossAndGradient(params, x, y, b, grad, ws);
  // Sub-batches: the batch mean is the size-weighted mean of their means.
  const Workspace::Noise saved = ws.noise;
  double loss = 0.0;
  Eigen::Map<Eigen::VectorXf> total(grad, num_params_);
  for (int begin = 0; begin < b; begin += ws.rows) {
    const int nb = std::min(ws.rows, b - begin);
    ws.noise.first_sample = saved.first_sample + begin;
    const double l = ChunkLossAndGradient(params, x + static_cast<int64_t>(begin) * input_.dim, y + begin, nb,
                                          ws.sub_grad.data(), ws);
    const float w = static_cast<float>(nb) / static_cast<float>(b);
    loss += l * nb / b;
    if (begin == 0) {
      total = w * ws.sub_grad;
    } else {
      total += w * ws.sub_grad;
    }
  }
  ws.noise = saved;
  return loss;
}

EvalSums Sequential::Evaluate(const float* params, const float* x, const int* y, int b, Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  EvalSums s;
  for (int begin = 0; begin < b; begin += ws.rows) {
    const int nb = std::min(ws.rows, b - begin);
    const float* xb = x + static_cast<int64_t>(begin) * input_.dim;
    Forward(params, xb, nb, false, ws);
    if (input_.next_token) {
      // Every scored target of every step (column t * nb + n: step t of sample n).
      const int t_n = steps();
      ConstMatMap z(ws.bufs.back().out.data(), num_classes_, static_cast<int64_t>(t_n) * nb);
      ScoredTargets(xb, nb);  // checks every target is a class
      for (int n = 0; n < nb; ++n) {
        for (int t = 0; t < t_n; ++t) {
          const int target = static_cast<int>(xb[static_cast<int64_t>(n) * (t_n + 1) + t + 1]);
          if (target == input_.pad_id) continue;
          const auto col = z.col(static_cast<int64_t>(t) * nb + n);
          Eigen::Index arg;
          const float m = col.maxCoeff(&arg);
          ws.column = col;
          const float sum = ExpShiftedColumn(ws.column.data(), num_classes_, m);
          s.loss_sum += fm::Log(static_cast<double>(sum)) + m - col(target);
          s.correct += (arg == target);
          ++s.count;
        }
      }
      continue;
    }
    // One sample's logits z (a column, or a row in the rows layout).
    auto score = [&s](const auto& z, int label) {
      Eigen::Index arg;
      const float m = z.maxCoeff(&arg);
      const double lse = fm::Log(static_cast<double>(fm::SumExpShifted(z, m))) + m;
      s.loss_sum += lse - z(label);
      s.correct += (arg == label);
    };
    const float* logits = ws.bufs.back().out.data();
    for (int i = 0; i < nb; ++i) {
      if (rows_) {
        score(ConstMatMap(logits, nb, num_classes_).row(i), y[begin + i]);
      } else {
        score(ConstMatMap(logits, num_classes_, nb).col(i), y[begin + i]);
      }
    }
    s.count += nb;
  }
  return s;
}

const float* Sequential::Logits(const float* params, const float* x, int b, Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  if (b > ws.rows) throw RunError(fmt::format("{}: Logits of {} samples exceed a sub-batch of {}", kind_, b, ws.rows));
  Forward(params, x, b, false, ws);
  return ws.bufs.back().out.data();
}

// ---------------------------------------------------------------- presets

namespace {

json Conv(int filters, int kernel, json padding = 0, int stride = 1, bool bias = true) {
  json j = {{"type", "conv2d"}, {"filters", filters}, {"kernel", kernel}, {"padding", padding}};
  if (stride != 1) j["stride"] = stride;
  if (!bias) j["bias"] = false;
  return j;
}
json Type(const char* t) { return {{"type", t}}; }
json Dense(int units) { return {{"type", "dense"}, {"units", units}}; }
json Pool(int k) { return {{"type", "maxpool2d"}, {"kernel", k}}; }

// He et al. 2016, section 4.2: 3x3 convolutions without bias, each followed
// by a norm (GroupNorm with 2 groups here) and a ReLU after the sum.
json BasicBlock(int filters, int stride, bool project) {
  json inner = json::array({Conv(filters, 3, 1, stride, false), {{"type", "groupnorm"}, {"groups", 2}}, Type("relu"),
                            Conv(filters, 3, 1, 1, false), {{"type", "groupnorm"}, {"groups", 2}}});
  json j = {{"type", "residual"}, {"layers", inner}};
  if (project) j["projection"] = true;
  return j;
}

}  // namespace

bool IsPreset(const std::string& kind) {
  for (const char* p : {"leaf_femnist_cnn", "leaf_shakespeare_lstm", "tff_emnist_cnn", "niid_cifar_cnn", "sent140_lstm",
                        "tff_stackoverflow_lstm", "resnet20_gn"}) {
    if (kind == p) return true;
  }
  return false;
}

json PresetLayers(const std::string& kind, bool every_step) {
  const json relu = Type("relu");
  const json out = Type("dense");  // units: the number of classes
  if (kind == "leaf_femnist_cnn") {
    // LEAF models/femnist/cnn.py.
    return json::array({Conv(32, 5, "same"), relu, Pool(2), Conv(64, 5, "same"), relu, Pool(2), Dense(2048), relu, out});
  }
  if (kind == "tff_emnist_cnn") {
    // TFF's EMNIST CNN (Reddi et al. 2021, "Adaptive Federated Optimization", table 7 / create_conv_dropout_model).
    return json::array({Conv(32, 3), relu, Conv(64, 3), relu, Pool(2), {{"type", "dropout"}, {"rate", 0.25}},
                        Type("flatten"), Dense(128), relu, {{"type", "dropout"}, {"rate", 0.5}}, out});
  }
  if (kind == "cnn_mcmahan") {
    // McMahan et al. 2017's CNN (model.kind = cnn_mcmahan; Cnn's layers, bit for bit).
    return json::array({Conv(32, 5, "same"), relu, Pool(2), Conv(64, 5, "same"), relu, Pool(2), Dense(512), relu, out});
  }
  if (kind == "niid_cifar_cnn" || kind == "cnn_lenet") {
    // NIID-Bench (Li et al. 2022) SimpleCNN: no padding. The same layers as
    // model.kind = cnn_lenet (LeNet-5 with ReLU and max-pooling).
    return json::array({Conv(6, 5), relu, Pool(2), Conv(16, 5), relu, Pool(2), Dense(120), relu, Dense(84), relu, out});
  }
  if (kind == "leaf_shakespeare_lstm") {
    // LEAF models/shakespeare/stacked_lstm.py: embedding 8, two LSTM 256, dense on the last step.
    // TFF's Shakespeare model (every_step) is the same with both LSTMs returning sequences.
    return json::array({{{"type", "embedding"}, {"dim", 8}},
                        {{"type", "lstm"}, {"units", 256}, {"return_sequences", true}},
                        {{"type", "lstm"}, {"units", 256}, {"return_sequences", every_step}},
                        out});
  }
  if (kind == "sent140_lstm") {
    // LEAF models/sent140/stacked_lstm.py: embedding of n_hidden = 100, two LSTM 100, dense 128 (no
    // activation), dense classes.
    return json::array({{{"type", "embedding"}, {"dim", 100}},
                        {{"type", "lstm"}, {"units", 100}, {"return_sequences", true}},
                        {{"type", "lstm"}, {"units", 100}, {"return_sequences", every_step}},
                        Dense(128),
                        out});
  }
  if (kind == "tff_stackoverflow_lstm") {
    // TFF's StackOverflow next-word model (Reddi et al. 2021, table 9; create_recurrent_model): embedding 96,
    // LSTM 670 over every step, dense 96 (no activation), dense over the vocabulary.
    return json::array({{{"type", "embedding"}, {"dim", 96}},
                        {{"type", "lstm"}, {"units", 670}, {"return_sequences", every_step}},
                        Dense(96),
                        out});
  }
  if (kind == "resnet20_gn") {
    // He et al. 2016 CIFAR ResNet-20: 3x3 conv 16, three stages of three basic blocks (16, 32, 64 filters,
    // stride 2 at the first block of stages 2 and 3, 1x1 projection there), global average pool, dense.
    json l = json::array({Conv(16, 3, 1, 1, false), {{"type", "groupnorm"}, {"groups", 2}}, relu});
    for (int stage = 0; stage < 3; ++stage) {
      for (int block = 0; block < 3; ++block) {
        const bool down = stage > 0 && block == 0;
        l.push_back(BasicBlock(16 << stage, down ? 2 : 1, down));
        l.push_back(relu);
      }
    }
    l.push_back(Type("global_avgpool"));
    l.push_back(out);
    return l;
  }
  throw InputError("model.kind: unknown preset '" + kind + "'");
}

json DenseStackLayers(const std::vector<int>& widths) {
  json l = json::array();
  for (size_t i = 0; i < widths.size(); ++i) {
    l.push_back({{"type", "dense"}, {"units", widths[i]}, {"name", fmt::format("layers.{}", i)}});
    if (i + 1 < widths.size()) l.push_back(Type("relu"));
  }
  return l;
}

std::unique_ptr<Sequential> MakeDenseStack(const std::vector<int>& sizes, double init_scale, const std::string& kind,
                                           double fedpara_gamma) {
  if (sizes.size() < 2) throw InputError("model: a dense model needs an input and an output size");
  for (int v : sizes) {
    if (v < 1) throw InputError(fmt::format("model: layer width {} must be positive", v));
  }
  const std::vector<int> widths(sizes.begin() + 1, sizes.end());
  return std::make_unique<Sequential>(DenseStackLayers(widths), ModelInput{sizes[0], {}, 0, false, 0},
                                      std::vector<int>{}, sizes.back(), init_scale,
                                      fedpara_gamma >= 0.0 ? "fedpara" : kind, "model.kind=" + kind + ": layers",
                                      fedpara_gamma, Sequential::Layout::kRows);
}

std::unique_ptr<Sequential> MakeSequential(const ModelConfig& cfg, const ModelInput& input, int num_classes,
                                           double fedpara_gamma) {
  if (cfg.kind == "sequential") {
    return std::make_unique<Sequential>(cfg.layers, input, cfg.input_shape, num_classes, cfg.init_scale, cfg.kind,
                                        "model.layers", fedpara_gamma);
  }
  return std::make_unique<Sequential>(PresetLayers(cfg.kind, input.next_token), input, cfg.input_shape, num_classes,
                                      cfg.init_scale, cfg.kind, "model.kind=" + cfg.kind + ": layers", fedpara_gamma);
}

}  // namespace fedsim
