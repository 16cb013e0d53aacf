#include "model/model.h"

#include "core/error.h"
#include "core/parallel.h"
#include <fmt/format.h>

#include "model/cnn.h"
#include "model/fedpara.h"
#include "model/sequential.h"

namespace fedsim {

std::unique_ptr<Model> CreateModel(const ModelConfig& cfg, int input_dim, int num_classes,
                                   std::optional<double> fedpara_gamma, const std::vector<int>& shape,
                                   int vocab_size, bool next_token) {
  if (cfg.kind == "sequential" || IsPreset(cfg.kind)) {
    return MakeSequential(cfg, ModelInput{input_dim, shape, vocab_size, next_token}, num_classes,
                          fedpara_gamma ? *fedpara_gamma : -1.0);
  }
  if (next_token) {
    throw InputError("model.kind: " + cfg.kind +
                     " predicts one class per sample, but this data asks for a prediction at every step "
                     "(data.tff_h5.targets = every_step): use a recurrent preset (leaf_shakespeare_lstm, "
                     "tff_stackoverflow_lstm) or model.kind = sequential ending in an lstm or gru with "
                     "\"return_sequences\": true and a dense");
  }
  if (cfg.kind == "cnn_mcmahan" || cfg.kind == "cnn_lenet") {
    const std::vector<int>& s = cfg.input_shape.empty() ? shape : cfg.input_shape;
    if (s.size() != 3) {
      throw InputError("model.input_shape: model.kind=" + cfg.kind +
                       " needs the image shape [C, H, W]; this data has none, so set model.input_shape");
    }
    if (static_cast<int64_t>(s[0]) * s[1] * s[2] != input_dim) {
      throw InputError(fmt::format("model.input_shape: [{}, {}, {}] has {} values but samples have {} features", s[0],
                                   s[1], s[2], static_cast<int64_t>(s[0]) * s[1] * s[2], input_dim));
    }
    // The layer engine runs them: Cnn's layers, parameter layout, init and
    // operations, so the same bits (tests/model/sequential_test.cpp).
    return std::make_unique<Sequential>(PresetLayers(cfg.kind), ModelInput{input_dim, s, 0, false}, std::vector<int>{},
                                        num_classes, cfg.init_scale,
                                        fedpara_gamma ? "fedpara_" + cfg.kind : cfg.kind,
                                        "model.kind=" + cfg.kind + ": layers", fedpara_gamma ? *fedpara_gamma : -1.0);
  }
  std::vector<int> sizes{input_dim};
  if (cfg.kind == "mlp") {
    if (cfg.hidden.empty()) throw InputError("model.hidden: model.kind=mlp needs at least one hidden layer width");
    sizes.insert(sizes.end(), cfg.hidden.begin(), cfg.hidden.end());
  } else if (cfg.kind != "softmax") {
    throw InputError("model.kind: unknown model '" + cfg.kind + "'");
  }
  sizes.push_back(num_classes);
  // The layer engine's rows layout: the dense models' parameter layout,
  // init and operations, so their results bit for bit.
  return MakeDenseStack(sizes, cfg.init_scale, cfg.kind, fedpara_gamma ? *fedpara_gamma : -1.0);
}

EvalSums EvaluateDataset(const Model& model, const float* params, const Dataset& data, int threads,
                         std::vector<std::unique_ptr<Workspace>>& workspaces) {
  const int n = data.size();
  const int chunks = (n + kEvalChunk - 1) / kEvalChunk;
  std::vector<EvalSums> part(static_cast<size_t>(chunks));
  std::vector<std::vector<float>> rows(workspaces.size(),
                                       std::vector<float>(static_cast<size_t>(kEvalChunk) * data.dim()));
  ParallelFor(chunks, threads, [&](int64_t c, int tid) {
    const int begin = static_cast<int>(c) * kEvalChunk;
    const int b = std::min(n, begin + kEvalChunk) - begin;
    float* x = rows[static_cast<size_t>(tid)].data();
    data.Range(begin, b, x);
    part[static_cast<size_t>(c)] =
        model.Evaluate(params, x, data.y.data() + begin, b, *workspaces[static_cast<size_t>(tid)]);
  });
  EvalSums total;
  for (const auto& p : part) {
    total.loss_sum += p.loss_sum;
    total.correct += p.correct;
    total.count += p.count;
  }
  return total;
}

}  // namespace fedsim
