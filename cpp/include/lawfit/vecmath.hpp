// lawfit/vecmath.hpp -- branch-free, auto-vectorisable double-precision exp/log.
//
//   double lawfit::vm::exp(double x);
//   double lawfit::vm::log(double x);
//   double lawfit::vm::log_normal(double x);  // x a positive normal double only (no special cases)
//   double lawfit::vm::exp_normal(double x);  // x in [-708, 709] only (no range handling)
//   void   lawfit::vm::exp_n(const double* x, double* y, std::size_t n);  // y[i] = exp(x[i])
//   void   lawfit::vm::log_n(const double* x, double* y, std::size_t n);  // y[i] = log(x[i])
//
// For the array versions x == y (in place) is allowed; other overlaps are not.
//
// Everything is straight-line code: each lane computes the ordinary result and
// the special-case values, and masks pick one.  No tables, no libm calls, no
// int64 <-> double conversions (AVX2 has no packed instructions for those), and
// integer work only on 64-bit lanes with add/sub/and/or and logical shifts.  So
// gcc auto-vectorises the loops without -ffast-math: 4 lanes at
// -O3 -mavx2 -mfma, 2 lanes on baseline x86-64 (SSE2), also at -O2.
//
// Accuracy, checked by cpp/tests/test_vecmath.cpp against glibc on 10M+ random
// arguments per function, with and without FMA contraction: at most 1 ulp
// from glibc, subnormal exp results and subnormal log arguments included.
// Special values are as in IEEE 754 / glibc (see the end of each function).
//
// exp(x)
//   * n = round(x/ln2) with the "shifter" trick: t = x*log2(e) + 1.5*2^52 holds
//     n in its low mantissa bits, and t - 1.5*2^52 is n as an exact double.
//   * Cody-Waite reduction r = (x - n*ln2_hi) - n*ln2_lo.  ln2_hi has 42
//     significant bits, so n*ln2_hi (|n| <= 1075) and the first subtraction
//     are exact; |r| <= ln2/2 (up to rounding).
//   * exp(r) = 1 + (r + r^2*q(r)) with q of degree 9 (degree 11 in all), our
//     own near-minimax fit (equioscillation at Chebyshev nodes; relative error
//     ~8e-18 before rounding), evaluated in Estrin form.
//   * 2^n is applied as two exact factors 2^n1 * 2^n2, n1 = floor(n/2),
//     n2 = n - n1, both in [-538, 512], so normal doubles built straight from
//     the bits of t.  The first product is exact and the second rounds once,
//     so overflow to +inf and gradual underflow (subnormals, then 0 below
//     -745.13...) come out of the arithmetic.
//   * Out of range (x > 709.8 or x < -745.2, incl. +-inf) the result is +inf
//     or +0, chosen by the sign of x, masked in at the end.  A NaN is never
//     out of range and propagates through the arithmetic.
//
// log(x)
//   * Subnormal x is multiplied by 2^52 (k is corrected by -52), selected by mask.
//   * Adding bits(1.0) - bits(sqrt(1/2)) to the bit pattern carries into the
//     exponent field exactly when the mantissa is >= sqrt(2).  That gives k and
//     m = x/2^k in [sqrt(1/2), sqrt(2)) with integer operations only.  k becomes
//     a double by OR-ing its biased value into the mantissa of 2^52 and
//     subtracting.
//   * f = m - 1 (exact), s = f/(2+f) (|s| <= 0.1716), z = s^2, and
//     log(m) = 2*atanh(s) = f - f^2/2 + s*(f^2/2 + R),  R = z*P(z), with P of
//     degree 6, our own fit (its error contributes ~2e-18 relative), in Estrin form.
//   * log(x) = k*ln2_hi + (f - (f^2/2 - (s*(f^2/2 + R) + k*ln2_lo))).  k*ln2_hi
//     is exact.  log(1) = +0 exactly.
//   * Specials, masked in at the end: +-0 -> -inf, x < 0 (incl. -inf) -> NaN,
//     +inf -> +inf, NaN -> NaN.
//
// Each function runs in two stages (reduction, then polynomial plus fix-up).
// The array versions run stage 1 over a block of 16 elements and then stage 2.
// That interleaves independent dependency chains (e.g. the divisions in log),
// which gives ~10-15% more throughput than one element at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

