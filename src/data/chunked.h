// A growable buffer of fixed-size chunks for loaders that do not know their
// size in advance. Growing never copies (a vector's doubling would hold the old
// and the new buffer at once, up to 3x the data), and MoveInto hands the values
// to their final contiguous home freeing each chunk as it is copied, so the
// peak is the data plus one chunk.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>

namespace fedsim {

template <class T>
class Chunked {
 public:
  void push_back(T v) {
    if (tail_ == kChunk) {
      // Not value-initialised: a chunk's pages become resident only as they fill.
      chunks_.push_back(std::unique_ptr<T[]>(new T[kChunk]));
      tail_ = 0;
    }
    chunks_.back()[tail_++] = v;
    ++size_;
  }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return chunks_[i / kChunk][i % kChunk]; }

  // Appends every value to v (a vector with reserved room: reserve() does not
  // touch the pages, so they become resident only as the chunks, each freed
  // once copied, fill them) and empties the buffer.
  template <class V>
  void MoveAppend(V& v) {
    v.reserve(v.size() + size_);
    size_t left = size_;
    while (!chunks_.empty()) {
      const size_t n = std::min(left, kChunk);
      v.insert(v.end(), chunks_.front().get(), chunks_.front().get() + n);
      left -= n;
      chunks_.pop_front();
    }
    size_ = 0;
    tail_ = kChunk;
  }

  // Copies every value to dst[0..size()) in order and empties the buffer
  // (dst uninitialised memory, e.g. an Eigen matrix's, is touched as it fills).
  void MoveInto(T* dst) {
    size_t left = size_;
    while (!chunks_.empty()) {
      const size_t n = std::min(left, kChunk);
      std::copy_n(chunks_.front().get(), n, dst);
      dst += n;
      left -= n;
      chunks_.pop_front();
    }
    size_ = 0;
    tail_ = kChunk;
  }

 private:
  static constexpr size_t kChunk = (size_t{1} << 20) / sizeof(T) > 0 ? (size_t{1} << 20) / sizeof(T) : 1;
  std::deque<std::unique_ptr<T[]>> chunks_;
  size_t tail_ = kChunk;
  size_t size_ = 0;
};

}  // namespace fedsim
