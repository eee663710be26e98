#include "lawfit/solver.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "lawfit/smallmat.hpp"

namespace lawfit {

namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();
constexpr double kBig = std::numeric_limits<double>::max();  // the trust radius stays finite

bool all_finite(int n, const double* a) {
    for (int i = 0; i < n; ++i)
        if (!std::isfinite(a[i])) return false;
    return true;
}

// Euclidean norm; rescaled when the plain sum of squares overflows (a step of 1e160 has a norm, not inf).
double norm2(int n, const double* a) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += a[i] * a[i];
    if (std::isfinite(s)) return std::sqrt(s);
    double m = 0.0;
    for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i]));
    if (!std::isfinite(m)) return m;
    s = 0.0;
    for (int i = 0; i < n; ++i) s += (a[i] / m) * (a[i] / m);
    return m * std::sqrt(s);
}

// |D v|.
double scaled_norm(int n, const double* D, const double* v) {
    double t[kMaxParams];
    for (int i = 0; i < n; ++i) t[i] = D[i] * v[i];
    return norm2(n, t);
}

// Model decrease -(g.s + s.H.s / 2) for a step s over all n free parameters.
double predicted(int n, const double* g, const double* H, const double* s) {
    double lin = 0.0, quad = 0.0;
    for (int i = 0; i < n; ++i) {
        lin += g[i] * s[i];
        double hs = 0.0;
        for (int j = 0; j < n; ++j) hs += H[i * n + j] * s[j];
        quad += s[i] * hs;
    }
    return -(lin + 0.5 * quad);
}

// Trust-region subproblem in the eigenbasis: min ghat.z + z.diag(lam).z / 2, |z| <= delta.
// Returns z; sets *interior when the unconstrained minimiser is inside (a Newton step).
void tr_subproblem(int n, const double* lam, const double* ghat, double delta, double* z, bool* interior) {
    double lmin = lam[0], lmax = std::fabs(lam[0]);
    for (int k = 1; k < n; ++k) {
        lmin = std::min(lmin, lam[k]);
        lmax = std::max(lmax, std::fabs(lam[k]));
    }
    const double tol = 64.0 * kEps * lmax;  // eigenvalues below this are treated as zero curvature
    double gn = 0.0;
    for (int k = 0; k < n; ++k) gn += ghat[k] * ghat[k];
    gn = std::sqrt(gn);
    *interior = false;
    if (lmin > tol) {
        double s2 = 0.0;
        for (int k = 0; k < n; ++k) {
            z[k] = -ghat[k] / lam[k];
            s2 += z[k] * z[k];
        }
        if (std::sqrt(s2) <= delta) {
            *interior = true;
            return;
        }
    }
    // Boundary solution: find mu > max(0, -lmin) with |z(mu)| = delta, z_k(mu) = -ghat_k / (lam_k + mu).
    const double mu_lo0 = std::max(0.0, -lmin + tol);
    auto znorm = [&](double mu) {
        double s2 = 0.0;
        for (int k = 0; k < n; ++k) {
            const double d = lam[k] + mu;
            if (d > 0.0) s2 += (ghat[k] / d) * (ghat[k] / d);
            else if (ghat[k] != 0.0) return std::numeric_limits<double>::infinity();
        }
        return std::sqrt(s2);
    };
    double lo = mu_lo0, hi = mu_lo0 + gn / delta + tol;
    if (znorm(lo) <= delta) {
        // Hard case (or zero gradient along the most negative curvature): step to the boundary along it.
        int kmin = 0;
        for (int k = 1; k < n; ++k)
            if (lam[k] < lam[kmin]) kmin = k;
        double s2 = 0.0;
        for (int k = 0; k < n; ++k) {
            const double d = lam[k] + lo;
            z[k] = (d > 0.0 && k != kmin) ? -ghat[k] / d : 0.0;
            s2 += z[k] * z[k];
        }
        const double tau = std::sqrt(std::max(0.0, delta * delta - s2));
        z[kmin] += ghat[kmin] > 0 ? -tau : tau;
        return;
    }
    // Safeguarded Newton on phi(mu) = 1/|z(mu)| - 1/delta (increasing, nearly linear in mu).
    double mu = hi;
    for (int it = 0; it < 60; ++it) {
        double s2 = 0.0, ds2 = 0.0;  // |z|^2 and d|z|^2/dmu
        for (int k = 0; k < n; ++k) {
            const double d = lam[k] + mu;
            if (d <= 0.0) continue;
            const double zk = ghat[k] / d;
            s2 += zk * zk;
            ds2 += -2.0 * zk * zk / d;
        }
        const double zn = std::sqrt(s2);
        const double phi = 1.0 / zn - 1.0 / delta;
        if (phi > 0) hi = mu; else lo = mu;  // phi > 0 means step too short: mu too large
        if (std::fabs(zn - delta) <= 1e-3 * delta) break;
        const double dphi = -0.5 * ds2 / (s2 * zn);
        double next = mu - phi / dphi;
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        mu = next;
    }
    for (int k = 0; k < n; ++k) {
        const double d = lam[k] + mu;
        z[k] = d > 0.0 ? -ghat[k] / d : 0.0;
    }
}

}  // namespace

