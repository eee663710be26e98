// One fit: a trust-region Newton method with exact Hessians, box bounds, fixed and tied parameters.
//
// The solver works on the free parameters x (n_free <= kMaxParams). The law's full parameter vector is
// theta_k = x[free_index[k]] when free_index[k] >= 0 (several k may share one free index: tied parameters),
// else fixed_value[k]. Gradients and Hessians are summed accordingly.
//
// Every stopping rule is invariant to multiplying the objective by a positive constant (sum vs mean,
// number of points, absolute size of the loss): steps are Newton steps (scale-free), acceptance uses the
// ratio of actual to predicted decrease, and decrease tests are relative to the objective itself.
#pragma once
#include <atomic>
#include <cstdint>

#include "lawfit/evaluator.hpp"
#include "lawfit/status.hpp"

namespace lawfit {

struct SolverOptions {
    int max_iter = 200;    // iterations (each costs one evaluation with derivatives)
    double xtol = 1e-10;   // converged when the Newton step satisfies |s_j| <= xtol (1 + |x_j|) for all j
    double ftol = 1e-14;   // ... or when the Newton step predicts a decrease <= ftol |f| (rounding level),
                           // or a step's predicted and actual decrease are both that small
    double radius0 = 0.05; // initial trust radius, in units of max(1, |x|_inf)
    // Phase 1 (Huber only): Hessian with extra curvature irls * delta / |r| for points outside the Huber
    // band (see Evaluator::set_curvature), until its Newton step predicts a relative decrease below
    // switch_rtol; then exact Newton. irls = 0 runs exact Newton throughout.
    // An accepted interior phase-1 step whose actual decrease beat the model's by the factor irls_rho (the
    // extra curvature is too cautious there) multiplies irls by irls_shrink for the following evaluations;
    // below irls_min * irls it becomes 0 (exact Newton from the next evaluated point on).
    double irls = 0.25;
    double switch_rtol = 1e-4;
    // Optional: checked before every iteration; when set the fit stops (its result is then discarded).
    const std::atomic<bool>* cancel = nullptr;
};
constexpr double kIrlsRho = 1.1, kIrlsShrink = 0.25, kIrlsMin = 1e-3;

// Returns an empty string if the options are valid, else a message naming the option.
const char* check_options(const SolverOptions& opt);

struct ParamMap {
    int n_full = 0;
    int n_free = 0;
    const std::int32_t* free_index = nullptr;  // (n_full,)
    const double* fixed_value = nullptr;       // (n_full,)
    const double* lower = nullptr;             // (n_free,), may be -inf
    const double* upper = nullptr;             // (n_free,), may be +inf
    // (n_free,) positive trust-region scaling, or null for none: the radius bounds |D s|, so a parameter
    // whose unit change moves the law's terms a lot takes proportionally smaller steps (python: trust_scale).
    const double* trust_scale = nullptr;
};

struct FitOutcome {
    Status status = Status::not_run;
    std::int32_t nit = 0;
    std::int32_t nfev = 0;
    double fun = 0.0;
    std::uint32_t at_bound = 0;  // bit j set: free parameter j on a bound at the end
};

// x: in, the start (clipped into the bounds); out, the solution. Never throws.
FitOutcome solve(Evaluator& ev, const ParamMap& map, const SolverOptions& opt, double* x) noexcept;

// Objective, gradient and Hessian with respect to the free parameters (mode as in Evaluator::evaluate).
double evaluate_free(Evaluator& ev, const ParamMap& map, const double* x, int mode, double* g, double* H);

}  // namespace lawfit
