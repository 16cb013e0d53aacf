#include "round/privacy_ledger.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "fl/checkpoint.h"
#include "privacy/mechanisms.h"

namespace fedsim {

PrivacyLedger::PrivacyLedger(const Config& cfg, double sampling_rate, std::vector<int64_t> client_sizes)
    : mode_(cfg.privacy.mode),
      pc_(cfg.privacy),
      batch_size_(cfg.algorithm.batch_size),
      rounds_(cfg.experiment.rounds),
      sampling_rate_(sampling_rate),
      noise_multiplier_(cfg.privacy.noise_multiplier),
      conversion_(cfg.privacy.conversion == "classic" ? Conversion::kClassic : Conversion::kImproved),
      client_sizes_(std::move(client_sizes)),
      orders_(DefaultOrders()) {
  if (mode_ == "central" && pc_.target_epsilon) {
    noise_multiplier_ =
        FindNoiseMultiplier(sampling_rate_, cfg.experiment.rounds, pc_.delta, *pc_.target_epsilon, conversion_);
  }
  if (mode_ == "sample" || mode_ == "local") count_.assign(client_sizes_.size(), 0);
  if (mode_ == "local") {
    local_eps_round_ = noise_multiplier_ <= 0.0 ? INFINITY
                       : pc_.mechanism == "laplace"
                           ? LaplaceMechanismEpsilon(2.0 * pc_.clip_norm, noise_multiplier_ * pc_.clip_norm)
                           : GaussianMechanismEpsilon(2.0 * pc_.clip_norm, noise_multiplier_ * pc_.clip_norm, pc_.delta);
  }
}

nlohmann::json PrivacyLedger::Describe(const nlohmann::json& input_perturbation) const {
  const bool local = mode_ == "local";
  return {{"mode", mode_},
          {"clip_norm", pc_.clip_norm},
          {"noise_multiplier", noise_multiplier_},
          {"delta", pc_.delta},
          {"sampling_rate", sampling_rate_},
          {"conversion", pc_.conversion},
          {"local_epsilon_per_round",
           local ? (std::isfinite(local_eps_round_) ? nlohmann::json(local_eps_round_) : nlohmann::json(nullptr))
                 : nlohmann::json(nullptr)},
          {"input_perturbation", input_perturbation}};
}

void PrivacyLedger::Step(bool released, const std::vector<int>& cohort, const std::vector<ClientReport>& reports) {
  const double before = epsilon_;
  if (mode_ == "central" && released) {
    accountant_.Step(sampling_rate_, noise_multiplier_);
    epsilon_ = accountant_.Epsilon(pc_.delta, conversion_).epsilon;
    delta_ = pc_.delta;
  } else if (mode_ == "sample" || mode_ == "local") {
    const bool sample = mode_ == "sample";
    for (size_t i = 0; i < cohort.size(); ++i) {
      const size_t c = static_cast<size_t>(cohort[i]);
      count_[c] += sample ? reports[i].steps : 1;
      if (sample && reports[i].steps > 0) {
        // Client c's DP-SGD: batches of B out of n_c samples, q_c = B / n_c,
        // composed over all its steps so far; the run reports the worst client.
        const double qc = std::min(1.0, static_cast<double>(batch_size_) / static_cast<double>(client_sizes_[c]));
        auto it = rdp_per_step_.find(qc);
        if (it == rdp_per_step_.end()) it = rdp_per_step_.emplace(qc, ComputeRdp(qc, noise_multiplier_, 1, orders_)).first;
        std::vector<double> rdp(it->second);
        for (double& v : rdp) v *= static_cast<double>(count_[c]);
        epsilon_ = std::max(epsilon_, GetEpsilon(orders_, rdp, pc_.delta, conversion_).epsilon);
        delta_ = pc_.delta;
      } else if (!sample) {
        // Basic composition over the rounds the most frequent client took part in.
        const double k = static_cast<double>(count_[c]);
        epsilon_ = std::max(epsilon_, k * local_eps_round_);
        delta_ = std::max(delta_, pc_.mechanism == "laplace" ? 0.0 : std::min(1.0, k * pc_.delta));
      }
    }
  }
  round_epsilon_ = epsilon_ - before;
}

void PrivacyLedger::SaveTotals(nlohmann::json& totals) const {
  totals["epsilon"] = epsilon_;
  totals["delta"] = delta_;
}

void PrivacyLedger::LoadTotals(const nlohmann::json& totals) {
  epsilon_ = totals.at("epsilon").get<double>();
  delta_ = totals.at("delta").get<double>();
}

void PrivacyLedger::Save(CheckpointWriter& w) const {
  if (mode_ == "central") {
    const std::vector<double> st = accountant_.State();
    w.F64("privacy/accountant", st.data(), static_cast<int64_t>(st.size()));
  }
  if (!count_.empty()) w.I64("privacy/counts", count_);
}

void PrivacyLedger::Load(const CheckpointReader& r) {
  if (mode_ == "central") accountant_.Restore(r.F64("privacy/accountant"));
  if (mode_ == "central" && pc_.target_epsilon) {
    // z was solved for experiment.rounds noisy rounds from zero. A resume
    // restores that many or fewer of them at that z and stays within the
    // target; a branch may have spent more, or changed the rounds or the
    // target. At most rounds_ - (noisy rounds so far) rounds remain.
    const double target = *pc_.target_epsilon;
    const int64_t spent_steps = accountant_.Steps();
    RdpAccountant end = accountant_;
    if (rounds_ > spent_steps) end.Step(sampling_rate_, noise_multiplier_, rounds_ - spent_steps);
    const double eps_end = end.Epsilon(pc_.delta, conversion_).epsilon;
    if (eps_end > target * (1.0 + 1e-9)) {
      throw InputError(fmt::format(
          "privacy.target_epsilon: the checkpoint's {} noisy rounds have spent epsilon = {:.6g}, and the noise "
          "multiplier solved for {} rounds from zero (z = {:.6g}) would end this run at epsilon = {:.6g} > {}; "
          "set privacy.noise_multiplier instead (the run then reports the epsilon it spends on top)",
          spent_steps, accountant_.Epsilon(pc_.delta, conversion_).epsilon, rounds_, noise_multiplier_, eps_end,
          target));
    }
  }
  if (!count_.empty()) count_ = r.I64("privacy/counts", static_cast<int64_t>(count_.size()));
}

}  // namespace fedsim
