#include "lawfit/batch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace lawfit {

int default_threads() {
    const unsigned h = std::thread::hardware_concurrency();
    return h == 0 ? 1 : static_cast<int>(h);
}

namespace {

// Runs body(worker, begin, end) over [0, n) in chunks of `chunk`, chunks handed out dynamically.
// body must not throw; any exception is caught here and reported as an error string.
template <class Init, class Body>
std::string parallel_chunks(std::int64_t n, std::int64_t chunk, int threads, const std::atomic<bool>* cancel,
                            Init init, Body body) {
    if (n <= 0) return {};
    const std::int64_t nchunks = (n + chunk - 1) / chunk;
    int T = threads > 0 ? threads : default_threads();
    T = static_cast<int>(std::min<std::int64_t>(T, nchunks));
    std::atomic<std::int64_t> next{0};
    std::string error;
    std::mutex err_mu;
    auto worker = [&]() {
        try {
            auto state = init();
            for (;;) {
                if (cancel && cancel->load(std::memory_order_relaxed)) return;
                const std::int64_t c = next.fetch_add(1);
                if (c >= nchunks) return;
                body(state, c, c * chunk, std::min(n, (c + 1) * chunk));
            }
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(err_mu);
            if (error.empty()) error = e.what();
        } catch (...) {
            std::lock_guard<std::mutex> lock(err_mu);
            if (error.empty()) error = "unknown error in a worker thread";
        }
    };
    if (T <= 1) {
        worker();
    } else {
        std::vector<std::thread> pool;
        pool.reserve(static_cast<std::size_t>(T - 1));
        try {
            for (int t = 1; t < T; ++t) pool.emplace_back(worker);
        } catch (...) {
            // could not start all threads: the ones started and this one finish the work
        }
        worker();
        for (auto& th : pool) th.join();
    }
    if (error.empty() && cancel && cancel->load()) error = "cancelled";
    return error;
}

// Total order for the best start of a row: success first, then finite and lower objective, then index.
bool better(std::int32_t st_a, double f_a, std::int64_t s_a, std::int32_t st_b, double f_b, std::int64_t s_b) {
    const bool ok_a = st_a <= static_cast<std::int32_t>(Status::converged_at_bound);
    const bool ok_b = st_b <= static_cast<std::int32_t>(Status::converged_at_bound);
    if (ok_a != ok_b) return ok_a;
    const bool fin_a = std::isfinite(f_a), fin_b = std::isfinite(f_b);
    if (fin_a != fin_b) return fin_a;
    if (fin_a && f_a != f_b) return f_a < f_b;
    return s_a < s_b;
}

struct Candidate {
    std::int64_t r = -1, s = -1;
    FitOutcome fit;
    double x[kMaxParams];
    std::int32_t n_success = 0;
};

}  // namespace

