// The batch driver: R weight rows x S starting points, spread over threads.
//
// Problem p = r * S + s fits weight row r from start s. Problems are handed out in fixed chunks of
// consecutive p; each problem's result depends only on its inputs, and the best start of a row is chosen
// by a total order (success first, then lower objective, then lower start index), so results are
// bit-identical for any thread count.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "lawfit/evaluator.hpp"
#include "lawfit/solver.hpp"

namespace lawfit {

struct BatchInput {
    const Program* prog = nullptr;
    const Analysis* an = nullptr;
    Loss loss;
    DataView data;
    const double* weights = nullptr;  // (R, n) or nullptr (R must be 1: all ones)
    std::int64_t R = 1;
    const double* starts = nullptr;   // (S, n_free), or (R, S, n_free) when starts_per_row
    std::int64_t S = 1;
    bool starts_per_row = false;
    ParamMap map;
    SolverOptions opt;
    int threads = 0;                            // 0: all hardware threads
    const std::atomic<bool>* cancel = nullptr;  // optional: stop handing out work when set
    std::atomic<std::int64_t>* done = nullptr;  // optional: incremented after every finished problem
};

// keep_all: arrays of R * S entries (x: R * S * n_free); otherwise R entries and best_start (R,).
struct BatchOutput {
    double* x = nullptr;
    double* fun = nullptr;
    std::int32_t* status = nullptr;
    std::int32_t* nit = nullptr;
    std::int32_t* nfev = nullptr;
    std::uint32_t* at_bound = nullptr;
    std::int32_t* best_start = nullptr;  // best mode only
    std::int32_t* n_success = nullptr;   // best mode only: successful starts per row
};

// Returns an empty string on success, else an error message (a worker ran out of memory, cancelled).
std::string run_batch(const BatchInput& in, bool keep_all, const BatchOutput& out);

// Batched objective evaluation: theta (B, n_params); weights nullptr, (n,) shared or (B, n) per row.
// grad (B, n_params) and hess (B, n_params, n_params) may be nullptr. cancel: checked before every
// evaluation; when set, the call stops and returns "cancelled".
std::string evaluate_batch(const Program& prog, const Analysis& an, const Loss& loss, const DataView& data,
                           const double* theta, std::int64_t B, const double* weights, bool weights_per_row,
                           double* fun, double* grad, double* hess, int threads,
                           const std::atomic<bool>* cancel = nullptr);

int default_threads();

}  // namespace lawfit
