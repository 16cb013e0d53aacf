// Input perturbation (privacy.input_perturbation): noise on each training
// sample's features and randomised response on its label, applied once to
// every client's data before training. Everything trained afterwards is
// post-processing, so the guarantee holds for any number of rounds.
#pragma once

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/dataset.h"
#include "data/partition.h"

namespace fedsim {

// Perturbs the rows of `train` in place, client by client, with the stream
// (seed, kPrivacy, 2^64 - 2, client). Features: each row is scaled to norm <=
// feature_clip (L2 for gaussian, L1 for laplace), then noise is added;
// byte-stored features are converted to float first. Labels: randomised
// response. Returns the per-sample guarantee: {"feature_epsilon",
// "label_epsilon", "epsilon" (their sum, by composition), "delta"}, with
// replace-one sensitivity 2 * feature_clip.
nlohmann::json PerturbTrainingData(Dataset& train, const Partition& partition, const InputPerturbationConfig& cfg,
                                   double delta, uint64_t seed);

}  // namespace fedsim
