// Fuzzes the checkpoint reader: fedsim::CheckpointReader(path_name, bytes)
// (src/fl/checkpoint.h), then what `fedsim run --resume` reads first: the
// arrays and the config in the header.
//
// Each input runs twice: as given, and with a correct FNV-1a checksum
// appended, so the fuzzer is not stopped at the checksum and reaches the
// header and record parsing behind it. InputError is the expected outcome;
// anything else is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "fl/checkpoint.h"

namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void Read(const std::string& bytes) {
  try {
    const fedsim::CheckpointReader r("fuzz/checkpoint.bin", bytes);
    if (!r.header().is_object()) std::abort();  // Parse promises an object
    // The records a resume asks for (runner.cpp, the algorithms' LoadState).
    for (const char* name : {"global", "server_opt/m", "server_opt/v", "feddyn/h", "scaffold/c", "fedsparse/bytes"}) {
      if (!r.Has(name)) continue;
      try {
        r.F32(name);
      } catch (const fedsim::InputError&) {
      }
      try {
        r.F64(name);
      } catch (const fedsim::InputError&) {
      }
      try {
        r.I64(name);
      } catch (const fedsim::InputError&) {
      }
    }
    // fedsim run --resume parses the header's config like a config file.
    if (r.header().contains("config")) {
      try {
        fedsim::ParseConfig(r.header()["config"], "fuzz/checkpoint.bin");
      } catch (const fedsim::InputError&) {
      }
    }
  } catch (const fedsim::InputError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  Read(bytes);
  const uint64_t h = Fnv1a(bytes);
  bytes.append(reinterpret_cast<const char*>(&h), sizeof(h));
  Read(bytes);
  return 0;
}
