// Rényi-DP accounting for the sampled Gaussian mechanism (SGM).
//
// The SGM samples each record with probability q (Poisson sampling), sums the
// clipped contributions and adds N(0, (sigma * clip_norm)^2) noise; sigma is the
// noise multiplier (noise standard deviation over L2 sensitivity). Its RDP
// follows Mironov, Talwar & Zhang (2019), "Rényi Differential Privacy of the
// Sampled Gaussian Mechanism", computed as TensorFlow Privacy's
// rdp_accountant.py and Opacus' analysis/rdp.py do; the conversion to
// (epsilon, delta)-DP is either the classic one (Mironov 2017, Prop. 3) or the
// improved one Opacus uses (Balle et al. 2020, Thm. 21; Canonne, Kamath &
// Steinke 2020). docs/privacy-accountant-notes.md has the formulas.
//
// In federated learning with client-level DP, a "record" is a client: q is the
// cohort sampling rate and one step is one round.
//
// All functions are pure and thread-safe; an RdpAccountant is a value with no
// internal synchronisation.
#pragma once

#include <cstdint>
#include <vector>

namespace fedsim {

// RDP of `steps` compositions of the SGM at one order alpha (in nats).
// q = 0 or steps = 0 gives 0; sigma = 0 (with q > 0) gives +infinity;
// q = 1 gives steps * alpha / (2 sigma^2); alpha = +infinity gives +infinity.
// Integer orders use the exact binomial expansion, fractional orders the
// two-sided series of Mironov et al. (Sec. 3.3), both in log space.
// REQUIRES: 0 <= q <= 1, sigma >= 0, steps >= 0, order > 1 and, if an
// integer, at most 1e7 (InputError otherwise). Cost grows linearly with
// integer orders.
double ComputeRdp(double q, double sigma, int64_t steps, double order);

// ComputeRdp at each of `orders`, in the same order.
std::vector<double> ComputeRdp(double q, double sigma, int64_t steps,
                               const std::vector<double>& orders);

// How an RDP curve is turned into (epsilon, delta)-DP.
enum class Conversion {
  // epsilon = rdp(alpha) - log(delta) / (alpha - 1)  (Mironov 2017, Prop. 3;
  // TF Privacy's original get_privacy_spent).
  kClassic,
  // epsilon = rdp(alpha) + log1p(-1/alpha) - (log(delta) + log(alpha)) / (alpha - 1)
  // (Balle et al. 2020, Thm. 21; Opacus' get_privacy_spent). Never looser
  // than kClassic for alpha > 1.
  kImproved,
};

// An (epsilon, delta) guarantee and the RDP order that attains it.
struct EpsilonResult {
  double epsilon;  // nats; +infinity when no order gives a finite bound
  double order;    // the minimising order; NaN when every order was unusable
};

// The smallest epsilon over `orders` for the RDP curve `rdp` at `delta`.
// Orders whose bound evaluates to NaN are skipped (as Opacus does); if all
// are, the result is {+inf, NaN}. Ties go to the earliest order. Two rules make
// the answer tighter but never unsound (see the notes): a bound below zero is
// reported as 0, and an order whose rdp r satisfies delta^2 + expm1(-r) >= 0
// gives epsilon = 0 (total variation <= sqrt(1 - exp(-KL)) <= delta).
// REQUIRES: orders.size() == rdp.size() > 0, every order > 1 (may be
// +infinity), every rdp >= 0 or NaN, 0 < delta < 1 (InputError otherwise).
EpsilonResult GetEpsilon(const std::vector<double>& orders, const std::vector<double>& rdp,
                         double delta, Conversion conversion);

// Opacus' default orders: 1.1, 1.2, ..., 10.9 (each 1 + x/10 for x in 1..99),
// then the integers 12..63.
std::vector<double> DefaultOrders();

// The smallest noise multiplier sigma whose SGM run of `steps` steps at
// sampling rate q has epsilon <= target_epsilon at `delta`, to a relative
// tolerance of 1e-7 (the returned sigma always satisfies the target). Returns
// 0 when the target holds without noise (q = 0 or steps = 0, epsilon 0).
// Bracketing by doubling from sigma = 1, then bisection.
// REQUIRES: 0 <= q <= 1, steps >= 0, 0 < delta < 1, target_epsilon > 0,
// orders as for GetEpsilon. Throws InputError naming target_epsilon when no
// sigma up to 1e6 reaches the target (e.g. a target below what the orders'
// conversion allows).
double FindNoiseMultiplier(double q, int64_t steps, double delta, double target_epsilon,
                           Conversion conversion,
                           const std::vector<double>& orders = DefaultOrders());

// Accumulates the RDP of a sequence of SGM steps whose (q, sigma) may change
// from step to step, and converts it to (epsilon, delta) on demand.
//
// Consecutive steps with the same (q, sigma) are kept as one run and
// multiplied out only when (q, sigma) changes or epsilon is asked for, so
// Step(q, s, 10); Step(q, s, 20) gives bitwise the same epsilon as
// Step(q, s, 30), and ComputeRdp is evaluated once per distinct run.
class RdpAccountant {
 public:
  // REQUIRES: orders as for GetEpsilon and ComputeRdp (InputError otherwise).
  explicit RdpAccountant(std::vector<double> orders = DefaultOrders());

  // Accounts `steps` SGM steps at sampling rate q and noise multiplier sigma.
  // REQUIRES: as for ComputeRdp. On InputError the accountant is unchanged.
  void Step(double q, double sigma, int64_t steps = 1);

  // The (epsilon, delta) guarantee of everything accounted so far; epsilon 0
  // when nothing has been (every rdp is 0).
  // REQUIRES: 0 < delta < 1.
  EpsilonResult Epsilon(double delta, Conversion conversion) const;

  // The accumulated RDP at each order.
  std::vector<double> Rdp() const;
  const std::vector<double>& Orders() const { return orders_; }
  // Total number of steps accounted.
  int64_t Steps() const { return total_steps_; }

  // Checkpoint support. State() is a flat vector of doubles (format version,
  // orders, accumulated RDP, the open run); Restore(State()) reproduces the
  // accountant exactly, orders included, provided the doubles are stored
  // bit-exactly. Restore throws InputError naming `state` for a vector that
  // is not a State() of this format; on error the accountant is unchanged.
  std::vector<double> State() const;
  void Restore(const std::vector<double>& state);

 private:
  void CloseRun();

  std::vector<double> orders_;
  std::vector<double> closed_rdp_;  // RDP of the runs already closed
  // The open run: run_steps_ steps at (run_q_, run_sigma_), each worth run_rdp_.
  double run_q_ = 0.0;
  double run_sigma_ = 0.0;
  int64_t run_steps_ = 0;
  std::vector<double> run_rdp_;
  int64_t total_steps_ = 0;
};

}  // namespace fedsim
