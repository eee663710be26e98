// The batch driver (lawfit/batch.hpp): run_batch gives bit-identical results for any thread count, in both
// output modes (every start kept, or the best start of each weight row); every problem's result equals the same
// fit run alone; the best start is the best of the kept ones. evaluate_batch equals one evaluator called point
// by point, for any thread count and weight layout. Exit status 0 means every check passed.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "lawfit/batch.hpp"
#include "synthetic.hpp"

using namespace lawfit;
using namespace lawfit_test;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0;
}

struct Outputs {
    std::vector<double> x, fun;
    std::vector<std::int32_t> status, nit, nfev, best_start, n_success;
    std::vector<std::uint32_t> at_bound;
    Outputs(std::int64_t entries, int P)
        : x(static_cast<std::size_t>(entries * P)), fun(entries), status(entries, -1), nit(entries), nfev(entries),
          best_start(entries, -1), n_success(entries, -1), at_bound(entries) {}
    BatchOutput view() {
        return BatchOutput{x.data(), fun.data(), status.data(), nit.data(), nfev.data(), at_bound.data(),
                           best_start.data(), n_success.data()};
    }
    bool operator==(const Outputs& o) const {
        return same_bits(x, o.x) && same_bits(fun, o.fun) && same_bits(status, o.status) && same_bits(nit, o.nit) &&
               same_bits(nfev, o.nfev) && same_bits(best_start, o.best_start) && same_bits(n_success, o.n_success) &&
               same_bits(at_bound, o.at_bound);
    }
};

// Chinchilla's form on noisy data, Huber loss, a box on the exponents; R weight rows (all ones, bootstrap
// counts, and one all-zero row) times S starts.
struct Setup {
    Program prog = chinchilla_law();
    Analysis an = analyse(prog);
    Data data = make_data(prog, {0.5, 6.0, 0.34, 6.5, 0.28}, 80, std::log(1e6), std::log(1e10), 0.03, 7);
    static constexpr int P = 5;
    std::int64_t R = 7, S = 5;
    std::vector<double> weights, starts, lower = {-2.0, -kInf, 0.05, -kInf, 0.05}, upper = {2.0, kInf, 0.345, kInf, 1.0};
    std::vector<std::int32_t> free_index = {0, 1, 2, 3, 4};
    std::vector<double> fixed = std::vector<double>(5, 0.0);
    Loss loss;

    Setup() {
        loss.kind = 0;  // Huber
        loss.param = 1e-3;
        const std::int64_t n = data.n;
        weights.assign(static_cast<std::size_t>(R * n), 0.0);
        Lcg rng(11);
        for (std::int64_t r = 0; r < R - 1; ++r)
            for (std::int64_t k = 0; k < n; ++k) {
                const auto i = r == 0 ? k : static_cast<std::int64_t>(rng.uniform() * static_cast<double>(n));
                weights[static_cast<std::size_t>(r * n + i)] += 1.0;
            }
        // row R - 1 stays all zero
        for (std::int64_t s = 0; s < S; ++s) {
            const double u = static_cast<double>(s) / static_cast<double>(S - 1);
            const double st[P] = {-1.0 + 2.5 * u, 3.0 + 4.0 * u, 0.8 - 0.6 * u, 8.0 - 4.0 * u, 0.1 + 0.7 * u};
            starts.insert(starts.end(), st, st + P);
        }
    }
    ParamMap map() const {
        ParamMap m;
        m.n_full = P;
        m.n_free = P;
        m.free_index = free_index.data();
        m.fixed_value = fixed.data();
        m.lower = lower.data();
        m.upper = upper.data();
        return m;
    }
    BatchInput input(int threads) const {
        BatchInput in;
        in.prog = &prog;
        in.an = &an;
        in.loss = loss;
        in.data = data.view();
        in.weights = weights.data();
        in.R = R;
        in.starts = starts.data();
        in.S = S;
        in.map = map();
        in.threads = threads;
        return in;
    }
};

