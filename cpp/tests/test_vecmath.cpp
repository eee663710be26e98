// Standalone accuracy + special-value test and microbenchmark for lawfit/vecmath.hpp.
//
// Build (from the repo root), e.g.:
//   g++ -O3 -mavx2 -mfma -std=c++17 -Icpp/include cpp/tests/test_vecmath.cpp -o test_vecmath
//   g++ -O2 -std=c++17 -Icpp/include cpp/tests/test_vecmath.cpp -o test_vecmath
// Run: ./test_vecmath [--no-bench]        (exit status 0 = all checks passed)
//
// The reference is glibc's std::exp / std::log; errors are measured in ulps as
// the distance between the two results in the ordered bit representation (so a
// subnormal result is measured in units of the smallest subnormal, and DBL_MAX
// vs +inf counts as 1).

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

// Distance in ulps; NaN vs NaN is 0, NaN vs number is "infinite".
std::int64_t ulp_diff(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) {
        return (std::isnan(a) && std::isnan(b)) ? 0 : std::numeric_limits<std::int64_t>::max();
    }
    auto ord = [](double d) {
        std::int64_t i = static_cast<std::int64_t>(bits_of(d));
        return i < 0 ? std::numeric_limits<std::int64_t>::min() - i : i;
    };
    const std::int64_t ia = ord(a), ib = ord(b);
    return ia > ib ? ia - ib : ib - ia;
}

struct Stats {
    std::uint64_t count = 0;
    std::uint64_t hist[4] = {0, 0, 0, 0};  // 0, 1, 2, >2 ulp
    std::int64_t max_ulp = 0;
    double worst_x = 0.0;
};

using VecFn = void (*)(const double*, double*, std::size_t);
using RefFn = double (*)(double);

double ref_exp(double x) { return std::exp(x); }
double ref_log(double x) { return std::log(x); }

// Evaluate `fn` on all inputs (through the array helper, i.e. the vectorised
// path) and compare to `ref`.
Stats measure(const std::vector<double>& xs, VecFn fn, RefFn ref) {
    std::vector<double> y(xs.size());
    fn(xs.data(), y.data(), xs.size());
    Stats st;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        const std::int64_t d = ulp_diff(y[i], ref(xs[i]));
        ++st.count;
        ++st.hist[d > 2 ? 3 : d];
        if (d > st.max_ulp) {
            st.max_ulp = d;
            st.worst_x = xs[i];
        }
    }
    return st;
}

bool report(const char* name, const Stats& st) {
    std::printf("  %-38s n=%9" PRIu64 "  0ulp=%9" PRIu64 " 1ulp=%8" PRIu64 " 2ulp=%6" PRIu64
                " >2ulp=%4" PRIu64 "  max=%" PRId64,
                name, st.count, st.hist[0], st.hist[1], st.hist[2], st.hist[3], st.max_ulp);
    if (st.max_ulp > 0) std::printf(" (x=%a)", st.worst_x);
    const bool ok = st.max_ulp <= kMaxUlpAllowed;
    std::printf("%s\n", ok ? "" : "  <-- FAIL");
    return ok;
}

std::vector<double> uniform(std::mt19937_64& rng, std::size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
}

// Random bit patterns in [lo_bits, hi_bits] (positive doubles: uniform in the
// exponent, so every binade is covered).
std::vector<double> bit_patterns(std::mt19937_64& rng, std::size_t n, std::uint64_t lo_bits,
                                 std::uint64_t hi_bits) {
    std::uniform_int_distribution<std::uint64_t> dist(lo_bits, hi_bits);
    std::vector<double> v(n);
    for (auto& x : v) x = from_bits(dist(rng));
    return v;
}

// Scalar entry points kept out of line so that they are tested as scalars too.
__attribute__((noinline)) double scalar_exp(double x) { return lawfit::vm::exp(x); }
__attribute__((noinline)) double scalar_log(double x) { return lawfit::vm::log(x); }

struct SpecialCase {
    double x;
    bool exact;  // require bit-identical result (else <= kMaxUlpAllowed ulp)
};

bool check_specials(const char* name, const std::vector<SpecialCase>& cases, RefFn ref,
                    double (*scalar)(double), VecFn vec) {
    bool ok = true;
    std::vector<double> xs;
    for (const auto& c : cases) xs.push_back(c.x);
    std::vector<double> yv(xs.size());
    vec(xs.data(), yv.data(), xs.size());
    std::printf("special values: %s\n", name);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const double x = cases[i].x;
        const double want = ref(x);
        const double ys = scalar(x);
        const double yvec = yv[i];
        bool good = true;
        for (double got : {ys, yvec}) {
            if (cases[i].exact) {
                const bool same = (std::isnan(want) && std::isnan(got)) || bits_of(want) == bits_of(got);
                good = good && same;
            } else {
                good = good && ulp_diff(got, want) <= kMaxUlpAllowed;
            }
        }
        std::printf("  x=%-24.17g -> scalar %-24.17g vec %-24.17g glibc %-24.17g %s%s\n", x, ys, yvec,
                    want, cases[i].exact ? "[exact]" : "[<=2ulp]", good ? "" : "  <-- FAIL");
        ok = ok && good;
    }
    return ok;
}

// ---------------------------------------------------------------- benchmark

constexpr std::size_t kBenchN = 256;

