// Client-side building blocks shared by the algorithms.
#pragma once

#include <functional>

#include "core/rng.h"
#include "fl/algorithm.h"
#include "sim/system.h"

namespace fedsim {

// How an algorithm changes plain local SGD.
struct LocalHooks {
  // Adds the algorithm's terms to the minibatch gradient g (num_params
  // floats) at the local weights w, e.g. FedProx's mu (w - w_global).
  std::function<void(const float* w, float* g)> correct;
  // If set, called with the local weights right after each optimizer step,
  // outside the momentum buffer: NIID-Bench's SCAFFOLD subtracts
  // lr (c - c_i) here.
  std::function<void(float* w)> after_step;
  // If set (num_params entries of 0 or 1), weights with mask 0 are kept at 0:
  // the sparse global model of FedSparse.
  const float* mask = nullptr;
};

// Mean loss and gradient over the rows `rows[0..count)` of ctx.train at
// `params`, computed in sub-batches of at most ctx.max_chunk rows so that a
// large (or full) batch never needs more workspace. Writes the gradient to
// scratch.grad_acc and returns the mean loss. noise_seed keys the masks of
// stochastic layers (Workspace::Noise); the sub-batches continue one another.
double BatchGradient(const TrainContext& ctx, const float* params, const int* rows, int count,
                     ClientScratch& scratch, uint64_t noise_seed = 0);

// Mean loss of the model `params` over `rows` (all of a client's training
// rows, say) of ctx.train, evaluated as at test time (no dropout, no
// augmentation) in chunks of at most ctx.max_chunk rows summed in order:
// deterministic. 0 for no rows. q-FFL's and AFL's F_k(w).
double MeanLoss(const TrainContext& ctx, const float* params, const std::vector<int>& rows, ClientScratch& scratch);

// The Workspace::Noise seed of local step `step` of `client` in `round`,
// from the stream (seed, kDropout, round, client): dropout masks depend on
// these four numbers only, not on the thread or the order of clients.
uint64_t StepNoiseSeed(uint64_t seed, int round, int client, int64_t step);

// Minibatch SGD on the task's client from `params` (in place): local_epochs
// epochs over a fresh shuffle each epoch (the last batch may be smaller), or
// exactly local_steps steps if local_steps > 0, cut to task.max_steps when
// that is > 0 (partial work). Batch size 0 means the whole client data. The shuffle stream is (seed, kLocalTrain, round, client).
ClientReport TrainLocalSgd(const TrainContext& ctx, const ClientTask& task, ClientScratch& scratch,
                           const LocalHooks* hooks = nullptr);

// The minibatches TrainLocalSgd would draw, one at a time, for algorithms
// that write their own local step (APFL, pFedMe, Per-FedAvg): the client's
// rows reshuffled from (seed, kLocalTrain, round, client) whenever a pass
// ends, batches of algorithm.batch_size rows (0: all), the last of a pass
// possibly smaller. `order` is the caller's scratch (ClientScratch::order).
// REQUIRES: the client has at least one row.
class MinibatchStream {
 public:
  MinibatchStream(const TrainContext& ctx, const ClientTask& task, std::vector<int>& order);
  // The next batch: its first row id in `order` and its size.
  const int* Next(int& size);
  // The number of local steps to run: the planned work cut to task.max_steps.
  int64_t steps() const { return steps_; }

 private:
  Rng rng_;
  std::vector<int>& order_;
  int n_ = 0, batch_ = 0, pos_ = 0;
  int64_t steps_ = 0;
};

// The steps and samples TrainLocalSgd runs on a client of n samples when
// nothing cuts it short (task.max_steps = 0).
LocalWork PlannedLocalSgdWork(int n, const AlgorithmConfig& cfg);

// ||a||_1 of FedNova (Wang et al. 2020) for `steps` local SGD steps with
// heavy-ball momentum rho: sum_{k=1..steps} (1 - rho^k) / (1 - rho); = steps
// when rho = 0.
double FedNovaNormA(int64_t steps, double rho);

}  // namespace fedsim
