// Standalone accuracy / special-value test and microbenchmark for lawfit/vecmath.hpp.
// No framework; exit status 0 means every check passed.
//
// Build from the repo root, e.g.:
//   g++ -O3 -mavx2 -mfma -std=c++17 -Icpp/include cpp/tests/test_vecmath.cpp -o test_vecmath
//   g++ -O2 -std=c++17 -Icpp/include cpp/tests/test_vecmath.cpp -o test_vecmath
//   (add -DLAWFIT_VM_SIGN_MASKS=1 to test the SSE2 mask path on an AVX2 build)
// Run:  ./test_vecmath [--no-bench]
//
// The reference is glibc's std::exp / std::log.  The error is in ulps: the
// distance between the two results in the ordered bit representation, so a
// subnormal result counts in units of the smallest subnormal and DBL_MAX vs
// +inf counts as 1.  The array functions (the vectorised path) and the scalar
// functions are both checked.

#include "lawfit/vecmath.hpp"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kMaxUlpAllowed = 2;

std::uint64_t bits_of(double d) {
    std::uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

double from_bits(std::uint64_t u) {
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
}

// Distance in ulps.  NaN vs NaN is 0, NaN vs a number is "infinite".
std::int64_t ulp_diff(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) {
        return (std::isnan(a) && std::isnan(b)) ? 0 : std::numeric_limits<std::int64_t>::max();
    }
    auto ord = [](double d) {
        const std::int64_t i = static_cast<std::int64_t>(bits_of(d));
        return i < 0 ? std::numeric_limits<std::int64_t>::min() - i : i;
    };
    const std::int64_t ia = ord(a), ib = ord(b);
    return ia > ib ? ia - ib : ib - ia;
}

using ArrayFn = void (*)(const double*, double*, std::size_t);
using ScalarFn = double (*)(double);

double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }

// The scalar entry points, kept out of line so they are compiled as scalar code.
__attribute__((noinline)) double scalar_exp(double x) { return lawfit::vm::exp(x); }
__attribute__((noinline)) double scalar_log(double x) { return lawfit::vm::log(x); }

struct Stats {
    std::uint64_t count = 0;
    std::uint64_t hist[4] = {0, 0, 0, 0};  // 0, 1, 2, >2 ulp (array path)
    std::int64_t max_ulp = 0;              // array path
    double worst_x = 0.0;
    std::int64_t max_ulp_scalar = 0;       // scalar path
    std::uint64_t scalar_differs = 0;      // scalar result != array result (bits)

    void add(double x, double y_array, double y_scalar, double want) {
        const std::int64_t d = ulp_diff(y_array, want);
        ++count;
        ++hist[d > 2 ? 3 : d];
        if (d > max_ulp) {
            max_ulp = d;
            worst_x = x;
        }
        max_ulp_scalar = std::max(max_ulp_scalar, ulp_diff(y_scalar, want));
        if (bits_of(y_scalar) != bits_of(y_array)) ++scalar_differs;
    }
};

Stats measure(const std::vector<double>& xs, ArrayFn fn, ScalarFn scalar, ScalarFn ref) {
    std::vector<double> y(xs.size());
    fn(xs.data(), y.data(), xs.size());
    Stats st;
    for (std::size_t i = 0; i < xs.size(); ++i) st.add(xs[i], y[i], scalar(xs[i]), ref(xs[i]));
    return st;
}

bool report(const char* name, const Stats& st) {
    std::printf("  %-36s n=%8" PRIu64 "  0ulp=%8" PRIu64 " 1ulp=%7" PRIu64 " 2ulp=%3" PRIu64
                " >2ulp=%3" PRIu64 "  max=%" PRId64 " (scalar max=%" PRId64 ", scalar!=array: %" PRIu64 ")",
                name, st.count, st.hist[0], st.hist[1], st.hist[2], st.hist[3], st.max_ulp,
                st.max_ulp_scalar, st.scalar_differs);
    if (st.max_ulp > 0) std::printf(" worst x=%a", st.worst_x);
    const bool ok = st.max_ulp <= kMaxUlpAllowed && st.max_ulp_scalar <= kMaxUlpAllowed;
    std::printf("%s\n", ok ? "" : "  <-- FAIL");
    return ok;
}

