// The trust-region solver (lawfit/solver.hpp) on synthetic problems: recovery of the parameters of noise-free
// data, box bounds, fixed and tied parameters, the trust-region hard case (a saddle point whose gradient is
// orthogonal to the direction of negative curvature), and the status codes.
// Exit status 0 means every check passed.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "check.hpp"
#include "lawfit/batch.hpp"
#include "lawfit/solver.hpp"
#include "synthetic.hpp"

using namespace lawfit;
using namespace lawfit_test;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Loss make_loss(int kind, Residual residual = Residual::log) {
    Loss l;
    l.kind = kind;
    l.param = 1e-3;
    l.residual = residual;
    return l;
}
const int kHuber = 0, kSquared = 1;

// Which parameters are free, fixed or tied, and the box of the free ones.
struct Map {
    std::vector<std::int32_t> free_index;
    std::vector<double> fixed_value, lower, upper;
    int n_free = 0;
    // Every parameter free and unbounded.
    explicit Map(int n_full) : free_index(n_full), fixed_value(n_full, 0.0), lower(n_full, -kInf), upper(n_full, kInf) {
        for (int k = 0; k < n_full; ++k) free_index[k] = k;
        n_free = n_full;
    }
    // free_index as given (-1: fixed at fixed_value), unbounded.
    Map(std::vector<std::int32_t> idx, std::vector<double> fixed)
        : free_index(std::move(idx)), fixed_value(std::move(fixed)) {
        for (std::int32_t j : free_index) n_free = std::max(n_free, j + 1);
        lower.assign(n_free, -kInf);
        upper.assign(n_free, kInf);
    }
    ParamMap view() const {
        ParamMap m;
        m.n_full = static_cast<int>(free_index.size());
        m.n_free = n_free;
        m.free_index = free_index.data();
        m.fixed_value = fixed_value.data();
        m.lower = lower.data();
        m.upper = upper.data();
        return m;
    }
};

struct Fit {
    FitOutcome out;
    std::vector<double> x;
    double f_start = 0.0;
};

Fit run(const Program& prog, const Data& data, const Loss& loss, const Map& map, std::vector<double> start,
        SolverOptions opt = SolverOptions()) {
    const Analysis an = analyse(prog);
    auto ev = make_evaluator(prog, an, loss);
    ev->set_points(data.view(), nullptr);
    Fit fit;
    fit.f_start = evaluate_free(*ev, map.view(), start.data(), 0, nullptr, nullptr);
    fit.out = solve(*ev, map.view(), opt, start.data());
    fit.x = start;
    return fit;
}

