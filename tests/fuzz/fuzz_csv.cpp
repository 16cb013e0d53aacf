// Fuzzes the CSV reader: bytes -> a temporary file -> fedsim::LoadCsv(path, 0,
// true) (label in column 0, a header line), as data.dataset = "csv" reads it
// by default. InputError is the expected outcome; anything else is a bug.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "data/dataset.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fedsim_fuzz::TempFile csv("fuzz_csv");
  csv.Write(data, size);
  try {
    const fedsim::Dataset ds = fedsim::LoadCsv(csv.path(), 0, true);
    // What a loaded dataset promises (src/data/dataset.h, src/data/csv.cpp).
    if (ds.size() < 1 || ds.dim() < 1 || ds.x.rows() != ds.size() || ds.num_classes < 1) std::abort();
    for (int y : ds.y) {
      if (y < 0 || y >= ds.num_classes) std::abort();
    }
    if (!ds.x.allFinite()) std::abort();
  } catch (const fedsim::InputError&) {
  }
  return 0;
}
