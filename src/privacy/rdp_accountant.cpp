#include "privacy/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fmath.h"
#include "privacy/log_math.h"

namespace fedsim {
namespace {

// Shortest round-trip form of a number, for error messages.
std::string Num(double x) { return fmt::format("{}", x); }

using log_math::LogAdd;
using log_math::LogErfc;
using log_math::LogSub;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The fractional series stops once both new terms are below exp(kSeriesCutoff),
// as in the reference implementations.
constexpr double kSeriesCutoff = -30.0;
// A safety net against a series that never meets the cutoff; the reference
// cases need at most a few hundred terms.
constexpr int64_t kMaxSeriesTerms = 10'000'000;

constexpr int kStateVersion = 1;

void CheckSgmArgs(const char* fn, double q, double sigma, int64_t steps) {
  if (!(q >= 0.0 && q <= 1.0))
    throw InputError(std::string(fn) + ": q (sampling rate) must be in [0, 1], got " + Num(q));
  if (!(sigma >= 0.0))
    throw InputError(std::string(fn) + ": sigma (noise multiplier) must be >= 0, got " +
                     Num(sigma));
  if (steps < 0) throw InputError(std::string(fn) + ": steps must be >= 0, got " + Num(steps));
}

void CheckOrder(const char* fn, double order) {
  if (!(order > 1.0))
    throw InputError(std::string(fn) + ": every RDP order must be > 1, got " + Num(order));
}

// Integer orders are summed term by term; beyond this the cost is unreasonable.
constexpr double kMaxIntegerOrder = 1e7;

// An order ComputeRdp can evaluate.
void CheckRdpOrder(const char* fn, double order) {
  CheckOrder(fn, order);
  if (std::isfinite(order) && std::floor(order) == order && order > kMaxIntegerOrder)
    throw InputError(std::string(fn) + ": integer RDP orders above 1e7 are not supported, got " +
                     Num(order));
}

void CheckOrders(const char* fn, const std::vector<double>& orders) {
  if (orders.empty()) throw InputError(std::string(fn) + ": orders must not be empty");
  for (double a : orders) CheckOrder(fn, a);
}

void CheckDelta(const char* fn, double delta) {
  if (!(delta > 0.0 && delta < 1.0))
    throw InputError(std::string(fn) + ": delta must be in (0, 1), got " + Num(delta));
}

// log(A_alpha) for integer alpha >= 2 and 0 < q < 1 (Mironov et al. 2019,
// Sec. 3.3): A_alpha = sum_i C(alpha, i) q^i (1-q)^(alpha-i) exp((i^2 - i) / (2 sigma^2)).
double LogAIntegerOrder(double q, double sigma, int64_t alpha) {
  const double log_q = fm::Log(q);
  const double log_1mq = fm::Log1p(-q);
  const double two_var = 2.0 * sigma * sigma;
  double log_a = -kInf;
  double log_binom = 0.0;  // log C(alpha, i), by the product recurrence
  for (int64_t i = 0; i <= alpha; ++i) {
    if (i > 0)
      log_binom += fm::Log(static_cast<double>(alpha - i + 1)) - fm::Log(static_cast<double>(i));
    const double di = static_cast<double>(i);
    const double term = log_binom + di * log_q + static_cast<double>(alpha - i) * log_1mq +
                        (di * di - di) / two_var;
    log_a = LogAdd(log_a, term);
  }
  return log_a;
}

// log(A_alpha) for fractional alpha > 1 and 0 < q < 1: A_alpha splits at
// z0 = sigma^2 log(1/q - 1) + 1/2 into two binomial series with real
// exponent alpha, each term weighted by a Gaussian tail (Mironov et al. 2019,
// Sec. 3.3). Terms are added until both fall below exp(kSeriesCutoff).
double LogAFractionalOrder(double q, double sigma, double alpha) {
  const double log_q = fm::Log(q);
  const double log_1mq = fm::Log1p(-q);
  const double two_var = 2.0 * sigma * sigma;
  const double z0 = sigma * sigma * fm::Log(1.0 / q - 1.0) + 0.5;
  const double erfc_scale = std::sqrt(2.0) * sigma;
  const double log_half = fm::Log(0.5);
  double log_a0 = -kInf, log_a1 = -kInf;
  double log_abs_binom = 0.0;  // log |C(alpha, i)|
  bool binom_positive = true;
  for (int64_t i = 0;; ++i) {
    if (i > 0) {
      const double factor = alpha - static_cast<double>(i - 1);
      log_abs_binom += fm::Log(std::fabs(factor)) - fm::Log(static_cast<double>(i));
      if (factor < 0.0) binom_positive = !binom_positive;
    }
    const double di = static_cast<double>(i);
    const double j = alpha - di;
    const double log_t0 = log_abs_binom + di * log_q + j * log_1mq;
    const double log_t1 = log_abs_binom + j * log_q + di * log_1mq;
    const double log_e0 = log_half + LogErfc((di - z0) / erfc_scale);
    const double log_e1 = log_half + LogErfc((z0 - j) / erfc_scale);
    const double log_s0 = log_t0 + (di * di - di) / two_var + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
    if (binom_positive) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < kSeriesCutoff) break;
    if (i >= kMaxSeriesTerms)
      throw RunError("ComputeRdp: the fractional-order series did not converge for q=" + Num(q) +
                     ", sigma=" + Num(sigma) + ", order=" + Num(alpha));
  }
  return LogAdd(log_a0, log_a1);
}

// RDP of one SGM step at order alpha; arguments already validated.
double RdpOneStep(double q, double sigma, double alpha) {
  if (q == 0.0) return 0.0;
  if (sigma == 0.0) return kInf;
  if (q == 1.0) return alpha / (2.0 * sigma * sigma);
  if (std::isinf(alpha)) return kInf;
  if (std::isinf(sigma)) return 0.0;
  const double log_a = std::floor(alpha) == alpha
                           ? LogAIntegerOrder(q, sigma, static_cast<int64_t>(alpha))
                           : LogAFractionalOrder(q, sigma, alpha);
  return log_a / (alpha - 1.0);
}

double TimesSteps(double rdp_one, int64_t steps) {
  return steps == 0 ? 0.0 : rdp_one * static_cast<double>(steps);
}

}  // namespace

