// Typed experiment configuration: one JSON file → these structs.
//
// Each section lists its fields once, in Visit(): name, member, constraint and
// a one-line meaning with unit and default. The same Visit drives parsing
// (with type and range checks, unknown keys rejected with a suggestion),
// writing the resolved config, and listing every key for the docs and tests.
// docs/config.md documents every key listed here (a test checks this).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fedsim {

struct ExperimentConfig {
  std::string name = "default";          // label written into the metrics
  uint64_t seed = 1;                     // root of every random stream
  int rounds = 20;                       // communication rounds to run
  std::optional<double> target_accuracy; // test accuracy that rounds_to_target waits for; null = none
  int checkpoint_every = 10;             // rounds between checkpoints (and at the end); 0 = only at the end
  std::string on_divergence = "stop";    // stop | skip_clients

  template <class V>
  void Visit(V& v) {
    v.Str("name", name, "Label for the run, written into the metrics. Default \"default\".");
    v.Seed("seed", seed, "Root seed of every random stream (data, partition, init, cohorts, shuffles). Default 1.");
    v.Int("rounds", rounds, 1, 100000000, "Number of communication rounds. Default 20.");
    v.OptReal("target_accuracy", target_accuracy, 0.0, 1.0,
              "Test accuracy (fraction) whose first crossing is reported as summary.rounds_to_target. Default null (none).");
    v.Int("checkpoint_every", checkpoint_every, 0, 100000000,
          "Write OUT/checkpoint.bin every N rounds and at the end (0 = only at the end and on interruption). Default 10.");
    v.Choice("on_divergence", on_divergence, {"stop", "skip_clients"},
             "A NaN/Inf in the loss or the global model: stop the run (status \"diverged\", exit 3), or drop the "
             "offending client updates and stop only if the global model itself goes non-finite. Default \"stop\".");
  }
};

struct PartitionConfig {
  std::string kind = "natural";  // iid | dirichlet | shards | quantity | natural
  double alpha = 0.5;            // Dirichlet concentration
  int shards_per_client = 2;     // shards partitioner
  int labels_per_client = 2;     // labels partitioner (#C = k)
  double quantity_sigma = 1.0;   // lognormal sigma of client sizes (quantity)
  int min_samples = 1;           // every client gets at least this many samples
  std::string dirichlet_mode = "per_class";  // per_class (NIID-Bench) | per_client (Hsu et al. 2019)
  std::string client_sizes = "equal";        // equal | lognormal, for dirichlet_mode=per_client

  template <class V>
  void Visit(V& v) {
    v.Choice("kind", kind, {"iid", "dirichlet", "shards", "quantity", "labels", "natural"},
             "How training samples are split across clients. Default \"natural\" (the generator's own users).");
    v.Real("alpha", alpha, 0.0, 1e9, /*lo_open=*/true,
           "Dirichlet concentration for kind=dirichlet; smaller is more skewed. Default 0.5.");
    v.Int("shards_per_client", shards_per_client, 1, 1000000,
          "Shards per client for kind=shards (McMahan et al. 2017 use 2). Default 2.");
    v.Int("labels_per_client", labels_per_client, 1, 1000000,
          "Distinct labels per client for kind=labels (NIID-Bench's #C = k): client i holds label i mod L and "
          "k - 1 others drawn at random; each label's samples are split evenly at random among its holders. "
          "Default 2.");
    v.Real("quantity_sigma", quantity_sigma, 0.0, 100.0, false,
           "Sigma of the lognormal client sizes for kind=quantity. Default 1.0.");
    v.Int("min_samples", min_samples, 0, 1000000000,
          "Smallest number of training samples a client may get (dirichlet, quantity). Default 1.");
    v.Choice("dirichlet_mode", dirichlet_mode, {"per_class", "per_client"},
             "per_class: each class split over clients by Dir(alpha) (NIID-Bench); per_client: each client draws "
             "class proportions from Dir(alpha * global label distribution) (Hsu et al. 2019), sizes fixed "
             "first, which scales to any population. Default \"per_class\".");
    v.Choice("client_sizes", client_sizes, {"equal", "lognormal"},
             "Client sizes for dirichlet_mode=per_client: near-equal, or lognormal(0, quantity_sigma) "
             "quantity skew. Default \"equal\".");
  }
};

struct SyntheticConfig {
  double alpha = 1.0;     // std of u_k (model heterogeneity)
  double beta = 1.0;      // std of B_k (feature heterogeneity)
  bool iid = false;       // the IID variant: one W, b and v shared by all users
  int num_users = 30;     // users generated
  int num_features = 60;  // input dimension
  int num_classes = 10;   // classes

  template <class V>
  void Visit(V& v) {
    v.Real("alpha", alpha, 0.0, 1e6, false,
           "Synthetic(alpha, beta): standard deviation of u_k, the mean of each user's W_k and b_k. Default 1.0.");
    v.Real("beta", beta, 0.0, 1e6, false,
           "Synthetic(alpha, beta): standard deviation of B_k, the mean of each user's feature centre v_k. Default 1.0.");
    v.Bool("iid", iid, "Generate the IID variant (one shared W, b and feature mean). Default false.");
    v.Int("num_users", num_users, 1, 10000000, "Users generated (one client each under kind=natural). Default 30.");
    v.Int("num_features", num_features, 1, 100000, "Input dimension. Default 60.");
    v.Int("num_classes", num_classes, 2, 100000, "Number of classes. Default 10.");
  }
};

struct CsvConfig {
  std::string test_path;   // test CSV; empty = hold out test_fraction of data.path
  int label_column = 0;    // 0-based column of the integer label
  bool header = true;      // first line is a header
  double test_fraction = 0.1;
  int client_column = -1;  // 0-based column of the client id; -1 = none

  template <class V>
  void Visit(V& v) {
    v.Str("test_path", test_path, "CSV file of test rows; empty holds out data.csv.test_fraction of data.path. Default \"\".");
    v.Int("label_column", label_column, 0, 1000000, "0-based column holding the integer class label. Default 0.");
    v.Bool("header", header, "The first line is a header and is skipped. Default true.");
    v.Real("test_fraction", test_fraction, 0.0, 1.0, true,
           "Share of rows held out as the test set when test_path is empty. Default 0.1.");
    v.Int("client_column", client_column, -1, 1000000,
          "0-based column holding each row's client id (any text; clients are the distinct ids sorted), which "
          "data.partition.kind = \"natural\" makes the clients; the column is not a feature. -1 = none. "
          "Default -1.");
  }
};

// LEAF's JSON files (Caldas et al., "LEAF: A Benchmark for Federated Settings", 2018), read by src/data/leaf.cpp.
struct LeafConfig {
  std::string task = "femnist";  // femnist | shakespeare | sent140 | synthetic | celeba
  std::string vocab;             // sent140: vocabulary file; "" = built from the training tweets
  int vocab_size = 10000;        // sent140: most frequent training words kept when the vocabulary is built
  int seq_len = 25;              // sent140: tokens per tweet (truncated or padded), LEAF's max_words

  template <class V>
  void Visit(V& v) {
    v.Choice("task", task, {"femnist", "shakespeare", "sent140", "synthetic", "celeba"},
             "Which LEAF task data.path holds (its data/ folder, with train/ and test/ as LEAF's preprocess.sh "
             "writes them); each task's x and y are read as LEAF's reference models read them (datasets/README.md). "
             "celeba is refused (its images are not decoded). Default \"femnist\".");
    v.Str("vocab", vocab,
          "sent140: vocabulary file, one word per line (or GloVe's text format: the first token of each line), or "
          "LEAF's embs.json (its \"vocab\" list); word i gets id i, an unknown word id = the number of words. "
          "\"\" = build it from the training tweets. Default \"\".");
    v.Int("vocab_size", vocab_size, 1, 10000000,
          "sent140 without data.leaf.vocab: the vocabulary is the training tweets' words sorted by frequency "
          "(then by the word), the first vocab_size of them. Default 10000.");
    v.Int("seq_len", seq_len, 1, 100000,
          "sent140: token ids per tweet: the first seq_len words, padded with the unknown id (LEAF's "
          "line_to_indices, max_words = 25). Default 25.");
  }
};

// TFF's federated HDF5 files (as FedML also distributes them), read by src/data/tff_h5.cpp.
struct TffH5Config {
  std::string task = "emnist";  // emnist | emnist_digits | shakespeare | cifar100 | stackoverflow
  std::string train_file;       // "" = the task's TFF file name in data.path
  std::string test_file;        // "" = the task's TFF file name in data.path
  std::string targets = "auto";  // auto | last | every_step (token tasks)
  int sequence_length = 0;       // 0 = the task's (shakespeare 80, stackoverflow 20)
  int vocab_size = 10000;        // stackoverflow: the most frequent words kept
  std::string vocab;             // stackoverflow: TFF's word-count file; "" = counted from the training file

