#include "round/judge_evaluator.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/fmath.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "metrics/image.h"
#include "metrics/writer.h"
#include "model/model.h"
#include "optim/sgd.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

// Generated samples per evaluation chunk; the chunk is also the unit of the
// latent streams, so sample i's z does not depend on the thread count.
constexpr int kSampleChunk = 256;

// The record keys of an evaluation (null on other rounds).
constexpr const char* kQualityKeys[] = {"confident_share", "class_entropy",   "effective_classes", "inception_score",
                                        "classes_covered", "class_histogram", "samples_image"};

// Height and width of one sample as an image: the data's shape for one
// channel, else a square if dim is one, else one row.
std::pair<int, int> ImageSize(const Dataset& d) {
  if (d.shape.size() == 3 && d.shape[0] == 1) return {d.shape[1], d.shape[2]};
  const int dim = d.dim();
  const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(dim))));
  if (side * side == dim) return {side, side};
  return {1, dim};
}

}  // namespace

void CheckGanData(const Dataset& d) {
  bool ok = true;
  if (d.byte_storage) {
    for (Eigen::Index j = 0; j < d.byte_scale.size(); ++j) {
      const float lo = std::min(d.byte_shift[j], d.byte_shift[j] + 255.0f * d.byte_scale[j]);
      const float hi = std::max(d.byte_shift[j], d.byte_shift[j] + 255.0f * d.byte_scale[j]);
      ok = ok && lo >= 0.0f && hi <= 1.0f + 1e-6f;
    }
  } else if (d.x.size() > 0) {
    ok = d.x.minCoeff() >= 0.0f && d.x.maxCoeff() <= 1.0f;
  }
  if (!ok) {
    throw InputError("data.dataset: fedgan generates features in [0, 1] (pixels); this data has features outside "
                     "that range (use image data such as fashion_mnist or mnist_idx, without data.standardize)");
  }
}

// Per-thread buffers of the evaluation.
struct JudgeEvaluator::Scratch {
  DenseNet::Workspace gen;
  std::unique_ptr<Workspace> judge;
  Eigen::VectorXf z;
  RowMatrix pixels;
  Eigen::VectorXd prob;
};

JudgeEvaluator::JudgeEvaluator(const Config& cfg, const GanNets& nets, const Dataset& train, const Dataset& test,
                               int threads, bool root, const std::string& out_dir, bool fresh)
    : gc_(cfg.gan),
      nets_(nets),
      seed_(cfg.experiment.seed),
      threads_(threads),
      classes_(train.num_classes),
      dim_(train.dim()),
      out_dir_(out_dir) {
  std::tie(img_h_, img_w_) = ImageSize(train);
  grid_n_ = std::min(gc_.grid * gc_.grid, gc_.eval_samples);
  if (!out_dir_.empty() && fresh) {
    // An earlier run's sample images would look like this run's.
    std::error_code ec;
    const fs::path samples = fs::path(out_dir_) / "samples";
    if (fs::is_directory(samples, ec)) {
      for (const auto& e : fs::directory_iterator(samples, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("round_", 0) == 0 && e.path().extension() == ".pgm") fs::remove(e.path(), ec);
      }
    }
  }
  if (!root) return;

  // The judge: a softmax regression or MLP trained by minibatch SGD on the
  // whole training set, single-threaded, from (seed, kJudge) streams.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> sizes{dim_};
  if (gc_.judge_kind == "mlp") sizes.insert(sizes.end(), gc_.judge_hidden.begin(), gc_.judge_hidden.end());
  sizes.push_back(classes_);
  judge_ = MakeDenseStack(sizes, 1.0, gc_.judge_kind);
  const int64_t p = judge_->num_params();
  judge_params_.resize(p);
  Rng init = DeriveStream(seed_, Stream::kJudge);
  judge_->Init(judge_params_.data(), init);
  const int n = train.size();
  const int batch = std::max(1, std::min(gc_.judge_batch_size, n));
  auto ws = judge_->NewWorkspace(batch);
  RowMatrix x(batch, dim_);
  std::vector<int> y(static_cast<size_t>(batch)), order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  Eigen::VectorXf grad(p);
  Sgd sgd(0.0f, 0.0f);
  for (int e = 0; e < gc_.judge_epochs && n > 0; ++e) {
    Rng rng = DeriveStream(seed_, Stream::kJudge, static_cast<uint64_t>(e) + 1);
    rng.Shuffle(order.begin(), order.end());
    for (int pos = 0; pos < n; pos += batch) {
      const int b = std::min(batch, n - pos);
      train.Rows(order.data() + pos, b, x.data());
      for (int i = 0; i < b; ++i) y[static_cast<size_t>(i)] = train.y[static_cast<size_t>(order[static_cast<size_t>(pos + i)])];
      judge_->LossAndGradient(judge_params_.data(), x.data(), y.data(), b, grad.data(), *ws);
      sgd.Step(judge_params_.data(), grad.data(), p, static_cast<float>(gc_.judge_lr));
    }
  }
  std::vector<std::unique_ptr<Workspace>> eval_ws(static_cast<size_t>(threads));
  for (auto& w : eval_ws) w = judge_->NewWorkspace(kEvalChunk);
  const EvalSums e = EvaluateDataset(*judge_, judge_params_.data(), test, threads, eval_ws);
  if (e.count > 0) {
    judge_accuracy_ = e.Accuracy();
    judge_loss_ = e.MeanLoss();
  }
  judge_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  scratch_.resize(static_cast<size_t>(threads));
  for (Scratch& s : scratch_) {
    s.gen = nets.generator.NewWorkspace(kSampleChunk);
    s.judge = judge_->NewWorkspace(kSampleChunk);
    s.z.resize(static_cast<Eigen::Index>(kSampleChunk) * nets.latent_dim());
    s.pixels.resize(kSampleChunk, dim_);
    s.prob.resize(classes_);
  }
  grid_pixels_.resize(std::max(grid_n_, 1), dim_);
}