// Objective and gradient over the free parameters at x.
double grad_at(const Program& prog, const Data& data, const Loss& loss, const Map& map, const std::vector<double>& x,
               std::vector<double>& g, std::vector<double>* H = nullptr) {
    const Analysis an = analyse(prog);
    auto ev = make_evaluator(prog, an, loss);
    ev->set_points(data.view(), nullptr);
    g.assign(static_cast<std::size_t>(map.n_free), 0.0);
    std::vector<double> h(static_cast<std::size_t>(map.n_free * map.n_free));
    const double f = evaluate_free(*ev, map.view(), x.data(), 2, g.data(), h.data());
    if (H) *H = h;
    return f;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

std::string vec(const std::vector<double>& v) {
    std::string s = "(";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + num(v[i]);
    return s + ")";
}

const char* status_name(Status s) {
    static const char* names[] = {"converged", "converged_at_bound", "max_iterations", "step_failed", "non_finite",
                                  "not_run"};
    const int k = static_cast<int>(s);
    return k >= 0 && k < 6 ? names[k] : "?";
}
std::string what(const Fit& f) {
    return std::string("status ") + status_name(f.out.status) + ", nit " + std::to_string(f.out.nit) + ", fun " +
           num(f.out.fun) + ", x " + vec(f.x);
}

// The saturating power law on x = log N in [log 1e6, log 1e10], noise-free.
const std::vector<double> kTruth = {std::log(1.7), 6.0, 0.34};
Data saturating_data() { return make_data(saturating_law(), kTruth, 40, std::log(1e6), std::log(1e10)); }

void test_recovery() {
    const Program prog = saturating_law();
    const Data data = saturating_data();
    // Both evaluator kernels (the affine log-sum-exp kernel and the interpreter) and both builds (the CPU's best
    // and the generic one).
    for (const char* kernel : {"auto", "interpreter"})
    for (const char* isa : {"auto", "generic"}) {
        CHECK(set_kernel(kernel) && set_isa(isa));
        for (int kind : {kSquared, kHuber}) {
            const Fit f = run(prog, data, make_loss(kind), Map(3), {0.0, 4.0, 0.5});
            const std::string ctx =
                std::string(kernel) + " " + isa + " loss " + std::to_string(kind) + ": " + what(f);
            CHECK_MSG(f.out.status == Status::converged, ctx);
            CHECK_MSG(f.out.at_bound == 0, ctx);
            CHECK_MSG(max_abs_diff(f.x, kTruth) < 1e-7, ctx);
            CHECK_MSG(f.out.fun < 1e-20 && f.out.fun < f.f_start, ctx);
            CHECK_MSG(f.out.nit > 1 && f.out.nfev >= f.out.nit, ctx);
        }
    }
    CHECK(set_kernel("auto") && set_isa("auto"));
    // Chinchilla's form with two features (5 parameters).
    const std::vector<double> truth = {0.5, 6.0, 0.34, 6.5, 0.28};
    const Program chin = chinchilla_law();
    const Data d = make_data(chin, truth, 60, std::log(1e6), std::log(1e10));
    const Fit f = run(chin, d, make_loss(kHuber), Map(5), {0.0, 5.0, 0.5, 5.0, 0.5});
    CHECK_MSG(f.out.status == Status::converged && max_abs_diff(f.x, truth) < 1e-6, what(f));
}

void test_bounds() {
    const Program prog = saturating_law();
    const Data data = saturating_data();
    const Loss loss = make_loss(kSquared);
    // alpha <= 0.3 while the data's alpha is 0.34: the optimum in the box has alpha on its upper bound, and the
    // other parameters are those of the fit with alpha fixed at 0.3. The start lies outside the box (clipped).
    Map box(3);
    box.upper[2] = 0.3;
    const Fit f = run(prog, data, loss, box, {0.0, 4.0, 0.5});
    CHECK_MSG(f.out.status == Status::converged_at_bound, what(f));
    CHECK_MSG(f.out.at_bound == (1u << 2), what(f));
    CHECK_MSG(f.x[2] == 0.3, what(f));  // exactly on the bound
    const Fit fixed = run(prog, data, loss, Map({0, 1, -1}, {0.0, 0.0, 0.3}), {0.0, 4.0});
    CHECK_MSG(fixed.out.status == Status::converged, what(fixed));
    CHECK_MSG(std::fabs(f.x[0] - fixed.x[0]) < 1e-8 && std::fabs(f.x[1] - fixed.x[1]) < 1e-8,
              what(f) + " vs fixed " + what(fixed));
    CHECK_MSG(std::fabs(f.out.fun - fixed.out.fun) <= 1e-12 * fixed.out.fun, what(f) + " vs fixed " + what(fixed));
    std::vector<double> g;
    grad_at(prog, data, loss, box, f.x, g);
    CHECK_MSG(g[2] < 0.0, "the objective decreases beyond the bound: g = " + vec(g));  // held by the bound
    CHECK_MSG(std::fabs(g[0]) < 1e-6 * std::fabs(g[2]) && std::fabs(g[1]) < 1e-6 * std::fabs(g[2]), vec(g));

    // A lower bound on e above the data's e (0.53): e ends on it.
    Map low(3);
    low.lower[0] = 0.8;
    const Fit fl = run(prog, data, make_loss(kHuber), low, {1.0, 4.0, 0.5});
    CHECK_MSG(fl.out.status == Status::converged_at_bound && fl.out.at_bound == 1u && fl.x[0] == 0.8, what(fl));
    // A box that contains the optimum: no bound is active.
    Map wide(3);
    wide.lower = {-1.0, 0.0, 0.0};
    wide.upper = {2.0, 10.0, 1.0};
    const Fit fw = run(prog, data, loss, wide, {1.5, 9.0, 0.9});
    CHECK_MSG(fw.out.status == Status::converged && fw.out.at_bound == 0 && max_abs_diff(fw.x, kTruth) < 1e-7, what(fw));
}

void test_fixed_and_tied() {
    const Program prog = saturating_law();
    const Data data = saturating_data();
    const Loss loss = make_loss(kSquared);
    // alpha fixed at its true value: e and a recovered (free indices 0 and 1).
    const Fit f = run(prog, data, loss, Map({0, 1, -1}, {0.0, 0.0, kTruth[2]}), {0.0, 4.0});
    CHECK_MSG(f.out.status == Status::converged && f.x.size() == 2, what(f));
    CHECK_MSG(std::fabs(f.x[0] - kTruth[0]) < 1e-7 && std::fabs(f.x[1] - kTruth[1]) < 1e-7, what(f));
    // Free indices out of the law's order: theta = (x[1], x[0], fixed).
    const Fit p = run(prog, data, loss, Map({1, 0, -1}, {0.0, 0.0, kTruth[2]}), {4.0, 0.0});
    CHECK_MSG(p.out.status == Status::converged && std::fabs(p.x[1] - kTruth[0]) < 1e-7 &&
                  std::fabs(p.x[0] - kTruth[1]) < 1e-7,
              what(p));

    // Tied: Chinchilla with alpha = beta (free_index 2 shared), data with alpha = beta = 0.3.
    const Program chin = chinchilla_law();
    const std::vector<double> truth = {0.5, 6.0, 0.3, 6.5, 0.3};
    const Data d = make_data(chin, truth, 60, std::log(1e6), std::log(1e10));
    const Map tied({0, 1, 2, 3, 2}, std::vector<double>(5, 0.0));
    CHECK(tied.n_free == 4);
    const Fit t = run(chin, d, make_loss(kHuber), tied, {0.0, 5.0, 0.5, 5.0});
    CHECK_MSG(t.out.status == Status::converged, what(t));
    CHECK_MSG(max_abs_diff(t.x, {0.5, 6.0, 0.3, 6.5}) < 1e-6, what(t));
    // The tied parameter's gradient and Hessian are the sums over the law's parameters that share it.
    const Analysis an = analyse(chin);
    auto ev = make_evaluator(chin, an, make_loss(kSquared));
    ev->set_points(d.view(), nullptr);
    const std::vector<double> x = {0.1, 5.5, 0.4, 6.0};
    const double theta[5] = {x[0], x[1], x[2], x[3], x[2]};
    double gf[5], Hf[25], g[4], H[16];
    const double ff = ev->evaluate(theta, 2, gf, Hf);
    const double fr = evaluate_free(*ev, tied.view(), x.data(), 2, g, H);
    CHECK(ff == fr);
    CHECK(g[0] == gf[0] && g[1] == gf[1] && g[3] == gf[3]);
    CHECK_MSG(g[2] == gf[2] + gf[4], num(g[2]) + " vs " + num(gf[2] + gf[4]));
    CHECK(H[2 * 4 + 2] == Hf[2 * 5 + 2] + Hf[2 * 5 + 4] + Hf[4 * 5 + 2] + Hf[4 * 5 + 4]);
    CHECK(H[0 * 4 + 2] == Hf[0 * 5 + 2] + Hf[0 * 5 + 4] && H[3 * 4 + 2] == Hf[3 * 5 + 2] + Hf[3 * 5 + 4]);
}

// log L = lse(a - p x, a - q x) fitted to data with p = 0.2, q = 0.6. On the line p = q the law is a single power
// law; the best fit on that line (a tied fit) is a saddle point of the untied problem: its gradient is zero up
// to rounding and, by symmetry, orthogonal to (0, 1, -1), along which the Hessian is negative. The Newton step
// and every interior step keep p = q; only a boundary step along the negative curvature (the hard case of the
// trust-region subproblem) leaves the line and finds the minimum, where f = 0.
void test_hard_case() {
    const Program prog = symmetric_law();
    const std::vector<double> truth = {1.0, 0.2, 0.6};
    const Data data = make_data(prog, truth, 40, 0.0, 8.0);
    for (int kind : {kSquared, kHuber}) {
        const Loss loss = make_loss(kind);
        const Fit line = run(prog, data, loss, Map({0, 1, 1}, {0.0, 0.0, 0.0}), {0.5, 0.4});
        CHECK_MSG(line.out.status == Status::converged, what(line));
        const std::vector<double> saddle = {line.x[0], line.x[1], line.x[1]};
        std::vector<double> g, H;
        const double f0 = grad_at(prog, data, loss, Map(3), saddle, g, &H);
        CHECK_MSG(g[1] == g[2], vec(g));  // the gradient is orthogonal to (0, 1, -1)
        const double curv = 0.5 * (H[4] - H[5] - H[7] + H[8]);  // v.H.v, v = (0, 1, -1) / sqrt 2
        CHECK_MSG(curv < 0.0, "negative curvature along (0, 1, -1): " + num(curv));
        CHECK_MSG(f0 > 1e-6, num(f0));  // the line cannot fit the data
        for (const std::vector<double>& start : {saddle, std::vector<double>{0.5, 0.4, 0.4}}) {
            const Fit f = run(prog, data, loss, Map(3), start);
            const std::string ctx = "loss " + std::to_string(kind) + " from " + vec(start) + ": " + what(f);
            CHECK_MSG(f.out.status == Status::converged, ctx);
            CHECK_MSG(f.out.fun < 1e-20 && f.out.fun < f.f_start, ctx);
            const double lo = std::min(f.x[1], f.x[2]), hi = std::max(f.x[1], f.x[2]);
            CHECK_MSG(std::fabs(f.x[0] - 1.0) < 1e-6 && std::fabs(lo - 0.2) < 1e-6 && std::fabs(hi - 0.6) < 1e-6, ctx);
        }
    }
}

void test_status_codes() {
    const Program prog = saturating_law();
    const Data data = saturating_data();
    // max_iterations: one iteration from a far start; the one step taken still decreases the objective.
    SolverOptions one;
    one.max_iter = 1;
    const Fit m = run(prog, data, make_loss(kSquared), Map(3), {-2.0, 1.0, 0.05}, one);
    CHECK_MSG(m.out.status == Status::max_iterations && m.out.nit == 1, what(m));
    CHECK_MSG(std::isfinite(m.out.fun) && m.out.fun <= m.f_start, what(m));
    // non_finite: the objective overflows at the start (linear residual e^v - y with v ~ 800; a log residual of
    // 1e200, whose square overflows).
    const Fit o = run(prog, data, make_loss(kSquared, Residual::linear), Map(3), {0.0, 800.0, 0.34});
    CHECK_MSG(o.out.status == Status::non_finite && o.out.nit == 0, what(o));
    const Fit s = run(prog, data, make_loss(kSquared), Map(3), {0.0, 1e200, 0.34});
    CHECK_MSG(s.out.status == Status::non_finite && s.out.nit == 0, what(s));
    // not_run: an all-zero weight row of a batch (the other row is fitted).
    const Analysis an = analyse(prog);
    const Map map(3);
    std::vector<double> weights(static_cast<std::size_t>(2 * data.n), 1.0);
    std::fill(weights.begin() + data.n, weights.end(), 0.0);
    const std::vector<double> start = {0.0, 4.0, 0.5};
    BatchInput in;
    in.prog = &prog;
    in.an = &an;
    in.loss = make_loss(kSquared);
    in.data = data.view();
    in.weights = weights.data();
    in.R = 2;
    in.starts = start.data();
    in.S = 1;
    in.map = map.view();
    in.threads = 1;
    std::vector<double> x(6), fun(2);
    std::vector<std::int32_t> status(2, -1), nit(2), nfev(2), best(2), nsucc(2);
    std::vector<std::uint32_t> atb(2);
    BatchOutput out{x.data(), fun.data(), status.data(), nit.data(), nfev.data(), atb.data(), best.data(), nsucc.data()};
    CHECK(run_batch(in, false, out).empty());
    CHECK_MSG(status[0] == static_cast<int>(Status::converged), std::to_string(status[0]));
    CHECK_MSG(status[1] == static_cast<int>(Status::not_run), std::to_string(status[1]));
    CHECK(std::isnan(fun[1]) && nit[1] == 0 && nsucc[1] == 0 && nsucc[0] == 1);
    CHECK(x[3] == start[0] && x[4] == start[1] && x[5] == start[2]);  // the start, untouched
}

void test_check_options() {
    SolverOptions o;
    CHECK(std::string(check_options(o)).empty());
    o.max_iter = 0;
    CHECK(contains(check_options(o), "max_iter"));
    o = SolverOptions();
    o.xtol = 0.0;
    CHECK(contains(check_options(o), "xtol"));
    o = SolverOptions();
    o.radius0 = kInf;
    CHECK(contains(check_options(o), "radius0"));
}

}  // namespace

int main() {
    test_recovery();
    test_bounds();
    test_fixed_and_tied();
    test_hard_case();
    test_status_codes();
    test_check_options();
    return finish("test_solver");
}