  template <class V>
  void Visit(V& v) {
    v.Choice("task", task, {"emnist", "emnist_digits", "shakespeare", "cifar100", "stackoverflow"},
             "Which TFF task data.path holds: emnist (fed_emnist_train.h5 / fed_emnist_test.h5, 62 classes), "
             "emnist_digits (fed_emnist_digitsonly_*.h5, 10 classes), shakespeare (shakespeare_*.h5: snippets "
             "tokenised with TFF's 86-character vocabulary and pad/oov/bos/eos), cifar100 (fed_cifar100_*.h5; "
             "data.cifar100.labels picks fine or coarse), stackoverflow (stackoverflow_*.h5: the tokens field, "
             "words looked up in a vocabulary of data.tff_h5.vocab_size words plus pad/oov/bos/eos, for next-word "
             "prediction). Clients are the train file's client ids sorted as strings. Default \"emnist\".");
    v.Str("train_file", train_file,
          "The training file, relative to data.path or absolute; \"\" = the task's TFF name (e.g. "
          "shakespeare_train.h5) in data.path. Default \"\".");
    v.Str("test_file", test_file,
          "The test file, relative to data.path or absolute; \"\" = the task's TFF name (e.g. "
          "shakespeare_test.h5) in data.path. Default \"\".");
    v.Choice("targets", targets, {"auto", "last", "every_step"},
             "What a token sample predicts: last (one sample per token after bos: the sequence_length tokens "
             "before it, left-padded, and the token as its label; LEAF's framing) or every_step (TFF's own: "
             "[bos, tokens, eos] cut into windows of sequence_length + 1 ids, padded with pad, and every one of "
             "a window's sequence_length shifted targets predicted, pad targets not scored; a model must then "
             "output a sequence). auto = last for shakespeare, every_step for stackoverflow (which has no last "
             "mode). Default \"auto\".");
    v.Int("sequence_length", sequence_length, 0, 4096,
          "Input tokens per sample; 0 = the task's TFF default (shakespeare 80, stackoverflow 20: a sentence's "
          "first 20 words). Default 0.");
    v.Int("vocab_size", vocab_size, 1, 1000000,
          "stackoverflow: the number of most frequent words in the vocabulary (TFF's baseline: 10000); ids: pad 0, "
          "words 1..vocab_size, oov vocab_size + 1, bos vocab_size + 2, eos vocab_size + 3. Default 10000.");
    v.Str("vocab", vocab,
          "stackoverflow: TFF's word-count file (stackoverflow.word_count: one 'word count' line per word, most "
          "frequent first), relative to data.path or absolute; its first vocab_size words are the vocabulary. "
          "\"\" = built from the training file: every client's words, ranked by the number of clients using "
          "them (TFF's count), ties in byte order. Default \"\".");
  }
};

// CIFAR-100's binary version: each record has a coarse and a fine label.
struct Cifar100Config {
  std::string labels = "fine";  // fine (100 classes) | coarse (20 superclasses)

  template <class V>
  void Visit(V& v) {
    v.Choice("labels", labels, {"fine", "coarse"},
             "Which label of CIFAR-100's records is the class: fine (100 classes) or coarse (20 superclasses); "
             "also read by data.dataset = \"tff_h5\" with data.tff_h5.task = \"cifar100\" (its label or "
             "coarse_label). Default \"fine\".");
  }
};

// Training-time image augmentation (src/data/augment.h); off by default.
struct AugmentConfig {
  int crop_padding = 0;          // pixels of padding per side before a random crop back to H x W; 0 = no crop
  std::string padding = "zero";  // zero | reflect
  bool flip = false;             // random horizontal flip with probability 1/2

  template <class V>
  void Visit(V& v) {
    v.Int("crop_padding", crop_padding, 0, 1000,
          "Random crop of federated training batches: pad each image by this many pixels per side, then crop a "
          "random H x W window (CIFAR papers use 4); each sample's draw comes from the client's stream per round, "
          "step and sample. 0 = no crop. Image data only. Default 0.");
    v.Choice("padding", padding, {"zero", "reflect"},
             "What the crop's padding holds: zeros, or the image mirrored about its edge. Default \"zero\".");
    v.Bool("flip", flip, "Flip each federated training image left-right with probability 1/2. Default false.");
  }
};

struct DataConfig {
  std::string dataset = "synthetic";  // fashion_mnist | mnist_idx | synthetic | csv | leaf | cifar10 | cifar100 | tff_h5
  std::string path;                   // directory (IDX) or file (CSV); "" = dataset default
  int num_clients = 30;               // population size
  bool standardize = false;           // z-score features with training-set mean/std
  int max_train_samples = 0;          // 0 = all; else keep the first N training rows
  int max_test_samples = 0;           // 0 = all; else keep the first N test rows
  int seed = -1;                      // seed of generated data and random splits; -1 = experiment.seed
  double client_test_fraction = 0.0;  // share of each client's training rows held out as its own test rows
  double holdout_clients = 0.0;       // clients kept out of training: a fraction (< 1) or a count (>= 1)
  std::string cache;                  // binary cache of the loaded data (fedsim data convert); "" = none
  PartitionConfig partition;
  SyntheticConfig synthetic;
  CsvConfig csv;
  LeafConfig leaf;
  TffH5Config tff_h5;
  Cifar100Config cifar100;
  AugmentConfig augment;

  template <class V>
  void Visit(V& v) {
    v.Choice("dataset", dataset, {"fashion_mnist", "mnist_idx", "synthetic", "csv", "leaf", "cifar10", "cifar100",
                                         "tff_h5"},
             "Which data to load (datasets/README.md says where to get each). Default \"synthetic\" (FedProx "
             "Synthetic(alpha, beta)).");
    v.Str("path", path,
          "Directory of IDX files (fashion_mnist, mnist_idx), the CSV file (csv), a LEAF task's data/ folder "
          "(leaf), the extracted binary archive (cifar10: cifar-10-batches-bin, cifar100: cifar-100-binary), or the "
          "folder of TFF's federated HDF5 files (tff_h5). "
          "Default \"\": /usr/share/datasets/fashion-mnist for fashion_mnist.");
    v.Int("num_clients", num_clients, 1, 100000000, "Number of clients in the population. Default 30.");
    v.Bool("standardize", standardize,
           "Standardise each feature with the training set's mean and standard deviation. Default false.");
    v.Int("max_train_samples", max_train_samples, 0, 2000000000,
          "Keep only the first N training samples (0 = all). Default 0.");
    v.Int("max_test_samples", max_test_samples, 0, 2000000000,
          "Keep only the first N test samples (0 = all). Default 0.");
    v.Int("seed", seed, -1, 2000000000,
          "Seed of the synthetic generator and of random train/test splits, so that experiment seeds can vary "
          "the training while the data stays the same; -1 = experiment.seed. Default -1.");
    v.Real("client_test_fraction", client_test_fraction, 0.0, 1.0, false,
           "Share of each client's training rows held out as that client's own test rows (stratified by label, "
           "seeded; at least one row stays for training), for per-client evaluation; data that has its own "
           "per-client test rows (leaf, tff_h5, natural partition) keeps them when this is 0. Default 0.");
    v.Real("holdout_clients", holdout_clients, 0.0, 1e8, false,
           "Clients kept out of training entirely (never sampled), to measure how the model serves clients it "
           "has never seen: below 1 a fraction of the population (rounded), from 1 up a count (a whole number). "
           "Chosen at random from (experiment.seed, holdout stream); with metrics.client_eval they are evaluated "
           "beside the participants and the record gains holdout_client_accuracy and participation_gap. Default 0.");
    v.Str("cache", cache,
          "A binary cache of this config's loaded data, written by `fedsim data convert CONFIG --out FILE`: the run "
          "reads it instead of the source files, after checking that it was written from the same data keys and "
          "unchanged source files (else stale) and its CRC-32 (else damaged). \"\" = read the sources. Default "
          "\"\".");
    v.Section("partition", partition);
    v.Section("synthetic", synthetic);
    v.Section("csv", csv);
    v.Section("leaf", leaf);
    v.Section("tff_h5", tff_h5);
    v.Section("cifar100", cifar100);
    v.Section("augment", augment);
  }
};

struct ModelConfig {
  std::string kind = "softmax";  // softmax | mlp | cnn_* | sequential | a preset of the layer engine
  std::vector<int> hidden;       // hidden layer widths for mlp
  std::vector<int> input_shape;  // {C, H, W} for CNNs on non-image data
  double init_scale = 1.0;       // multiplies the default uniform init bound
  nlohmann::json layers = nlohmann::json::array();  // kind=sequential: the layer spec (docs/models.md)

