// MNIST-format IDX files (LeCun et al.): a big-endian header (magic, then one
// uint32 per dimension) followed by unsigned bytes. Files are read through
// zlib, which passes plain files through unchanged.
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

constexpr uint32_t kImageMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelMagic = 0x00000801;  // unsigned byte, 1 dimension
constexpr size_t kImageHeader = 16;
constexpr size_t kLabelHeader = 8;

// The whole (decompressed) content of path. `expected` (if known) is reserved
// up front so a large file is not copied while the buffer grows.
std::vector<unsigned char> ReadAll(const std::string& path, size_t expected = 0) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(fmt::format("{}: no such file", path));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw InputError(fmt::format("{}: cannot open", path));
  gzbuffer(f, 1 << 17);
  std::vector<unsigned char> data;
  constexpr unsigned kChunk = 1 << 20;
  if (expected > 0) data.reserve(expected + kChunk);
  for (;;) {
    const size_t old = data.size();
    data.resize(old + kChunk);
    const int got = gzread(f, data.data() + old, kChunk);
    if (got < 0) {
      int errnum = 0;
      const std::string msg = gzerror(f, &errnum);
      gzclose(f);
      throw InputError(fmt::format("{}: read error: {}", path, msg));
    }
    data.resize(old + static_cast<size_t>(got));
    if (got == 0) break;
  }
  int errnum = 0;
  const std::string msg = gzerror(f, &errnum);
  gzclose(f);
  // Z_BUF_ERROR here is a gzip stream that ends early.
  if (errnum != Z_OK) throw InputError(fmt::format("{}: corrupt or truncated gzip data: {}", path, msg));
  return data;
}

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void CheckMagic(const std::string& path, uint32_t magic, uint32_t expected, const char* what) {
  if (magic != expected) {
    throw InputError(
        fmt::format("{}: not an IDX {} file: magic 0x{:08x}, expected 0x{:08x}", path, what, magic, expected));
  }
}

// The size an image file's header announces (0 if the header is unreadable;
// ReadAll and the checks below then report the problem).
size_t AnnouncedImageFileSize(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return 0;
  unsigned char h[kImageHeader];
  const int got = gzread(f, h, kImageHeader);
  gzclose(f);
  if (got != static_cast<int>(kImageHeader) || BigEndian32(h) != kImageMagic) return 0;
  const unsigned __int128 n = static_cast<unsigned __int128>(BigEndian32(h + 4)) * BigEndian32(h + 8) * BigEndian32(h + 12);
  // Only a hint: a header that claims more than 2 GiB is not trusted with an
  // allocation (ReadAll then grows the buffer as the real data arrives).
  return n < (static_cast<unsigned __int128>(1) << 31) ? static_cast<size_t>(n) + kImageHeader : 0;
}

}  // namespace

Dataset LoadIdx(const std::string& images, const std::string& labels) {
  std::vector<unsigned char> img = ReadAll(images, AnnouncedImageFileSize(images));
  if (img.size() < kImageHeader) {
    throw InputError(fmt::format("{}: truncated: {} bytes, shorter than the {}-byte IDX image header", images,
                                 img.size(), kImageHeader));
  }
  CheckMagic(images, BigEndian32(img.data()), kImageMagic, "image (idx3-ubyte)");
  const uint32_t count = BigEndian32(img.data() + 4);
  const uint32_t rows = BigEndian32(img.data() + 8);
  const uint32_t cols = BigEndian32(img.data() + 12);
  if (count == 0 || rows == 0 || cols == 0) {
    throw InputError(
        fmt::format("{}: header says {} images of {}x{}; every dimension must be positive", images, count, rows, cols));
  }
  const unsigned __int128 expected = static_cast<unsigned __int128>(count) * rows * cols;
  const size_t held = img.size() - kImageHeader;
  if (held < expected) {
    throw InputError(fmt::format("{}: truncated: header says {} images of {}x{} but file holds {} bytes of pixel data",
                                 images, count, rows, cols, held));
  }
  if (held > expected) {
    throw InputError(fmt::format("{}: {} trailing bytes after the {} images of {}x{} the header announces", images,
                                 static_cast<uint64_t>(held - expected), count, rows, cols));
  }
  if (count > static_cast<uint32_t>(INT_MAX) || uint64_t{rows} * cols > static_cast<uint64_t>(INT_MAX)) {
    throw InputError(fmt::format("{}: {} images of {}x{} is more than fedsim can index", images, count, rows, cols));
  }

  const std::vector<unsigned char> lab = ReadAll(labels);
  if (lab.size() < kLabelHeader) {
    throw InputError(fmt::format("{}: truncated: {} bytes, shorter than the {}-byte IDX label header", labels,
                                 lab.size(), kLabelHeader));
  }
  CheckMagic(labels, BigEndian32(lab.data()), kLabelMagic, "label (idx1-ubyte)");
  const uint32_t num_labels = BigEndian32(lab.data() + 4);
  const size_t held_labels = lab.size() - kLabelHeader;
  if (held_labels < num_labels) {
    throw InputError(fmt::format("{}: truncated: header says {} labels but file holds {} bytes of label data", labels,
                                 num_labels, held_labels));
  }
  if (held_labels > num_labels) {
    throw InputError(fmt::format("{}: {} trailing bytes after the {} labels the header announces", labels,
                                 held_labels - num_labels, num_labels));
  }
  if (num_labels != count) {
    throw InputError(fmt::format("{}: {} labels but {} holds {} images", labels, num_labels, images, count));
  }

  const int n = static_cast<int>(count);
  const int d = static_cast<int>(rows * cols);
  Dataset ds;
  ds.shape = {1, static_cast<int>(rows), static_cast<int>(cols)};
  ds.byte_storage = true;
  img.erase(img.begin(), img.begin() + kImageHeader);  // in place: no second copy of the pixels
  ds.bytes = std::move(img);
  ds.byte_scale = Eigen::RowVectorXf::Constant(d, 1.0f / 255.0f);
  ds.byte_shift = Eigen::RowVectorXf::Zero(d);
  ds.y.resize(n);
  int max_label = 0;
  for (int i = 0; i < n; ++i) {
    ds.y[i] = lab[kLabelHeader + i];
    max_label = std::max(max_label, ds.y[i]);
  }
  // A ubyte label is at most 255, so num_classes <= 256 holds by construction.
  ds.num_classes = max_label + 1;
  return ds;
}

Dataset LoadIdxDir(const std::string& dir, const std::string& prefix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(fmt::format("{}: no such directory", dir));
  // Accepted names, in order of preference: "<prefix>-<kind>-<idx>" and the
  // dotted "<prefix>-<kind>.<idx>" some mirrors use, each plain or ".gz".
  auto find = [&](const std::string& kind, const std::string& idx) -> std::string {
    for (const std::string& sep : {std::string("-"), std::string(".")}) {
      for (const char* ext : {"", ".gz"}) {
        const fs::path p = fs::path(dir) / (prefix + "-" + kind + sep + idx + ext);
        if (fs::is_regular_file(p, ec)) return p.string();
      }
    }
    throw InputError(fmt::format("{}: no {}-{}-{} or {}-{}-{}.gz (nor the dotted {}-{}.{}[.gz]) in this directory", dir,
                                 prefix, kind, idx, prefix, kind, idx, prefix, kind, idx));
  };
  const std::string images = find("images", "idx3-ubyte");
  const std::string labels = find("labels", "idx1-ubyte");
  return LoadIdx(images, labels);
}

}  // namespace fedsim