std::vector<double> uniform(std::mt19937_64& rng, std::size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Random bit patterns in [lo_bits, hi_bits]; for positive doubles this is
// uniform in the exponent, so every binade (and the subnormals) is covered.
std::vector<double> bit_patterns(std::mt19937_64& rng, std::size_t n, std::uint64_t lo_bits,
                                 std::uint64_t hi_bits) {
    std::uniform_int_distribution<std::uint64_t> dist(lo_bits, hi_bits);
    std::vector<double> v(n);
    for (auto& x : v) x = from_bits(dist(rng));
    return v;
}

std::string show(double d) {
    char buf[64];
    if (std::isnan(d)) {
        std::snprintf(buf, sizeof buf, "%snan(0x%016" PRIx64 ")", std::signbit(d) ? "-" : "+", bits_of(d));
    } else {
        std::snprintf(buf, sizeof buf, "%.17g", d);
    }
    return buf;
}

struct SpecialCase {
    double x;
    bool exact;  // require the glibc bit pattern (any NaN for a NaN); else <= 2 ulp
};

bool check_specials(const char* name, const std::vector<SpecialCase>& cases, ScalarFn ref,
                    ScalarFn scalar, ArrayFn array) {
    bool ok = true;
    std::vector<double> xs;
    for (const auto& c : cases) xs.push_back(c.x);
    std::vector<double> ya(xs.size());
    array(xs.data(), ya.data(), xs.size());
    std::printf("special values: %s   (x -> scalar | array | glibc)\n", name);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const double x = cases[i].x;
        const double want = ref(x);
        const double ys = scalar(x);
        bool good = true;
        for (double got : {ys, ya[i]}) {
            if (cases[i].exact) {
                good = good && ((std::isnan(want) && std::isnan(got)) || bits_of(want) == bits_of(got));
            } else {
                good = good && ulp_diff(got, want) <= kMaxUlpAllowed;
            }
        }
        std::printf("  %-26s -> %-26s | %-26s | %-26s %s%s\n", show(x).c_str(), show(ys).c_str(),
                    show(ya[i]).c_str(), show(want).c_str(), cases[i].exact ? "[exact]" : "[<=2ulp]",
                    good ? "" : "  <-- FAIL");
        ok = ok && good;
    }
    return ok;
}

// Array lengths that are not multiples of the block size, and in-place use.
bool check_lengths(const char* name, ArrayFn fn, ScalarFn scalar, const std::vector<double>& pool) {
    bool ok = true;
    std::size_t differs = 0;
    for (std::size_t n : {0, 1, 3, 15, 16, 17, 31, 33, 100, 257}) {
        std::vector<double> x(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(n));
        std::vector<double> y(n + 1, 42.0);
        fn(x.data(), y.data(), n);
        if (y[n] != 42.0) ok = false;  // wrote past the end
        std::vector<double> inplace = x;
        fn(inplace.data(), inplace.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
            if (bits_of(inplace[i]) != bits_of(y[i])) ok = false;
            if (bits_of(scalar(x[i])) != bits_of(y[i])) ++differs;
        }
    }
    std::printf("  %s: odd lengths / in-place %s (scalar != array in %zu elements)\n", name,
                ok ? "ok" : "FAIL", differs);
    return ok;
}

// ---------------------------------------------------------------- benchmark

constexpr std::size_t kBenchN = 256;

inline void clobber(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

struct Timing {
    double median;
    double min;
};

// ns per element of `body` (which processes kBenchN elements): `repeats`
// samples of `reps` calls each.
template <class F>
Timing time_ns_per_elem(F&& body, std::size_t reps, int repeats) {
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t k = 0; k < reps; ++k) body();
        const auto t1 = std::chrono::steady_clock::now();
        samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() /
                          static_cast<double>(reps * kBenchN));
    }
    std::sort(samples.begin(), samples.end());
    return {samples[samples.size() / 2], samples.front()};
}

__attribute__((noinline)) void std_exp_loop(const double* x, double* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
__attribute__((noinline)) void std_log_loop(const double* x, double* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) y[i] = std::log(x[i]);
}
__attribute__((noinline)) void vm_exp_loop(const double* x, double* y, std::size_t n) {
    lawfit::vm::exp_n(x, y, n);
}
__attribute__((noinline)) void vm_log_loop(const double* x, double* y, std::size_t n) {
    lawfit::vm::log_n(x, y, n);
}

