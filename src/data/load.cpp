// LoadData: dataset dispatch, truncation, class-count agreement and
// standardisation.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

std::string IdxDirectory(const DataConfig& cfg) {
  const bool fmnist = cfg.dataset == "fashion_mnist";
  const std::string dir = cfg.path.empty() && fmnist ? kFashionMnistDir : cfg.path;
  if (dir.empty()) {
    throw InputError(
        "data.path: data.dataset = \"mnist_idx\" needs the directory holding "
        "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
        "t10k-labels-idx1-ubyte[.gz]");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw InputError(fmt::format("data.path: {}: no such directory ({})", dir,
                                 fmnist ? "install Debian's dataset-fashion-mnist package or set data.path"
                                        : "set data.path to a directory of MNIST-format IDX files"));
  }
  return dir;
}

std::string CsvFile(const std::string& path, const char* key) {
  if (path.empty()) throw InputError(fmt::format("{}: data.dataset = \"csv\" needs the CSV file's path", key));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(fmt::format("{}: {}: no such file", key, path));
  return path;
}

Dataset SelectRows(const Dataset& ds, const std::vector<int>& rows) {
  Dataset out;
  out.x.resize(static_cast<Eigen::Index>(rows.size()), ds.dim());
  // Decoded to float: SelectRows serves CSV splits, whose rows are floats anyway.
  ds.Rows(rows.data(), static_cast<int>(rows.size()), out.x.data());
  out.y.resize(rows.size());
  if (!ds.user.empty()) out.user.resize(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    out.y[r] = ds.y[rows[r]];
    if (!ds.user.empty()) out.user[r] = ds.user[rows[r]];
  }
  out.num_classes = ds.num_classes;
  return out;
}

// Holds out round(fraction * n) rows (at least one), chosen by a seeded
// shuffle; both parts keep the file's row order.
void HoldOut(const Dataset& all, double fraction, uint64_t seed, const std::string& path, Dataset& train,
             Dataset& test) {
  const int n = all.size();
  const int n_test = std::max(1, static_cast<int>(std::lround(fraction * n)));
  if (n_test >= n) {
    throw InputError(
        fmt::format("data.csv.test_fraction: holding out {} of the {} rows of {} leaves no training "
                    "rows (set data.csv.test_path or lower test_fraction)",
                    n_test, n, path));
  }
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng = DeriveStream(seed, Stream::kDataSplit);
  rng.Shuffle(perm.begin(), perm.end());
  std::vector<int> test_rows(perm.begin(), perm.begin() + n_test);
  std::vector<int> train_rows(perm.begin() + n_test, perm.end());
  std::sort(test_rows.begin(), test_rows.end());
  std::sort(train_rows.begin(), train_rows.end());
  train = SelectRows(all, train_rows);
  test = SelectRows(all, test_rows);
}

// Each id's index in sorted `names`, -1 if absent.
std::vector<int> UserIndices(const std::vector<std::string>& ids, const std::vector<std::string>& names) {
  std::vector<int> user(ids.size());
  for (size_t r = 0; r < ids.size(); ++r) {
    const auto it = std::lower_bound(names.begin(), names.end(), ids[r]);
    user[r] = it != names.end() && *it == ids[r] ? static_cast<int>(it - names.begin()) : -1;
  }
  return user;
}

// Keeps the rows whose user is in [0, n), and those of user -1 if
// keep_unassigned; row order is kept.
void KeepUsers(Dataset& ds, int n, bool keep_unassigned) {
  const int d = ds.dim();
  size_t kept = 0;
  for (size_t r = 0; r < ds.y.size(); ++r) {
    const int u = ds.user[r];
    if (!(u >= 0 ? u < n : keep_unassigned)) continue;
    if (kept != r) {
      ds.y[kept] = ds.y[r];
      ds.user[kept] = u;
      if (ds.byte_storage) {
        std::copy_n(ds.bytes.begin() + static_cast<int64_t>(r) * d, d, ds.bytes.begin() + static_cast<int64_t>(kept) * d);
      } else {
        ds.x.row(static_cast<Eigen::Index>(kept)) = ds.x.row(static_cast<Eigen::Index>(r));
      }
    }
    ++kept;
  }
  ds.y.resize(kept);
  ds.user.resize(kept);
  if (ds.byte_storage) {
    ds.bytes.resize(kept * static_cast<size_t>(d));
  } else {
    ds.x.conservativeResize(static_cast<Eigen::Index>(kept), Eigen::NoChange);
  }
}

