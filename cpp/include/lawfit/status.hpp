// Per-fit status codes shared by every backend. The Python mirror is lawfit.status.Status; the human
// messages live there (one table), the numbers here must match it.
#pragma once
#include <cstdint>

namespace lawfit {

enum class Status : std::int32_t {
    converged = 0,           // stationary point found (Newton step below xtol, or no further decrease possible)
    converged_at_bound = 1,  // as converged, with at least one free parameter on a bound
    max_iterations = 2,      // iteration limit reached
    step_failed = 3,         // trust region collapsed without reaching a stationary point
    non_finite = 4,          // objective, gradient or Hessian not finite at the start or an accepted point
    not_run = 5,             // problem skipped (for example an empty weight row)
};

}  // namespace lawfit