void bench() {
    std::mt19937_64 rng(12345);
    std::vector<double> xe = uniform(rng, kBenchN, -50.0, 50.0);
    std::vector<double> xl(kBenchN);
    {
        std::uniform_real_distribution<double> e(-20.0, 20.0);
        for (auto& v : xl) v = std::exp(e(rng));
    }
    std::vector<double> ye(kBenchN), yl(kBenchN);
    const std::size_t reps = 10000;  // 2.56M elements per sample
    const int repeats = 15;

    auto run = [&](const char* name, auto&& body) {
        for (int w = 0; w < 1000; ++w) body();  // warm-up
        const Timing t = time_ns_per_elem(body, reps, repeats);
        std::printf("  %-26s median %7.3f  min %7.3f ns/element\n", name, t.median, t.min);
        return t.median;
    };
    std::printf("benchmark: arrays of %zu doubles, %zu calls per sample, median/min of %d samples\n",
                kBenchN, reps, repeats);
    const double s_exp = run("std::exp (scalar loop)", [&] {
        std_exp_loop(xe.data(), ye.data(), kBenchN);
        clobber(ye.data());
    });
    const double s_log = run("std::log (scalar loop)", [&] {
        std_log_loop(xl.data(), yl.data(), kBenchN);
        clobber(yl.data());
    });
    const double s_pair = run("std::exp + std::log", [&] {
        std_exp_loop(xe.data(), ye.data(), kBenchN);
        std_log_loop(xl.data(), yl.data(), kBenchN);
        clobber(ye.data());
        clobber(yl.data());
    });
    const double v_exp = run("vm::exp_n", [&] {
        vm_exp_loop(xe.data(), ye.data(), kBenchN);
        clobber(ye.data());
    });
    const double v_log = run("vm::log_n", [&] {
        vm_log_loop(xl.data(), yl.data(), kBenchN);
        clobber(yl.data());
    });
    const double v_pair = run("vm::exp_n + vm::log_n", [&] {
        vm_exp_loop(xe.data(), ye.data(), kBenchN);
        vm_log_loop(xl.data(), yl.data(), kBenchN);
        clobber(ye.data());
        clobber(yl.data());
    });
    std::printf("  speedup (medians): exp %.2fx, log %.2fx, pair %.2fx\n", s_exp / v_exp, s_log / v_log,
                s_pair / v_pair);
}

}  // namespace

