// Client-side building blocks shared by the algorithms.
#pragma once

#include "fl/algorithm.h"

namespace fedsim {

// Mean loss and gradient over the rows `rows[0..count)` of ctx.train at
// `params`, computed in sub-batches of at most ctx.max_chunk rows so that a
// large (or full) batch never needs more workspace. Writes the gradient to
// scratch.grad_acc and returns the mean loss.
double BatchGradient(const TrainContext& ctx, const float* params, const int* rows, int count,
                     ClientScratch& scratch);

// Minibatch SGD on the task's client from `params` (in place): local_epochs
// epochs over a fresh shuffle each epoch (the last batch may be smaller), or
// exactly local_steps steps if local_steps > 0. Batch size 0 means the whole
// client data. The shuffle stream is (seed, kLocalTrain, round, client).
ClientReport TrainLocalSgd(const TrainContext& ctx, const ClientTask& task, ClientScratch& scratch);

}  // namespace fedsim