JudgeEvaluator::~JudgeEvaluator() = default;

void JudgeEvaluator::Describe(nlohmann::json& doc) const {
  doc["judge"] = {{"kind", gc_.judge_kind},
                  {"description", judge_ ? judge_->Describe() : std::string()},
                  {"num_params", judge_ ? judge_->num_params() : 0},
                  {"epochs", gc_.judge_epochs},
                  {"test_accuracy", NullableNumber(judge_accuracy_)},
                  {"test_loss", NullableNumber(judge_loss_)},
                  {"wall_train_seconds", judge_seconds_}};
}

bool JudgeEvaluator::Evaluate(int round, const Eigen::VectorXf& global) {
  // The judge classifies eval_samples generated samples; the first grid_n
  // of them are pictured.
  const int m = gc_.eval_samples;
  const int chunks = (m + kSampleChunk - 1) / kSampleChunk;
  const int latent = nets_.latent_dim();
  std::vector<SampleQualitySums> part(static_cast<size_t>(chunks), SampleQualitySums(classes_));
  ParallelFor(chunks, threads_, [&](int64_t c, int tid) {
    Scratch& e = scratch_[static_cast<size_t>(tid)];
    const int begin = static_cast<int>(c) * kSampleChunk;
    const int b = std::min(kSampleChunk, m - begin);
    Rng rng = DeriveStream(seed_, Stream::kGanSamples, 0, static_cast<uint64_t>(c));
    for (int64_t i = 0; i < static_cast<int64_t>(b) * latent; ++i) e.z[i] = static_cast<float>(rng.Normal());
    const float* out = nets_.generator.Forward(global.data(), e.z.data(), false, b, e.gen);
    auto px = e.pixels.topRows(b);
    px = (Eigen::Map<const Eigen::MatrixXf>(out, b, dim_).array() + 1.0f) * 0.5f;
    for (int i = begin; i < std::min(begin + b, grid_n_); ++i) grid_pixels_.row(i) = px.row(i - begin);
    const float* logits = judge_->Logits(judge_params_.data(), e.pixels.data(), b, *e.judge);
    Eigen::Map<const Eigen::MatrixXf> z(logits, b, classes_);
    for (int i = 0; i < b; ++i) {
      const double mx = z.row(i).maxCoeff();
      double sum = 0.0;
      for (int y = 0; y < classes_; ++y) sum += e.prob[y] = fm::Exp(static_cast<double>(z(i, y)) - mx);
      e.prob /= sum;
      part[static_cast<size_t>(c)].Add(e.prob.data(), gc_.confidence);
    }
  });
  SampleQualitySums sums(classes_);
  for (const auto& s : part) sums.Merge(s);
  const SampleQuality q = fedsim::Summarize(sums, gc_.class_share);
  last_eval_ = {{"confident_share", q.confident_share}, {"class_entropy", q.class_entropy},
           {"effective_classes", q.effective_classes}, {"inception_score", q.inception_score},
           {"classes_covered", q.classes_covered}, {"class_histogram", sums.histogram},
           {"samples_image", nullptr}};
  if (!out_dir_.empty() && grid_n_ > 0) {
    const std::string rel = fmt::format("samples/round_{:04d}.pgm", round);
    std::error_code ec;
    fs::create_directories(fs::path(out_dir_) / "samples", ec);
    if (ec) throw RunError(fmt::format("{}/samples: cannot create: {}", out_dir_, ec.message()));
    WritePgm((fs::path(out_dir_) / rel).string(), TileImages(grid_pixels_.data(), grid_n_, img_h_, img_w_, gc_.grid, 2));
    last_eval_["samples_image"] = rel;
  }
  last_eval_["round"] = round;
  return true;
}

void JudgeEvaluator::Record(nlohmann::json& rec, bool evaluated) const {
  for (const char* k : kQualityKeys) rec[k] = evaluated ? last_eval_[k] : nullptr;
}

void JudgeEvaluator::Summarize(nlohmann::json& s) const {
  auto from = [&](const char* k) { return last_eval_.is_null() ? nlohmann::json(nullptr) : last_eval_[k]; };
  s["judge_test_accuracy"] = NullableNumber(judge_accuracy_);
  s["final_eval_round"] = from("round");
  s["final_classes_covered"] = from("classes_covered");
  s["final_effective_classes"] = from("effective_classes");
  s["final_class_entropy"] = from("class_entropy");
  s["final_inception_score"] = from("inception_score");
  s["final_confident_share"] = from("confident_share");
  s["final_samples_image"] = from("samples_image");
}

void JudgeEvaluator::SaveTotals(nlohmann::json& t) const { t["judge_last_eval"] = last_eval_; }

void JudgeEvaluator::LoadTotals(const nlohmann::json& t) { last_eval_ = t.at("judge_last_eval"); }

}  // namespace fedsim