Outputs run(const Setup& su, const BatchInput& in, bool keep_all) {
    Outputs out(keep_all ? su.R * su.S : su.R, Setup::P);
    const std::string err = run_batch(in, keep_all, out.view());
    CHECK_MSG(err.empty(), err);
    return out;
}

void test_run_batch_threads() {
    const Setup su;
    const int P = Setup::P;
    const Outputs all1 = run(su, su.input(1), true);
    const Outputs best1 = run(su, su.input(1), false);
    for (int threads : {2, 3, 0}) {
        CHECK_MSG(run(su, su.input(threads), true) == all1, "keep_all, threads " + std::to_string(threads));
        CHECK_MSG(run(su, su.input(threads), false) == best1, "best, threads " + std::to_string(threads));
    }
    // Starts given per row (the same starts for every row) change nothing.
    std::vector<double> per_row;
    for (std::int64_t r = 0; r < su.R; ++r) per_row.insert(per_row.end(), su.starts.begin(), su.starts.end());
    BatchInput in = su.input(3);
    in.starts = per_row.data();
    in.starts_per_row = true;
    CHECK(run(su, in, true) == all1);

    // The fits are not trivial: many converge inside the box, several on alpha's upper bound.
    int converged = 0, at_bound = 0;
    for (std::int32_t s : all1.status) {
        converged += s == static_cast<int>(Status::converged);
        at_bound += s == static_cast<int>(Status::converged_at_bound);
    }
    CHECK_MSG(converged >= 10 && at_bound >= 3,
              std::to_string(converged) + " converged, " + std::to_string(at_bound) + " at a bound");
    // Every problem's result is that of the same fit run alone, with its own evaluator.
    const std::int64_t n = su.data.n;
    for (std::int64_t r = 0; r < su.R; ++r) {
        auto ev = make_evaluator(su.prog, su.an, su.loss);
        const std::int64_t m = ev->set_points(su.data.view(), su.weights.data() + r * n);
        for (std::int64_t s = 0; s < su.S; ++s) {
            const std::int64_t p = r * su.S + s;
            std::vector<double> x(su.starts.begin() + s * P, su.starts.begin() + (s + 1) * P);
            if (m == 0) {
                CHECK(all1.status[p] == static_cast<int>(Status::not_run) && std::isnan(all1.fun[p]));
                for (int j = 0; j < P; ++j) x[j] = std::min(std::max(x[j], su.lower[j]), su.upper[j]);
                CHECK(std::memcmp(x.data(), all1.x.data() + p * P, sizeof(double) * P) == 0);  // the start, clipped
                continue;
            }
            const FitOutcome fo = solve(*ev, su.map(), SolverOptions(), x.data());
            CHECK_MSG(std::memcmp(x.data(), all1.x.data() + p * P, sizeof(double) * P) == 0 &&
                          std::memcmp(&fo.fun, &all1.fun[p], sizeof(double)) == 0 &&
                          static_cast<int>(fo.status) == all1.status[p] && fo.nit == all1.nit[p] &&
                          fo.nfev == all1.nfev[p] && fo.at_bound == all1.at_bound[p],
                      "row " + std::to_string(r) + " start " + std::to_string(s));
        }
    }
    // The best start of a row: successful first, then the lowest objective, then the lowest index.
    for (std::int64_t r = 0; r < su.R; ++r) {
        std::int64_t want = -1;
        int successes = 0;
        for (std::int64_t s = 0; s < su.S; ++s) {
            const std::int64_t p = r * su.S + s;
            const bool ok = all1.status[p] <= static_cast<int>(Status::converged_at_bound);
            successes += ok;
            if (!ok) continue;
            if (want < 0 || all1.fun[p] < all1.fun[r * su.S + want]) want = s;
        }
        if (want < 0) want = 0;  // no success (the all-zero row): the first start
        const std::int64_t p = r * su.S + want;
        CHECK_MSG(best1.best_start[r] == want, "row " + std::to_string(r) + ": " + std::to_string(best1.best_start[r]) +
                                                   " vs " + std::to_string(want));
        CHECK(best1.n_success[r] == successes);
        CHECK(std::memcmp(best1.x.data() + r * P, all1.x.data() + p * P, sizeof(double) * P) == 0);
        CHECK(std::memcmp(&best1.fun[r], &all1.fun[p], sizeof(double)) == 0 && best1.status[r] == all1.status[p]);
    }
    CHECK(best1.status[su.R - 1] == static_cast<int>(Status::not_run) && best1.n_success[su.R - 1] == 0);
    std::printf("run_batch: %d converged, %d at a bound of %d fits\n", converged, at_bound,
                static_cast<int>(all1.status.size()));

    // A batch cancelled before it starts reports it.
    std::atomic<bool> cancel{true};
    BatchInput c = su.input(2);
    c.cancel = &cancel;
    Outputs out(su.R * su.S, P);
    CHECK(run_batch(c, true, out.view()) == "cancelled");
}

