// FedGAN's evaluator (docs/algorithms.md#fedgan): a classifier, the judge,
// is trained centrally on the training set before the run (rank 0 only); on
// evaluation rounds it classifies gan.eval_samples generated samples from
// fixed latent vectors, and the record gets the sample-quality figures
// (confident share, class entropy, effective classes, inception score,
// classes covered, the class histogram) and a grid of samples written to
// OUT/samples/round_NNNN.pgm.
#pragma once

#include <Eigen/Core>

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/dataset.h"
#include "model/gan.h"
#include "model/sequential.h"
#include "round/evaluator.h"

namespace fedsim {

// FedGAN generates pixels in [0, 1]: throws InputError naming data.dataset
// when the training features lie outside that range.
void CheckGanData(const Dataset& train);

class JudgeEvaluator : public RoundEvaluator {
 public:
  // Trains the judge when `root` (other ranks neither train nor evaluate).
  // out_dir: where sample images go ("" = none); fresh: remove an earlier
  // run's images there.
  JudgeEvaluator(const Config& cfg, const GanNets& nets, const Dataset& train, const Dataset& test, int threads,
                 bool root, const std::string& out_dir, bool fresh);
  ~JudgeEvaluator() override;

  // doc["judge"]: the judge's kind, size, epochs and test accuracy.
  void Describe(nlohmann::json& doc) const override;
  bool Evaluate(int round, const Eigen::VectorXf& global) override;
  void Record(nlohmann::json& rec, bool evaluated) const override;
  // judge_test_accuracy and the last evaluation's figures (final_*).
  void Summarize(nlohmann::json& summary) const override;
  void SaveTotals(nlohmann::json& totals) const override;
  void LoadTotals(const nlohmann::json& totals) override;

 private:
  struct Scratch;
  const GanConfig& gc_;
  const GanNets& nets_;
  uint64_t seed_;
  int threads_, classes_, dim_, img_h_, img_w_, grid_n_;
  std::string out_dir_;
  std::unique_ptr<Sequential> judge_;
  Eigen::VectorXf judge_params_;
  double judge_accuracy_ = NAN, judge_loss_ = NAN, judge_seconds_ = 0.0;
  std::vector<Scratch> scratch_;
  RowMatrix grid_pixels_;
  nlohmann::json last_eval_;  // the last evaluation's record keys and its round (resume restores it)
};

}  // namespace fedsim
