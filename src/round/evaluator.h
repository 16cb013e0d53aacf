// Stage 5: what the model is worth after a round.
//
// CentralEvaluator scores the global model on the central test set (and, with
// metrics.eval_train, on the pooled training set) every metrics.eval_every
// rounds and on the last round, in parallel over fixed chunks (the same bits
// for any thread count). It keeps the run's final and best accuracy and the
// round the target accuracy was first reached, which a resume restores.
#pragma once

#include <Eigen/Core>

#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/dataset.h"
#include "metrics/writer.h"
#include "model/model.h"

namespace fedsim {

class CentralEvaluator {
 public:
  CentralEvaluator(const Model& model, const Dataset& test, const Dataset* train, std::optional<double> target,
                   int threads);

  struct Result {
    double test_loss = NAN, test_accuracy = NAN;
    double train_loss = NAN, train_accuracy = NAN;
    bool diverged = false;  // the test loss is not finite
  };
  // Scores `params` after round `round` (1-based).
  Result Evaluate(const float* params) const;
  // Folds an evaluation of a healthy run into the final/best/target figures.
  void Track(int round, const Result& r);

  // The record's keys: test_loss, test_accuracy (null when not evaluated),
  // and global_train_loss/accuracy with metrics.eval_train.
  void Record(nlohmann::json& rec, const Result* r) const;
  // The summary's keys: final/best test accuracy, best_round, target.
  void Summarize(nlohmann::json& summary) const;

  // Tracked figures are part of the run's totals (flat keys).
  void SaveTotals(nlohmann::json& totals) const;
  void LoadTotals(const nlohmann::json& totals);

  double final_accuracy() const { return final_acc_; }
  const nlohmann::json& rounds_to_target() const { return rounds_to_target_; }

 private:
  const Model& model_;
  const Dataset& test_;
  const Dataset* train_;  // null: no training-set evaluation
  std::optional<double> target_;
  int threads_;
  mutable std::vector<std::unique_ptr<Workspace>> ws_;
  double final_acc_ = NAN, final_loss_ = NAN, best_acc_ = NAN;
  int best_round_ = 0;
  nlohmann::json rounds_to_target_ = nullptr;
};

}  // namespace fedsim