  template <class V>
  void Visit(V& v) {
    v.Choice("kind", kind,
             {"softmax", "mlp", "cnn_mcmahan", "cnn_lenet", "sequential", "leaf_femnist_cnn", "leaf_shakespeare_lstm",
              "tff_emnist_cnn", "niid_cifar_cnn", "sent140_lstm", "tff_stackoverflow_lstm", "resnet20_gn"},
             "Model: softmax (multinomial logistic) regression, a ReLU MLP, the CNN of McMahan et al. 2017, the "
             "LeNet-style CNN of NIID-Bench, sequential (the layer engine with model.layers), or one of the "
             "engine's presets of the literature's benchmark models (docs/models.md). Default \"softmax\".");
    v.Json("layers", layers,
           "kind=sequential: the list of layer objects, e.g. [{\"type\": \"conv2d\", \"filters\": 32, \"kernel\": 5}, "
           "{\"type\": \"relu\"}, {\"type\": \"dense\"}] (every type and field in docs/models.md). Default [].");
    v.IntList("hidden", hidden, 1, "Hidden layer widths for kind=mlp, e.g. [200, 200]. Default [].");
    v.IntList("input_shape", input_shape, 1,
              "[C, H, W] of each sample for the CNNs when the data has no image shape (IDX data has one). "
              "Default [].");
    v.Real("init_scale", init_scale, 0.0, 100.0, false,
           "Scale of the random initial parameters: dense and conv2d weights and biases (softmax's and mlp's "
           "too) uniform(+-init_scale/sqrt(fan_in)), LSTM and GRU kernels, recurrent matrices and biases "
           "uniform(+-init_scale/sqrt(units)), embeddings uniform(+-0.05 init_scale), and FedPara's factors drawn "
           "so that the formed weight has the variance of its dense or conv2d init. The constants are not scaled: "
           "an LSTM's forget-gate biases get +1, norm scales start at 1 and shifts at 0, batchnorm's running mean "
           "at 0 and running variance at 1. So 0 zeroes the random parameters only. FedGAN's networks do not use "
           "it. Default 1.0.");
  }
};

struct AlgorithmConfig {
  std::string name = "fedavg";  // see the Choice list in Visit
  int clients_per_round = 10;
  std::optional<double> client_fraction;
  int local_epochs = 1;
  int local_steps = 0;
  int batch_size = 10;
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  double lr_decay = 1.0;
  double server_lr = 1.0;
  double mu = 0.01;               // FedProx
  double alpha = 0.01;            // FedDyn
  double server_momentum = 0.9;   // FedAvgM
  double beta1 = 0.9;             // FedAda
  double beta2 = 0.99;            // FedAda
  double tau = 1e-3;              // FedAda
  double update_density = 0.01;   // FedSparse
  bool ternary = false;           // FedSparse
  bool sparse_download = false;   // FedSparse
  double model_density = 1.0;     // FedSparse
  int mask_every = 10;            // FedSparse
  int prune_rounds = 0;           // FedSparse
  double momentum_correction = 0.0;  // FedSparse (DGC)
  double fedpara_gamma = 0.1;     // FedPara
  double sigma = 5.0;             // FedGiA
  double r = 5.0;                 // FedGiA
  int k0 = 5;                     // FedGiA
  double rho = 0.5;               // FedGiA
  double q = 1.0;                 // q-FFL
  double qffl_lipschitz = 0.0;    // q-FFL; 0 = 1 / client lr
  double afl_lambda_lr = 0.01;    // AFL
  std::string afl_domains = "clients";  // AFL: clients | labels
  std::string mode = "sync";       // sync | fedbuff | fedasync
  std::string sampling = "fixed";  // fixed | poisson
  double sampling_rate = 0.1;      // poisson
  std::string state_precision = "float32";  // float32 | float16: storage of per-client state vectors
  std::string scaffold_variant = "paper";   // SCAFFOLD: paper | niid_bench

  template <class V>
  void Visit(V& v) {
    v.Choice("name", name,
             {"fedavg", "fedsgd", "fedprox", "feddyn", "scaffold", "fednova", "fedavgm", "fedadagrad", "fedadam",
              "fedyogi", "fedsparse", "fedpara", "fedgia", "qffl", "afl", "ditto", "apfl", "pfedme", "perfedavg",
              "fedper", "fedrep", "lgfedavg", "fedbn", "fedgan"},
             "Federated algorithm (docs/algorithms.md). Default \"fedavg\".");
    v.Choice("mode", mode, {"sync", "fedbuff", "fedasync"},
             "How the server meets its clients: sync = rounds (a cohort trains, the server waits for it); fedbuff = "
             "asynchronous, a server step each async.buffer_size updates (Nguyen et al. 2022); fedasync = "
             "asynchronous, every update mixed in on arrival (Xie et al. 2019). The event-driven modes keep "
             "async.concurrency clients training on the simulated clock, experiment.rounds counts server steps, "
             "and the cohort keys (clients_per_round, client_fraction, sampling) are not used (docs/async.md). "
             "Default \"sync\".");
    v.Int("clients_per_round", clients_per_round, 1, 100000000,
          "Cohort size drawn each round, without replacement (sampling = fixed). Default 10.");
    v.Choice("sampling", sampling, {"fixed", "poisson"},
             "Cohort sampling: a fixed-size uniform sample, or Poisson (each client independently with probability "
             "sampling_rate, as the DP accountant assumes). Default \"fixed\".");
    v.Real("sampling_rate", sampling_rate, 0.0, 1.0, true, "Inclusion probability q for sampling = poisson. Default 0.1.");
    v.OptReal("client_fraction", client_fraction, 1e-9, 1.0,
              "If set, the cohort is max(1, round(C * num_clients)) and clients_per_round is ignored. Default null.");
    v.Int("local_epochs", local_epochs, 1, 1000000, "Local epochs E per round (local-SGD algorithms). Default 1.");
    v.Int("local_steps", local_steps, 0, 100000000,
          "If > 0, each client takes exactly this many minibatch steps instead of local_epochs epochs. Default 0.");
    v.Int("batch_size", batch_size, 0, 100000000,
          "Local minibatch size B; 0 means the client's full data (B = infinity). Default 10.");
    v.Real("lr", lr, 0.0, 1e6, true, "Client learning rate. Default 0.01.");
    v.Real("momentum", momentum, 0.0, 1.0, false,
           "Client SGD momentum (heavy ball), reset each round; every local-SGD algorithm. Default 0.");
    v.Real("weight_decay", weight_decay, 0.0, 1e6, false,
           "Client L2 weight decay added to the gradient; every local-SGD algorithm. Default 0.");
    v.Real("lr_decay", lr_decay, 0.0, 1.0, true,
           "Client learning rate in round t (0-based) is lr * lr_decay^t. Default 1.0.");
    v.Real("server_lr", server_lr, 0.0, 1e6, true,
           "Server learning rate eta: global += eta * (aggregated update); FedAda's eta; unused by feddyn and fedgia. "
           "Default 1.0.");
    v.Real("mu", mu, 0.0, 1e6, false, "FedProx proximal weight mu in (mu/2)||w - w_global||^2. Default 0.01.");
    v.Real("alpha", alpha, 0.0, 1e6, true, "FedDyn regulariser alpha. Default 0.01.");
    v.Real("server_momentum", server_momentum, 0.0, 0.999999, false, "FedAvgM server momentum beta. Default 0.9.");
    v.Real("beta1", beta1, 0.0, 0.999999, false, "FedAdagrad/FedAdam/FedYogi first-moment decay beta1. Default 0.9.");
    v.Real("beta2", beta2, 0.0, 0.999999, false, "FedAdam/FedYogi second-moment decay beta2. Default 0.99.");
    v.Real("tau", tau, 0.0, 1e6, true, "FedAdagrad/FedAdam/FedYogi adaptivity tau (also sqrt of the initial v). Default 1e-3.");
    v.Real("update_density", update_density, 0.0, 1.0, true,
           "FedSparse: fraction of update entries a client sends (top-k with error feedback). Default 0.01.");
    v.Bool("ternary", ternary, "FedSparse: send kept entries as mu*sign (Sattler et al.'s STC). Default false.");
    v.Bool("sparse_download", sparse_download,
           "FedSparse: the server sparsifies its aggregated update (top-k, error feedback) for the download. Default false.");
    v.Real("model_density", model_density, 0.0, 1.0, true,
           "FedSparse: fraction of global weights kept by the server's magnitude mask (1 = dense model). Default 1.0.");
    v.Int("mask_every", mask_every, 1, 100000000,
          "FedSparse: rounds between mask updates while the density ramps down over prune_rounds. Default 10.");
    v.Int("prune_rounds", prune_rounds, 0, 100000000,
          "FedSparse: rounds over which the model density falls from 1 to model_density on Zhu & Gupta's cubic "
          "schedule; 0 prunes to model_density at round 0. Default 0.");
    v.Real("momentum_correction", momentum_correction, 0.0, 0.999999, false,
           "FedSparse: Deep Gradient Compression momentum correction m: a client accumulates v <- m v + Delta into "
           "its residual and clears v where it sends (momentum factor masking); 0 = plain error feedback. "
           "Default 0.9.");
    v.Real("fedpara_gamma", fedpara_gamma, 0.0, 1.0, false,
           "FedPara rank ratio gamma: rank = ceil((1-gamma) r_min + gamma r_max) per layer. Default 0.1.");
    v.Real("sigma", sigma, 0.0, 1e9, true, "FedGiA ADMM penalty sigma; clients outside the ADMM subset take a gradient step of 1/sigma. Default 5.");
    v.Real("r", r, 0.0, 1e9, false, "FedGiA proximal constant r_i (same for every client); ADMM clients step 1/(r + sigma). Default 5.");
    v.Int("k0", k0, 1, 1000000, "FedGiA local ADMM iterations per communication round. Default 5.");
    v.Real("rho", rho, 0.0, 1.0, true, "FedGiA fraction of clients running the ADMM steps each round. Default 0.5.");
    v.Real("q", q, 0.0, 1e3, false,
           "q-FFL fairness exponent q: the objective is sum_k p_k F_k^(q+1) / (q+1); 0 = the plain average loss "
           "(q-FedAvg then averages the clients' models with equal weights). Default 1.");
    v.Real("qffl_lipschitz", qffl_lipschitz, 0.0, 1e9, false,
           "q-FFL Lipschitz estimate L of the clients' gradients in Delta w_k = L (w - w_bar_k) and h_k; 0 = 1/lr, "
           "the round's client learning rate, as Li et al. set it. Default 0.");
    v.Real("afl_lambda_lr", afl_lambda_lr, 0.0, 1e9, false,
           "AFL step size gamma_lambda of the projected gradient ascent on the clients' mixture weights lambda; "
           "0 keeps lambda uniform. Default 0.01.");
    v.Choice("afl_domains", afl_domains, {"clients", "labels"},
             "AFL's domains, the groups whose mixture lambda weighs: clients (each training client its own "
             "domain) or labels (the clients grouped by their most frequent training label, ties to the smaller "
             "label: the model is trained for the worst mixture of label-skewed client groups). Default "
             "\"clients\".");
    v.Choice("state_precision", state_precision, {"float32", "float16"},
             "Storage of the per-client state vectors of feddyn, scaffold, fedsparse and fedgia: float32 (exact) or "
             "float16 (IEEE half, half the memory; values rounded to nearest, beyond +-65504 saturated; "
             "docs/scaling.md gives the measured effect). Other algorithms ignore it. Default \"float32\".");
    v.Choice("scaffold_variant", scaffold_variant, {"paper", "niid_bench"},
             "SCAFFOLD's form: paper (Karimireddy et al.'s option II: plain local SGD with the correction c - c_i "
             "in every gradient, every client weighted 1) or niid_bench (NIID-Bench's code: local SGD with "
             "algorithm.momentum, the correction subtracted from the weights after each optimizer step, models "
             "averaged by sample count, c += sum of Delta c_i / N). Default \"paper\".");
  }
};