// Keeps the first `max_rows` rows (0 = all); returns whether any were dropped.
bool KeepFirst(Dataset& ds, int max_rows) {
  if (max_rows <= 0 || max_rows >= ds.size()) return false;
  if (ds.byte_storage) {
    ds.bytes.resize(static_cast<size_t>(max_rows) * static_cast<size_t>(ds.dim()));
  } else {
    ds.x.conservativeResize(max_rows, Eigen::NoChange);
  }
  ds.y.resize(max_rows);
  if (!ds.user.empty()) ds.user.resize(max_rows);
  return true;
}

void CheckSameDim(const Dataset& train, const Dataset& test, const std::string& where) {
  if (train.dim() != test.dim()) {
    throw InputError(
        fmt::format("{}: the test set has {} features but the training set has {}", where, test.dim(), train.dim()));
  }
  // Images of the same size but another layout (8x8 against 4x16) would be
  // scored by a CNN as if they had the training layout.
  if (!train.shape.empty() && !test.shape.empty() && train.shape != test.shape) {
    throw InputError(fmt::format("{}: the test images are {} but the training images are {}", where,
                                 fmt::join(test.shape, "x"), fmt::join(train.shape, "x")));
  }
}

// Classes are 0..C-1 with C = the largest label + 1, so labels that start at
// 1 (EMNIST letters: 1..26) would add an empty class 0 that the model learns
// nothing of and a label partition hands to clients as if it held samples.
void CheckLabelZero(const Dataset& train, const Dataset& test, const std::string& where) {
  auto has_zero = [](const Dataset& ds) { return std::find(ds.y.begin(), ds.y.end(), 0) != ds.y.end(); };
  if (!train.y.empty() && !has_zero(train) && !has_zero(test)) {
    throw InputError(fmt::format("{}: no image has label 0; fedsim's classes are 0..{} from the largest label {}, "
                                 "so class 0 would be empty (labels numbered from 1, as EMNIST letters' 1..26, "
                                 "must be shifted to start at 0)",
                                 where, std::max(train.num_classes, test.num_classes) - 1,
                                 std::max(train.num_classes, test.num_classes) - 1));
  }
}

}  // namespace