const char* check_options(const SolverOptions& opt) {
    if (opt.max_iter < 1) return "max_iter must be at least 1";
    if (!(opt.xtol > 0.0 && opt.xtol < 1.0)) return "xtol must lie in (0, 1)";
    if (!(opt.ftol >= 0.0 && opt.ftol < 1.0)) return "ftol must lie in [0, 1)";
    if (!(opt.irls >= 0.0 && std::isfinite(opt.irls))) return "irls must be >= 0 and finite";
    if (!(opt.switch_rtol >= 0.0 && opt.switch_rtol < 1.0)) return "switch_rtol must lie in [0, 1)";
    if (!(opt.radius0 > 0.0 && std::isfinite(opt.radius0))) return "radius0 must be positive and finite";
    return "";
}

double evaluate_free(Evaluator& ev, const ParamMap& map, const double* x, int mode, double* g, double* H) {
    double theta[kMaxParams], gf[kMaxParams], Hf[kMaxParams * kMaxParams];
    const int nf = map.n_full, n = map.n_free;
    for (int k = 0; k < nf; ++k) theta[k] = map.free_index[k] >= 0 ? x[map.free_index[k]] : map.fixed_value[k];
    const double f = ev.evaluate(theta, mode, gf, Hf);
    if (mode >= 1) {
        for (int j = 0; j < n; ++j) g[j] = 0.0;
        for (int k = 0; k < nf; ++k)
            if (map.free_index[k] >= 0) g[map.free_index[k]] += gf[k];
    }
    if (mode >= 2) {
        for (int j = 0; j < n * n; ++j) H[j] = 0.0;
        for (int k = 0; k < nf; ++k) {
            const int a = map.free_index[k];
            if (a < 0) continue;
            for (int l = 0; l < nf; ++l) {
                const int b = map.free_index[l];
                if (b >= 0) H[a * n + b] += Hf[k * nf + l];
            }
        }
    }
    return f;
}

