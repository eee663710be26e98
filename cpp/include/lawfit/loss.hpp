// The losses rho(r) of the objective sum_i w_i rho(r_i), one struct each, and the one list of them.
//
// The residual r_i is log L_hat_i - log L_i (Residual::log) or L_hat_i - L_i (Residual::linear); the evaluators
// compute log L_hat and apply the chain rule for the linear residual (loss_kernel.hpp). Every loss here is a
// function of r alone with one real parameter (Loss::param) and the asymmetry factor (Loss::asymmetry: the
// loss of over-predictions, r > 0, times this; 1 for none). The Huber likelihood, whose scale is a fitted
// parameter of its own, is the one loss handled apart (loss_kernel.hpp).
//
// A loss is: a struct with
//   static const char* check(double param)   nullptr if the parameter is valid, else a message naming it;
//   static constexpr bool curvature          whether the solver's phase-1 extra curvature applies;
//   static void point(double r, double w, double param, double c, double& rho, double& wd1, double& wd2)
//                                            rho(r), w rho'(r) and w rho''(r); in the solver's phase 1, c is
//                                            its extra curvature times param (see Evaluator::set_curvature)
//                                            and losses with `curvature` add w c / |r| where rho'' = 0;
// and one line in LAWFIT_LOSSES. The Python registry (lawfit/losses.py) reads the kinds from _core.
#pragma once
#include <cmath>
#include <cstdint>

namespace lawfit {

enum class Residual : std::int32_t { log = 0, linear = 1 };

struct Loss {
    std::int32_t kind = 0;   // LossKind
    double param = 1e-3;     // the loss's parameter: Huber's delta, the quantile q, Cauchy's c
    double asymmetry = 1.0;  // rho(r) times this where r > 0
    Residual residual = Residual::log;
};

namespace loss {

inline bool positive_finite(double v) { return v > 0.0 && std::isfinite(v); }

// scipy.special.huber: r^2/2 inside |r| <= delta, delta (|r| - delta/2) outside.
struct Huber {
    static const char* check(double d) { return positive_finite(d) ? nullptr : "delta must be positive and finite"; }
    static constexpr bool curvature = true;
    static inline void point(double r, double w, double d, double c, double& rho, double& wd1, double& wd2) {
        const double a = std::fabs(r);
        const bool quad = a <= d;
        rho = quad ? 0.5 * r * r : d * (a - 0.5 * d);
        wd1 = w * (quad ? r : std::copysign(d, r));
        wd2 = quad ? w : w * c / a;
    }
};

// r^2 / 2.
struct Squared {
    static const char* check(double) { return nullptr; }
    static constexpr bool curvature = false;
    static inline void point(double r, double w, double, double, double& rho, double& wd1, double& wd2) {
        rho = 0.5 * r * r;
        wd1 = w * r;
        wd2 = w;
    }
};

// |r|. Not differentiable at 0: d1 = sign(r) (0 at 0), d2 = 0. lawfit fits it through a Huber continuation
// and an exact vertex step (lawfit/nonsmooth.py); this struct gives its exact value.
struct Absolute {
    static const char* check(double) { return nullptr; }
    static constexpr bool curvature = false;
    static inline void point(double r, double w, double, double, double& rho, double& wd1, double& wd2) {
        rho = std::fabs(r);
        wd1 = r > 0.0 ? w : (r < 0.0 ? -w : 0.0);
        wd2 = 0.0;
    }
};

// Pinball loss of the q-quantile: (1 - q) r for r > 0 (over-prediction), -q r for r < 0, so L_hat estimates
// the q-quantile of L. Fitted like Absolute.
struct Quantile {
    static const char* check(double q) { return q > 0.0 && q < 1.0 ? nullptr : "q must lie in (0, 1)"; }
    static constexpr bool curvature = false;
    static inline void point(double r, double w, double q, double, double& rho, double& wd1, double& wd2) {
        rho = r > 0.0 ? (1.0 - q) * r : -q * r;
        wd1 = w * (r > 0.0 ? 1.0 - q : (r < 0.0 ? -q : 0.0));
        wd2 = 0.0;
    }
};

// Cauchy (Lorentzian): c^2/2 log(1 + (r/c)^2); rho'' < 0 beyond |r| = c (a redescending loss).
struct Cauchy {
    static const char* check(double c) { return positive_finite(c) ? nullptr : "c must be positive and finite"; }
    static constexpr bool curvature = false;
    static inline void point(double r, double w, double c, double, double& rho, double& wd1, double& wd2) {
        const double u = r / c, den = 1.0 + u * u;
        rho = 0.5 * c * c * std::log1p(u * u);
        wd1 = w * (r / den);
        wd2 = w * ((1.0 - u * u) / (den * den));
    }
};

}  // namespace loss

// X(kind number, name, struct): the one list. Kind 2 is the Huber likelihood (loss_kernel.hpp), with
// Huber's parameter and check.
#define LAWFIT_LOSSES(X)                     \
    X(0, huber, ::lawfit::loss::Huber)       \
    X(1, squared, ::lawfit::loss::Squared)   \
    X(3, absolute, ::lawfit::loss::Absolute) \
    X(4, quantile, ::lawfit::loss::Quantile) \
    X(5, cauchy, ::lawfit::loss::Cauchy)

constexpr std::int32_t kLossHuberLikelihood = 2;

// nullptr if (kind, param, asymmetry) is a valid loss, else a message naming the problem.
inline const char* check_loss(const Loss& l) {
    if (!loss::positive_finite(l.asymmetry)) return "asymmetry must be positive and finite";
    if (l.residual != Residual::log && l.residual != Residual::linear) return "residual must be 0 (log) or 1 (linear)";
    if (l.kind == kLossHuberLikelihood) return loss::Huber::check(l.param);
#define LAWFIT_CHECK_(k, name, S) \
    if (l.kind == k) return S::check(l.param);
    LAWFIT_LOSSES(LAWFIT_CHECK_)
#undef LAWFIT_CHECK_
    return "unknown loss kind";
}

// The objective of a perfect fit as rounding leaves it: sum_i w_i rho(t_i), t_i = 1000 ulps of max(1, |y_i|)
// (the residual a perfect fit can show on the target's scale), of whichever sign weighs more. An objective at
// or below it is a perfect fit, a global minimum of every loss here (rho >= 0): the solver reports it converged
// even where its relative stopping tests, which then see only rounding noise, fail. -inf for the Huber likelihood,
// whose objective is not bounded below by 0.
inline double rounding_floor(const Loss& l, const double* y, const double* w, std::int64_t n) {
    if (l.kind == kLossHuberLikelihood) return -INFINITY;
    double acc = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        if (w[i] == 0.0) continue;
        const double t = 1e3 * 2.220446049250313e-16 * std::fmax(1.0, std::fabs(y[i]));
        double up = 0.0, down = 0.0, d1, d2;
#define LAWFIT_FLOOR_(k, name, S)                        \
    if (l.kind == k) {                                   \
        S::point(t, 1.0, l.param, 0.0, up, d1, d2);      \
        S::point(-t, 1.0, l.param, 0.0, down, d1, d2);   \
    }
        LAWFIT_LOSSES(LAWFIT_FLOOR_)
#undef LAWFIT_FLOOR_
        acc += w[i] * std::fmax(l.asymmetry * up, down);
    }
    return acc;
}

}  // namespace lawfit