int main(int argc, char** argv) {
    bool do_bench = true;
    for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == "--no-bench") do_bench = false;

    std::printf("mask path: %s\n", LAWFIT_VM_SIGN_MASKS ? "sign-bit (SSE2)" : "compare");
    bool ok = true;
    std::mt19937_64 rng(20240611);
    constexpr std::size_t kMain = 10'000'000;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    constexpr double kDenMin = std::numeric_limits<double>::denorm_min();
    constexpr double kMin = std::numeric_limits<double>::min();
    constexpr double kMax = std::numeric_limits<double>::max();
    using lawfit::vm::exp_n;
    using lawfit::vm::log_n;

    std::printf("accuracy of vm::exp vs glibc std::exp\n");
    ok &= report("uniform [-745.2, 709.8]", measure(uniform(rng, kMain, -745.2, 709.8), exp_n, scalar_exp, ref_exp));
    ok &= report("uniform [-1, 1]", measure(uniform(rng, 2'000'000, -1.0, 1.0), exp_n, scalar_exp, ref_exp));
    ok &= report("subnormal results [-745.2, -708.3]",
                 measure(uniform(rng, 1'000'000, -745.2, -708.3), exp_n, scalar_exp, ref_exp));
    ok &= report("near overflow [709.7, 709.8]",
                 measure(uniform(rng, 1'000'000, 709.7, 709.8), exp_n, scalar_exp, ref_exp));
    {
        // |x| in [2^-1074, 1], uniform in the exponent, both signs
        auto v = bit_patterns(rng, 1'000'000, 1, bits_of(1.0));
        for (std::size_t i = 0; i < v.size(); i += 2) v[i] = -v[i];
        ok &= report("|x| <= 1, all binades, both signs", measure(v, exp_n, scalar_exp, ref_exp));
    }

    std::printf("accuracy of vm::log vs glibc std::log\n");
    ok &= report("bit patterns (0, DBL_MAX]",
                 measure(bit_patterns(rng, kMain, 1, bits_of(kMax)), log_n, scalar_log, ref_log));
    ok &= report("uniform [0.5, 2]", measure(uniform(rng, 2'000'000, 0.5, 2.0), log_n, scalar_log, ref_log));
    ok &= report("uniform [1-2^-20, 1+2^-20]",
                 measure(uniform(rng, 1'000'000, 1.0 - 0x1p-20, 1.0 + 0x1p-20), log_n, scalar_log, ref_log));
    ok &= report("subnormal inputs",
                 measure(bit_patterns(rng, 1'000'000, 1, bits_of(kMin) - 1), log_n, scalar_log, ref_log));
    ok &= report("uniform [0, 1e6]", measure(uniform(rng, 1'000'000, 0.0, 1e6), log_n, scalar_log, ref_log));

    const double exp_hi = 0x1.62e42fefa39efp+9;   // 709.78271289338397: largest x with finite exp(x)
    const double exp_lo = -0x1.74910d52d3051p+9;  // -745.13321910194111: smallest x with exp(x) > 0
    const double snan = from_bits(0x7ff0000000000001ULL);
    ok &= check_specials(
        "exp",
        {
            {-kInf, true}, {kInf, true}, {kNaN, true}, {-kNaN, true}, {snan, true},
            {0.0, true}, {-0.0, true}, {kDenMin, true}, {-kDenMin, true}, {1.0, false}, {-1.0, false},
            {exp_hi, false}, {std::nextafter(exp_hi, kInf), true}, {709.79, true}, {709.8, true},
            {710.0, true}, {1000.0, true}, {1e308, true}, {kMax, true},
            {exp_lo, false}, {std::nextafter(exp_lo, -kInf), true}, {-745.2, true}, {-746.0, true},
            {-1000.0, true}, {-1e308, true}, {-kMax, true},
            {-708.4, false}, {-709.0, false}, {-720.0, false}, {-740.0, false}, {-744.44, false},
            {-745.0, false},
        },
        ref_exp, scalar_exp, exp_n);
    ok &= check_specials(
        "log",
        {
            {0.0, true}, {-0.0, true}, {-1.0, true}, {-kDenMin, true}, {-kInf, true}, {-kMax, true},
            {kInf, true}, {kNaN, true}, {-kNaN, true}, {snan, true}, {1.0, true},
            {kDenMin, false}, {2 * kDenMin, false}, {0x1p-1060, false}, {kMin - kDenMin, false},
            {kMin, false}, {kMax, false}, {2.0, false}, {0.5, false}, {std::nextafter(1.0, 2.0), false},
            {std::nextafter(1.0, 0.0), false}, {2.718281828459045, false}, {10.0, false},
        },
        ref_log, scalar_log, log_n);
    {
        // log(1) must be +0 exactly (sign included), in both paths.
        double one = 1.0, l1v = -1.0;
        log_n(&one, &l1v, 1);
        const double l1s = scalar_log(1.0);
        const bool good = bits_of(l1s) == 0 && bits_of(l1v) == 0;
        std::printf("  log(1.0) bits: scalar 0x%016" PRIx64 ", array 0x%016" PRIx64 " %s\n", bits_of(l1s),
                    bits_of(l1v), good ? "(+0)" : "<-- FAIL");
        ok &= good;
    }
    {
        // log_normal: bit-identical to log on positive normal doubles (all binades).
        const auto v = bit_patterns(rng, 2'000'000, bits_of(kMin), bits_of(kMax));
        std::uint64_t differ = 0;
        for (double x : v) differ += bits_of(lawfit::vm::log_normal(x)) != bits_of(scalar_log(x));
        std::printf("  log_normal vs log on %zu normal inputs: %" PRIu64 " differ %s\n", v.size(), differ,
                    differ == 0 ? "" : "<-- FAIL");
        ok &= differ == 0;
    }
    {
        // exp_normal: bit-identical to exp on [-708, 709] (uniform, and the ends of the range).
        auto v = uniform(rng, 2'000'000, -708.0, 709.0);
        for (double x : {-708.0, 709.0, 0.0, -0.0, 1e-300, -1e-300, std::nextafter(-708.0, 0.0),
                         std::nextafter(709.0, 0.0)})
            v.push_back(x);
        std::uint64_t differ = 0;
        for (double x : v) differ += bits_of(lawfit::vm::exp_normal(x)) != bits_of(scalar_exp(x));
        std::printf("  exp_normal vs exp on %zu inputs in [-708, 709]: %" PRIu64 " differ %s\n", v.size(), differ,
                    differ == 0 ? "" : "<-- FAIL");
        ok &= differ == 0;
    }
    std::printf("array helpers\n");
    ok &= check_lengths("exp_n", exp_n, scalar_exp, uniform(rng, 300, -800.0, 800.0));
    ok &= check_lengths("log_n", log_n, scalar_log, bit_patterns(rng, 300, 0, bits_of(kInf)));

    if (do_bench) bench();

    std::printf("%s\n", ok ? "ALL CHECKS PASSED" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
}