double ComputeRdp(double q, double sigma, int64_t steps, double order) {
  CheckSgmArgs("ComputeRdp", q, sigma, steps);
  CheckRdpOrder("ComputeRdp", order);
  if (steps == 0) return 0.0;
  return TimesSteps(RdpOneStep(q, sigma, order), steps);
}

std::vector<double> ComputeRdp(double q, double sigma, int64_t steps,
                               const std::vector<double>& orders) {
  CheckSgmArgs("ComputeRdp", q, sigma, steps);
  for (double a : orders) CheckRdpOrder("ComputeRdp", a);
  std::vector<double> rdp(orders.size(), 0.0);
  if (steps == 0) return rdp;
  for (size_t k = 0; k < orders.size(); ++k)
    rdp[k] = TimesSteps(RdpOneStep(q, sigma, orders[k]), steps);
  return rdp;
}

EpsilonResult GetEpsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                         double delta, Conversion conversion) {
  CheckOrders("GetEpsilon", orders);
  if (orders.size() != rdp.size())
    throw InputError("GetEpsilon: orders and rdp must have the same length, got " +
                     Num(orders.size()) + " and " + Num(rdp.size()));
  for (double r : rdp)
    if (r < 0.0) throw InputError("GetEpsilon: every rdp value must be >= 0, got " + Num(r));
  CheckDelta("GetEpsilon", delta);

  const double log_delta = fm::Log(delta);
  EpsilonResult best{kInf, kNaN};
  bool found = false;
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k];
    const double r = rdp[k];
    double eps;
    if (delta * delta + fm::Expm1(-r) >= 0.0) {
      eps = 0.0;
    } else if (conversion == Conversion::kClassic) {
      eps = r - log_delta / (a - 1.0);
    } else {
      eps = r + fm::Log1p(-1.0 / a) - (log_delta + fm::Log(a)) / (a - 1.0);
    }
    if (std::isnan(eps)) continue;
    if (!found || eps < best.epsilon) {
      best = {eps, a};
      found = true;
    }
  }
  if (found && best.epsilon < 0.0) best.epsilon = 0.0;
  return best;
}

std::vector<double> DefaultOrders() {
  std::vector<double> orders;
  orders.reserve(99 + 52);
  for (int x = 1; x <= 99; ++x) orders.push_back(1.0 + x / 10.0);
  for (int a = 12; a <= 63; ++a) orders.push_back(a);
  return orders;
}

double FindNoiseMultiplier(double q, int64_t steps, double delta, double target_epsilon,
                           Conversion conversion, const std::vector<double>& orders) {
  CheckSgmArgs("FindNoiseMultiplier", q, 0.0, steps);
  CheckDelta("FindNoiseMultiplier", delta);
  CheckOrders("FindNoiseMultiplier", orders);
  for (double a : orders) CheckRdpOrder("FindNoiseMultiplier", a);
  if (!(target_epsilon > 0.0))
    throw InputError("FindNoiseMultiplier: target_epsilon must be > 0, got " + Num(target_epsilon));
  constexpr double kMaxSigma = 1e6;
  constexpr double kRelTol = 1e-7;

  auto epsilon_at = [&](double sigma) {
    return GetEpsilon(orders, ComputeRdp(q, sigma, steps, orders), delta, conversion).epsilon;
  };
  auto meets = [&](double sigma) { return epsilon_at(sigma) <= target_epsilon; };

  if (meets(0.0)) return 0.0;
  const double sigma = log_math::SolveThreshold(meets, kRelTol, kMaxSigma);
  if (std::isinf(sigma)) {
    throw InputError("FindNoiseMultiplier: target_epsilon " + Num(target_epsilon) +
                     " is not reached by any noise multiplier up to 1e6 (q=" + Num(q) +
                     ", steps=" + Num(steps) + ", delta=" + Num(delta) + ")");
  }
  return sigma;
}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)) {
  CheckOrders("RdpAccountant", orders_);
  for (double a : orders_) CheckRdpOrder("RdpAccountant", a);
  closed_rdp_.assign(orders_.size(), 0.0);
}

