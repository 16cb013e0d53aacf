// The one registry of named components. Adding an algorithm: add its class to
// algorithms.h, a line to the catalog and a branch to CreateAlgorithm, and its
// name to AlgorithmConfig's choices (a test checks the three agree).
// Generative algorithms (fedgan) are catalogued but run by their own loop.
#include "core/error.h"
#include "fl/algorithms.h"

namespace fedsim {

const Catalog& GetCatalog() {
  static const Catalog catalog{
      {
          {"fashion_mnist", "Fashion-MNIST 28x28 grey images, 10 classes (Debian dataset-fashion-mnist)"},
          {"mnist_idx", "any MNIST-format IDX image/label files in data.path, gzipped or not"},
          {"synthetic", "FedProx Synthetic(alpha, beta) generator, natural users, or its IID variant"},
          {"csv", "a CSV file: an integer label column and numeric features, optionally a client column"},
          {"leaf", "LEAF's JSON files (femnist, shakespeare, sent140, synthetic): natural users, per-user test rows"},
          {"cifar10", "CIFAR-10 binary version (cifar-10-batches-bin): 32x32 RGB images, 10 classes"},
          {"cifar100", "CIFAR-100 binary version (cifar-100-binary): 32x32 RGB images, 100 fine or 20 coarse classes"},
          {"tff_h5", "TFF/FedML federated HDF5 (emnist, emnist_digits, shakespeare, cifar100): natural clients, "
                     "per-client test rows"},
      },
      {
          {"iid", "uniformly random, near-equal client sizes"},
          {"dirichlet", "label skew: per-class client proportions ~ Dir(alpha)"},
          {"shards", "sort by label, cut into shards, shards_per_client shards each (McMahan et al. 2017)"},
          {"quantity", "quantity skew: lognormal(0, quantity_sigma) client sizes, random samples"},
          {"labels", "label skew #C=k (NIID-Bench): labels_per_client labels per client, each label split evenly"},
          {"natural", "the data's own users (synthetic, leaf, tff_h5, a CSV client column), one client each"},
      },
      {
          {"softmax", "multinomial logistic regression"},
          {"mlp", "ReLU multilayer perceptron with model.hidden widths (784-200-200-10 is the 2NN)"},
          {"cnn_mcmahan", "conv5x5x32-pool-conv5x5x64-pool-dense512 CNN of McMahan et al. 2017 (1,663,370 params)"},
          {"cnn_lenet", "LeNet-style CNN of NIID-Bench: conv5x5x6-pool-conv5x5x16-pool-120-84"},
          {"sequential", "the layer engine: a model from the layer list model.layers (docs/models.md)"},
          {"leaf_femnist_cnn", "LEAF's FEMNIST CNN: conv5x5x32 same-pool-conv5x5x64 same-pool-2048 (6,603,710 params)"},
          {"leaf_shakespeare_lstm", "LEAF's Shakespeare model: embedding 8, two LSTM 256, dense on the last step"},
          {"tff_emnist_cnn", "TFF's EMNIST CNN: conv3x3x32-conv3x3x64-pool-dropout-128-dropout (1,206,590 params)"},
          {"niid_cifar_cnn", "NIID-Bench's CIFAR simple-cnn: conv5x5x6-pool-conv5x5x16-pool-120-84 (62,006 params)"},
          {"sent140_lstm", "LEAF's Sent140 model: embedding 100, two LSTM 100, dense 128, dense classes"},
          {"tff_stackoverflow_lstm",
           "TFF's StackOverflow next-word model: embedding 96, LSTM 670, dense 96, dense vocabulary (4,050,748 params)"},
          {"resnet20_gn", "He et al. 2016's CIFAR ResNet-20 with GroupNorm and 1x1 projection shortcuts"},
      },
      {
          {"fedavg", "Federated Averaging: local SGD epochs, sample-weighted delta average (McMahan et al. 2017)"},
          {"fedsgd", "one full-batch gradient per client, server takes one step (McMahan et al. 2017)"},
          {"fedprox", "FedAvg with a proximal term (mu/2)||w - w_global||^2 in the local objective (Li et al. 2020)"},
          {"feddyn", "dynamic regularisation with per-client gradient state and server h (Acar et al. 2021)"},
          {"scaffold", "control variates c, c_i correct client drift, option II (Karimireddy et al. 2020)"},
          {"fednova", "normalised averaging for unequal local steps (Wang et al. 2020)"},
          {"fedavgm", "FedAvg with server momentum (Hsu et al. 2019)"},
          {"fedadagrad", "FedAvg with an Adagrad server optimizer (Reddi et al. 2021)"},
          {"fedadam", "FedAvg with an Adam server optimizer (Reddi et al. 2021)"},
          {"fedyogi", "FedAvg with a Yogi server optimizer (Reddi et al. 2021)"},
          {"fedsparse", "top-k sparse updates with error feedback, optional STC ternary, sparse global model"},
          {"fedpara", "FedAvg on low-rank Hadamard-product layers W = (X1 Y1^T) o (X2 Y2^T) (Hyeon-Woo et al. 2022)"},
          {"fedgia", "gradient descent + inexact ADMM hybrid, all clients each round (Zhou & Li 2023)"},
          {"qffl", "q-FFL by q-FedAvg: clients with a larger loss weigh more, step sum Delta_k / sum h_k (Li et al. 2020)"},
          {"afl", "agnostic FL: min over w, max over client mixture lambda; SGD on w, projected ascent on lambda (Mohri et al. 2019)"},
          {"ditto",
           "FedAvg plus a personal model per client, trained with a proximal pull to the global model "
           "(Li et al. 2021)"},
          {"apfl",
           "adaptive personalised FL: a personal model mixed with the global one, fixed alpha "
           "(Deng et al. 2020)"},
          {"pfedme", "personalised FL with Moreau envelopes: bi-level local steps (T. Dinh et al. 2020)"},
          {"perfedavg", "Per-FedAvg: MAML-style local steps, first-order or Hessian-free (Fallah et al. 2020)"},
          {"fedper", "FedAvg on the shared layers, the last layers (head) kept per client (Arivazhagan et al. 2019)"},
          {"fedrep", "shared representation, personal head: head epochs, then body epochs (Collins et al. 2021)"},
          {"lgfedavg", "LG-FedAvg: the first layers kept per client, the rest averaged (Liang et al. 2020)"},
          {"fedbn", "FedAvg with the layers marked \"local\" (its batchnorm layers) kept per client (Li et al. 2021)"},
          {"fedgan",
           "federated GAN: clients train generator + discriminator, server averages both (Rasouli et al. 2020)", true},
      },
  };
  return catalog;
}

std::unique_ptr<Algorithm> CreateAlgorithm(const AlgorithmConfig& cfg, const PersonalizationConfig& pers) {
  using K = ServerOptimizer::Kind;
  const std::string& n = cfg.name;
  if (n == "fedavg" || n == "fedprox" || n == "fedpara") return std::make_unique<FedAvg>(cfg, n, K::kSgd);
  if (n == "fedavgm") return std::make_unique<FedAvg>(cfg, n, K::kMomentum);
  if (n == "fedadagrad") return std::make_unique<FedAvg>(cfg, n, K::kAdagrad);
  if (n == "fedadam") return std::make_unique<FedAvg>(cfg, n, K::kAdam);
  if (n == "fedyogi") return std::make_unique<FedAvg>(cfg, n, K::kYogi);
  if (n == "fedsgd") return std::make_unique<FedSgd>(cfg);
  if (n == "feddyn") return std::make_unique<FedDyn>(cfg);
  if (n == "scaffold") return std::make_unique<Scaffold>(cfg);
  if (n == "fednova") return std::make_unique<FedNova>(cfg);
  if (n == "fedsparse") return std::make_unique<FedSparse>(cfg);
  if (n == "fedgia") return std::make_unique<FedGiA>(cfg);
  if (n == "qffl") return std::make_unique<QFfl>(cfg);
  if (n == "afl") return std::make_unique<Afl>(cfg);
  if (n == "ditto") return std::make_unique<Ditto>(cfg, pers);
  if (n == "apfl") return std::make_unique<Apfl>(cfg, pers);
  if (n == "pfedme") return std::make_unique<PFedMe>(cfg, pers);
  if (n == "perfedavg") return std::make_unique<PerFedAvg>(cfg, pers);
  if (n == "fedper" || n == "fedrep" || n == "lgfedavg" || n == "fedbn") return std::make_unique<LayerSplit>(cfg, pers, n);
  if (n == "fedgan") throw InputError("algorithm.name: fedgan trains a generator and a discriminator (round/gan_trainer.h), not an Algorithm");
  throw InputError("algorithm.name: unknown algorithm '" + cfg.name + "'");
}

}  // namespace fedsim
