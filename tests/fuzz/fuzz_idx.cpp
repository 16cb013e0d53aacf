// Fuzzes the IDX reader: fedsim::LoadIdx(images, labels).
//
// The first input byte picks the mode, the rest is the hostile file:
//   even: the bytes are the image file, paired with a valid label file;
//   odd:  the bytes are the label file, paired with a valid image file.
// The valid partner is sized from the hostile file's header where it is
// readable (up to kMaxPartner items), so the fuzzer gets past the count check
// and into everything after it; otherwise it holds one item. Both files are
// read through zlib, so gzip input (see the corpus) takes the same path.
// InputError is the expected outcome; anything else is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "data/dataset.h"
#include "fuzz_util.h"

namespace {

constexpr uint32_t kMaxPartner = 4096;

std::string LabelFile(uint32_t n) {
  std::string s;
  fedsim_fuzz::PutBigEndian32(s, 0x00000801);
  fedsim_fuzz::PutBigEndian32(s, n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

std::string ImageFile(uint32_t n) {  // n images of 2x2
  std::string s;
  fedsim_fuzz::PutBigEndian32(s, 0x00000803);
  fedsim_fuzz::PutBigEndian32(s, n);
  fedsim_fuzz::PutBigEndian32(s, 2);
  fedsim_fuzz::PutBigEndian32(s, 2);
  for (uint32_t i = 0; i < 4 * n; ++i) s.push_back(static_cast<char>(i * 37));
  return s;
}

// The count a hostile file's header announces (bytes 4..7), if it is small.
uint32_t AnnouncedCount(const uint8_t* data, size_t size) {
  if (size < 8) return 1;
  const uint32_t n = fedsim_fuzz::BigEndian32(data + 4);
  return n >= 1 && n <= kMaxPartner ? n : 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static fedsim_fuzz::TempFile images("fuzz_idx_images"), labels("fuzz_idx_labels");
  const bool hostile_images = (data[0] & 1) == 0;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  if (hostile_images) {
    images.Write(body, n);
    labels.Write(LabelFile(AnnouncedCount(body, n)));
  } else {
    labels.Write(body, n);
    images.Write(ImageFile(AnnouncedCount(body, n)));
  }
  try {
    const fedsim::Dataset ds = fedsim::LoadIdx(images.path(), labels.path());
    // What a loaded dataset promises (src/data/dataset.h).
    if (ds.size() < 1 || ds.dim() < 1 || ds.bytes.size() != static_cast<size_t>(ds.size()) * ds.dim() ||
        ds.num_classes < 1 || ds.num_classes > 256) {
      std::abort();
    }
    for (int y : ds.y) {
      if (y < 0 || y >= ds.num_classes) std::abort();
    }
  } catch (const fedsim::InputError&) {
  }
  return 0;
}
