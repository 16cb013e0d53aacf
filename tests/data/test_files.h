// Helpers for data tests: a temporary directory removed on scope exit and
// writers for IDX and text files.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config.h"

namespace fedsim::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("fedsim-data-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline void PutBigEndian(std::vector<unsigned char>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
}

inline std::vector<unsigned char> IdxImages(uint32_t count, uint32_t rows, uint32_t cols,
                                            const std::vector<unsigned char>& pixels, uint32_t magic = 0x803) {
  std::vector<unsigned char> out;
  for (uint32_t v : {magic, count, rows, cols}) PutBigEndian(out, v);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

inline std::vector<unsigned char> IdxLabels(const std::vector<unsigned char>& labels, uint32_t magic = 0x801) {
  std::vector<unsigned char> out;
  PutBigEndian(out, magic);
  PutBigEndian(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// Writes bytes to path, gzip-compressed (zlib's gzwrite) if gz.
inline void WriteBytes(const std::string& path, const std::vector<unsigned char>& bytes, bool gz = false) {
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (f == nullptr) throw std::runtime_error("gzopen " + path);
    if (!bytes.empty() && gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) <= 0) {
      gzclose(f);
      throw std::runtime_error("gzwrite " + path);
    }
    gzclose(f);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::vector<unsigned char> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

// A CSV data config whose clients are the ids in column 1 (natural
// partition), with a random hold-out of test_fraction of the rows.
inline DataConfig CsvClientColumn(const std::string& path, double test_fraction, int num_clients) {
  DataConfig c;
  c.dataset = "csv";
  c.path = path;
  c.csv.client_column = 1;
  c.csv.test_fraction = test_fraction;
  c.partition.kind = "natural";
  c.num_clients = num_clients;
  return c;
}

}  // namespace fedsim::testing