// Lane masks (all-ones or all-zeros per 64-bit lane), applied with and/andnot/or
// on the bit patterns.  Never a ?: on doubles: under the default
// -ftrapping-math, gcc sinks the FP work that feeds a ?: into the branches, and
// then the loop cannot be if-converted and does not vectorise.
//
// Where gcc can vectorise a bool -> 64-bit mask conversion (x86 with SSE4.2 or
// AVX, and other architectures), masks come from ordinary comparisons; gcc
// emits vcmppd + vpblendvb.  Baseline x86-64 (SSE2 only) cannot, so there the
// masks come from sign bits and integer shifts.  Both give bit-identical
// results; define LAWFIT_VM_SIGN_MASKS=1 to force the sign-bit path.
#ifndef LAWFIT_VM_SIGN_MASKS
#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)) && \
    !defined(__SSE4_2__) && !defined(__AVX__)
#define LAWFIT_VM_SIGN_MASKS 1
#else
#define LAWFIT_VM_SIGN_MASKS 0
#endif
#endif

// Everything lives in an inline namespace named after the instruction set and
// mask path this translation unit is compiled for.  Files built with different
// flags (say, an -mavx2 kernel next to a baseline one) then get distinct
// symbols, and the linker cannot merge an AVX2 copy of an inline function into
// code that must run on any x86-64.  Callers still write lawfit::vm::exp.
#if defined(__AVX512F__)
#define LAWFIT_VM_ISA_NS_ isa_avx512f
#elif defined(__AVX2__) && defined(__FMA__)
#define LAWFIT_VM_ISA_NS_ isa_avx2_fma
#elif defined(__AVX2__)
#define LAWFIT_VM_ISA_NS_ isa_avx2
#elif defined(__AVX__)
#define LAWFIT_VM_ISA_NS_ isa_avx
#elif defined(__SSE4_2__)
#define LAWFIT_VM_ISA_NS_ isa_sse4_2
#else
#define LAWFIT_VM_ISA_NS_ isa_base
#endif
#if LAWFIT_VM_SIGN_MASKS
#define LAWFIT_VM_MASK_NS_ masks_sign
#else
#define LAWFIT_VM_MASK_NS_ masks_cmp
#endif

