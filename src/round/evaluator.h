// Stage 5: what the model is worth after a round.
//
// A RoundEvaluator scores the global model on evaluation rounds (rank 0
// only), adds its keys to every round's record (null when the round was not
// evaluated) and to the summary, and keeps figures that a resume restores.
// CentralEvaluator serves the classifiers; FedGAN's judge evaluator
// (round/judge_evaluator.h) scores generated samples.
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

class RoundEvaluator {
 public:
  virtual ~RoundEvaluator() = default;
  // metrics.json's top-level objects of the evaluator (e.g. FedGAN's "judge").
  virtual void Describe(nlohmann::json& doc) const {}
  // Scores the global model after round `round` (1-based) of a healthy run;
  // false when the model has diverged (its scores are not finite).
  virtual bool Evaluate(int round, const Eigen::VectorXf& global) = 0;
  // The round's keys: the last evaluation's scores, or nulls.
  virtual void Record(nlohmann::json& rec, bool evaluated) const = 0;
  virtual void Summarize(nlohmann::json& summary) const = 0;
  // Tracked figures are part of the run's totals (flat keys).
  virtual void SaveTotals(nlohmann::json& totals) const = 0;
  virtual void LoadTotals(const nlohmann::json& totals) = 0;
};

class CentralEvaluator : public RoundEvaluator {
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

  // A backdoor's triggered test set (labels = the attack's target): its
  // accuracy, the attack's success rate, is reported as backdoor_accuracy.
  void SetBackdoorTest(const Dataset* triggered) { backdoor_ = triggered; }

  // As a round's evaluator: Evaluate, then Track unless diverged.
  bool Evaluate(int round, const Eigen::VectorXf& global) override;
  // With a backdoor test set, also backdoor_accuracy.
  void Record(nlohmann::json& rec, bool evaluated) const override;
  // The summary's keys: final/best test accuracy, best_round, target.
  void Summarize(nlohmann::json& summary) const override;
  void SaveTotals(nlohmann::json& totals) const override;
  void LoadTotals(const nlohmann::json& totals) override;

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
  Result last_;  // the last evaluation (as a round's evaluator)
  const Dataset* backdoor_ = nullptr;
  double backdoor_acc_ = NAN, final_backdoor_acc_ = NAN;
};

}  // namespace fedsim