std::string run_batch(const BatchInput& in, bool keep_all, const BatchOutput& out) {
    const int P = in.map.n_free;
    const std::int64_t R = in.R, S = in.S, total = R * S;
    const std::int64_t n = in.data.n;
    // Chunks of consecutive problems; a chunk keeps its own best candidate per row it touches.
    const std::int64_t chunk = std::max<std::int64_t>(1, std::min<std::int64_t>(16, S));
    const std::int64_t nchunks = (total + chunk - 1) / chunk;
    std::vector<std::vector<Candidate>> chunk_best(keep_all ? 0 : static_cast<std::size_t>(nchunks));

    struct State {
        std::unique_ptr<Evaluator> ev;
        std::int64_t row = -1;
        std::int64_t m = 0;
    };
    auto init = [&]() {
        State st;
        st.ev = make_evaluator(*in.prog, *in.an, in.loss);
        return st;
    };
    auto body = [&](State& st, std::int64_t c, std::int64_t begin, std::int64_t end) {
        std::vector<Candidate>* best = keep_all ? nullptr : &chunk_best[static_cast<std::size_t>(c)];
        for (std::int64_t p = begin; p < end; ++p) {
            const std::int64_t r = p / S, s = p % S;
            if (r != st.row) {
                st.m = st.ev->set_points(in.data, in.weights ? in.weights + r * n : nullptr);
                st.row = r;
            }
            double x[kMaxParams];
            const double* x0 = in.starts + ((in.starts_per_row ? r * S : 0) + s) * P;
            std::memcpy(x, x0, sizeof(double) * static_cast<std::size_t>(P));
            FitOutcome fo;
            if (st.m == 0) {  // the start, clipped into the bounds as solve() does
                for (int j = 0; j < P; ++j) x[j] = std::min(std::max(x[j], in.map.lower[j]), in.map.upper[j]);
                fo.status = Status::not_run;
                fo.fun = std::numeric_limits<double>::quiet_NaN();
            } else {
                fo = solve(*st.ev, in.map, in.opt, x);
            }
            if (in.done) in.done->fetch_add(1, std::memory_order_relaxed);
            if (keep_all) {
                std::memcpy(out.x + p * P, x, sizeof(double) * static_cast<std::size_t>(P));
                out.fun[p] = fo.fun;
                out.status[p] = static_cast<std::int32_t>(fo.status);
                out.nit[p] = fo.nit;
                out.nfev[p] = fo.nfev;
                out.at_bound[p] = fo.at_bound;
            } else {
                if (best->empty() || best->back().r != r) {
                    best->emplace_back();
                    best->back().r = r;
                }
                Candidate& cand = best->back();
                const auto st_new = static_cast<std::int32_t>(fo.status);
                if (st_new <= static_cast<std::int32_t>(Status::converged_at_bound)) ++cand.n_success;
                if (cand.s < 0 || better(st_new, fo.fun, s, static_cast<std::int32_t>(cand.fit.status), cand.fit.fun,
                                         cand.s)) {
                    cand.s = s;
                    cand.fit = fo;
                    std::memcpy(cand.x, x, sizeof(double) * static_cast<std::size_t>(P));
                }
            }
        }
    };
    std::string err = parallel_chunks(total, chunk, in.threads, in.cancel, init, body);
    if (!err.empty() || keep_all) return err;
    // Merge the chunks' candidates in chunk order.
    std::vector<Candidate> rows(static_cast<std::size_t>(R));
    for (const auto& cb : chunk_best)
        for (const Candidate& c : cb) {
            Candidate& b = rows[static_cast<std::size_t>(c.r)];
            const std::int32_t succ = b.n_success + c.n_success;
            if (b.s < 0 || better(static_cast<std::int32_t>(c.fit.status), c.fit.fun, c.s,
                                  static_cast<std::int32_t>(b.fit.status), b.fit.fun, b.s))
                b = c;
            b.n_success = succ;
        }
    for (std::int64_t r = 0; r < R; ++r) {
        const Candidate& b = rows[static_cast<std::size_t>(r)];
        std::memcpy(out.x + r * P, b.x, sizeof(double) * static_cast<std::size_t>(P));
        out.fun[r] = b.fit.fun;
        out.status[r] = static_cast<std::int32_t>(b.fit.status);
        out.nit[r] = b.fit.nit;
        out.nfev[r] = b.fit.nfev;
        out.at_bound[r] = b.fit.at_bound;
        out.best_start[r] = static_cast<std::int32_t>(b.s);
        out.n_success[r] = b.n_success;
    }
    return {};
}

std::string evaluate_batch(const Program& prog, const Analysis& an, const Loss& loss, const DataView& data,
                           const double* theta, std::int64_t B, const double* weights, bool weights_per_row,
                           double* fun, double* grad, double* hess, int threads,
                           const std::atomic<bool>* cancel) {
    const int P = prog.n_params;
    const int mode = hess ? 2 : (grad ? 1 : 0);
    struct State {
        std::unique_ptr<Evaluator> ev;
        bool loaded = false;
    };
    auto init = [&]() {
        State st;
        st.ev = make_evaluator(prog, an, loss);
        return st;
    };
    auto body = [&](State& st, std::int64_t, std::int64_t begin, std::int64_t end) {
        double g[kMaxParams], h[kMaxParams * kMaxParams];
        for (std::int64_t b = begin; b < end; ++b) {
            if (cancel && cancel->load(std::memory_order_relaxed)) return;
            if (weights_per_row || !st.loaded) {
                st.ev->set_points(data, weights ? weights + (weights_per_row ? b * data.n : 0) : nullptr);
                st.loaded = true;
            }
            fun[b] = st.ev->evaluate(theta + b * P, mode, g, h);
            if (grad) std::memcpy(grad + b * P, g, sizeof(double) * static_cast<std::size_t>(P));
            if (hess) std::memcpy(hess + b * P * P, h, sizeof(double) * static_cast<std::size_t>(P * P));
        }
    };
    return parallel_chunks(B, 64, threads, cancel, init, body);
}

}  // namespace lawfit