inline void clobber(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

struct Timing {
    double median;
    double min;
};

// ns per element for `body` (which processes kBenchN elements), over `repeats`
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
    const std::size_t reps = 10000;  // 2.56M elements per timing sample
    const int repeats = 15;

    auto run = [&](const char* name, auto&& body) {
        for (int w = 0; w < 1000; ++w) body();  // warm-up
        const Timing t = time_ns_per_elem(body, reps, repeats);
        std::printf("  %-26s median %7.3f  min %7.3f ns/element\n", name, t.median, t.min);
        return t.median;
    };
    std::printf("benchmark: arrays of %zu doubles, %zu calls per sample, %d samples\n", kBenchN, reps,
                repeats);
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

    bool ok = true;
    std::mt19937_64 rng(20240611);
    constexpr std::size_t kMain = 10'000'000;
    constexpr double kInf = std::numeric_limits<double>::infinity();
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    constexpr double kDenMin = std::numeric_limits<double>::denorm_min();
    constexpr double kMin = std::numeric_limits<double>::min();
    constexpr double kMax = std::numeric_limits<double>::max();

    std::printf("accuracy of vm::exp_n vs glibc std::exp\n");
    ok &= report("uniform [-745.2, 709.8]", measure(uniform(rng, kMain, -745.2, 709.8), lawfit::vm::exp_n, ref_exp));
    ok &= report("uniform [-1, 1]", measure(uniform(rng, 2'000'000, -1.0, 1.0), lawfit::vm::exp_n, ref_exp));
    ok &= report("subnormal results [-745.2, -708.3]",
                 measure(uniform(rng, 1'000'000, -745.2, -708.3), lawfit::vm::exp_n, ref_exp));
    ok &= report("near overflow [709.7, 709.8]", measure(uniform(rng, 1'000'000, 709.7, 709.8), lawfit::vm::exp_n, ref_exp));
    {
        // tiny |x|: random bit patterns with |x| in [2^-1074, 1], both signs
        auto v = bit_patterns(rng, 1'000'000, 1, bits_of(1.0));
        for (std::size_t i = 0; i < v.size(); i += 2) v[i] = -v[i];
        ok &= report("|x| in (0, 1] log-uniform, both signs", measure(v, lawfit::vm::exp_n, ref_exp));
    }

    std::printf("accuracy of vm::log_n vs glibc std::log\n");
    ok &= report("bit patterns (0, DBL_MAX]", measure(bit_patterns(rng, kMain, 1, bits_of(kMax)), lawfit::vm::log_n, ref_log));
    ok &= report("uniform [0.5, 2]", measure(uniform(rng, 2'000'000, 0.5, 2.0), lawfit::vm::log_n, ref_log));
    ok &= report("uniform [1-2^-20, 1+2^-20]",
                 measure(uniform(rng, 1'000'000, 1.0 - 0x1p-20, 1.0 + 0x1p-20), lawfit::vm::log_n, ref_log));
    ok &= report("subnormal inputs", measure(bit_patterns(rng, 1'000'000, 1, bits_of(kMin) - 1), lawfit::vm::log_n, ref_log));
    ok &= report("uniform [0, 1e6]", measure(uniform(rng, 1'000'000, 0.0, 1e6), lawfit::vm::log_n, ref_log));

    const double exp_hi = 0x1.62e42fefa39efp+9;  // largest x with finite exp(x)
    const double exp_lo = -0x1.74910d52d3051p+9; // smallest x with exp(x) > 0 (-745.1332191019411)
    ok &= check_specials(
        "exp",
        {
            {-kInf, true}, {kInf, true}, {kNaN, true}, {-kNaN, true},
            {0.0, true}, {-0.0, true}, {1.0, false}, {-1.0, false}, {kDenMin, true}, {-kDenMin, true},
            {exp_hi, false}, {std::nextafter(exp_hi, kInf), true}, {709.79, true}, {710.0, true},
            {1000.0, true}, {1e308, true}, {kMax, true},
            {exp_lo, false}, {std::nextafter(exp_lo, -kInf), true}, {-745.2, true}, {-746.0, true},
            {-1000.0, true}, {-1e308, true}, {-kMax, true},
            {-708.4, false}, {-709.0, false}, {-720.0, false}, {-740.0, false}, {-744.44, false},
            {-745.0, false},
        },
        ref_exp, scalar_exp, lawfit::vm::exp_n);
    ok &= check_specials(
        "log",
        {
            {0.0, true}, {-0.0, true}, {-1.0, true}, {-kDenMin, true}, {-kInf, true}, {-kMax, true},
            {kInf, true}, {kNaN, true}, {-kNaN, true}, {1.0, true},
            {kDenMin, false}, {2 * kDenMin, false}, {0x1p-1060, false}, {kMin - kDenMin, false},
            {kMin, false}, {kMax, false}, {2.0, false}, {0.5, false}, {std::nextafter(1.0, 2.0), false},
            {std::nextafter(1.0, 0.0), false}, {2.718281828459045, false}, {10.0, false},
        },
        ref_log, scalar_log, lawfit::vm::log_n);
    {
        // log(1) must be +0 exactly (sign included)
        const double l1 = scalar_log(1.0);
        const bool good = bits_of(l1) == 0;
        std::printf("  log(1.0) bits = 0x%016" PRIx64 " %s\n", bits_of(l1), good ? "(+0)" : "<-- FAIL");
        ok &= good;
    }

    if (do_bench) bench();

    std::printf("%s\n", ok ? "ALL CHECKS PASSED" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
}
