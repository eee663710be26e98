// Synthetic problems for the C++ tests: small law programs written by hand (as lawfit/compiler.py would emit
// them), a plain value-only interpreter of a program (independent of the evaluator), and data generated from a
// law with optional deterministic noise.
#pragma once
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "lawfit/evaluator.hpp"
#include "lawfit/program.hpp"

namespace lawfit_test {

using lawfit::Instr;
using lawfit::Op;
using lawfit::Program;

struct Builder {
    Program p;
    int emit(Op op, int a = 0, int b = 0, double imm = 0.0) {
        p.code.push_back(Instr{static_cast<std::int32_t>(op), a, b, imm});
        return static_cast<int>(p.code.size()) - 1;
    }
    int param(int k) { return emit(Op::param, k); }
    int feature(int f) { return emit(Op::feature, f); }
    // log-sum-exp of log-space arguments
    int lse(const std::vector<int>& nodes) {
        const int start = static_cast<int>(p.args.size());
        for (int n : nodes) {
            p.args.push_back(n);
            p.argflags.push_back(0);
        }
        return emit(Op::lse, start, static_cast<int>(nodes.size()));
    }
};

// log L = lse(e, a - alpha x): a saturating power law; theta = (e, a, alpha), one feature x = log N.
inline Program saturating_law() {
    Builder b;
    b.p.n_params = 3;
    b.p.n_features = 1;
    const int e = b.param(0), a = b.param(1), alpha = b.param(2), x = b.feature(0);
    const int t = b.emit(Op::sub, a, b.emit(Op::mul, alpha, x));
    b.lse({e, t});
    return b.p;
}

// log L = lse(e, a - alpha x1, b - beta x2): Chinchilla's form; theta = (e, a, alpha, b, beta).
inline Program chinchilla_law() {
    Builder b;
    b.p.n_params = 5;
    b.p.n_features = 2;
    const int e = b.param(0), a = b.param(1), alpha = b.param(2), bb = b.param(3), beta = b.param(4);
    const int x1 = b.feature(0), x2 = b.feature(1);
    const int t1 = b.emit(Op::sub, a, b.emit(Op::mul, alpha, x1));
    const int t2 = b.emit(Op::sub, bb, b.emit(Op::mul, beta, x2));
    b.lse({e, t1, t2});
    return b.p;
}

// log L = lse(a - p x, a - q x): symmetric under swapping p and q; theta = (a, p, q).
inline Program symmetric_law() {
    Builder b;
    b.p.n_params = 3;
    b.p.n_features = 1;
    const int a = b.param(0), p = b.param(1), q = b.param(2), x = b.feature(0);
    const int t1 = b.emit(Op::sub, a, b.emit(Op::mul, p, x));
    const int t2 = b.emit(Op::sub, a, b.emit(Op::mul, q, x));
    b.lse({t1, t2});
    return b.p;
}

// Value of a (valid) program at one point, in plain scalar code.
inline double program_value(const Program& prog, const double* theta, const double* feat) {
    std::vector<double> v(prog.code.size());
    for (std::size_t i = 0; i < prog.code.size(); ++i) {
        const Instr& in = prog.code[i];
        switch (static_cast<Op>(in.op)) {
            case Op::constant: v[i] = in.imm; break;
            case Op::feature: v[i] = feat[in.a]; break;
            case Op::param: v[i] = theta[in.a]; break;
            case Op::add: v[i] = v[in.a] + v[in.b]; break;
            case Op::sub: v[i] = v[in.a] - v[in.b]; break;
            case Op::mul: v[i] = v[in.a] * v[in.b]; break;
            case Op::neg: v[i] = -v[in.a]; break;
            case Op::recip: v[i] = 1.0 / v[in.a]; break;
            case Op::exp: v[i] = std::exp(v[in.a]); break;
            case Op::log: v[i] = std::log(v[in.a]); break;
            case Op::expm1: v[i] = std::expm1(v[in.a]); break;
            case Op::log1p: v[i] = std::log1p(v[in.a]); break;
            case Op::lse: {
                double m = -INFINITY;
                for (int k = 0; k < in.b; ++k)
                    if (prog.argflags[in.a + k] == 0) m = std::fmax(m, v[prog.args[in.a + k]]);
                double s = 0.0;
                for (int k = 0; k < in.b; ++k) {
                    const double u = v[prog.args[in.a + k]];
                    s += prog.argflags[in.a + k] == 0 ? std::exp(u - m) : u * std::exp(-m);
                }
                v[i] = m + std::log(s);
                break;
            }
        }
    }
    return v.back();
}

// Deterministic uniform numbers in [0, 1) (a 64-bit LCG), so every platform draws the same data.
struct Lcg {
    std::uint64_t s;
    explicit Lcg(std::uint64_t seed) : s(seed * 2862933555777941757ULL + 3037000493ULL) {}
    double uniform() {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0);
    }
};

// Points and targets y = log L(x; theta) + noise * u, u uniform in [-1, 1).
struct Data {
    int n_features = 0;
    std::int64_t n = 0;
    std::vector<double> features;  // (n_features, n) row-major
    std::vector<double> target;
    lawfit::DataView view() const {
        lawfit::DataView d;
        d.features = features.data();
        d.target = target.data();
        d.n = n;
        d.n_features = n_features;
        return d;
    }
};

// n points; feature f of point i is lo_f + (hi_f - lo_f) * (a low-discrepancy fraction), so the features vary
// independently.
inline Data make_data(const Program& prog, const std::vector<double>& theta, std::int64_t n, double lo, double hi,
                      double noise = 0.0, std::uint64_t seed = 1) {
    Data d;
    d.n_features = prog.n_features;
    d.n = n;
    d.features.resize(static_cast<std::size_t>(prog.n_features * n));
    d.target.resize(static_cast<std::size_t>(n));
    Lcg rng(seed);
    std::vector<double> feat(static_cast<std::size_t>(prog.n_features));
    for (std::int64_t i = 0; i < n; ++i) {
        for (int f = 0; f < prog.n_features; ++f) {
            const double frac = f == 0 ? (i + 0.5) / static_cast<double>(n)
                                       : std::fmod((i + 0.5) * (f == 1 ? 0.6180339887498949 : 0.7548776662466927), 1.0);
            feat[f] = lo + (hi - lo) * frac;
            d.features[static_cast<std::size_t>(f * n + i)] = feat[f];
        }
        d.target[static_cast<std::size_t>(i)] =
            program_value(prog, theta.data(), feat.data()) + noise * (2.0 * rng.uniform() - 1.0);
    }
    return d;
}

}  // namespace lawfit_test
