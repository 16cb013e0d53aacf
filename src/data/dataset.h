// Datasets: features stored once, row-major (one contiguous row per sample),
// integer labels in [0, num_classes). A client is a list of row indices into
// the training set; nothing is copied per client.
//
// Two storages: float32 rows in `x`, or (for image data) one byte per feature
// in `bytes` with a per-feature affine decode, feature_j = byte * byte_scale_j
// + byte_shift_j, which keeps Fashion-MNIST at a quarter of the float size and
// folds standardisation into the decode. Readers that do not care which
// storage is used call dim(), Rows(), Range() or Dense().
#pragma once

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/config.h"

namespace fedsim {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Dataset {
  RowMatrix x;              // n x d float features (float storage)
  std::vector<uint8_t> bytes;        // n x d byte features (byte storage)
  Eigen::RowVectorXf byte_scale;     // d decode scales (byte storage)
  Eigen::RowVectorXf byte_shift;     // d decode shifts (byte storage)
  bool byte_storage = false;
  std::vector<int> y;       // n labels in [0, num_classes)
  std::vector<int> user;    // n generator user ids (natural partition); empty if none
  int num_classes = 0;
  std::vector<int> shape;   // {channels, height, width} for image data; {sequence length} for token data;
                            // empty otherwise
  int vocab_size = 0;       // token data: each feature is a token id in [0, vocab_size), stored exactly
                            // (ids as floats, or bytes with scale 1 and shift 0); 0 = not token data
  // Next-token data (token data predicted at every step): a row holds T + 1
  // ids (shape = {T + 1}); a model reads ids [0, T) and predicts ids [1, T],
  // one target per step; a target equal to pad_id is not scored (no loss, no
  // accuracy). The classes are the ids (num_classes = vocab_size). y holds
  // each row's first target, so that label-free tools (splits, statistics)
  // have a value; what needs a per-sample label refuses next-token data.
  bool next_token = false;
  int pad_id = 0;

  int size() const { return static_cast<int>(y.size()); }
  int dim() const { return static_cast<int>(byte_storage ? byte_scale.size() : x.cols()); }
  // Decoded features of rows[0..count) into out (count x dim, row-major).
  void Rows(const int* rows, int count, float* out) const;
  // Decoded features of rows [begin, begin + count) into out.
  void Range(int begin, int count, float* out) const;
  // All features as a float matrix (a copy for byte storage).
  RowMatrix Dense() const;
  // Bytes used by the feature storage.
  size_t FeatureBytes() const { return byte_storage ? bytes.size() : static_cast<size_t>(x.size()) * sizeof(float); }
};

struct FederatedData {
  Dataset train;
  Dataset test;
  int num_users = 0;        // users in train.user (0 if the data has no natural users)
  std::string description;  // one line for people: what was loaded from where
};

// Loads the dataset named by cfg.dataset, applies max_*_samples and
// standardisation. Throws InputError naming the file (and the line for CSV)
// for a missing, truncated or malformed file, and the key for bad settings.
// seed feeds the generator and any random train/test split.
FederatedData LoadData(const DataConfig& cfg, uint64_t seed);

// MNIST-format IDX files. `images`/`labels` may be gzip-compressed or plain
// (detected by content). Checks magic numbers, dimensions, counts and label
// range; pixel values are scaled to [0, 1].
Dataset LoadIdx(const std::string& images, const std::string& labels);

// Finds "<prefix>-images-idx3-ubyte[.gz]" and "<prefix>-labels-idx1-ubyte[.gz]"
// in dir (prefix "train" or "t10k") and loads them.
Dataset LoadIdxDir(const std::string& dir, const std::string& prefix);

// CSV: one sample per line, an integer label column and numeric features;
// with client_column >= 0 that column is each row's client id (any text, not
// a feature), appended to *clients row by row.
Dataset LoadCsv(const std::string& path, int label_column, bool header, int client_column = -1,
                std::vector<std::string>* clients = nullptr);

// FedProx Synthetic(alpha, beta) (Li et al. 2020, MLSys; the reference
// generator in the FedProx repository). Returns train and test with user ids
// (90/10 split per user).
FederatedData GenerateSynthetic(const SyntheticConfig& cfg, uint64_t seed);

// LEAF's JSON files (data.dataset = "leaf"): dir is a task's data/ folder with
// train/*.json and test/*.json (every file, in file-name order, merged). The
// clients are the users with training samples, sorted by name; max_users > 0
// keeps the first max_users of them (their train and test rows only), 0 keeps
// all. train.user and test.user hold the client index; test rows of a user
// without training samples keep user -1 (only when every user is kept). See
// src/data/leaf.cpp for each task's features; throws InputError naming the
// file, user and sample for a malformed file.
FederatedData LoadLeaf(const LeafConfig& cfg, const std::string& dir, int max_users);

// CIFAR-10 ("cifar10": data_batch_1..5.bin, test_batch.bin) or CIFAR-100
// ("cifar100": train.bin, test.bin; labels "fine" or "coarse"), binary
// version, from the extracted folder dir: bytes of shape {3, 32, 32}, decoded
// to [0, 1]. Throws InputError naming the file and record for a truncated
// file or a label out of range.
FederatedData LoadCifar(const std::string& dataset, const std::string& dir, const std::string& labels);

// TFF's federated HDF5 files (data.dataset = "tff_h5"; tff.simulation.datasets,
// also distributed by FedML): in dir (or as cfg.train_file / cfg.test_file),
// /examples/<client>/<field> per client. Clients are the training file's ids
// with examples, sorted as strings; max_users > 0 keeps the first max_users
// (their train and test rows only), 0 keeps all; train.user and test.user
// hold the client index, test rows of a client without training examples
// user -1 (only when every client is kept). cifar100_labels ("fine" or
// "coarse") picks CIFAR-100's label field. See src/data/tff_h5.cpp for each
// task's fields and Shakespeare's tokens. Throws InputError naming the file
// and dataset path for a missing file, group or field, a wrong type or shape,
// or a label out of range; and naming the dataset when fedsim was built
// without HDF5.
FederatedData LoadTffH5(const TffH5Config& cfg, const std::string& dir, const std::string& cifar100_labels,
                        int max_users);

// The binary cache (data.cache; src/data/cache.cpp has the layout).
// DataCacheSource: what a cache of cfg's data records as its source (the data
// keys that change what LoadData returns, the data seed, each source file's
// path, size and modification time). WriteDataCache writes fd (LoadData's
// result for cfg and seed) to file; ReadDataCache reads it back, throwing
// InputError naming data.cache for a missing, stale (another source) or
// damaged (CRC-32, truncation) file.
nlohmann::json DataCacheSource(const DataConfig& cfg, uint64_t seed);
void WriteDataCache(const std::string& file, const DataConfig& cfg, uint64_t seed, const FederatedData& fd);
FederatedData ReadDataCache(const std::string& file, const DataConfig& cfg, uint64_t seed);

// Standardises train and test features with the training mean and std of each
// column (a column with std 0 is only centred).
void Standardize(Dataset& train, Dataset& test);

}  // namespace fedsim
