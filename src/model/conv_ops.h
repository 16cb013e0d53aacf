// Batched image kernels for Cnn: im2col / col2im for convolutions and max
// pooling with argmax indices.
//
// Layout: a batch of `count` images is stored sample after sample, each image
// in HWC order (channels fastest): element (n, h, w, c) lives at
// ((n * height + h) * width + w) * channels + c. Seen as a column-major
// matrix this is channels x (count * height * width), which is what a GEMM
// against a (out_channels x k*k*channels) weight matrix produces.
//
// Thread-safety: pure functions on caller-owned buffers.
#pragma once

#include <cstdint>

namespace fedsim {

// Input shape and window of a k x k convolution or pooling with the given
// stride and zero padding. Output sizes use floor division, as PyTorch does.
struct WindowGeometry {
  int channels = 1;
  int height = 1;
  int width = 1;
  int kernel = 1;
  int stride = 1;
  int padding = 0;

  int out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  int out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  int64_t in_size() const { return static_cast<int64_t>(channels) * height * width; }
  // Rows of the column matrix: one per (kh, kw, c), c fastest.
  int64_t col_rows() const { return static_cast<int64_t>(kernel) * kernel * channels; }
  // Columns per image: one per output position (oh, ow), ow fastest.
  int64_t col_cols() const { return static_cast<int64_t>(out_height()) * out_width(); }
};

// Writes the column matrix of `count` HWC images `in` to cols, a column-major
// col_rows() x (count * col_cols()) matrix: column ((n * out_h) + oh) * out_w
// + ow holds the window at output (oh, ow) of image n, row (kh * k + kw) *
// channels + c the input value (c, oh*s - p + kh, ow*s - p + kw), or 0 in
// the padding.
void Im2Col(const WindowGeometry& g, const float* in, int count, float* cols);

// The adjoint of Im2Col: overwrites in_grad (count HWC images) with the sum,
// over every column entry, of cols routed back to the input value it was
// copied from; padding entries are dropped.
void Col2Im(const WindowGeometry& g, const float* cols, int count, float* in_grad);

// k x k max pooling (padding must be 0) of `count` HWC images into out
// (count HWC images of out_height x out_width x channels). argmax receives,
// per output value, the index within its own image (h * width + w) *
// channels + c of the input that won; ties go to the first in row-major
// window order.
void MaxPoolForward(const WindowGeometry& g, const float* in, int count, float* out, int32_t* argmax);

// Overwrites in_grad (count HWC input images) with out_grad routed to the
// argmax positions; overlapping windows accumulate.
void MaxPoolBackward(const WindowGeometry& g, const float* out_grad, const int32_t* argmax, int count,
                     float* in_grad);

// Reorders `count` images of (channels, height, width) from CHW to HWC.
void ChwToHwc(int channels, int height, int width, const float* in, int count, float* out);

}  // namespace fedsim
