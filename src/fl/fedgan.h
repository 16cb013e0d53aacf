// FedGAN (Rasouli, Sun & Rajagopal 2020, arXiv:2006.07228): every client of
// the cohort trains a generator and a discriminator on its own data for K
// local steps from the global pair; the server replaces the global pair by
// the data-size-weighted mean of the clients' pairs and broadcasts it.
// Equations, parameters and metrics: docs/algorithms.md#fedgan.
//
// This file holds a client's local training. The round runs on the federated
// driver like every algorithm's: round/gan_trainer.h is the client trainer,
// round/judge_evaluator.h the evaluator (a GAN has no test accuracy; it is
// judged by a classifier trained centrally before the run).
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/gan.h"

namespace fedsim {

// Client training settings taken from algorithm.* and gan.*.
struct GanTrainSettings {
  int batch_size = 64;   // B
  int local_steps = 0;   // K if > 0; else local_epochs epochs of ceil(n_k / B) steps
  int local_epochs = 1;
  bool adam = true;      // else plain SGD
  float beta1 = 0.5f, beta2 = 0.999f, eps = 1e-8f;

  static GanTrainSettings FromConfig(const Config& cfg);
};

// One thread's buffers for client training, allocated once per run.
struct GanScratch {
  GanScratch(const GanNets& nets, int max_batch);
  GanWorkspace ws;
  Eigen::VectorXf params;  // [generator; discriminator] being trained (aligned: see GanTrainer::Train)
  Eigen::VectorXf grad;    // [generator; discriminator] gradient
  RowMatrix real;        // the batch's real rows, scaled to [-1, 1]
  Eigen::VectorXf z;     // the batch's latent vectors, b x latent_dim column-major
  std::vector<int> order;
};

struct GanClientReport {
  double weight = 0.0;      // n_k, the client's training samples
  double d_loss_sum = 0.0;  // sum over steps of L_D times the batch size
  double g_loss_sum = 0.0;  // sum over steps of L_G times the batch size
  int64_t samples = 0;      // real samples seen
  int64_t steps = 0;
};

// Local training of one client on its rows of `train`, from params = [w_G;
// w_D] (num_params floats, updated in place). Each step: a batch of real rows
// (pixels p mapped to 2p - 1) and of latent vectors z ~ N(0, I); one
// discriminator step on L_D, then one generator step on L_G under the updated
// discriminator with the same z. rng draws the shuffles and the latent
// vectors. With Adam, adam_m and adam_v (num_params floats each) and
// *adam_t (steps taken so far) are the client's optimizer state, updated in
// place; with SGD they are unused and may be null. max_steps > 0 stops after
// that many steps (the simulated system's partial work).
GanClientReport TrainGanClient(const GanNets& nets, const GanTrainSettings& s, const Dataset& train,
                               const std::vector<int>& rows, Rng& rng, float lr_g, float lr_d, float* params,
                               float* adam_m, float* adam_v, int64_t* adam_t, GanScratch& scratch,
                               int64_t max_steps = 0);

}  // namespace fedsim