void Standardize(Dataset& train, Dataset& test) {
  const Eigen::Index d = train.dim();
  const Eigen::Index n =
      train.byte_storage ? static_cast<Eigen::Index>(d ? train.bytes.size() / static_cast<size_t>(d) : 0) : train.x.rows();
  if (n == 0 || d == 0) return;
  if (test.dim() != d) {
    throw InputError(
        fmt::format("standardize: the test set has {} features but the training set has {}", test.dim(), d));
  }
  if (train.byte_storage != test.byte_storage) {
    throw InputError("standardize: the training and test sets use different feature storage");
  }
  Eigen::RowVectorXd mean, var;
  if (train.byte_storage) {
    // Moments of the decoded features, accumulated in double from the bytes.
    Eigen::RowVectorXd s = Eigen::RowVectorXd::Zero(d), s2 = Eigen::RowVectorXd::Zero(d);
    for (Eigen::Index i = 0; i < n; ++i) {
      const uint8_t* row = train.bytes.data() + i * d;
      for (Eigen::Index j = 0; j < d; ++j) {
        const double v = static_cast<double>(row[j]) * train.byte_scale[j] + train.byte_shift[j];
        s[j] += v;
        s2[j] += v * v;
      }
    }
    mean = s / static_cast<double>(n);
    var = (s2 / static_cast<double>(n) - mean.cwiseProduct(mean)).cwiseMax(0.0);
    for (Eigen::Index j = 0; j < d; ++j) {
      // A constant column has var 0 up to rounding; treat tiny as 0.
      if (var[j] < 1e-12 * std::max(1.0, mean[j] * mean[j])) var[j] = 0.0;
    }
  } else {
    mean = train.x.cast<double>().colwise().mean();
    var = (train.x.cast<double>().rowwise() - mean).array().square().colwise().sum() / static_cast<double>(n);
  }
  Eigen::RowVectorXd scale(d);
  for (Eigen::Index j = 0; j < d; ++j) scale[j] = var[j] > 0.0 ? 1.0 / std::sqrt(var[j]) : 1.0;
  const Eigen::RowVectorXf mean_f = mean.cast<float>();
  const Eigen::RowVectorXf scale_f = scale.cast<float>();
  for (Dataset* ds : {&train, &test}) {
    if (ds->byte_storage) {
      // (byte * s + h - mean) * c = byte * (s * c) + (h - mean) * c
      ds->byte_shift = ((ds->byte_shift - mean_f).array() * scale_f.array()).matrix();
      ds->byte_scale = (ds->byte_scale.array() * scale_f.array()).matrix();
    } else {
      ds->x = ((ds->x.rowwise() - mean_f).array().rowwise() * scale_f.array()).matrix();
    }
  }
}

