#include "metrics/image.h"

#include <algorithm>
#include <cmath>

#include "metrics/writer.h"

namespace fedsim {

GreyImage TileImages(const float* images, int n, int h, int w, int cols, int pad) {
  const int rows = std::max(1, (n + cols - 1) / cols);
  GreyImage img;
  img.width = cols * w + (cols + 1) * pad;
  img.height = rows * h + (rows + 1) * pad;
  img.pixels.assign(static_cast<size_t>(img.width) * static_cast<size_t>(img.height), 128);
  for (int k = 0; k < n; ++k) {
    const int x0 = pad + (k % cols) * (w + pad), y0 = pad + (k / cols) * (h + pad);
    const float* src = images + static_cast<int64_t>(k) * h * w;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const float v = std::clamp(src[y * w + x], 0.0f, 1.0f);
        img.pixels[static_cast<size_t>(y0 + y) * static_cast<size_t>(img.width) + static_cast<size_t>(x0 + x)] =
            static_cast<uint8_t>(std::lround(255.0f * v));
      }
    }
  }
  return img;
}

std::string EncodePgm(const GreyImage& image) {
  std::string s = "P5\n" + std::to_string(image.width) + " " + std::to_string(image.height) + "\n255\n";
  s.append(reinterpret_cast<const char*>(image.pixels.data()), image.pixels.size());
  return s;
}

void WritePgm(const std::string& path, const GreyImage& image) { WriteFileAtomically(path, EncodePgm(image)); }

}  // namespace fedsim