FitOutcome solve(Evaluator& ev, const ParamMap& map, const SolverOptions& opt, double* x) noexcept {
    FitOutcome out;
    const int n = map.n_free;
    const double* lo = map.lower;
    const double* hi = map.upper;
    double g[kMaxParams], H[kMaxParams * kMaxParams];
    double xt[kMaxParams], gt[kMaxParams], Ht[kMaxParams * kMaxParams];
    double s[kMaxParams];
    // Eigen-decomposition of the free Hessian at x (valid until x or H change).
    double lam[kMaxParams], V[kMaxParams * kMaxParams];
    int eig_idx[kMaxParams], eig_m = 0;
    bool eig_valid = false;
    for (int j = 0; j < n; ++j) x[j] = std::min(std::max(x[j], lo[j]), hi[j]);

    static const bool trace = std::getenv("LAWFIT_TRACE") != nullptr;
    double D[kMaxParams];  // trust-region scaling (1: none; every formula below is then the unscaled one, bit for bit)
    for (int j = 0; j < n; ++j) D[j] = map.trust_scale ? map.trust_scale[j] : 1.0;
    double curv = opt.irls;        // extra Huber curvature of the next evaluations (phase 1 while > 0)
    double hcurv = curv;           // ... and the one the current H was computed with
    ev.set_curvature(curv);
    double f = evaluate_free(ev, map, x, 2, g, H);
    double fs = ev.objective_size();  // size of f for the relative tests (see Evaluator::objective_size)
    const double floor = ev.objective_floor();
    out.nfev = 1;
    out.fun = f;
    if (!std::isfinite(f) || !all_finite(n, g) || !all_finite(n * n, H)) {
        out.status = Status::non_finite;
        ev.set_curvature(0.0);
        return out;
    }
    double xmax = 0.0;
    for (int j = 0; j < n; ++j) xmax = std::max(xmax, std::fabs(x[j]));
    double delta = opt.radius0 * std::max(1.0, xmax);
    // Leave phase 1: re-evaluate the exact Hessian at x. Returns false if it is not finite.
    auto to_exact = [&]() {
        eig_valid = false;
        curv = hcurv = 0.0;
        ev.set_curvature(0.0);
        f = evaluate_free(ev, map, x, 2, g, H);
        fs = ev.objective_size();
        ++out.nfev;
        return std::isfinite(f) && all_finite(n, g) && all_finite(n * n, H);
    };
    // At a stationary point of the current model: in phase 1 switch to the exact Hessian and go on (returns
    // true); in phase 2 the fit has converged (returns false with st set).
    auto stationary = [&](Status& st) {
        if (hcurv > 0.0) {
            if (to_exact()) return true;
            st = Status::non_finite;
            return false;
        }
        st = Status::converged;
        return false;
    };

    Status status = Status::max_iterations;
    for (int it = 0; it < opt.max_iter; ++it) {
        if (opt.cancel && opt.cancel->load(std::memory_order_relaxed)) break;  // Ctrl-C: stop this fit too
        out.nit = it + 1;
        // Free set: variables not held on a bound by the gradient.
        int idx[kMaxParams], m = 0;
        for (int j = 0; j < n; ++j) {
            const bool held = (x[j] <= lo[j] && g[j] > 0.0) || (x[j] >= hi[j] && g[j] < 0.0);
            if (!held) idx[m++] = j;
        }
        bool gzero = true;
        for (int a = 0; a < m; ++a) gzero = gzero && g[idx[a]] == 0.0;
        if (m == 0 || gzero) {
            status = Status::converged;
            break;
        }
        // Fast path: a positive definite free Hessian whose Newton step lies inside the trust region.
        bool interior = false;
        {
            double L[kMaxParams * kMaxParams], sn[kMaxParams];
            for (int a = 0; a < m; ++a)
                for (int b = 0; b < m; ++b) L[a * m + b] = H[idx[a] * n + idx[b]];
            if (cholesky(m, L)) {
                double s2 = 0.0;
                for (int a = 0; a < m; ++a) sn[a] = -g[idx[a]];
                cholesky_solve(m, L, sn);
                for (int a = 0; a < m; ++a) {
                    const double ds = D[idx[a]] * sn[a];
                    s2 += ds * ds;
                }
                if (std::sqrt(s2) <= delta) {
                    interior = true;
                    for (int j = 0; j < n; ++j) s[j] = 0.0;
                    for (int a = 0; a < m; ++a) s[idx[a]] = sn[a];
                }
            }
        }
        if (!interior) {
            double ghat[kMaxParams], z[kMaxParams];
            // In the scaled variables y = D s: H -> D^-1 H D^-1, g -> D^-1 g, |y| <= delta.
            // After a rejected step x, H and the free set are unchanged: reuse the decomposition (the result is
            // identical; only the radius differs).
            bool same = eig_valid && eig_m == m;
            for (int a = 0; same && a < m; ++a) same = eig_idx[a] == idx[a];
            if (!same) {
                double A[kMaxParams * kMaxParams];
                for (int a = 0; a < m; ++a)
                    for (int b = 0; b < m; ++b)
                        A[a * m + b] = H[idx[a] * n + idx[b]] / (D[idx[a]] * D[idx[b]]);
                jacobi_eigen(m, A, lam, V);
                eig_valid = true;
                eig_m = m;
                for (int a = 0; a < m; ++a) eig_idx[a] = idx[a];
            }
            for (int k = 0; k < m; ++k) {
                double t = 0.0;
                for (int a = 0; a < m; ++a) t += V[a * m + k] * (g[idx[a]] / D[idx[a]]);
                ghat[k] = t;
            }
            tr_subproblem(m, lam, ghat, delta, z, &interior);
            for (int j = 0; j < n; ++j) s[j] = 0.0;
            for (int a = 0; a < m; ++a) {
                double t = 0.0;
                for (int k = 0; k < m; ++k) t += V[a * m + k] * z[k];
                s[idx[a]] = t / D[idx[a]];
            }
        }
        const double fscale = fs;
        if (interior) {
            const double pred_newton = predicted(n, g, H, s);
            if (hcurv > 0.0) {
                if (pred_newton <= opt.switch_rtol * fscale) {
                    if (stationary(status)) continue;
                    break;
                }
            } else {
                // Converged: the Newton step is negligible, or predicts only a rounding-level decrease.
                bool small = true;
                for (int j = 0; j < n; ++j)
                    small = small && std::fabs(s[j]) <= opt.xtol * (1.0 + std::fabs(x[j]));
                if (small || pred_newton <= opt.ftol * fscale) {
                    status = Status::converged;
                    break;
                }
            }
        }
        // Keep the trial point in the box: the step truncated at the first bound it meets (the model
        // decreases along the whole ray, and the blocking variable lands on its bound, where the next
        // iteration holds it) or the step projected into the box, whichever predicts more decrease.
        double pred;
        bool truncated = false;
        {
            double alpha = 1.0;
            int block = -1;
            double block_at = 0.0;
            for (int j = 0; j < n; ++j) {
                const double bound = x[j] + s[j] < lo[j] ? lo[j] : (x[j] + s[j] > hi[j] ? hi[j] : x[j]);
                if (bound != x[j] && (bound - x[j]) / s[j] < alpha) {
                    alpha = (bound - x[j]) / s[j];
                    block = j;
                    block_at = bound;
                }
            }
            alpha = std::max(alpha, 0.0);
            double sp[kMaxParams], st[kMaxParams];
            for (int j = 0; j < n; ++j) {
                sp[j] = std::min(std::max(x[j] + s[j], lo[j]), hi[j]) - x[j];
                st[j] = alpha * s[j];
            }
            const double pred_p = predicted(n, g, H, sp);
            const double pred_t = alpha < 1.0 ? predicted(n, g, H, st) : pred_p;
            const bool use_t = alpha < 1.0 && !(pred_p >= pred_t);
            for (int j = 0; j < n; ++j) {
                s[j] = use_t ? st[j] : sp[j];
                xt[j] = std::min(std::max(x[j] + s[j], lo[j]), hi[j]);
            }
            if (use_t) {
                xt[block] = block_at;  // exactly on the bound (x + alpha s may round to a hair inside it)
                truncated = true;
            }
            for (int j = 0; j < n; ++j) s[j] = xt[j] - x[j];
            if (alpha < 1.0) interior = false;
            pred = predicted(n, g, H, s);
        }
        if (!(pred > 0.0)) {
            // Projection spoiled the model step: fall back to the projected Cauchy point, along the steepest
            // descent direction of the scaled variables, d = -D^-2 g (|D d|^2 = -g.d = dd).
            double d[kMaxParams], dd = 0.0, dHd = 0.0;
            for (int j = 0; j < n; ++j) d[j] = 0.0;
            for (int a = 0; a < m; ++a) d[idx[a]] = -g[idx[a]] / (D[idx[a]] * D[idx[a]]);
            for (int j = 0; j < n; ++j) {
                dd -= g[j] * d[j];
                double hd = 0.0;
                for (int k = 0; k < n; ++k) hd += H[j * n + k] * d[k];
                dHd += d[j] * hd;
            }
            double t = delta / std::sqrt(dd);
            if (dHd > 0.0) t = std::min(t, dd / dHd);
            if (!(std::isfinite(dd) && std::isfinite(dHd))) {
                // Huge gradient: the same step computed along the unit direction u = d / |d|, where
                // t |d| = min(delta / |D u|, -g.u / u.H.u), without overflowing |d|^2.
                const double dn = norm2(n, d);
                double u[kMaxParams], uHu = 0.0, gu = 0.0;
                for (int j = 0; j < n; ++j) u[j] = d[j] / dn;
                for (int j = 0; j < n; ++j) {
                    double hu = 0.0;
                    for (int k = 0; k < n; ++k) hu += H[j * n + k] * u[k];
                    uHu += u[j] * hu;
                    gu -= g[j] * u[j];
                }
                double len = delta / scaled_norm(n, D, u);
                if (uHu > 0.0) len = std::min(len, gu / uHu);
                t = len / dn;
            }
            for (int j = 0; j < n; ++j) {
                xt[j] = std::min(std::max(x[j] + t * d[j], lo[j]), hi[j]);
                s[j] = xt[j] - x[j];
            }
            interior = false;
            pred = predicted(n, g, H, s);
            if (!(pred > 0.0)) {  // no decrease is predicted anywhere: stationary to rounding
                if (stationary(status)) continue;
                break;
            }
        }
        const double ft = evaluate_free(ev, map, xt, 2, gt, Ht);
        const double fst = ev.objective_size();
        ++out.nfev;
        const double actual = f - ft;
        const double rho = std::isfinite(ft) ? actual / pred : -1.0;
        if (trace) {  // debugging aid: LAWFIT_TRACE=1 prints one line per iteration (use threads=1)
            std::fprintf(stderr, "it %d phase %d f %.12e pred %.3e rho %.3f |s| %.3e delta %.3e %s free %d x", it,
                         hcurv > 0.0 ? 1 : 2, f, pred, rho, norm2(n, s), delta, interior ? "int" : "bnd", m);
            for (int j = 0; j < n; ++j) std::fprintf(stderr, " %.6g", x[j]);
            std::fprintf(stderr, "\n");
        }
        if (!truncated && std::isfinite(ft) && pred <= opt.ftol * fscale && std::fabs(actual) <= opt.ftol * fscale) {
            // Both decreases are at rounding level: nothing left to gain here.
            if (stationary(status)) continue;
            break;
        }
        const double snorm = scaled_norm(n, D, s);
        if (rho < 0.25) delta = 0.25 * snorm;
        else if (rho > 0.75 && !interior) delta = std::min(std::max(delta, 2.0 * snorm), kBig);
        if (rho > 1e-4) {
            if (!all_finite(n, gt) || !all_finite(n * n, Ht)) {
                for (int j = 0; j < n; ++j) x[j] = xt[j];
                f = ft;
                status = Status::non_finite;
                break;
            }
            for (int j = 0; j < n; ++j) x[j] = xt[j];
            for (int j = 0; j < n; ++j) g[j] = gt[j];
            for (int j = 0; j < n * n; ++j) H[j] = Ht[j];
            eig_valid = false;
            f = ft;
            fs = fst;
            hcurv = curv;
            if (curv > 0.0 && interior && rho > kIrlsRho) {
                // The damped model was too cautious: less extra curvature from the next evaluation on.
                curv *= kIrlsShrink;
                if (curv < kIrlsMin * opt.irls) curv = 0.0;
                ev.set_curvature(curv);
            }
        } else {
            double xm = 0.0, dmin = D[0];
            for (int j = 0; j < n; ++j) {
                xm = std::max(xm, std::fabs(x[j]));
                dmin = std::min(dmin, D[j]);
            }
            if (delta / dmin <= opt.xtol * (1.0 + xm)) {  // no step longer than that in any coordinate
                if (hcurv > 0.0) {
                    if (!stationary(status)) break;
                    delta = opt.radius0 * std::max(1.0, xm);
                    continue;
                }
                // Nothing left to gain at this scale: converged when the model predicts only rounding-level
                // decrease, else the trust region collapsed.
                // A perfect fit (f at the floor of rounding, Evaluator::objective_floor) is converged too: its
                // relative tests see only rounding noise.
                status = pred <= 1e3 * kEps * fs || f <= floor ? Status::converged : Status::step_failed;
                break;
            }
        }
    }
    if (status == Status::max_iterations && f <= floor) status = Status::converged;  // perfect, within rounding
    ev.set_curvature(0.0);
    out.fun = f;
    std::uint32_t mask = 0;
    for (int j = 0; j < n; ++j)
        if (x[j] <= lo[j] || x[j] >= hi[j]) mask |= 1u << j;
    out.at_bound = mask;
    if (status == Status::converged && mask != 0) status = Status::converged_at_bound;
    out.status = status;
    return out;
}

}  // namespace lawfit