struct InputPerturbationConfig {
  std::string features = "none";  // none | gaussian | laplace
  double feature_clip = 1.0;      // per-sample feature norm bound C (L2 for gaussian, L1 for laplace)
  double feature_noise = 0.0;     // gaussian sigma or laplace scale b, in feature units
  std::optional<double> label_epsilon;  // randomised response on labels; null = labels untouched

  template <class V>
  void Visit(V& v) {
    v.Choice("features", features, {"none", "gaussian", "laplace"},
             "Noise on each training sample's features, applied once before training. Default \"none\".");
    v.Real("feature_clip", feature_clip, 0.0, 1e9, true,
           "Each sample's features are first scaled to norm <= C (L2 for gaussian, L1 for laplace). Default 1.0.");
    v.Real("feature_noise", feature_noise, 0.0, 1e9, false,
           "Gaussian standard deviation or Laplace scale b of the feature noise. Default 0.");
    v.OptReal("label_epsilon", label_epsilon, 1e-9, 1e3,
              "Randomised response on labels with this epsilon (keep with prob e^eps/(e^eps+C-1)); null = off. "
              "Default null.");
  }
};

struct PrivacyConfig {
  std::string mode = "none";          // none | central | local | sample
  double clip_norm = 1.0;             // S
  double noise_multiplier = 1.0;      // z
  std::optional<double> target_epsilon;  // if set, z is solved for it (central and sample modes)
  double delta = 1e-5;
  std::string mechanism = "gaussian";   // local mode: gaussian | laplace
  std::string conversion = "improved";  // improved | classic
  InputPerturbationConfig input_perturbation;

  template <class V>
  void Visit(V& v) {
    v.Choice("mode", mode, {"none", "central", "local", "sample"},
             "Differential privacy: central (DP-FedAvg: clip, server adds noise), local (each client noises its "
             "update), sample (DP-SGD inside clients), or none. Default \"none\".");
    v.Real("clip_norm", clip_norm, 0.0, 1e9, true,
           "Clipping bound S: L2 norm of an update (central, local gaussian), L1 norm (local laplace), or of a "
           "per-example gradient (sample). Default 1.0.");
    v.Real("noise_multiplier", noise_multiplier, 0.0, 1e6, false,
           "Noise multiplier z: noise standard deviation (or Laplace scale) is z * S. Default 1.0.");
    v.OptReal("target_epsilon", target_epsilon, 1e-9, 1e6,
              "If set, the smallest noise_multiplier whose final epsilon meets it is used instead (central mode only). "
              "Default null.");
    v.Real("delta", delta, 0.0, 0.999999, true, "The delta at which epsilon is reported, in (0, 1). Default 1e-5.");
    v.Choice("mechanism", mechanism, {"gaussian", "laplace"}, "Noise of local mode. Default \"gaussian\".");
    v.Choice("conversion", conversion, {"improved", "classic"},
             "RDP to (epsilon, delta) conversion: improved (Balle et al. 2020, as Opacus) or classic (Mironov 2017). "
             "Default \"improved\".");
    v.Section("input_perturbation", input_perturbation);
  }
};

struct SecureAggregationConfig {
  bool enabled = false;
  std::string protocol = "secagg";  // secagg | secagg_plus
  int bits = 32;                    // k: arithmetic in Z_2^k
  double range = 1.0;               // each coordinate clipped to [-range, range] before quantisation
  int neighbors = 0;                // SecAgg+ graph degree; 0 = ceil(2 log2 n) rounded up to even
  double threshold_fraction = 0.5;  // t = floor(fraction * m) + 1 of the m share holders
  double dropout_rate = 0.0;        // probability a client drops before each protocol step
  std::string on_failure = "skip_round";  // skip_round | stop
  std::string weighting = "samples";      // samples | uniform

  template <class V>
  void Visit(V& v) {
    v.Bool("enabled", enabled, "Sum the cohort's updates with secure aggregation (the server sees only the sum). "
                               "Default false.");
    v.Choice("protocol", protocol, {"secagg", "secagg_plus"},
             "SecAgg (Bonawitz et al. 2017, all pairs) or SecAgg+ (Bell et al. 2020, k-regular graph). "
             "Default \"secagg\".");
    v.Int("bits", bits, 8, 32, "Modulus bits k of Z_2^k; log2(cohort) of them are headroom for the sum. Default 32.");
    v.Real("range", range, 0.0, 1e9, true,
           "Each update coordinate is clipped to [-range, range] and quantised to fixed point. Default 1.0.");
    v.Int("neighbors", neighbors, 0, 1000000, "SecAgg+ neighbours per client; 0 = ceil(2 log2 n), even. Default 0.");
    v.Real("threshold_fraction", threshold_fraction, 0.0, 1.0, false,
           "Shamir threshold t = floor(fraction * m) + 1 of the m holders of each client's shares. Default 0.5.");
    v.Real("dropout_rate", dropout_rate, 0.0, 1.0, false,
           "Probability that a client still online drops before each protocol step. Default 0.");
    v.Choice("weighting", weighting, {"samples", "uniform"},
             "samples: each client's update is weighted as the algorithm weights it (FedAvg: n_k) through a "
             "second secure sum of the weights; uniform: the plain mean of the survivors' updates. "
             "Default \"samples\".");
    v.Choice("on_failure", on_failure, {"skip_round", "stop"},
             "Too few clients left for the threshold: skip the round's update, or stop the run (exit 1). "
             "Default \"skip_round\".");
  }
};

struct EncryptionConfig {
  std::string scheme = "none";  // none | paillier | paillier_model | bfv | ckks
  int key_bits = 2048;          // Paillier modulus
  int value_bits = 16;          // fixed-point bits per value before headroom
  double range = 1.0;           // coordinates clipped to [-range, range]
  int poly_degree = 8192;       // BFV/CKKS ring dimension N
  int limbs = 4;                // BFV/CKKS RNS limbs of a fresh ciphertext
  double time_scale = 1.0;      // BFV/CKKS: factor on the published timings

  template <class V>
  void Visit(V& v) {
    v.Choice("scheme", scheme, {"none", "paillier", "paillier_model", "bfv", "ckks"},
             "Homomorphic encryption of the updates: paillier runs real Paillier (GMP) end to end; paillier_model, "
             "bfv and ckks aggregate in the clear and report the modelled cost. Default \"none\".");
    v.Int("key_bits", key_bits, 512, 8192, "Paillier modulus size in bits. Default 2048.");
    v.Int("value_bits", value_bits, 4, 28, "Paillier fixed-point bits per value, before headroom. Default 16.");
    v.Real("range", range, 0.0, 1e9, true, "Paillier: coordinates clipped to [-range, range]. Default 1.0.");
    v.Int("poly_degree", poly_degree, 1024, 65536, "BFV/CKKS ring dimension N (a power of two). Default 8192.");
    v.Int("limbs", limbs, 1, 64, "BFV/CKKS 64-bit RNS limbs of a fresh ciphertext. Default 4.");
    v.Real("time_scale", time_scale, 0.0, 1e6, true, "BFV/CKKS factor on the published timings. Default 1.0.");
  }
};

