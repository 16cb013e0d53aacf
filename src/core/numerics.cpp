#include "core/numerics.h"

#include <Eigen/Core>

#include <cstdlib>
#include <new>

namespace fedsim {

// Eigen's blocking constants for the portable build: typical of the x86-64
// servers of the last decade (32 KiB L1 data, 1 MiB L2, 32 MiB L3). What
// matters for the bits is that they are fixed; what matters for speed is that
// they are not far off.
constexpr std::ptrdiff_t kL1 = 32 * 1024;
constexpr std::ptrdiff_t kL2 = 1024 * 1024;
constexpr std::ptrdiff_t kL3 = 32 * 1024 * 1024;

void InitNumerics() {
#ifdef FEDSIM_PORTABLE
  Eigen::setCpuCacheSizes(kL1, kL2, kL3);
#endif
}

bool PortableBuild() {
#ifdef FEDSIM_PORTABLE
  return true;
#else
  return false;
#endif
}

const char* InstructionSetBaseline() {
#if defined(FEDSIM_PORTABLE)
  return "x86-64-v3";
#elif defined(FEDSIM_NATIVE_ARCH)
  return "native";
#else
  return "default";
#endif
}

}  // namespace fedsim

// Every allocation through operator new (std::vector, std::string, Eigen's
// own storage goes through its aligned malloc and is aligned anyway) starts
// on a 64-byte boundary in the portable build. Not under the sanitizers,
// which replace operator new themselves.
#if defined(FEDSIM_PORTABLE) && !defined(FEDSIM_SANITIZE_BUILD)
namespace {
constexpr std::size_t kAlign = 64;

void* AlignedNew(std::size_t n) {
  const std::size_t size = n == 0 ? kAlign : (n + kAlign - 1) / kAlign * kAlign;
  for (;;) {
    if (void* p = std::aligned_alloc(kAlign, size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (!handler) throw std::bad_alloc();
    handler();
  }
}
}  // namespace

void* operator new(std::size_t n) { return AlignedNew(n); }
void* operator new[](std::size_t n) { return AlignedNew(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif
