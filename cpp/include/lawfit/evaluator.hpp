// The objective: sum_i w_i rho(f(x_i; theta) - y_i) with f a law program, and its exact gradient and
// Hessian with respect to the law's full parameter vector theta.
//
// An Evaluator owns a workspace for one thread. set_points() gathers the points with non-zero weight
// (a bootstrap row touches ~63 % of the runs) into a compact, block-padded copy; evaluate() then interprets
// the program block by block (kBlock points at a time) in forward mode: every node carries its value and its
// structurally non-zero gradient and Hessian entries as arrays over the block, so every inner loop runs over
// points and vectorises. Node values that do not depend on the data are computed once per call.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "lawfit/loss.hpp"
#include "lawfit/program.hpp"

namespace lawfit {

// Shared data of a batch (a view; the caller keeps it alive).
struct DataView {
    const double* features = nullptr;  // (n_features, n) row-major: feature f of point i at [f * n + i]
    const double* target = nullptr;    // (n,)
    std::int64_t n = 0;
    int n_features = 0;
};

class Evaluator {
public:
    virtual ~Evaluator() = default;
    // Select the points and their weights (nullptr: all points, weight 1). Returns the number of points
    // with non-zero weight.
    virtual std::int64_t set_points(const DataView& data, const double* weights) = 0;
    // mode 0: objective only; 1: and gradient (n_params); 2: and Hessian (n_params x n_params, dense,
    // symmetric, row-major). Derivatives are with respect to the full parameter vector.
    virtual double evaluate(const double* theta, int mode, double* grad, double* hess) = 0;
    // Extra curvature for the Hessian of a Huber loss (the solver's first phase): points outside the
    // Huber band, where rho'' = 0, get c * delta / |r| (c = 1 is the IRLS majoriser). 0: exact Hessian.
    virtual void set_curvature(double c) = 0;
    // A positive size of the last objective for relative stopping tests: the objective itself, except for
    // the Huber likelihood, whose additive constants (log sigma, log Z) are left out.
    virtual double objective_size() const = 0;
    // The objective of a perfect fit of the points set by set_points, as rounding leaves it (rounding_floor in
    // loss.hpp): a fit whose stopping tests fail there (trust region collapsed, iteration limit) is converged
    // all the same when its objective is at or below it. -inf: no such floor.
    virtual double objective_floor() const { return -INFINITY; }
};

// Picks the fastest implementation this CPU supports (AVX2+FMA build or the generic build).
std::unique_ptr<Evaluator> make_evaluator(const Program& prog, const Analysis& an, const Loss& loss);
// Name of the implementation make_evaluator picks ("avx2" or "generic").
const char* evaluator_isa();
// Select the implementation for evaluators made from now on: "auto" (fastest available), "generic", or
// "avx2" (if the CPU has it). Returns false if the name is unknown or unavailable. For tests.
bool set_isa(const std::string& name);
// Which evaluator make_evaluator builds for a program: "affine_lse" (the fast kernel for affine log-sum-exp
// laws, see AffinePlan) or "interpreter" (any program). set_kernel("interpreter") forces the interpreter for
// evaluators made from now on, "auto" restores the choice; false for other names. For tests and benchmarks.
bool set_kernel(const std::string& name);
const char* kernel_name(const Analysis& an);

}  // namespace lawfit