struct ComputeConfig {
  std::string distribution = "lognormal";  // lognormal | profiles
  double gflops = 10.0;       // median client compute speed, GFLOP/s
  double sigma = 0.5;         // lognormal spread of speeds across clients
  double round_sigma = 0.0;   // lognormal spread of one client's speed from round to round

  template <class V>
  void Visit(V& v) {
    v.Choice("distribution", distribution, {"lognormal", "profiles"},
             "Per-client compute speed: lognormal(log gflops, sigma), or the device table system.profiles. "
             "Default \"lognormal\".");
    v.Real("gflops", gflops, 0.0, 1e9, true,
           "Median client compute speed in GFLOP/s (distribution = lognormal); local training time = the model's "
           "training FLOPs / speed. Default 10.");
    v.Real("sigma", sigma, 0.0, 10.0, false,
           "Sigma of the lognormal spread of compute speeds across clients (also applied around each profile's "
           "speed). Default 0.5.");
    v.Real("round_sigma", round_sigma, 0.0, 10.0, false,
           "Sigma of a per-round lognormal factor on each client's speed (background load). Default 0.");
  }
};

struct NetworkConfig {
  double up_mbps = 10.0;     // median client upload bandwidth, Mbit/s
  double down_mbps = 50.0;   // median client download bandwidth, Mbit/s
  double latency_ms = 50.0;  // one-way latency per message, ms
  double sigma = 0.0;        // lognormal spread of bandwidths across clients

  template <class V>
  void Visit(V& v) {
    v.Real("up_mbps", up_mbps, 0.0, 1e9, true, "Median client upload bandwidth, Mbit/s. Default 10.");
    v.Real("down_mbps", down_mbps, 0.0, 1e9, true, "Median client download bandwidth, Mbit/s. Default 50.");
    v.Real("latency_ms", latency_ms, 0.0, 1e9, false, "Latency added to every message, ms. Default 50.");
    v.Real("sigma", sigma, 0.0, 10.0, false,
           "Sigma of the lognormal spread of both bandwidths across clients (one draw per client). Default 0.");
  }
};

// A table of device profiles, as parallel lists (entry i of every list is
// profile i). Used when system.compute.distribution = profiles.
struct ProfilesConfig {
  std::vector<double> share;       // fraction of clients with each profile
  std::vector<double> gflops;      // compute speed
  std::vector<double> up_mbps;     // upload bandwidth
  std::vector<double> down_mbps;   // download bandwidth
  std::vector<double> latency_ms;  // latency

  template <class V>
  void Visit(V& v) {
    v.RealList("share", share, 0.0, "Share of the population with each profile (normalised to sum 1). Default [].");
    v.RealList("gflops", gflops, 1e-9, "Compute speed of each profile, GFLOP/s. Default [].");
    v.RealList("up_mbps", up_mbps, 1e-9, "Upload bandwidth of each profile, Mbit/s. Default [].");
    v.RealList("down_mbps", down_mbps, 1e-9, "Download bandwidth of each profile, Mbit/s. Default [].");
    v.RealList("latency_ms", latency_ms, 0.0, "Latency of each profile, ms. Default [].");
  }
};

// system.availability_model = diurnal: client c is online at simulated time t
// with probability availability * (1 - a + a (1 + cos(2 pi (h - peak) / 24)) / 2),
// h = its local hour (t / 3600 + zone_c) mod 24.
struct DiurnalConfig {
  double amplitude = 0.8;         // a: 0 = flat, 1 = nobody online at the trough
  double peak_hour = 20.0;        // local hour of the highest availability
  double timezone_spread_h = 24.0;  // zones drawn uniformly in [0, spread) hours

  template <class V>
  void Visit(V& v) {
    v.Real("amplitude", amplitude, 0.0, 1.0, false,
           "Diurnal availability: depth of the daily curve a (availability x (1 - a) at the trough, availability "
           "at the peak). Default 0.8.");
    v.Real("peak_hour", peak_hour, 0.0, 24.0, false, "Diurnal availability: local hour of the peak. Default 20.");
    v.Real("timezone_spread_h", timezone_spread_h, 0.0, 24.0, false,
           "Diurnal availability: clients' time zones are drawn uniformly in [0, spread) hours from UTC (24: all "
           "around the globe, 0: one zone). Default 24.");
  }
};

struct SystemConfig {
  ComputeConfig compute;
  NetworkConfig network;
  ProfilesConfig profiles;
  double availability = 1.0;    // probability a sampled client is online
  double dropout = 0.0;         // probability an online client drops during the round
  double deadline_s = 0.0;      // round deadline in simulated seconds; 0 = none
  bool partial_work = false;    // late clients send the steps they finished in time
  double over_selection = 0.0;  // sample (1 + x) K clients, keep the first K to finish
  std::string availability_model = "constant";  // constant | diurnal | trace
  DiurnalConfig diurnal;
  std::string trace;            // availability_model = trace: CSV of client,online_from,online_until

  template <class V>
  void Visit(V& v) {
    v.Section("compute", compute);
    v.Section("network", network);
    v.Section("profiles", profiles);
    v.Choice("availability_model", availability_model, {"constant", "diurnal", "trace"},
             "Whether a client is online: constant (probability system.availability, drawn per round or dispatch), "
             "diurnal (system.availability times a daily curve in the client's time zone, system.diurnal.*) or "
             "trace (the intervals of system.trace). diurnal and trace follow the simulated clock: a synchronous "
             "round asks at its start time, the event-driven modes at each dispatch; a client that goes offline "
             "before it reports is lost (dropped). Default \"constant\".");
    v.Section("diurnal", diurnal);
    v.Str("trace", trace,
          "availability_model = trace: a CSV file with the header client,online_from,online_until (simulated "
          "seconds; several rows per client allowed, FedScale-style device traces). A client with no row is never "
          "online. Default \"\".");
    v.Real("availability", availability, 0.0, 1.0, false,
           "Probability that a sampled client is online; offline clients neither download nor train. Default 1.");
    v.Real("dropout", dropout, 0.0, 1.0, false,
           "Probability that an online client drops out during the round (it downloads, never uploads). Default 0.");
    v.Real("deadline_s", deadline_s, 0.0, 1e12, false,
           "Round deadline in simulated seconds; clients that would report later are dropped (or send partial "
           "work). 0 = no deadline. Default 0.");
    v.Bool("partial_work", partial_work,
           "With a deadline: a client that cannot finish its local work in time runs only the local steps that "
           "fit and sends that (FedProx's variable local work) instead of being dropped. Default false.");
    v.Real("over_selection", over_selection, 0.0, 100.0, false,
           "Sample ceil((1 + x) K) clients and aggregate the first K to report (fixed sampling). Default 0.");
  }
};

struct BaselineConfig {
  std::string kind = "none";        // none | centralized | data_parallel
  int epochs = 10;                  // passes over the training data
  int batch_size = 64;              // per-worker minibatch
  double lr = 0.05;                 // SGD learning rate
  double momentum = 0.0;            // heavy-ball momentum
  int workers = 4;                  // data_parallel: W
  std::string topology = "ring";    // ring | parameter_server
  double server_mbps = 10000.0;     // parameter server link, Mbit/s

  template <class V>
  void Visit(V& v) {
    v.Choice("kind", kind, {"none", "centralized", "data_parallel"},
             "none: the federated run; centralized: minibatch SGD on the pooled training data; data_parallel: "
             "synchronous SGD over W workers with IID shards and all-reduced gradients. Default \"none\".");
    v.Int("epochs", epochs, 1, 1000000, "Baseline: epochs over the training data (one record each). Default 10.");
    v.Int("batch_size", batch_size, 1, 100000000,
          "Baseline: minibatch per worker (data_parallel's global batch is workers x batch_size). Default 64.");
    v.Real("lr", lr, 0.0, 1e6, true, "Baseline: SGD learning rate. Default 0.05.");
    v.Real("momentum", momentum, 0.0, 1.0, false, "Baseline: heavy-ball momentum. Default 0.");
    v.Int("workers", workers, 1, 4096, "Baseline data_parallel: number of workers W. Default 4.");
    v.Choice("topology", topology, {"ring", "parameter_server"},
             "Baseline data_parallel: gradient exchange by ring all-reduce (each worker sends and receives "
             "2(W-1)/W of the model per step) or through a parameter server. Default \"ring\".");
    v.Real("server_mbps", server_mbps, 0.0, 1e12, true,
           "Baseline data_parallel with topology=parameter_server: bandwidth of the server's link, which carries "
           "all W gradients in and W models out each step, Mbit/s. Default 10000.");
  }
};