namespace lawfit::vm {
inline namespace LAWFIT_VM_ISA_NS_ {
inline namespace LAWFIT_VM_MASK_NS_ {

namespace detail {

inline std::uint64_t to_bits(double d) noexcept {
    std::uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

inline double from_bits(std::uint64_t u) noexcept {
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
}

inline std::uint64_t mask_of(bool c) noexcept {
    return std::uint64_t{0} - static_cast<std::uint64_t>(c);
}
inline std::uint64_t neg_mask_u(std::uint64_t v) noexcept {  // all-ones iff bit 63 set
    return std::uint64_t{0} - (v >> 63);
}
inline std::uint64_t neg_mask(double d) noexcept { return neg_mask_u(to_bits(d)); }
inline double select(std::uint64_t m, double a, double b) noexcept {  // m ? a : b
    return from_bits((to_bits(a) & m) | (to_bits(b) & ~m));
}

// ln2 split for the Cody-Waite reductions: kLn2Hi has 42 significant bits.
constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;
constexpr double kLn2Lo = 0x1.ef35793c76730p-45;
constexpr double kLog2e = 0x1.71547652b82fep+0;
constexpr double kShifter = 0x1.8p52;                          // 1.5 * 2^52
constexpr std::uint64_t kShifterBits = 0x4338000000000000ULL;

// exp: q(r) ~ (e^r - 1 - r) / r^2 on [-0.34658, 0.34658], q = sum kEi r^i.
constexpr double kE0 = 0x1.0000000000009p-1;
constexpr double kE1 = 0x1.5555555555558p-3;
constexpr double kE2 = 0x1.55555555503f1p-5;
constexpr double kE3 = 0x1.111111110f808p-7;
constexpr double kE4 = 0x1.6c16c185fea9dp-10;
constexpr double kE5 = 0x1.a01a01b00a2d3p-13;
constexpr double kE6 = 0x1.a01993bca8b20p-16;
constexpr double kE7 = 0x1.71ddf6b996c71p-19;
constexpr double kE8 = 0x1.28b408307df80p-22;
constexpr double kE9 = 0x1.af632031bce6dp-26;

// log: P(z) ~ (2*atanh(s) - 2*s) / (s*z), z = s^2 in [0, 0.02944], P = sum kLi z^i.
constexpr double kL0 = 0x1.555555555557cp-1;
constexpr double kL1 = 0x1.99999999847b8p-2;
constexpr double kL2 = 0x1.2492493fb0a3fp-2;
constexpr double kL3 = 0x1.c71c52bb76979p-3;
constexpr double kL4 = 0x1.7466488b2256bp-3;
constexpr double kL5 = 0x1.399d16a2c69e0p-3;
constexpr double kL6 = 0x1.2f51b96dc75c5p-3;

constexpr std::uint64_t kSqrtHalfBits = 0x3fe6a09e667f3bcdULL;  // sqrt(1/2)
constexpr std::uint64_t kOneBits = 0x3ff0000000000000ULL;       // 1.0
constexpr std::uint64_t kMantMask = 0x000fffffffffffffULL;
constexpr std::uint64_t kTwo52Bits = 0x4330000000000000ULL;     // 2^52
constexpr std::uint64_t kFiftyTwoBits = 0x404a000000000000ULL;  // 52.0
constexpr std::uint64_t kAbsMask = 0x7fffffffffffffffULL;
constexpr std::uint64_t kMaxBits = 0x7fefffffffffffffULL;       // DBL_MAX
constexpr std::uint64_t kInfBits = 0x7ff0000000000000ULL;       // +inf
constexpr std::uint64_t kNegInfBits = 0xfff0000000000000ULL;    // -inf
constexpr std::uint64_t kNegNaNBits = 0xfff8000000000000ULL;    // default NaN of x86 (as glibc)

// ---------------------------------------------------------------- exp stages

// Stage 1: reduction.  Returns r and sets t, whose low bits carry n.
inline double exp_reduce(double x, double& t_out) noexcept {
    const double t = x * kLog2e + kShifter;
    const double n = t - kShifter;  // exact integer
    double r = x - n * kLn2Hi;      // exact
    r = r - n * kLn2Lo;
    t_out = t;
    return r;
}

// Stage 2a: the polynomial, exp(r) for the reduced argument.
inline double exp_poly(double r) noexcept {
    const double r2 = r * r;
    const double r4 = r2 * r2;
    const double r8 = r4 * r4;
    const double q01 = kE0 + kE1 * r;
    const double q23 = kE2 + kE3 * r;
    const double q45 = kE4 + kE5 * r;
    const double q67 = kE6 + kE7 * r;
    const double q89 = kE8 + kE9 * r;
    const double q03 = q01 + r2 * q23;
    const double q47 = q45 + r2 * q67;
    const double q = (q03 + r4 * q47) + r8 * q89;
    return 1.0 + (r + r2 * q);
}

// Stage 2b: scaling by 2^n, out-of-range fix-up.
inline double exp_finish(double x, double r, double t) noexcept {
    const double p = exp_poly(r);

    // For x in [-745.2, 709.8], n is in [-1075, 1024]; u = n + 2048 > 0.
    const std::uint64_t u = to_bits(t) - (kShifterBits - 2048u);
    const std::uint64_t h = u >> 1;                   // n1 + 1024
    const double s1 = from_bits((h - 1u) << 52);      // 2^n1 (biased exponent n1 + 1023)
    const double s2 = from_bits((u - h - 1u) << 52);  // 2^n2
    const double y = (p * s1) * s2;

#if LAWFIT_VM_SIGN_MASKS
    // Out of range <=> |x + 17.7| > 727.5.  For a NaN, |NaN| is a positive NaN,
    // so 727.5 - |NaN| has a clear sign bit: not out of range.
    const std::uint64_t out = neg_mask(727.5 - from_bits(to_bits(x + 17.7) & kAbsMask));
    const double big = from_bits(((to_bits(x) >> 63) - 1u) & kInfBits);  // +inf if x > 0, else +0
    return select(out, big, y);
#else
    const double yhi = select(mask_of(x > 709.8), from_bits(kInfBits), y);
    return from_bits(to_bits(yhi) & ~mask_of(x < -745.2));
#endif
}

// ---------------------------------------------------------------- log stages

// x = 2^k * (1 + f) for a positive normal x, 1 + f in [sqrt(1/2), sqrt(2)).  Returns s = f/(2+f).
inline double log_split(double x, double& f_out, double& k_out) noexcept {
    const std::uint64_t ix = to_bits(x) + (kOneBits - kSqrtHalfBits);
    const double m = from_bits((ix & kMantMask) + kSqrtHalfBits);
    const double k = from_bits(kTwo52Bits | (ix >> 52)) - (0x1p52 + 1023.0);
    const double f = m - 1.0;
    f_out = f;
    k_out = k;
    return f / (2.0 + f);
}

// Stage 1: x = 2^k * (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).  Returns s = f/(2+f).
inline double log_reduce(double x, double& f_out, double& k_out) noexcept {
#if LAWFIT_VM_SIGN_MASKS
    const std::uint64_t sub = neg_mask(x - 0x1p-1022);  // x < DBL_MIN (x - DBL_MIN is never -0)
#else
    const std::uint64_t sub = mask_of(x < 0x1p-1022);
#endif
    const double xs = select(sub, x * 0x1p52, x);

    const double s = log_split(xs, f_out, k_out);
    k_out -= from_bits(sub & kFiftyTwoBits);  // -52 for subnormals
    return s;
}

// Stage 2a: polynomial and reconstruction (finite for every input).
inline double log_poly(double s, double f, double k) noexcept {
    const double z = s * s;
    const double z2 = z * z;
    const double z4 = z2 * z2;
    const double p01 = kL0 + kL1 * z;
    const double p23 = kL2 + kL3 * z;
    const double p46 = (kL4 + kL5 * z) + z2 * kL6;
    const double P = (p01 + z2 * p23) + z4 * p46;
    const double R = z * P;
    const double hfsq = 0.5 * f * f;
    const double lo = hfsq - (s * (hfsq + R) + k * kLn2Lo);
    return k * kLn2Hi + (f - lo);  // -0 for no input
}

// Stage 2b: special cases.
inline double log_finish(double x, double s, double f, double k) noexcept {
    const double y = log_poly(s, f, k);

#if LAWFIT_VM_SIGN_MASKS
    // Additive fix c: +0 where 0 < x < inf (y + 0 == y), else -inf / NaN / x,
    // and since y is finite, y + c == c there.
    const std::uint64_t a = to_bits(x);
    const std::uint64_t ax = a & kAbsMask;
    const std::uint64_t zero = neg_mask_u(ax - 1u);          // x == +-0
    const std::uint64_t negnz = neg_mask_u((a - 1u) & a);    // sign set and x != -0
    const std::uint64_t infnan = neg_mask_u(kMaxBits - ax);  // |x| == inf, or NaN
    const std::uint64_t c = (infnan & a) | (negnz & kNegNaNBits) | (zero & kNegInfBits);
    return y + from_bits(c);
#else
    const double r1 = select(mask_of(!(x <= from_bits(kMaxBits))), y + x, y);  // +-inf, NaN (quieted)
    const double r2 = select(mask_of(x < 0.0), from_bits(kNegNaNBits), r1);
    return select(mask_of(x == 0.0), from_bits(kNegInfBits), r2);
#endif
}

constexpr std::size_t kBlock = 16;

}  // namespace detail

inline double exp(double x) noexcept {
    double t;
    const double r = detail::exp_reduce(x, t);
    return detail::exp_finish(x, r, t);
}

inline double log(double x) noexcept {
    double f, k;
    const double s = detail::log_reduce(x, f, k);
    return detail::log_finish(x, s, f, k);
}

// log(x) for x known to be a positive normal double (DBL_MIN <= x <= DBL_MAX): the same result as log(x),
// bit for bit, without the subnormal scaling and the special-case masks (about 30 % less work).  For kernels
// that have checked their arguments' range; anything else gives garbage.
inline double log_normal(double x) noexcept {
    double f, k;
    const double s = detail::log_split(x, f, k);
    return detail::log_poly(s, f, k);
}

// exp(x) for x in [-708, 709], where exp(x) is a normal double and 2^n (n = round(x / ln 2)) is one too: the
// same result as exp(x), bit for bit ((p * 2^n1) * 2^n2 = p * 2^n exactly when no step leaves the normal
// range), with one scaling and without the out-of-range masks.  For kernels that have checked their
// arguments' range; anything else gives garbage.
inline double exp_normal(double x) noexcept {
    double t;
    const double r = detail::exp_reduce(x, t);
    const double p = detail::exp_poly(r);
    // The low bits of t hold n: bits(t) = bits(1.5 * 2^52) + n.  2^n has the biased exponent n + 1023.
    const double s = detail::from_bits((detail::to_bits(t) - (detail::kShifterBits - 1023u)) << 52);
    return p * s;
}

// Array versions: blocks of kBlock elements through local buffers.  The inner
// loops have a constant trip count and cannot alias y, so they vectorise with
// no runtime alias checks, even under gcc -O2's "very cheap" cost model.
inline void exp_n(const double* x, double* y, std::size_t n) noexcept {
    constexpr std::size_t B = detail::kBlock;
    const std::size_t nblocked = n - n % B;
    std::size_t i = 0;
    for (; i < nblocked; i += B) {
        double r[B], t[B], out[B];
        for (std::size_t j = 0; j < B; ++j) r[j] = detail::exp_reduce(x[i + j], t[j]);
        for (std::size_t j = 0; j < B; ++j) out[j] = detail::exp_finish(x[i + j], r[j], t[j]);
        for (std::size_t j = 0; j < B; ++j) y[i + j] = out[j];
    }
    for (; i < n; ++i) y[i] = lawfit::vm::exp(x[i]);
}

inline void log_n(const double* x, double* y, std::size_t n) noexcept {
    constexpr std::size_t B = detail::kBlock;
    const std::size_t nblocked = n - n % B;
    std::size_t i = 0;
    for (; i < nblocked; i += B) {
        double s[B], f[B], k[B], out[B];
        for (std::size_t j = 0; j < B; ++j) s[j] = detail::log_reduce(x[i + j], f[j], k[j]);
        for (std::size_t j = 0; j < B; ++j) out[j] = detail::log_finish(x[i + j], s[j], f[j], k[j]);
        for (std::size_t j = 0; j < B; ++j) y[i + j] = out[j];
    }
    for (; i < n; ++i) y[i] = lawfit::vm::log(x[i]);
}

}  // inline namespace LAWFIT_VM_MASK_NS_
}  // inline namespace LAWFIT_VM_ISA_NS_
}  // namespace lawfit::vm
