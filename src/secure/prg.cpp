#include "secure/prg.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace fedsim {

namespace {

// Keystream words produced per libsodium call in AddKeystreamWords: 8 KiB, so
// the keystream buffer, the zero input and the caller's chunk stay in L1/L2.
constexpr int64_t kStreamChunkWords = 2048;

const uint8_t* ZeroBytes() {
  alignas(64) static const uint8_t kZeros[kStreamChunkWords * 4] = {};
  return kZeros;
}

constexpr uint8_t kZeroNonce[crypto_stream_chacha20_NONCEBYTES] = {};

}  // namespace

void EnsureSodium() {
  static const int status = sodium_init();  // thread-safe static init; sodium_init is idempotent
  if (status < 0) throw RunError("secure aggregation: libsodium failed to initialise (sodium_init)");
}

Seed32 SeedFromU64(uint64_t seed, std::string_view label) {
  Seed32 key{};
  for (int i = 0; i < 8; ++i) key[i] = static_cast<uint8_t>(seed >> (8 * i));
  return DeriveSeed(key, label);
}

Seed32 DeriveSeed(const Seed32& key, std::string_view label, uint64_t a, uint64_t b) {
  EnsureSodium();
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), key.size(), 32);
  const uint64_t len = label.size();
  uint8_t words[24];
  for (int i = 0; i < 8; ++i) {
    words[i] = static_cast<uint8_t>(len >> (8 * i));
    words[8 + i] = static_cast<uint8_t>(a >> (8 * i));
    words[16 + i] = static_cast<uint8_t>(b >> (8 * i));
  }
  crypto_generichash_update(&st, words, 8);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label.data()), label.size());
  crypto_generichash_update(&st, words + 8, 16);
  Seed32 out;
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

uint64_t SeedPrefixU64(const Seed32& seed) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(seed[i]) << (8 * i);
  return v;
}

ChaChaStream::ChaChaStream(const Seed32& seed) : key_(seed), pos_(buf_.size()) { EnsureSodium(); }

void ChaChaStream::Refill() {
  crypto_stream_chacha20_xor_ic(buf_.data(), ZeroBytes(), buf_.size(), kZeroNonce, next_block_, key_.data());
  next_block_ += buf_.size() / 64;
  pos_ = 0;
}

void ChaChaStream::Fill(uint8_t* out, size_t n) {
  while (n > 0) {
    if (pos_ == buf_.size()) Refill();
    const size_t take = std::min(n, buf_.size() - pos_);
    std::memcpy(out, buf_.data() + pos_, take);
    pos_ += take;
    out += take;
    n -= take;
  }
}

uint64_t ChaChaStream::NextU64() {
  uint8_t b[8];
  Fill(b, 8);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
  return v;
}

void AddKeystreamWords(const Seed32& seed, int sign, int64_t offset, int64_t count, uint32_t* out) {
  EnsureSodium();
  alignas(64) uint32_t ks[kStreamChunkWords];
  for (int64_t done = 0; done < count; done += kStreamChunkWords) {
    const int64_t len = std::min(kStreamChunkWords, count - done);
    const uint64_t block = static_cast<uint64_t>(offset + done) / kChaChaBlockWords;
    crypto_stream_chacha20_xor_ic(reinterpret_cast<uint8_t*>(ks), ZeroBytes(), static_cast<size_t>(len) * 4,
                                  kZeroNonce, block, seed.data());
    uint32_t* o = out + done;
    if (sign >= 0) {
      for (int64_t i = 0; i < len; ++i) o[i] += ks[i];
    } else {
      for (int64_t i = 0; i < len; ++i) o[i] -= ks[i];
    }
  }
}

}  // namespace fedsim