struct MetricsConfig {
  int eval_every = 1;  // evaluate the global model every N rounds (and always at the last)
  bool eval_train = false;  // also evaluate it on the whole training set
  std::string client_eval = "none";  // none | participants | all | sample: per-client evaluation
  double client_eval_fraction = 0.1;  // client_eval = sample: share of the training clients scored

  template <class V>
  void Visit(V& v) {
    v.Int("eval_every", eval_every, 1, 100000000,
          "Evaluate the global model on the test set every N rounds, and always at the last. Default 1.");
    v.Bool("eval_train", eval_train,
           "At those rounds also evaluate the global model on the whole (pooled) training set: global_train_loss "
           "and global_train_accuracy, the training loss of FedProx's figures. Default false.");
    v.Choice("client_eval", client_eval, {"none", "participants", "all", "sample"},
             "Per-client evaluation at those rounds: the model each client would use (the global model, or its "
             "personalised one, after personalization.finetune_steps) scored on the client's own test rows "
             "(data.client_test_fraction, or the data's per-client test files). participants: the round's "
             "cohort; all: every client; sample: metrics.client_eval_fraction of the training clients, drawn "
             "per round. Held-out clients (data.holdout_clients) are always scored. Adds client_accuracy and "
             "client_loss summaries to the record and writes clients.jsonl. Default \"none\".");
    v.Real("client_eval_fraction", client_eval_fraction, 0.0, 1.0, /*lo_open=*/true,
           "client_eval = sample: the share of the training clients scored at each evaluation (at least one), "
           "drawn from (experiment.seed, client-evaluation stream, round). Default 0.1.");
  }
};

// Personalisation that applies to any algorithm (the personalised
// algorithms' own keys are under algorithm.*).
struct PersonalizationConfig {
  int finetune_steps = 0;    // local SGD steps from the client's model before it is evaluated
  double finetune_lr = 0.0;  // their learning rate; 0 = the round's client learning rate
  double lambda = 1.0;       // Ditto's and pFedMe's proximal weight lambda
  double alpha = 0.25;       // APFL's mixing weight alpha of the personal model
  double alpha_lr = 0.0;     // APFL: step of the adaptive alpha (0: alpha fixed)
  double beta = 1.0;         // pFedMe's server step beta
  int inner_steps = 5;       // pFedMe's K steps on the inner (personal) problem
  double inner_lr = 0.01;    // pFedMe's personal learning rate
  std::string perfedavg = "fo";  // Per-FedAvg's variant: fo (first-order) | hf (Hessian-free)
  double adapt_lr = 0.01;        // Per-FedAvg's adaptation step alpha
  double hf_delta = 0.001;       // Per-FedAvg HF's finite-difference step delta
  int personal_layers = 1;       // FedPer/FedRep: last layers kept on the client; LG-FedAvg: first layers
  int head_epochs = 10;          // FedRep: epochs of head-only training before the body's local training

  template <class V>
  void Visit(V& v) {
    v.Int("finetune_steps", finetune_steps, 0, 100000000,
          "Before per-client evaluation, each client fine-tunes the model it would use for this many minibatch "
          "SGD steps (algorithm.batch_size, momentum and weight decay) on its own training rows, from (seed, "
          "fine-tuning stream, round, client); the fine-tuned model is scored and then discarded. Needs "
          "metrics.client_eval. Default 0 (no fine-tuning).");
    v.Real("finetune_lr", finetune_lr, 0.0, 1e6, false,
           "Learning rate of those steps; 0 = the round's client learning rate (algorithm.lr with its decay). "
           "Default 0.");
    v.Real("lambda", lambda, 0.0, 1e6, false,
           "Ditto: weight of the personal model's proximal term (lambda/2)||v - w||^2; pFedMe: weight lambda of the "
           "Moreau envelope's (lambda/2)||theta - w||^2. Default 1.");
    v.Real("alpha", alpha, 0.0, 1.0, false,
           "APFL: mixing weight of the personal model, v_bar = alpha v + (1 - alpha) w: fixed, or each client's "
           "starting value when personalization.alpha_lr > 0. Default 0.25.");
    v.Real("alpha_lr", alpha_lr, 0.0, 1e6, false,
           "APFL: step size of the adaptive mixing weight, alpha_k <- clip(alpha_k - alpha_lr <v - w, "
           "grad F_k(v_bar)>, 0, 1) after each local step (Deng et al. 2020, Algorithm 1), each client's alpha_k "
           "kept in its state; 0 keeps alpha fixed. Default 0.");
    v.Real("beta", beta, 0.0, 1e6, true,
           "pFedMe: server step, w <- (1 - beta) w + beta mean(w_k); replaces algorithm.server_lr. Default 1.");
    v.Int("inner_steps", inner_steps, 1, 1000000,
          "pFedMe: gradient steps K on the personal problem min F_k(theta) + (lambda/2)||theta - w||^2 per local "
          "step, all on that step's minibatch. Default 5.");
    v.Real("inner_lr", inner_lr, 0.0, 1e6, true, "pFedMe: learning rate of those K steps. Default 0.01.");
    v.Choice("perfedavg", perfedavg, {"fo", "hf"},
             "Per-FedAvg's meta-gradient: fo (first-order, the Hessian term dropped) or hf (Hessian-free, the "
             "Hessian-vector product by a central difference of gradients). Default \"fo\".");
    v.Real("adapt_lr", adapt_lr, 0.0, 1e6, true,
           "Per-FedAvg: step size alpha of the one-step adaptation w - alpha grad F_k(w), in training and before "
           "per-client evaluation (the outer step beta is algorithm.lr). Default 0.01.");
    v.Real("hf_delta", hf_delta, 0.0, 1e6, true,
           "Per-FedAvg hf: step delta of the central difference (grad(w + delta g) - grad(w - delta g)) / (2 delta). "
           "Default 0.001.");
    v.Int("personal_layers", personal_layers, 1, 1000000,
          "FedPer and FedRep: the last this many layers (a layer = the tensors of one dense/conv layer, \"layers.N.\" "
          "in the layer engine) stay on the client; LG-FedAvg: the first this many. At least one layer must be "
          "shared. Default 1.");
    v.Int("head_epochs", head_epochs, 0, 1000000,
          "FedRep: epochs of head-only local training (body frozen) before the body's local training "
          "(algorithm.local_epochs or local_steps, head frozen). Default 10 (the paper's).");
  }
};

struct GanConfig {
  int latent_dim = 64;                         // generator input size
  std::vector<int> generator_hidden{256};      // generator hidden widths
  std::vector<int> discriminator_hidden{256};  // discriminator hidden widths
  double leaky_slope = 0.2;                    // LeakyReLU negative slope of both networks
  std::string optimizer = "adam";              // adam | sgd
  double generator_lr = 2e-4;
  double discriminator_lr = 2e-4;
  double beta1 = 0.5;    // Adam
  double beta2 = 0.999;  // Adam
  std::string judge_kind = "mlp";   // softmax | mlp
  std::vector<int> judge_hidden{200};
  int judge_epochs = 2;
  int judge_batch_size = 64;
  double judge_lr = 0.1;
  int eval_samples = 1000;   // generated samples judged per evaluation
  double confidence = 0.9;   // a sample is confident if the judge's top probability exceeds this
  double class_share = 0.02; // a class is covered if at least this share of samples is predicted as it
  int grid = 8;              // side of the sample image grid (grid x grid samples); 0 = no images

  template <class V>
  void Visit(V& v) {
    v.Int("latent_dim", latent_dim, 1, 100000, "FedGAN: size of the generator's N(0, I) input z. Default 64.");
    v.IntList("generator_hidden", generator_hidden, 1,
              "FedGAN: generator hidden layer widths (LeakyReLU); output is tanh with one value per feature. "
              "Default [256].");
    v.IntList("discriminator_hidden", discriminator_hidden, 1,
              "FedGAN: discriminator hidden layer widths (LeakyReLU); output is one logit. Default [256].");
    v.Real("leaky_slope", leaky_slope, 0.0, 0.999, false,
           "FedGAN: negative slope of the LeakyReLU hidden activations (0 = ReLU). Default 0.2.");
    v.Choice("optimizer", optimizer, {"adam", "sgd"},
             "FedGAN: client optimizer of both networks; Adam moments are kept per client across rounds. "
             "Default \"adam\".");
    v.Real("generator_lr", generator_lr, 0.0, 1e6, true,
           "FedGAN: generator learning rate (times algorithm.lr_decay^t in round t). Default 2e-4.");
    v.Real("discriminator_lr", discriminator_lr, 0.0, 1e6, true,
           "FedGAN: discriminator learning rate (times algorithm.lr_decay^t in round t). Default 2e-4.");
    v.Real("beta1", beta1, 0.0, 0.999999, false, "FedGAN: Adam first-moment decay. Default 0.5.");
    v.Real("beta2", beta2, 0.0, 0.999999, false, "FedGAN: Adam second-moment decay. Default 0.999.");
    v.Choice("judge_kind", judge_kind, {"softmax", "mlp"},
             "FedGAN: the classifier trained centrally on the training set before the run that judges generated "
             "samples. Default \"mlp\".");
    v.IntList("judge_hidden", judge_hidden, 1, "FedGAN: hidden widths of the judge for judge_kind=mlp. Default [200].");
    v.Int("judge_epochs", judge_epochs, 1, 1000, "FedGAN: epochs of the judge's SGD training. Default 2.");
    v.Int("judge_batch_size", judge_batch_size, 1, 100000, "FedGAN: the judge's minibatch size. Default 64.");
    v.Real("judge_lr", judge_lr, 0.0, 1e6, true, "FedGAN: the judge's SGD learning rate. Default 0.1.");
    v.Int("eval_samples", eval_samples, 1, 10000000,
          "FedGAN: generated samples the judge classifies at each evaluation (the same latent vectors every "
          "time). Default 1000.");
    v.Real("confidence", confidence, 0.0, 1.0, false,
           "FedGAN: a generated sample is confident when the judge's top class probability exceeds this. "
           "Default 0.9.");
    v.Real("class_share", class_share, 0.0, 1.0, true,
           "FedGAN: a class counts as covered when at least this share of the generated samples is predicted as "
           "it. Default 0.02.");
    v.Int("grid", grid, 0, 64,
          "FedGAN: each evaluation writes OUT/samples/round_NNNN.pgm, a grid x grid tiling of generated samples "
          "(the first grid^2 of eval_samples); 0 = no images. Default 8.");
  }
};

