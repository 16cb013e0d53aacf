// CIFAR-10 and CIFAR-100, binary version (Krizhevsky, "Learning Multiple
// Layers of Features from Tiny Images", 2009; www.cs.toronto.edu/~kriz/cifar.html).
// A file is a sequence of records without a header:
//   CIFAR-10:  <label byte> <3072 pixel bytes>
//   CIFAR-100: <coarse label byte> <fine label byte> <3072 pixel bytes>
// with the pixels as three 32 x 32 planes (red, green, blue), rows top to
// bottom: exactly the {3, 32, 32} channel-first layout the CNNs read, so the
// bytes are stored as they are.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

constexpr int kPixels = 3 * 32 * 32;

struct Layout {
  int label_bytes;  // 1 (CIFAR-10) or 2 (CIFAR-100)
  int label_at;     // which of them is the class
  int num_classes;
};

// Appends the records of `path` to ds (bytes and y).
void ReadRecords(const std::string& path, const Layout& layout, Dataset& ds) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(fmt::format("{}: no such file", path));
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw InputError(fmt::format("{}: cannot read its size: {}", path, ec.message()));
  const size_t record = static_cast<size_t>(layout.label_bytes + kPixels);
  if (size == 0) throw InputError(fmt::format("{}: empty file", path));
  if (size % record != 0) {
    throw InputError(fmt::format("{}: record {} is truncated: {} of its {} bytes ({} bytes is not a whole number of "
                                 "{}-byte records)",
                                 path, size / record + 1, size % record, record, size, record));
  }
  const size_t n = size / record;
  if (ds.y.size() + n > static_cast<size_t>(INT32_MAX)) throw InputError(fmt::format("{}: too many records", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open", path));
  const size_t first = ds.y.size();
  ds.y.resize(first + n);
  ds.bytes.resize((first + n) * kPixels);
  std::vector<char> labels(static_cast<size_t>(layout.label_bytes));
  for (size_t r = 0; r < n; ++r) {
    in.read(labels.data(), layout.label_bytes);
    in.read(reinterpret_cast<char*>(ds.bytes.data() + (first + r) * kPixels), kPixels);
    if (!in) throw InputError(fmt::format("{}: read error in record {}", path, r + 1));
    const int label = static_cast<unsigned char>(labels[static_cast<size_t>(layout.label_at)]);
    if (label >= layout.num_classes) {
      throw InputError(fmt::format("{}: record {}: label {} is not below {} (is this the right CIFAR version?)", path,
                                   r + 1, label, layout.num_classes));
    }
    ds.y[first + r] = label;
  }
}

Dataset ReadFiles(const std::vector<std::string>& files, const Layout& layout) {
  Dataset ds;
  uintmax_t total = 0;
  std::error_code ec;
  for (const auto& f : files) total += fs::is_regular_file(f, ec) ? fs::file_size(f, ec) : 0;
  ds.bytes.reserve(static_cast<size_t>(total));  // one allocation: no copy while growing
  for (const auto& f : files) ReadRecords(f, layout, ds);
  ds.byte_storage = true;
  ds.byte_scale = Eigen::RowVectorXf::Constant(kPixels, 1.0f / 255.0f);
  ds.byte_shift = Eigen::RowVectorXf::Zero(kPixels);
  ds.shape = {3, 32, 32};
  ds.num_classes = layout.num_classes;
  return ds;
}

}  // namespace

FederatedData LoadCifar(const std::string& dataset, const std::string& dir, const std::string& labels) {
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) {
    throw InputError(fmt::format("data.path: \"{}\" is not a directory (data.dataset = \"{}\" needs the extracted {} "
                                 "folder)",
                                 dir, dataset, dataset == "cifar10" ? "cifar-10-batches-bin" : "cifar-100-binary"));
  }
  auto file = [&](const char* name) { return (fs::path(dir) / name).string(); };
  FederatedData fd;
  if (dataset == "cifar10") {
    const Layout layout{1, 0, 10};
    std::vector<std::string> train;
    for (int b = 1; b <= 5; ++b) train.push_back(file(fmt::format("data_batch_{}.bin", b).c_str()));
    fd.train = ReadFiles(train, layout);
    fd.test = ReadFiles({file("test_batch.bin")}, layout);
  } else if (dataset == "cifar100") {
    const bool coarse = labels == "coarse";
    if (!coarse && labels != "fine") {
      throw InputError(fmt::format("data.cifar100.labels: \"{}\" is neither fine nor coarse", labels));
    }
    const Layout layout{2, coarse ? 0 : 1, coarse ? 20 : 100};
    fd.train = ReadFiles({file("train.bin")}, layout);
    fd.test = ReadFiles({file("test.bin")}, layout);
  } else {
    throw InputError(fmt::format("data.dataset: \"{}\" is not a CIFAR dataset", dataset));
  }
  return fd;
}

}  // namespace fedsim