void test_evaluate_batch() {
    const Setup su;
    const int P = Setup::P;
    const std::int64_t B = 150, n = su.data.n;  // more than one chunk of 64
    std::vector<double> theta, w_row(su.weights.begin() + n, su.weights.begin() + 2 * n), w_per;
    Lcg rng(5);
    for (std::int64_t b = 0; b < B; ++b) {
        const double t[P] = {0.5 + 0.5 * rng.uniform(), 5.0 + 2.0 * rng.uniform(), 0.2 + 0.3 * rng.uniform(),
                             5.0 + 2.0 * rng.uniform(), 0.2 + 0.3 * rng.uniform()};
        theta.insert(theta.end(), t, t + P);
        for (std::int64_t i = 0; i < n; ++i) w_per.push_back(std::floor(3.0 * rng.uniform()));
    }
    struct Layout {
        const char* name;
        const double* w;
        bool per_row;
    };
    for (const Layout& lay : {Layout{"no weights", nullptr, false}, Layout{"shared", w_row.data(), false},
                              Layout{"per row", w_per.data(), true}}) {
        for (int mode = 0; mode <= 2; ++mode) {
            // One evaluator, point by point.
            std::vector<double> fun(B), grad(static_cast<std::size_t>(B * P)), hess(static_cast<std::size_t>(B * P * P));
            auto ev = make_evaluator(su.prog, su.an, su.loss);
            for (std::int64_t b = 0; b < B; ++b) {
                ev->set_points(su.data.view(), lay.w ? lay.w + (lay.per_row ? b * n : 0) : nullptr);
                fun[b] = ev->evaluate(theta.data() + b * P, mode, grad.data() + b * P, hess.data() + b * P * P);
            }
            if (mode < 2) std::fill(hess.begin(), hess.end(), 0.0);
            if (mode < 1) std::fill(grad.begin(), grad.end(), 0.0);
            for (int threads : {1, 2, 3}) {
                std::vector<double> f(B), g(grad.size(), 0.0), h(hess.size(), 0.0);
                const std::string err =
                    evaluate_batch(su.prog, su.an, su.loss, su.data.view(), theta.data(), B, lay.w, lay.per_row,
                                   f.data(), mode >= 1 ? g.data() : nullptr, mode >= 2 ? h.data() : nullptr, threads);
                const std::string ctx =
                    std::string(lay.name) + ", mode " + std::to_string(mode) + ", threads " + std::to_string(threads);
                CHECK_MSG(err.empty(), ctx + ": " + err);
                CHECK_MSG(same_bits(f, fun) && same_bits(g, grad) && same_bits(h, hess), ctx);
            }
            bool finite = true;
            for (double v : fun) finite = finite && std::isfinite(v) && v > 0.0;
            CHECK(finite);
        }
    }
    std::atomic<bool> cancel{true};
    std::vector<double> f(B);
    CHECK(evaluate_batch(su.prog, su.an, su.loss, su.data.view(), theta.data(), B, nullptr, false, f.data(), nullptr,
                         nullptr, 2, &cancel) == "cancelled");
}

}  // namespace

int main() {
    test_run_batch_threads();
    test_evaluate_batch();
    return finish("test_batch");
}