// Upload compression (docs/algorithms.md#compression): a transform every
// client applies to its model-delta upload before it leaves the device.
struct CompressionConfig {
  std::string kind = "none";    // none | topk | randk | qsgd | float16 | int8
  double density = 0.01;        // topk / randk: fraction of coordinates kept
  int bits = 8;                 // qsgd: bits per coordinate including the sign
  int bucket = 512;             // qsgd / int8: coordinates per norm or scale
  bool error_feedback = false;  // keep each client's compression error and add it to its next upload

  template <class V>
  void Visit(V& v) {
    v.Choice("kind", kind, {"none", "topk", "randk", "qsgd", "float16", "int8"},
             "Compress each client's model-delta upload: top-k or random-k sparsification, QSGD stochastic "
             "quantisation (Alistarh et al. 2017), IEEE half floats, or 8-bit integers with a scale per bucket. "
             "Default \"none\".");
    v.Real("density", density, 0.0, 1.0, true,
           "topk / randk: fraction of coordinates sent, k = max(1, ceil(density * n)). Default 0.01.");
    v.Int("bits", bits, 2, 16, "qsgd: bits per coordinate including the sign; s = 2^(bits-1) - 1 levels. Default 8.");
    v.Int("bucket", bucket, 1, 1 << 30,
          "qsgd / int8: coordinates per bucket (one float32 norm or scale each). Default 512.");
    v.Bool("error_feedback", error_feedback,
           "Error feedback (Seide et al. 2014; Karimireddy et al. 2019): each client keeps what compression "
           "dropped and adds it to its next upload. Default false.");
  }
};

struct AttackConfig {
  std::string kind = "none";  // none | label_flip | backdoor | sign_flip | gaussian | scaling | alie | ipm
  double fraction = 0.0;      // share of the population that is malicious (or count)
  int count = 0;              // number of malicious clients (or fraction)
  int start_round = 1;        // first round (1-based) the attackers act in
  std::string mapping = "all_to_one";  // label_flip: all_to_one | reverse
  int target = 0;             // label_flip all_to_one and backdoor: the target label
  double poison_ratio = 0.5;  // backdoor: share of an attacker's samples that carry the trigger
  int trigger_size = 4;       // backdoor: side of the square trigger in the image's bottom-right corner
  double boost = 1.0;         // multiplies a malicious update (model replacement, boosting)
  double sigma = 1.0;         // gaussian: std of each coordinate of the malicious update
  std::optional<double> z;    // alie: the perturbation in standard deviations (default: Baruch et al.'s z_max)
  double epsilon = 0.1;       // ipm: the malicious update is -epsilon times the benign mean

  template <class V>
  void Visit(V& v) {
    v.Choice("kind", kind, {"none", "label_flip", "backdoor", "sign_flip", "gaussian", "scaling", "alie", "ipm"},
             "Poisoning attack of a fixed set of malicious clients (docs/robustness.md): data poisoning (label_flip, "
             "backdoor) or model poisoning (sign_flip, gaussian, scaling; alie and ipm, which see the round's benign "
             "updates). Default \"none\".");
    v.Real("fraction", fraction, 0.0, 1.0, false,
           "Share of the clients that train (data.holdout_clients excluded) that is malicious, rounded to the "
           "nearest count (at least 1); or set count. Default 0.");
    v.Int("count", count, 0, 100000000, "Number of malicious clients (instead of fraction). Default 0.");
    v.Int("start_round", start_round, 1, 100000000,
          "First round (1-based) in which the attackers act; before it they behave honestly. Default 1.");
    v.Choice("mapping", mapping, {"all_to_one", "reverse"},
             "label_flip: every label becomes attack.target (all_to_one), or label y becomes C-1-y (reverse). "
             "Default \"all_to_one\".");
    v.Int("target", target, 0, 1000000, "label_flip all_to_one and backdoor: the target label. Default 0.");
    v.Real("poison_ratio", poison_ratio, 0.0, 1.0, true,
           "backdoor: share of each attacker's training samples replaced by triggered copies labelled "
           "attack.target. Default 0.5.");
    v.Int("trigger_size", trigger_size, 1, 1000,
          "backdoor: side in pixels of the square trigger set to the brightest pixel value in the bottom-right "
          "corner of every channel. Default 4.");
    v.Real("boost", boost, 0.0, 1e9, true,
           "Multiplies every malicious update after its attack (model replacement / boosting, Bagdasaryan et al. "
           "2020); scaling is honest training times boost. Default 1.");
    v.Real("sigma", sigma, 0.0, 1e9, true, "gaussian: std of each coordinate of the malicious update. Default 1.");
    v.OptReal("z", z, 0.0, 1e9,
              "alie: malicious update = mean - z * std of the benign updates, per coordinate. Default: z_max of "
              "Baruch et al. 2019 from the cohort size and the number of attackers in it.");
    v.Real("epsilon", epsilon, 0.0, 1e9, false,
           "ipm: malicious update = -epsilon * the mean of the benign updates (Xie et al. 2020). Default 0.1.");
  }
};

struct RobustConfig {
  std::string rule = "mean";  // mean | median | trimmed_mean | krum | multikrum | bulyan | rfa | centered_clipping | norm_bound
  double trim = 0.1;          // trimmed_mean: share cut from each end
  int byzantine = 1;          // krum, multikrum, bulyan: f, the attackers the rule tolerates
  int selected = 0;           // multikrum: m updates averaged (0 = n - f)
  int iterations = 3;         // rfa: Weiszfeld iterations; centered_clipping: clipping iterations
  double nu = 1e-6;           // rfa: smoothing of the Weiszfeld weights
  double clip_norm = 1.0;     // centered_clipping: tau; norm_bound: M
  double noise_std = 0.0;     // norm_bound: std of the Gaussian noise added to the aggregate (weak DP)

  template <class V>
  void Visit(V& v) {
    v.Choice("rule", rule,
             {"mean", "median", "trimmed_mean", "krum", "multikrum", "bulyan", "rfa", "centered_clipping",
              "norm_bound"},
             "How the server combines the cohort's updates (docs/robustness.md): the weighted mean, or a robust "
             "rule. Default \"mean\".");
    v.Real("trim", trim, 0.0, 0.5, false, "trimmed_mean: share of the values cut from each end, per coordinate. "
                                           "Default 0.1.");
    v.Int("byzantine", byzantine, 0, 100000000,
          "krum, multikrum, bulyan: f, the number of malicious updates the rule is built to tolerate. Default 1.");
    v.Int("selected", selected, 0, 100000000, "multikrum: m, the updates averaged (0 = n - f). Default 0.");
    v.Int("iterations", iterations, 1, 1000,
          "rfa: Weiszfeld iterations (Pillutla et al. 2022 use 3); centered_clipping: clipping iterations. "
          "Default 3.");
    v.Real("nu", nu, 0.0, 1.0, true, "rfa: smoothing nu of the Weiszfeld weights 1 / max(nu, distance). Default 1e-6.");
    v.Real("clip_norm", clip_norm, 0.0, 1e9, true,
           "centered_clipping: the radius tau; norm_bound: the bound M on each update's L2 norm. Default 1.");
    v.Real("noise_std", noise_std, 0.0, 1e9, false,
           "norm_bound: std of Gaussian noise added to each coordinate of the aggregate (weak DP, Sun et al. "
           "2019). Default 0.");
  }
};

// audit.imprint.*: the malicious server's imprint layer (src/round/imprint.h).
struct ImprintConfig {
  int bins = 0;                            // imprint bins = first-layer units overwritten; 0 = off
  std::string measurement = "brightness";  // brightness | random: the direction m every bin unit measures
  int every = 1;                           // attack rounds: 0, every, 2 every, ...

