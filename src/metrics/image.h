// Grey images for people: a grid of generated samples written as a binary
// PGM (Netpbm "P5", 8 bits per pixel), which image viewers and
// python3 -c "..." read without extra libraries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fedsim {

// An 8-bit grey image, row-major, top row first.
struct GreyImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height values
};

// Tiles n images of h x w values in [0, 1] (row-major, one image after the
// other) into `cols` columns, row by row, with a `pad`-pixel border of grey
// 128 around and between them. A value v becomes round(255 clamp(v, 0, 1)).
// Cells beyond n stay at the border grey. REQUIRES: cols >= 1, n >= 0.
GreyImage TileImages(const float* images, int n, int h, int w, int cols, int pad);

// The P5 encoding of an image: "P5\n<width> <height>\n255\n" and the pixels.
std::string EncodePgm(const GreyImage& image);

// Writes EncodePgm(image) to path atomically. Throws RunError on I/O failure.
void WritePgm(const std::string& path, const GreyImage& image);

}  // namespace fedsim