void RdpAccountant::CloseRun() {
  if (run_steps_ > 0)
    for (size_t k = 0; k < orders_.size(); ++k)
      closed_rdp_[k] += TimesSteps(run_rdp_[k], run_steps_);
  run_steps_ = 0;
}

void RdpAccountant::Step(double q, double sigma, int64_t steps) {
  CheckSgmArgs("RdpAccountant::Step", q, sigma, steps);
  if (steps == 0) return;
  if (run_steps_ > 0 && q == run_q_ && sigma == run_sigma_) {
    run_steps_ += steps;
  } else {
    std::vector<double> per_step = ComputeRdp(q, sigma, 1, orders_);
    CloseRun();
    run_q_ = q;
    run_sigma_ = sigma;
    run_steps_ = steps;
    run_rdp_ = std::move(per_step);
  }
  total_steps_ += steps;
}

std::vector<double> RdpAccountant::Rdp() const {
  std::vector<double> rdp = closed_rdp_;
  if (run_steps_ > 0)
    for (size_t k = 0; k < orders_.size(); ++k) rdp[k] += TimesSteps(run_rdp_[k], run_steps_);
  return rdp;
}

EpsilonResult RdpAccountant::Epsilon(double delta, Conversion conversion) const {
  return GetEpsilon(orders_, Rdp(), delta, conversion);
}

std::vector<double> RdpAccountant::State() const {
  const size_t n = orders_.size();
  std::vector<double> state;
  state.reserve(2 + 2 * n + 4);
  state.push_back(kStateVersion);
  state.push_back(static_cast<double>(n));
  state.insert(state.end(), orders_.begin(), orders_.end());
  state.insert(state.end(), closed_rdp_.begin(), closed_rdp_.end());
  state.push_back(run_q_);
  state.push_back(run_sigma_);
  state.push_back(static_cast<double>(run_steps_));
  state.push_back(static_cast<double>(total_steps_));
  return state;
}

void RdpAccountant::Restore(const std::vector<double>& state) {
  auto bad = [](const std::string& why) {
    return InputError("RdpAccountant::Restore: state is not a saved accountant state (" + why +
                      ")");
  };
  constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53
  auto is_count = [&](double x) { return x >= 0.0 && x <= kMaxExactInt && std::floor(x) == x; };
  if (state.size() < 2) throw bad("too short");
  if (state[0] != kStateVersion) throw bad("unknown format version " + Num(state[0]));
  if (!is_count(state[1]) || state[1] < 1.0) throw bad("bad number of orders");
  const size_t n = static_cast<size_t>(state[1]);
  if (state.size() != 2 + 2 * n + 4)
    throw bad("expected " + Num(2 + 2 * n + 4) + " values, got " + Num(state.size()));

  std::vector<double> orders(state.begin() + 2, state.begin() + 2 + n);
  std::vector<double> closed(state.begin() + 2 + n, state.begin() + 2 + 2 * n);
  const double q = state[2 + 2 * n];
  const double sigma = state[2 + 2 * n + 1];
  const double run_steps = state[2 + 2 * n + 2];
  const double total_steps = state[2 + 2 * n + 3];
  for (double a : orders)
    if (!(a > 1.0) || (std::isfinite(a) && std::floor(a) == a && a > kMaxIntegerOrder))
      throw bad("order " + Num(a) + " is not a supported RDP order");
  for (double r : closed)
    if (!(r >= 0.0)) throw bad("rdp value " + Num(r) + " is not >= 0");
  if (!(q >= 0.0 && q <= 1.0) || !(sigma >= 0.0)) throw bad("bad q or sigma of the open run");
  if (!is_count(run_steps) || !is_count(total_steps) || run_steps > total_steps)
    throw bad("bad step counts");

  std::vector<double> run_rdp;
  if (run_steps > 0) run_rdp = ComputeRdp(q, sigma, 1, orders);

  orders_ = std::move(orders);
  closed_rdp_ = std::move(closed);
  run_q_ = q;
  run_sigma_ = sigma;
  run_steps_ = static_cast<int64_t>(run_steps);
  run_rdp_ = std::move(run_rdp);
  total_steps_ = static_cast<int64_t>(total_steps);
}

}  // namespace fedsim
