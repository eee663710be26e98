// The loss per block of points, shared by both evaluators (included by evaluator_impl.hpp inside its ISA
// namespace, where B, the block size, is defined): rho and its first two derivatives with respect to the
// program's output v = log L_hat, for every loss of lawfit/loss.hpp and the Huber likelihood.
//
// The residual is r = v - y (Residual::log; y = log L) or r = e^v - y (Residual::linear; y = L), so with
// e = e^v: d rho / dv = rho'(r) e and d2 rho / dv2 = rho''(r) e^2 + rho'(r) e.

struct LossKernel {
    Loss loss;
    double curvature = 0.0;  // the solver's phase-1 curvature (Evaluator::set_curvature)
    int sigma_index = -1;    // Huber likelihood: index of log sigma in theta
    double log_z = 0.0;      // Huber likelihood: log of the Huber density's normaliser
    double s = 0.0, es = 1.0;  // log sigma and exp(-s), from set_theta
    double gs = 0.0, hss = 0.0, block_core = 0.0;  // per block: sums of d/ds, d2/ds2, and of the Huber part
    double *rw1 = nullptr, *rw2 = nullptr, *rrs = nullptr;  // per point outputs (B each): w rho', w rho'', w d2/dvds
    alignas(64) double lh[B];  // linear residual: L_hat = e^v per point

    void init(const Loss& l, int n_params) {
        loss = l;
        if (loss.kind == kLossHuberLikelihood) {
            sigma_index = n_params - 1;
            const double d = loss.param;
            log_z = std::log(std::sqrt(2.0 * 3.14159265358979323846) * std::erf(d / std::sqrt(2.0)) + 2.0 * std::exp(-0.5 * d * d) / d);
        }
    }
    void set_theta(const double* theta) {
        if (sigma_index >= 0) {
            s = theta[sigma_index];
            es = std::exp(-s);
        }
    }
    // Fills rw1 = w d rho/dv, rw2 = w d2 rho/dv2 (and rrs); returns sum w rho.
    double block(const double* __restrict v, const double* __restrict y, const double* __restrict w) {
        const bool linear = loss.residual == Residual::linear;
        if (linear) {
            double* __restrict e = lh;
            for (int i = 0; i < B; ++i) e[i] = vm::exp(v[i]);
        }
        if (loss.kind == kLossHuberLikelihood) return linear ? likelihood<true>(v, y, w) : likelihood<false>(v, y, w);
#define LAWFIT_BLOCK_(k, name, S) \
    if (loss.kind == k) return linear ? run<S, true>(v, y, w) : run<S, false>(v, y, w);
        LAWFIT_LOSSES(LAWFIT_BLOCK_)
#undef LAWFIT_BLOCK_
        return std::numeric_limits<double>::quiet_NaN();  // unreachable: kinds are checked at the boundary
    }

private:
    static double sum8(const double* a) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

    template <class S, bool Linear>
    double run(const double* __restrict v, const double* __restrict y, const double* __restrict w) {
        double* __restrict rw1 = this->rw1;
        double* __restrict rw2 = this->rw2;
        const double* __restrict e = lh;
        const double p = loss.param, k = loss.asymmetry, c = curvature * loss.param;
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < B; i += 8)
            for (int l = 0; l < 8; ++l) {
                const double r = Linear ? e[i + l] - y[i + l] : v[i + l] - y[i + l];
                const double wk = r > 0.0 ? w[i + l] * k : w[i + l];  // over-predictions weigh k times
                double rho, wd1, wd2;
                S::point(r, wk, p, c, rho, wd1, wd2);
                acc[l] += wk * rho;
                if (Linear) {
                    const double el = e[i + l];
                    rw1[i + l] = wd1 * el;
                    rw2[i + l] = (wd2 * el + wd1) * el;
                } else {
                    rw1[i + l] = wd1;
                    rw2[i + l] = wd2;
                }
            }
        return sum8(acc);
    }

    // x = r / sigma; rho = huber(x) + s + log Z. Derivatives in r and s = log sigma.
    template <bool Linear>
    double likelihood(const double* __restrict v, const double* __restrict y, const double* __restrict w) {
        double* __restrict rw1 = this->rw1;
        double* __restrict rw2 = this->rw2;
        double* __restrict rrs = this->rrs;
        const double* __restrict e = lh;
        const double d = loss.param, es2 = es * es, c = curvature * d, cst = s + log_z;
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, as[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        double ass[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ac[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < B; i += 8)
            for (int l = 0; l < 8; ++l) {
                const double x = ((Linear ? e[i + l] : v[i + l]) - y[i + l]) * es;
                const double a = std::fabs(x);
                const bool quad = a <= d;
                const double hub = quad ? 0.5 * x * x : d * (a - 0.5 * d);
                const double h1 = quad ? x : std::copysign(d, x);
                const double h2 = quad ? 1.0 : 0.0;
                const double wi = w[i + l];
                acc[l] += wi * (hub + cst);
                ac[l] += wi * hub;
                const double g1 = wi * h1 * es, g2 = quad ? wi * es2 : wi * es2 * c / a;
                const double gs1 = -wi * es * (h2 * x + h1);
                as[l] += wi * (1.0 - h1 * x);
                ass[l] += wi * (h2 * x * x + h1 * x);
                if (Linear) {
                    const double el = e[i + l];
                    rw1[i + l] = g1 * el;
                    rw2[i + l] = (g2 * el + g1) * el;
                    rrs[i + l] = gs1 * el;
                } else {
                    rw1[i + l] = g1;
                    rw2[i + l] = g2;
                    rrs[i + l] = gs1;
                }
            }
        gs = sum8(as);
        block_core = sum8(ac);
        hss = sum8(ass);
        return sum8(acc);
    }
};