  template <class V>
  void Visit(V& v) {
    v.Int("bins", bins, 0, 1000000,
          "The malicious server's imprint attack (Fowl et al., ICLR 2022, \"Robbing the Fed\"): on attack rounds "
          "it broadcasts the global model with its first dense layer's first `bins` units overwritten to measure "
          "m.x against cut points at quantiles of a Gaussian fitted to m.x over the test set (the server's public "
          "data), and the next layer's weights from those units made equal; it recovers each sample that falls "
          "alone in a bin from the upload (or, under secure aggregation or encryption, from the cohort's sum), and "
          "keeps its honest model (an attack round does not train). model.kind=mlp, bins <= model.hidden[0]. "
          "Default 0 (off).");
    v.Choice("measurement", measurement, {"brightness", "random"},
             "audit.imprint: the measurement m.x the bins cut: brightness = the mean of the input's values; random "
             "= a fixed Gaussian direction drawn from the seed. Default \"brightness\".");
    v.Int("every", every, 1, 1000000,
          "audit.imprint: attack rounds 0, every, 2 every, ... (the others train honestly). Default 1 (every "
          "round).");
  }
};

// audit.*: privacy measured by attacks on the run (src/round/privacy_audit.h).
struct AuditConfig {
  int canaries = 0;         // canary clients inserted (Andrew et al. 2024); 0 = off
  int unobserved = -1;      // canaries drawn but never inserted; -1 = as many as canaries
  bool membership = false;  // loss-threshold membership inference on the final model (Yeom et al. 2018)
  int membership_samples = 2000;  // members and non-members scored (each)
  bool reconstruction = false;    // the server inverts the first dense layer of each upload
  ImprintConfig imprint;          // the malicious server's imprint layer

  template <class V>
  void Visit(V& v) {
    v.Int("canaries", canaries, 0, 1000000,
          "Empirical epsilon audit (Andrew et al., ICLR 2024): this many canary clients, each a random unit "
          "direction, join the sum of clipped updates with privacy.clip_norm times their direction, each round with "
          "the real clients' sampling rate; the final model's cosines with them and with never-inserted canaries "
          "give an epsilon estimate beside the accountant's. privacy.mode=central only. Default 0 (off).");
    v.Int("unobserved", unobserved, -1, 1000000,
          "Canaries drawn but never inserted (the null distribution of the cosine); -1 = as many as "
          "audit.canaries. Default -1.");
    v.Bool("membership", membership,
           "Loss-threshold membership inference (Yeom et al. 2018) on the final global model: training clients' "
           "samples against test samples; AUC and TPR at 1% and 0.1% FPR in the summary. Default false.");
    v.Int("membership_samples", membership_samples, 10, 100000000,
          "Members and non-members scored by audit.membership (each; fewer if the data has fewer). Default 2000.");
    v.Bool("reconstruction", reconstruction,
           "Input reconstruction by an honest-but-curious server: the first dense layer's weight and bias "
           "gradients (or update) of each upload it sees give x = dW[:, j] / db[j] (exact for one sample's "
           "gradient); scored against the client's own samples (exact matches, PSNR) per round, and on the "
           "cohort's sum under secure aggregation; reconstructions.pgm shows them. model.kind softmax or mlp. "
           "Default false.");
    v.Section("imprint", imprint);
  }
};

// algorithm.mode = fedbuff | fedasync: the event-driven scheduler
// (round/async_scheduler.h, docs/async.md).
struct AsyncConfig {
  int concurrency = 100;            // clients training at once
  int buffer_size = 10;             // FedBuff's K (fedasync: 1)
  std::string staleness = "polynomial";  // constant | polynomial | hinge
  double staleness_a = 0.5;         // polynomial: (1 + s)^-a; hinge: slope a
  double staleness_b = 4.0;         // hinge: staleness up to b weighs 1
  double alpha = 0.6;               // FedAsync's mixing weight
  int max_staleness = -1;           // updates staler than this are dropped; -1 = no limit
  double retry_s = 60.0;            // a free slot with no client online tries again after this
  std::string weighting = "uniform";  // uniform | samples: the buffered updates' weights

  template <class V>
  void Visit(V& v) {
    v.Int("concurrency", concurrency, 1, 100000000,
          "Event-driven modes: clients training at once; a slot is refilled as soon as its client reports or is "
          "lost. Default 100.");
    v.Int("buffer_size", buffer_size, 1, 100000000,
          "FedBuff: the K updates aggregated into one server step (fedasync applies every update: K = 1). "
          "Default 10.");
    v.Choice("staleness", staleness, {"constant", "polynomial", "hinge"},
             "Weight of an update of staleness s (server steps since its client was dispatched): constant 1, "
             "polynomial (1 + s)^-a, hinge 1 for s <= b else 1 / (a (s - b) + 1) (Xie et al. 2019). FedBuff "
             "multiplies each buffered update by it (polynomial with a = 0.5 is FedBuff's 1 / sqrt(1 + s)); "
             "FedAsync multiplies its mixing weight alpha by it. Default \"polynomial\".");
    v.Real("staleness_a", staleness_a, 0.0, 1e6, false, "Staleness function parameter a. Default 0.5.");
    v.Real("staleness_b", staleness_b, 0.0, 1e9, false, "Hinge staleness function: staleness b up to which an update "
           "weighs 1. Default 4.");
    v.Real("alpha", alpha, 0.0, 1.0, true,
           "FedAsync: mixing weight, w <- (1 - alpha_s) w + alpha_s w_client with alpha_s = alpha x staleness "
           "weight. Default 0.6.");
    v.Int("max_staleness", max_staleness, -1, 100000000,
          "Updates with a larger staleness are dropped on arrival (counted in stale_updates); -1 = no limit. "
          "Default -1.");
    v.Real("retry_s", retry_s, 0.0, 1e12, true,
           "When no client can be dispatched (all offline or busy), the free slot tries again after this many "
           "simulated seconds; with diurnal or trace availability a synchronous round in which no sampled client "
           "is online lasts this long. Default 60.");
    v.Choice("weighting", weighting, {"uniform", "samples"},
             "FedBuff: uniform averages the buffered updates with weight 1 each, as FedBuff's Algorithm 1 (the "
             "staleness-weighted sum divided by K); samples keeps the algorithm's weights (FedAvg: n_k). Default "
             "\"uniform\".");
  }
};

struct Config {
  ExperimentConfig experiment;
  DataConfig data;
  ModelConfig model;
  AlgorithmConfig algorithm;
  PrivacyConfig privacy;
  SecureAggregationConfig secure_aggregation;
  EncryptionConfig encryption;
  SystemConfig system;
  BaselineConfig baseline;
  MetricsConfig metrics;
  GanConfig gan;
  CompressionConfig compression;
  AttackConfig attack;
  RobustConfig robust;
  PersonalizationConfig personalization;
  AsyncConfig async;
  AuditConfig audit;

  template <class V>
  void Visit(V& v) {
    v.Section("experiment", experiment);
    v.Section("data", data);
    v.Section("model", model);
    v.Section("algorithm", algorithm);
    v.Section("privacy", privacy);
    v.Section("secure_aggregation", secure_aggregation);
    v.Section("encryption", encryption);
    v.Section("system", system);
    v.Section("baseline", baseline);
    v.Section("metrics", metrics);
    v.Section("gan", gan);
    v.Section("compression", compression);
    v.Section("attack", attack);
    v.Section("robust", robust);
    v.Section("personalization", personalization);
    v.Section("async", async);
    v.Section("audit", audit);
  }
};

// One documented key: its full path, type, default (as JSON) and meaning.
struct ConfigKey {
  std::string path;
  std::string type;
  nlohmann::json default_value;
  std::string doc;
};

// Parses a JSON document into a Config. `source` names the file (or
// "<built-in>") in error messages. Throws InputError naming the source and the
// JSON path on a wrong type, an out-of-range value or an unknown key.
Config ParseConfig(const nlohmann::json& j, const std::string& source);

// Reads and parses a config file; a missing file or invalid JSON is an
// InputError naming the path (and the line for a JSON syntax error).
nlohmann::json ReadConfigJson(const std::string& path);

// Applies "a.b.c=value" to a config document. value is parsed as JSON, and
// taken as a plain string if it is not valid JSON. Throws InputError on a
// malformed assignment.
void ApplyOverride(nlohmann::json& j, const std::string& assignment);

// Checks that span several keys (e.g. an mlp needs hidden sizes). Throws
// InputError naming `source` (if not empty) and the keys. ParseConfig calls it;
// RunExperiment calls it again for configs built in code.
void ValidateConfig(const Config& c, const std::string& source = "");

// The number of clients data.holdout_clients keeps out of training in a
// population of num_clients: round(f * N) for a fraction f < 1, else the count.
int HoldoutCount(double holdout_clients, int num_clients);

// The resolved config with every default filled in.
nlohmann::json ToJson(const Config& c);

// Every key path with type, default and meaning, in declaration order.
std::vector<ConfigKey> ListConfigKeys();

// Edit distance, for "did you mean" suggestions.
int EditDistance(const std::string& a, const std::string& b);

}  // namespace fedsim
