#pragma once
// fedsim's own elementary functions (docs/metrics.md#determinism, issue 25).
//
// The C library's exp, log, pow, erfc, cos and friends pick their code path by
// CPU at load time (glibc's ifuncs: an FMA variant on one machine, an SSE2
// one on another) and may differ in the last bit between them, and between C
// library versions; Eigen's vectorised exp and tanh fall back to the C library
// for the elements before the first aligned packet and after the last, so
// which elements go which way depends on where malloc put the array. Every
// transcendental function whose value reaches a result goes through this
// header instead: plain IEEE arithmetic (+, -, *, /, sqrt, exact scaling by
// powers of two) in a fixed order, the same on every x86-64 CPU for one binary
// built with -ffp-contract=off (the portable build, FEDSIM_PORTABLE).
//
// Accuracy: the double functions are within a few ulp of the exact value
// (tests/core/fmath_test.cpp checks them against the C library's to 4e-15
// relative on their ranges); the float span functions are within 2-4 ulp of
// float and clamp their argument to [-87, 88], so they never produce a
// subnormal, an infinity from a finite input, or a NaN from a finite input.
#include <cstdint>

namespace fedsim::fm {

double Exp(double x);
double Expm1(double x);  // exp(x) - 1, accurate near 0
double Log(double x);
double Log1p(double x);  // log(1 + x), accurate near 0
// x^y for x >= 0 (and for x < 0 with an integer y); exp(y log x), so its
// relative error grows with |y log x| (about 1e-14 at |y log x| = 10).
double Pow(double x, double y);
double Erfc(double x);
double Cos(double x);

// Elementwise, in place, over n contiguous floats. Each element's value
// depends on that element alone (the same operations whether the compiler
// vectorised the loop or not), never on the array's alignment.
void ExpSpan(float* v, int64_t n);
void SigmoidSpan(float* v, int64_t n);
void TanhSpan(float* v, int64_t n);
float ExpF(float x);

// The softmax's pieces over any Eigen vector expression (a matrix's row or
// column), by coefficient, summed in index order in float:
// SumExpShifted = sum_k exp(v(k) - shift), v unchanged;
// ExpShiftedInPlace sets v(k) = exp(v(k) - shift) and returns their sum.
template <class Vec>
float SumExpShifted(const Vec& v, float shift) {
  float sum = 0.0f;
  for (int64_t k = 0; k < static_cast<int64_t>(v.size()); ++k) sum += ExpF(v(k) - shift);
  return sum;
}
template <class Vec>
float ExpShiftedInPlace(Vec&& v, float shift) {
  float sum = 0.0f;
  for (int64_t k = 0; k < static_cast<int64_t>(v.size()); ++k) {
    const float e = ExpF(v(k) - shift);
    v(k) = e;
    sum += e;
  }
  return sum;
}

// Apply a span function to each column of an Eigen block whose columns are
// contiguous (inner stride 1): a column-major matrix's rows [r0, r0 + rows).
template <class Block, class SpanFn>
void ForEachColumn(Block&& blk, SpanFn fn) {
  for (int64_t c = 0; c < static_cast<int64_t>(blk.cols()); ++c) {
    fn(&blk.coeffRef(0, c), static_cast<int64_t>(blk.rows()));
  }
}

}  // namespace fedsim::fm
