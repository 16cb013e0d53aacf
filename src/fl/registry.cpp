// The one registry of named components. Adding an algorithm: add its class to
// algorithms.h, a line to the catalog and a branch to CreateAlgorithm, and its
// name to AlgorithmConfig's choices (a test checks the three agree).
#include "core/error.h"
#include "fl/algorithms.h"

namespace fedsim {

const Catalog& GetCatalog() {
  static const Catalog catalog{
      {
          {"fashion_mnist", "Fashion-MNIST 28x28 grey images, 10 classes (Debian dataset-fashion-mnist)"},
          {"mnist_idx", "any MNIST-format IDX image/label files in data.path, gzipped or not"},
          {"synthetic", "FedProx Synthetic(alpha, beta) generator, natural users, or its IID variant"},
          {"csv", "a CSV file: an integer label column and numeric features"},
      },
      {
          {"iid", "uniformly random, near-equal client sizes"},
          {"dirichlet", "label skew: per-class client proportions ~ Dir(alpha)"},
          {"shards", "sort by label, cut into shards, shards_per_client shards each (McMahan et al. 2017)"},
          {"quantity", "quantity skew: lognormal(0, quantity_sigma) client sizes, random samples"},
          {"natural", "the generator's own users, one client each"},
      },
      {
          {"softmax", "multinomial logistic regression"},
          {"mlp", "ReLU multilayer perceptron with model.hidden widths (784-200-200-10 is the 2NN)"},
      },
      {
          {"fedavg", "Federated Averaging: local SGD epochs, sample-weighted delta average (McMahan et al. 2017)"},
          {"fedsgd", "one full-batch gradient per client, server takes one step (McMahan et al. 2017)"},
      },
  };
  return catalog;
}

std::unique_ptr<Algorithm> CreateAlgorithm(const AlgorithmConfig& cfg) {
  if (cfg.name == "fedavg") return std::make_unique<FedAvg>(cfg);
  if (cfg.name == "fedsgd") return std::make_unique<FedSgd>(cfg);
  throw InputError("algorithm.name: unknown algorithm '" + cfg.name + "'");
}

}  // namespace fedsim