FederatedData LoadData(const DataConfig& cfg, uint64_t seed) {
  if (!cfg.cache.empty()) return ReadDataCache(cfg.cache, cfg, seed);
  FederatedData fd;
  std::string source;
  if (cfg.dataset == "fashion_mnist" || cfg.dataset == "mnist_idx") {
    const std::string dir = IdxDirectory(cfg);
    fd.train = LoadIdxDir(dir, "train");
    fd.test = LoadIdxDir(dir, "t10k");
    CheckSameDim(fd.train, fd.test, dir);
    CheckLabelZero(fd.train, fd.test, dir);
    source = " from " + dir;
  } else if (cfg.dataset == "synthetic") {
    fd = GenerateSynthetic(cfg.synthetic, seed);
    source = cfg.synthetic.iid ? " iid" : fmt::format("({}, {})", cfg.synthetic.alpha, cfg.synthetic.beta);
    source = fmt::format("{}, {} users, seed {}", source, cfg.synthetic.num_users, seed);
  } else if (cfg.dataset == "csv") {
    const std::string path = CsvFile(cfg.path, "data.path");
    const int cc = cfg.csv.client_column;
    std::vector<std::string> ids, names;
    Dataset all = LoadCsv(path, cfg.csv.label_column, cfg.csv.header, cc, &ids);
    if (cc >= 0) {
      // Clients: the distinct ids of data.path, sorted; a row's user is its client's index.
      names = ids;
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      all.user = UserIndices(ids, names);
    }
    if (!cfg.csv.test_path.empty()) {
      fd.train = std::move(all);
      ids.clear();
      fd.test = LoadCsv(CsvFile(cfg.csv.test_path, "data.csv.test_path"), cfg.csv.label_column, cfg.csv.header, cc,
                        &ids);
      if (cc >= 0) fd.test.user = UserIndices(ids, names);
      CheckSameDim(fd.train, fd.test, cfg.csv.test_path);
      source = fmt::format(" from {} and {}", path, cfg.csv.test_path);
    } else {
      HoldOut(all, cfg.csv.test_fraction, seed, path, fd.train, fd.test);
      source = fmt::format(" from {} (test: a random {} of the rows)", path, cfg.csv.test_fraction);
      if (cc >= 0) {
        // The clients are the ids with training rows, as with a test file: an
        // id whose rows all went to the test set is no client (its test rows
        // get user -1), and the others are renumbered in sorted order.
        std::vector<int> renumber(names.size(), -1);
        for (int u : fd.train.user) renumber[static_cast<size_t>(u)] = 0;
        std::vector<std::string> kept_names;
        for (size_t i = 0; i < names.size(); ++i) {
          if (renumber[i] < 0) continue;
          renumber[i] = static_cast<int>(kept_names.size());
          kept_names.push_back(names[i]);
        }
        for (int& u : fd.train.user) u = renumber[static_cast<size_t>(u)];
        for (int& u : fd.test.user) u = renumber[static_cast<size_t>(u)];
        names = std::move(kept_names);
      }
    }
    if (cc >= 0) {
      const int found = static_cast<int>(names.size());
      int kept = found;
      if (cfg.partition.kind == "natural") {
        if (cfg.num_clients > found) {
          throw InputError(fmt::format("data.num_clients: {} clients but {} has {} distinct client ids in column {} "
                                       "(set data.num_clients to {}, or fewer to take the first ids in sorted order)",
                                       cfg.num_clients, path, found, cc, found));
        }
        kept = cfg.num_clients;
        KeepUsers(fd.train, kept, false);
        KeepUsers(fd.test, kept, kept == found);
      }
      source += fmt::format(" ({} of {} clients from column {})", kept, found, cc);
    }
  } else if (cfg.dataset == "leaf") {
    // The natural partition's clients are the first num_clients users by name.
    fd = LoadLeaf(cfg.leaf, cfg.path, cfg.partition.kind == "natural" ? cfg.num_clients : 0);
    source = fmt::format(" from {} ({})", cfg.path, fd.description);
  } else if (cfg.dataset == "tff_h5") {
    // As for LEAF: the natural partition's clients are the first num_clients ids.
    fd = LoadTffH5(cfg.tff_h5, cfg.path, cfg.cifar100.labels, cfg.partition.kind == "natural" ? cfg.num_clients : 0);
    source = fmt::format(" from {} ({})", cfg.path, fd.description);
  } else if (cfg.dataset == "cifar10" || cfg.dataset == "cifar100") {
    fd = LoadCifar(cfg.dataset, cfg.path, cfg.cifar100.labels);
    source = " from " + cfg.path + (cfg.dataset == "cifar100" ? fmt::format(" ({} labels)", cfg.cifar100.labels) : "");
  } else {
    throw InputError(fmt::format("data.dataset: unknown dataset \"{}\"", cfg.dataset));
  }

  std::string notes;
  if (KeepFirst(fd.train, cfg.max_train_samples)) notes += fmt::format("; first {} train rows", cfg.max_train_samples);
  if (KeepFirst(fd.test, cfg.max_test_samples)) notes += fmt::format("; first {} test rows", cfg.max_test_samples);
  // Users appear in blocks, so truncation drops whole trailing users (and
  // perhaps part of one); num_users counts the users still present.
  if (!fd.train.user.empty()) {
    fd.num_users = *std::max_element(fd.train.user.begin(), fd.train.user.end()) + 1;
  }
  const int classes = std::max(fd.train.num_classes, fd.test.num_classes);
  fd.train.num_classes = fd.test.num_classes = classes;
  if (cfg.standardize && fd.train.vocab_size > 0) {
    throw InputError("data.standardize: the features are token ids (" + cfg.dataset +
                     "), which standardisation would turn into other numbers; set data.standardize = false");
  }
  if (cfg.standardize) {
    Standardize(fd.train, fd.test);
    notes += "; standardized";
  }
  fd.description = fmt::format("{}{}: {} train / {} test, {} features, {} classes{}", cfg.dataset,
                               cfg.dataset == "synthetic" ? source : "", fd.train.size(), fd.test.size(),
                               fd.train.dim(), classes, cfg.dataset == "synthetic" ? notes : source + notes);
  return fd;
}

}  // namespace fedsim
