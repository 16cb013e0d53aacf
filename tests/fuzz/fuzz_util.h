// Helpers shared by the libFuzzer targets in tests/fuzz/ (built with
// -DFEDSIM_FUZZ=ON, run by scripts/fuzz.sh).
//
// The contract every target checks: a reader given hostile bytes either
// succeeds or throws fedsim::InputError. Any other exception escapes
// LLVMFuzzerTestOneInput and aborts (libFuzzer reports it as a crash, with the
// exception's what() printed by std::terminate); a sanitizer report or a
// signal is a crash too.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fedsim_fuzz {

// A file under $TMPDIR (or /tmp) private to this process, rewritten for each
// input and removed at exit. `tag` tells the files of one target apart.
class TempFile {
 public:
  explicit TempFile(const std::string& tag) {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/fedsim_" + tag + "_" +
            std::to_string(static_cast<long>(getpid()));
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  // Replaces the file's content; aborts if it cannot (not the input's fault).
  const std::string& Write(const void* data, size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
      std::perror(path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& Write(const std::string& s) { return Write(s.data(), s.size()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void PutBigEndian32(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v >> 24));
  s.push_back(static_cast<char>(v >> 16));
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}

inline uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace fedsim_fuzz
