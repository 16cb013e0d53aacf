#include "round/evaluator.h"

#include <cmath>

namespace fedsim {

CentralEvaluator::CentralEvaluator(const Model& model, const Dataset& test, const Dataset* train,
                                   std::optional<double> target, int threads)
    : model_(model), test_(test), train_(train), target_(target), threads_(threads) {
  ws_.resize(static_cast<size_t>(threads));
  for (auto& w : ws_) w = model.NewWorkspace(kEvalChunk);
}

CentralEvaluator::Result CentralEvaluator::Evaluate(const float* params) const {
  Result r;
  const EvalSums t = EvaluateDataset(model_, params, test_, threads_, ws_);
  r.test_loss = t.MeanLoss();
  r.test_accuracy = t.Accuracy();
  if (train_) {
    const EvalSums e = EvaluateDataset(model_, params, *train_, threads_, ws_);
    r.train_loss = e.MeanLoss();
    r.train_accuracy = e.Accuracy();
  }
  if (test_.size() > 0 && !std::isfinite(r.test_loss)) {
    r.diverged = true;
    r.test_accuracy = NAN;  // the accuracy of a non-finite model means nothing
  }
  return r;
}

bool CentralEvaluator::Evaluate(int round, const Eigen::VectorXf& global) {
  last_ = Evaluate(global.data());
  if (backdoor_) backdoor_acc_ = EvaluateDataset(model_, global.data(), *backdoor_, threads_, ws_).Accuracy();
  if (!last_.diverged) {
    Track(round, last_);
    final_backdoor_acc_ = backdoor_acc_;
  }
  return !last_.diverged;
}

void CentralEvaluator::Track(int round, const Result& r) {
  final_acc_ = r.test_accuracy;
  final_loss_ = r.test_loss;
  if (std::isnan(best_acc_) || r.test_accuracy > best_acc_) {
    best_acc_ = r.test_accuracy;
    best_round_ = round;
  }
  if (target_ && rounds_to_target_.is_null() && r.test_accuracy >= *target_) rounds_to_target_ = round;
}

void CentralEvaluator::Record(nlohmann::json& rec, const Result* r) const {
  rec["test_loss"] = r ? NullableNumber(r->test_loss) : nullptr;
  rec["test_accuracy"] = r ? NullableNumber(r->test_accuracy) : nullptr;
  if (train_) {
    rec["global_train_loss"] = r ? NullableNumber(r->train_loss) : nullptr;
    rec["global_train_accuracy"] = r ? NullableNumber(r->train_accuracy) : nullptr;
  }
}

void CentralEvaluator::Record(nlohmann::json& rec, bool evaluated) const {
  Record(rec, evaluated ? &last_ : nullptr);
  if (backdoor_) rec["backdoor_accuracy"] = evaluated ? NullableNumber(backdoor_acc_) : nullptr;
}

void CentralEvaluator::Summarize(nlohmann::json& s) const {
  if (backdoor_) s["final_backdoor_accuracy"] = NullableNumber(final_backdoor_acc_);
  s["final_test_accuracy"] = NullableNumber(final_acc_);
  s["final_test_loss"] = NullableNumber(final_loss_);
  s["best_test_accuracy"] = NullableNumber(best_acc_);
  s["best_round"] = best_round_;
  s["target_accuracy"] = target_ ? nlohmann::json(*target_) : nlohmann::json(nullptr);
  s["rounds_to_target"] = rounds_to_target_;
}

void CentralEvaluator::SaveTotals(nlohmann::json& t) const {
  if (backdoor_) t["final_backdoor_acc"] = NullableNumber(final_backdoor_acc_);
  t["final_acc"] = NullableNumber(final_acc_);
  t["final_loss"] = NullableNumber(final_loss_);
  t["best_acc"] = NullableNumber(best_acc_);
  t["best_round"] = best_round_;
  t["rounds_to_target"] = rounds_to_target_;
}

void CentralEvaluator::LoadTotals(const nlohmann::json& t) {
  auto num = [&](const char* k) { return t.at(k).is_null() ? NAN : t.at(k).get<double>(); };
  final_acc_ = num("final_acc");
  final_loss_ = num("final_loss");
  best_acc_ = num("best_acc");
  best_round_ = t.at("best_round").get<int>();
  rounds_to_target_ = t.at("rounds_to_target");
  // A branch that switches a backdoor on starts without a figure.
  if (backdoor_ && t.contains("final_backdoor_acc") && !t["final_backdoor_acc"].is_null()) {
    final_backdoor_acc_ = t["final_backdoor_acc"].get<double>();
  }
}

}  // namespace fedsim
