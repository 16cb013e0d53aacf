#pragma once
// The process-wide numeric environment (docs/metrics.md#determinism).
//
// InitNumerics() is the first thing every fedsim executable does (the CLI,
// the test binary). In the portable build (FEDSIM_PORTABLE, the default) it
// gives Eigen fixed cache sizes, so a matrix product's blocking, and with it
// the order in which its sums are formed, is the same on every CPU instead of
// following the host's caches; and that build's operator new returns 64-byte
// aligned memory, so where Eigen starts its aligned packets inside an array
// (and so how it groups a vectorised sum) does not depend on the heap's
// layout, which differs between C library versions and thread counts. The
// native build (-DFEDSIM_PORTABLE=OFF) leaves both to the machine.

namespace fedsim {

void InitNumerics();

// True in the portable build.
bool PortableBuild();

// "x86-64-v3" in the portable build, "native" in a -march=native build,
// "default" otherwise.
const char* InstructionSetBaseline();

}  // namespace fedsim
