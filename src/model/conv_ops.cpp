#include "model/conv_ops.h"

#include <algorithm>
#include <cstring>

namespace fedsim {

namespace {

// The kw range [lo, hi) of a window starting at input column w0 that lies
// inside [0, width).
inline void ValidKw(const WindowGeometry& g, int w0, int& lo, int& hi) {
  lo = std::max(0, -w0);
  hi = std::min(g.kernel, g.width - w0);
  if (hi < lo) hi = lo;
}

// Copies the k rows of a window that lies wholly inside the image: row kh is
// kSpan floats at src + kh * src_stride. With the span known at compile time
// each row is a few vector moves instead of a memmove call, which for 5-float
// rows (a 5x5 kernel on one channel) cost as much as the copy itself.
template <int kSpan>
inline void CopyInnerWindow(const float* src, int64_t src_stride, int k, float* col) {
  for (int kh = 0; kh < k; ++kh) std::memcpy(col + kh * kSpan, src + kh * src_stride, kSpan * sizeof(float));
}

using InnerWindowCopy = void (*)(const float*, int64_t, int, float*);

// The fixed-span copy for the window rows of the built-in CNNs (5x5 kernels
// on 1, 3 and 6 channels, 3x3 kernels on 1 and 32), or nullptr for the
// general path.
InnerWindowCopy InnerCopyFor(int64_t row_span) {
  switch (row_span) {
    case 3: return &CopyInnerWindow<3>;
    case 5: return &CopyInnerWindow<5>;
    case 15: return &CopyInnerWindow<15>;
    case 30: return &CopyInnerWindow<30>;
    case 96: return &CopyInnerWindow<96>;
    default: return nullptr;
  }
}

}  // namespace

void Im2Col(const WindowGeometry& g, const float* in, int count, float* cols) {
  const int c = g.channels, k = g.kernel, oh_n = g.out_height(), ow_n = g.out_width();
  const int64_t row_span = static_cast<int64_t>(k) * c;  // one kh row of the window
  const int64_t img = g.in_size();
  const int64_t src_stride = static_cast<int64_t>(g.width) * c;
  const InnerWindowCopy inner_copy = InnerCopyFor(row_span);
  float* col = cols;
  for (int n = 0; n < count; ++n) {
    const float* src_img = in + n * img;
    for (int oh = 0; oh < oh_n; ++oh) {
      const int h0 = oh * g.stride - g.padding;
      const bool rows_inside = h0 >= 0 && h0 + k <= g.height;
      for (int ow = 0; ow < ow_n; ++ow) {
        const int w0 = ow * g.stride - g.padding;
        int lo, hi;
        ValidKw(g, w0, lo, hi);
        if (inner_copy != nullptr && rows_inside && lo == 0 && hi == k) {
          inner_copy(src_img + (static_cast<int64_t>(h0) * g.width + w0) * c, src_stride, k, col);
          col += k * row_span;
          continue;
        }
        for (int kh = 0; kh < k; ++kh, col += row_span) {
          const int h = h0 + kh;
          if (h < 0 || h >= g.height || lo == hi) {
            std::fill(col, col + row_span, 0.0f);
            continue;
          }
          std::fill(col, col + static_cast<int64_t>(lo) * c, 0.0f);
          const float* src = src_img + (static_cast<int64_t>(h) * g.width + w0 + lo) * c;
          std::copy(src, src + static_cast<int64_t>(hi - lo) * c, col + static_cast<int64_t>(lo) * c);
          std::fill(col + static_cast<int64_t>(hi) * c, col + row_span, 0.0f);
        }
      }
    }
  }
}

void Col2Im(const WindowGeometry& g, const float* cols, int count, float* in_grad) {
  const int c = g.channels, k = g.kernel, oh_n = g.out_height(), ow_n = g.out_width();
  const int64_t row_span = static_cast<int64_t>(k) * c;
  const int64_t img = g.in_size();
  std::fill(in_grad, in_grad + count * img, 0.0f);
  const float* col = cols;
  for (int n = 0; n < count; ++n) {
    float* dst_img = in_grad + n * img;
    for (int oh = 0; oh < oh_n; ++oh) {
      const int h0 = oh * g.stride - g.padding;
      for (int ow = 0; ow < ow_n; ++ow) {
        const int w0 = ow * g.stride - g.padding;
        int lo, hi;
        ValidKw(g, w0, lo, hi);
        const int64_t len = static_cast<int64_t>(hi - lo) * c;
        for (int kh = 0; kh < k; ++kh, col += row_span) {
          const int h = h0 + kh;
          if (h < 0 || h >= g.height || len == 0) continue;
          float* __restrict dst = dst_img + (static_cast<int64_t>(h) * g.width + w0 + lo) * c;
          const float* __restrict src = col + static_cast<int64_t>(lo) * c;
          for (int64_t i = 0; i < len; ++i) dst[i] += src[i];
        }
      }
    }
  }
}

namespace {

// One step of the running maximum: v at input index i replaces (o, a) only if
// strictly greater, so the first maximum in scan order wins. Branch-free: a
// data-dependent branch per channel mispredicts half the time.
inline void TakeIfGreater(float v, int32_t i, float& o, int32_t& a) {
  const int32_t take = -static_cast<int32_t>(v > o);  // all ones or zero
  o = std::max(o, v);
  a += (i - a) & take;
}

// MaxPoolForward for 2x2 windows at stride 2 on kC channels: the same scan
// order and comparisons as the general loop, with the channel count known at
// compile time so the channel loop unrolls and vectorises.
template <int kC>
void MaxPool2x2(const WindowGeometry& g, const float* in, int count, float* out, int32_t* argmax) {
  const int oh_n = g.out_height(), ow_n = g.out_width();
  const int32_t row = g.width * kC;
  const int64_t img = g.in_size();
  for (int n = 0; n < count; ++n) {
    const float* src = in + n * img;
    for (int oh = 0; oh < oh_n; ++oh) {
      for (int ow = 0; ow < ow_n; ++ow, out += kC, argmax += kC) {
        const int32_t i00 = 2 * oh * row + 2 * ow * kC, i01 = i00 + kC, i10 = i00 + row, i11 = i10 + kC;
        for (int ch = 0; ch < kC; ++ch) {
          float o = src[i00 + ch];
          int32_t a = i00 + ch;
          TakeIfGreater(src[i01 + ch], i01 + ch, o, a);
          TakeIfGreater(src[i10 + ch], i10 + ch, o, a);
          TakeIfGreater(src[i11 + ch], i11 + ch, o, a);
          out[ch] = o;
          argmax[ch] = a;
        }
      }
    }
  }
}

}  // namespace

void MaxPoolForward(const WindowGeometry& g, const float* in, int count, float* out, int32_t* argmax) {
  const int c = g.channels, k = g.kernel, oh_n = g.out_height(), ow_n = g.out_width();
  if (k == 2 && g.stride == 2) {
    switch (c) {  // the built-in CNNs' pooled channel counts
      case 6: return MaxPool2x2<6>(g, in, count, out, argmax);
      case 16: return MaxPool2x2<16>(g, in, count, out, argmax);
      case 32: return MaxPool2x2<32>(g, in, count, out, argmax);
      case 64: return MaxPool2x2<64>(g, in, count, out, argmax);
      default: break;
    }
  }
  const int64_t img = g.in_size();
  for (int n = 0; n < count; ++n) {
    const float* src = in + n * img;
    for (int oh = 0; oh < oh_n; ++oh) {
      for (int ow = 0; ow < ow_n; ++ow) {
        float* __restrict o = out;
        int32_t* __restrict a = argmax;
        const int32_t first = static_cast<int32_t>((oh * g.stride * g.width + ow * g.stride) * c);
        for (int ch = 0; ch < c; ++ch) {
          o[ch] = src[first + ch];
          a[ch] = first + ch;
        }
        for (int kh = 0; kh < k; ++kh) {
          for (int kw = 0; kw < k; ++kw) {
            if (kh == 0 && kw == 0) continue;
            const int32_t base =
                static_cast<int32_t>(((oh * g.stride + kh) * g.width + ow * g.stride + kw) * c);
            for (int ch = 0; ch < c; ++ch) TakeIfGreater(src[base + ch], base + ch, o[ch], a[ch]);
          }
        }
        out += c;
        argmax += c;
      }
    }
  }
}

void MaxPoolBackward(const WindowGeometry& g, const float* out_grad, const int32_t* argmax, int count,
                     float* in_grad) {
  const int64_t img = g.in_size();
  const int64_t out_img = static_cast<int64_t>(g.out_height()) * g.out_width() * g.channels;
  std::fill(in_grad, in_grad + count * img, 0.0f);
  for (int n = 0; n < count; ++n) {
    float* dst = in_grad + n * img;
    const float* og = out_grad + n * out_img;
    const int32_t* a = argmax + n * out_img;
    for (int64_t j = 0; j < out_img; ++j) dst[a[j]] += og[j];
  }
}

void ChwToHwc(int channels, int height, int width, const float* in, int count, float* out) {
  const int64_t plane = static_cast<int64_t>(height) * width;
  const int64_t img = plane * channels;
  for (int n = 0; n < count; ++n) {
    const float* src = in + n * img;
    float* dst = out + n * img;
    for (int c = 0; c < channels; ++c) {
      for (int64_t p = 0; p < plane; ++p) dst[p * channels + c] = src[c * plane + p];
    }
  }
}

}  // namespace fedsim
