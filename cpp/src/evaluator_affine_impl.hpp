// Fragment of evaluator_impl.hpp, included inside its namespaces (once per instruction set): the evaluator for
// programs of the affine log-sum-exp form (AffinePlan in program.hpp),
//
//     log L_hat_i = log( sum_k exp(u_ik) + sum_l a_l ),   u_ik = c_k(theta) + sum_f d_kf(theta) x_if,
//
// where c_k, d_kf and the linear terms a_l depend on the parameters only. Per evaluation, the coefficients and
// their exact gradients and Hessians are computed once ("duals", below). Per point, only the terms, one log and
// the loss remain; the derivatives of the objective are then small matrices of moments over the points:
//
//   with omega_ik = d log L_hat_i / d u_ik (softmax weights; 1 / S_i for a linear term) and the basis functions
//   phi_im = omega_ik x_is for each term k and slot s (x_i0 = 1, then the term's features), the gradient of
//   log L_hat_i is g_i = sum_m phi_im v_m, where v_m is the gradient of the coefficient in slot m. So
//
//     G = sum_m A_m v_m,                                       A_m = sum_i w_i rho'_i phi_im
//     H = sum_mn Q_mn v_m v_n^T + sum_m A_m h_m                Q_mn = sum_i w_i (rho''_i - rho'_i) phi_im phi_in
//         + sum_{log-space k} sum_ss' R_kss' v_ks v_ks'^T      R_kss' = sum_i w_i rho'_i omega_ik x_is x_is'
//
//   (h_m: Hessian of the coefficient in slot m; R_kss' = A_ks' when s = 0). The moment sums run over the
//   points in registers (reduce_block), which is what makes this kernel fast: no per-point derivative arrays.
// The evaluator is chosen by make() whenever the plan applies; tests compare it with the interpreter (Impl).

// A data-independent quantity with its gradient and Hessian with respect to theta (dense, P x P).
struct Dual {
    double v = 0.0;
    bool dg = false, dh = false;  // gradient / Hessian may be non-zero (else they are zero and not read)
    double g[kMaxParams];
    double h[kMaxParams * kMaxParams];
};

// Four doubles as one GCC vector (one AVX register in the AVX2 build, two SSE registers in the generic one).
// Used only inside this translation unit, so the ABI note gcc gives for the generic build does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
using v4d = double __attribute__((vector_size(32)));
inline v4d load4(const double* p) {
    v4d r;
    std::memcpy(&r, p, sizeof r);
    return r;
}
inline void store4(double* p, v4d x) { std::memcpy(p, &x, sizeof x); }
inline double hsum4(const double* a) { return (a[0] + a[2]) + (a[1] + a[3]); }

// Moment sums of one block, accumulated in 4-lane partial sums (fixed order: deterministic):
// A[m] += rw1 phi_m and, with hess, Q[mn] += dd phi_m phi_n (n <= m, packed by rows).
// Rows [R0, R1) of the sums in one pass over the block: few enough accumulators to stay in registers (16 on
// AVX2). Every accumulator receives the same products in the same order whatever the split.
template <int R0, int R1>
void reduce_rows(const double* const* phi, const double* __restrict rw1, const double* __restrict dd, double* accA,
                 double* accQ, bool hess) {
    constexpr int Q0 = R0 * (R0 + 1) / 2, NQ = R1 * (R1 + 1) / 2 - Q0;
    v4d A[R1 - R0];
    for (int m = R0; m < R1; ++m) A[m - R0] = load4(accA + 4 * m);
    if (hess) {
        v4d Q[NQ];
        for (int q = 0; q < NQ; ++q) Q[q] = load4(accQ + 4 * (Q0 + q));
        for (int t = 0; t < B; t += 4) {
            v4d p[R1];
            for (int m = 0; m < R1; ++m) p[m] = load4(phi[m] + t);
            const v4d r = load4(rw1 + t), d = load4(dd + t);
            int q = 0;
            for (int m = R0; m < R1; ++m) {
                A[m - R0] += r * p[m];
                const v4d dp = d * p[m];
                for (int n = 0; n <= m; ++n) Q[q++] += dp * p[n];
            }
        }
        for (int q = 0; q < NQ; ++q) store4(accQ + 4 * (Q0 + q), Q[q]);
    } else {
        for (int t = 0; t < B; t += 4) {
            const v4d r = load4(rw1 + t);
            for (int m = R0; m < R1; ++m) A[m - R0] += r * load4(phi[m] + t);
        }
    }
    for (int m = R0; m < R1; ++m) store4(accA + 4 * m, A[m - R0]);
}

// The end of the pass that starts at row R0: as many rows as keep its accumulators (A and Q entries) at 13
// or fewer, and at least one. For M = 5 that is two passes (rows 0-2: 9 sums, rows 3-4: 11), measured 4 %
// faster per evaluation with derivatives than one pass of 20 sums (which spills) or three of at most 10.
constexpr int reduce_split(int M, int R0) {
    int r = R0 + 1;
    while (r < M && (r + 1 - R0) + ((r + 1) * (r + 2) - R0 * (R0 + 1)) / 2 <= 13) ++r;
    return r;
}

template <int M, int R0 = 0>
void reduce_block(const double* const* phi, const double* __restrict rw1, const double* __restrict dd, double* accA,
                  double* accQ, bool hess) {
    constexpr int R1 = reduce_split(M, R0);
    reduce_rows<R0, R1>(phi, rw1, dd, accA, accQ, hess);
    if constexpr (R1 < M) reduce_block<M, R1>(phi, rw1, dd, accA, accQ, hess);
}

using ReduceFn = void (*)(const double* const*, const double*, const double*, double*, double*, bool);
template <int... Ms>
ReduceFn pick_reduce(int M, std::integer_sequence<int, Ms...>) {
    ReduceFn f = nullptr;
    ((f = (M == Ms + 1 ? &reduce_block<Ms + 1> : f)), ...);
    return f;
}

class AffineImpl final : public Evaluator {
public:
    AffineImpl(const Program& prog, const Analysis& an, const Loss& loss)
        : prog_(prog), plan_(an.affine), P_(prog.n_params) {
        const std::size_t n = prog_.code.size();
        // Duals: one per needed data-independent node; 1 + (its features) per needed affine node.
        offset_.assign(n, -1);
        int count = 0;
        for (std::size_t i = 0; i + 1 < n; ++i) {
            // A feature's affine form (0 + 1 x_f) is implicit: cpart() and coef() answer for it.
            if (!plan_.needed[i] || static_cast<Op>(prog_.code[i].op) == Op::feature) continue;
            offset_[i] = count;
            count += an.nodes[i].pointwise ? 1 + popcount(plan_.fmask[i]) : 1;
        }
        duals_.resize(static_cast<std::size_t>(count));
        feats_.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            for (int f = 0; f < 32; ++f)
                if (plan_.fmask[i] >> f & 1u) feats_[i].push_back(f);
        std::size_t max_args = 1;
        for (std::size_t i = 0; i + 1 < n; ++i)
            if (plan_.needed[i] && static_cast<Op>(prog_.code[i].op) == Op::lse)
                max_args = std::max(max_args, static_cast<std::size_t>(prog_.code[i].b));
        lse_w_.assign(max_args, 0.0);
        pointwise_.resize(n);
        for (std::size_t i = 0; i < n; ++i) pointwise_[i] = an.nodes[i].pointwise;
        one_.v = 1.0;
        // Basis: term k, slot s (0: the constant coefficient or data-independent term; then its features).
        const int K = static_cast<int>(plan_.terms.size());
        M_ = plan_.n_basis;
        for (int k = 0; k < K; ++k) {
            const AffineTerm& t = plan_.terms[k];
            term_first_.push_back(static_cast<int>(basis_.size()));
            basis_.push_back({k, -1});
            for (int f : t.features) basis_.push_back({k, f});
            const int first = term_first_[k] + 1;  // basis index of the term's first feature
            if (t.pointwise && t.flag == 0)
                for (int a = 0; a < static_cast<int>(t.features.size()); ++a)
                    for (int b = a; b < static_cast<int>(t.features.size()); ++b)
                        extra_.push_back({first + a, first + b, t.features[b]});
        }
        reduce_ = pick_reduce(M_, std::make_integer_sequence<int, kMaxBasis>{});
        // Block arrays: per term (terms, then their weights omega), per basis function, and scratch.
        ws_.assign(static_cast<std::size_t>(2 * K + M_ + 8) * B, 0.0);
        double* p = ws_.data();
        auto take = [&p]() {
            double* q = p;
            p += B;
            return q;
        };
        for (int k = 0; k < K; ++k) u_.push_back(take());
        for (int k = 0; k < K; ++k) om_.push_back(take());
        for (int m = 0; m < M_; ++m) phi_.push_back(basis_[m].f < 0 ? om_[basis_[m].k] : take());
        sum_ = take();
        mx_ = take();
        lv_ = take();
        dd_ = take();
        lk_.init(loss, P_);
        lk_.rw1 = take();
        lk_.rw2 = take();
        lk_.rrs = take();
        accA_.assign(static_cast<std::size_t>(4 * M_), 0.0);
        accQ_.assign(static_cast<std::size_t>(4 * M_ * (M_ + 1) / 2), 0.0);
    }

    std::int64_t set_points(const DataView& data, const double* weights) override {
        m_ = gather_points(data, weights, feat_, y_, w_, &mpad_);
        floor_ = rounding_floor(lk_.loss, y_.data(), w_.data(), m_);
        return m_;
    }

    double evaluate(const double* theta, int mode, double* grad, double* hess) override {
        const int P = P_, K = static_cast<int>(plan_.terms.size());
        mode_ = mode;
        compute_duals(theta);
        lk_.set_theta(theta);
        // Per term: the constant coefficient (or the data-independent term) and the feature coefficients.
        double cval[kMaxBasis], dval[kMaxBasis];
        for (int m = 0; m < M_; ++m) {
            const Dual& d = basis_dual(m);
            (basis_[m].f < 0 ? cval[basis_[m].k] : dval[m]) = d.v;
        }
        std::fill(accA_.begin(), accA_.end(), 0.0);
        std::fill(accQ_.begin(), accQ_.end(), 0.0);
        double extra[kMaxBasis * kMaxBasis];  // R_kff' sums (feature pairs of log-space terms)
        for (std::size_t e = 0; e < extra_.size(); ++e) extra[e] = 0.0;
        double T[kMaxBasis] = {};             // Huber likelihood: sum rrs phi_m
        double f = 0.0, core = 0.0, gs = 0.0, hss = 0.0;
        const std::int64_t nblk = mpad_ / B;
        const int F = prog_.n_features;
        for (std::int64_t blk = 0; blk < nblk; ++blk) {
            const double* x[32];
            for (int c = 0; c < F; ++c) x[c] = feat_.data() + c * mpad_ + blk * B;
            // The terms and their sum (fast path), else max-shifted.
            double* __restrict S = sum_;
            set_zero<B>(S);
            for (int k = 0; k < K; ++k) {
                const AffineTerm& t = plan_.terms[k];
                double* __restrict u = u_[k];
                double* __restrict e = om_[k];
                if (t.pointwise) {
                    const double c = cval[k];
                    for (int s = 0; s < B; ++s) u[s] = c;
                    for (std::size_t j = 0; j < t.features.size(); ++j) {
                        const double d = dval[term_first_[k] + 1 + static_cast<int>(j)];
                        const double* __restrict xf = x[t.features[j]];
                        for (int s = 0; s < B; ++s) u[s] += d * xf[s];
                    }
                    exp_block<B>(u, e);
                    for (int s = 0; s < B; ++s) S[s] += e[s];
                } else {
                    const double ek = t.flag ? cval[k] : vm::exp(cval[k]);
                    for (int s = 0; s < B; ++s) {
                        e[s] = ek;
                        S[s] += ek;
                    }
                }
            }
            double* __restrict lv = lv_;
            if (all_within<B>(S, 1e-290, 1e290)) {
                for (int s = 0; s < B; ++s) {
                    lv[s] = vm::log_normal(S[s]);  // S in [1e-290, 1e290]: checked above
                    S[s] = 1.0 / S[s];
                }
                for (int k = 0; k < K; ++k) {
                    double* __restrict e = om_[k];
                    if (plan_.terms[k].flag)
                        for (int s = 0; s < B; ++s) e[s] = S[s];
                    else
                        for (int s = 0; s < B; ++s) e[s] *= S[s];
                }
            } else {
                shifted_block(cval);
            }
            const double* y = y_.data() + blk * B;
            const double* w = w_.data() + blk * B;
            f += lk_.block(lv, y, w);
            core += lk_.block_core;
            if (lk_.sigma_index >= 0) {
                gs += lk_.gs;
                hss += lk_.hss;
            }
            if (mode < 1) continue;
            for (int m = 0; m < M_; ++m) {
                if (basis_[m].f < 0) continue;
                double* __restrict ph = phi_[m];
                const double* __restrict om = om_[basis_[m].k];
                const double* __restrict xf = x[basis_[m].f];
                for (int s = 0; s < B; ++s) ph[s] = om[s] * xf[s];
            }
            double* __restrict dd = dd_;
            for (int s = 0; s < B; ++s) dd[s] = lk_.rw2[s] - lk_.rw1[s];
            reduce_(phi_.data(), lk_.rw1, dd, accA_.data(), accQ_.data(), mode >= 2);
            if (mode >= 2) {
                for (std::size_t e = 0; e < extra_.size(); ++e)  // sum rw1 omega_k x_f1 x_f2 = sum rw1 phi_m1 x_f2
                    extra[e] += dot3<B>(lk_.rw1, phi_[extra_[e].m1], x[extra_[e].f2]);
                if (lk_.sigma_index >= 0)
                    for (int m = 0; m < M_; ++m) T[m] += dot<B>(lk_.rrs, phi_[m]);
            }
        }
        objective_size_ = lk_.sigma_index >= 0 ? core : std::fabs(f);
        if (mode < 1) return f;
        // Assembly: small dense algebra over the basis.
        double a[kMaxBasis];
        for (int m = 0; m < M_; ++m) a[m] = hsum4(&accA_[4 * m]);
        for (int j = 0; j < P; ++j) grad[j] = 0.0;
        for (int m = 0; m < M_; ++m) {
            const Dual& d = basis_dual(m);
            if (d.dg)
                for (int j = 0; j < P; ++j) grad[j] += a[m] * d.g[j];
        }
        if (lk_.sigma_index >= 0) grad[lk_.sigma_index] += gs;
        if (mode < 2) return f;
        for (int m = 0; m < M_; ++m) {
            bd_[m] = &basis_dual(m);
            int c = 0;
            if (bd_[m]->dg)
                for (int j = 0; j < P; ++j)
                    if (bd_[m]->g[j] != 0.0) nz_[m][c++] = j;
            nnz_[m] = c;
        }
        for (int j = 0; j < P * P; ++j) hess[j] = 0.0;
        int q = 0;
        for (int m = 0; m < M_; ++m)
            for (int n = 0; n <= m; ++n, ++q) {
                const double c = hsum4(&accQ_[4 * q]);
                add_outer(hess, c, m, n, m != n);
            }
        for (int m = 0; m < M_; ++m) {
            const Dual& d = basis_dual(m);
            if (d.dh)
                for (int j = 0; j < P * P; ++j) hess[j] += a[m] * d.h[j];
        }
        // J J^T of the log-space terms: R_kss' = A_ks' when s = 0 (and A_ks when s' = 0).
        for (int k = 0; k < K; ++k) {
            const AffineTerm& t = plan_.terms[k];
            if (t.flag) continue;
            const int m0 = term_first_[k], nf = static_cast<int>(t.features.size());
            add_outer(hess, a[m0], m0, m0, false);
            for (int s = 1; s <= nf; ++s) add_outer(hess, a[m0 + s], m0, m0 + s, true);
        }
        for (std::size_t e = 0; e < extra_.size(); ++e) {
            const int m1 = extra_[e].m1, m2 = extra_[e].m2;
            add_outer(hess, extra[e], m1, m2, m1 != m2);
        }
        if (lk_.sigma_index >= 0) {
            const int sc = lk_.sigma_index;
            hess[sc * P + sc] += hss;
            for (int m = 0; m < M_; ++m) {
                const Dual& d = basis_dual(m);
                if (!d.dg) continue;
                for (int j = 0; j < P; ++j) {
                    hess[j * P + sc] += T[m] * d.g[j];
                    hess[sc * P + j] += T[m] * d.g[j];
                }
            }
        }
        return f;
    }

    void set_curvature(double c) override { lk_.curvature = c; }
    double objective_size() const override { return objective_size_; }
    double objective_floor() const override { return floor_; }

private:
    struct Basis {
        int k;  // term
        int f;  // feature column, or -1 for the constant slot
    };
    struct Extra {  // R_k f1 f2 (f1 <= f2) of a log-space affine term k
        int m1, m2;     // the basis functions of (k, f1) and (k, f2)
        int f2;         // feature column f2
    };

    static int popcount(std::uint32_t x) {
        int c = 0;
        for (; x; x &= x - 1) ++c;
        return c;
    }

    // H += c (v_m v_n^T + v_n v_m^T) if both, else c v_m v_m^T (m = n); over the non-zero gradient entries.
    void add_outer(double* H, double c, int m, int n, bool both) const {
        if (c == 0.0) return;
        const Dual& u = *bd_[m];
        const Dual& v = *bd_[n];
        const int P = P_;
        for (int a = 0; a < nnz_[m]; ++a) {
            const int j = nz_[m][a];
            const double uj = c * u.g[j];
            for (int b = 0; b < nnz_[n]; ++b) {
                const int k = nz_[n][b];
                H[j * P + k] += uj * v.g[k];
                if (both) H[k * P + j] += uj * v.g[k];
            }
        }
    }

    // The dual of basis function m: the term's constant coefficient (or the data-independent term itself) or
    // the coefficient of one of its features.
    const Dual& basis_dual(int m) const {
        const Basis& b = basis_[m];
        const int node = plan_.terms[b.k].node;
        return b.f < 0 ? cpart(node) : coef(node, b.f);
    }
    // Coefficient of feature f in the affine form of node j (zero if j is data-independent or lacks f).
    const Dual& coef(int j, int f) const {
        if (static_cast<Op>(prog_.code[j].op) == Op::feature) return prog_.code[j].a == f ? one_ : zero_;
        if (!pointwise_[j] || !(plan_.fmask[j] >> f & 1u)) return zero_;
        return duals_[offset_[j] + 1 + popcount(plan_.fmask[j] & ((1u << f) - 1u))];
    }
    // The constant part of node j's affine form (the node itself if data-independent).
    const Dual& cpart(int j) const {
        if (static_cast<Op>(prog_.code[j].op) == Op::feature) return zero_;
        return duals_[offset_[j]];
    }

    // ---- dual arithmetic (gradient when mode >= 1, Hessian when mode >= 2) ----
    void d_lin(Dual& o, double sa, const Dual& a, double sb, const Dual& b) const {
        o.v = sa * a.v + sb * b.v;
        o.dg = mode_ >= 1 && (a.dg || b.dg);
        o.dh = mode_ >= 2 && (a.dh || b.dh);
        const int P = P_;
        if (o.dg)
            for (int j = 0; j < P; ++j) o.g[j] = (a.dg ? sa * a.g[j] : 0.0) + (b.dg ? sb * b.g[j] : 0.0);
        if (o.dh)
            for (int j = 0; j < P * P; ++j) o.h[j] = (a.dh ? sa * a.h[j] : 0.0) + (b.dh ? sb * b.h[j] : 0.0);
    }
    void d_mul(Dual& o, const Dual& a, const Dual& b) const {
        const int P = P_;
        o.v = a.v * b.v;
        o.dg = mode_ >= 1 && (a.dg || b.dg);
        o.dh = mode_ >= 2 && (a.dh || b.dh || (a.dg && b.dg));
        if (o.dg)
            for (int j = 0; j < P; ++j) o.g[j] = (b.dg ? a.v * b.g[j] : 0.0) + (a.dg ? b.v * a.g[j] : 0.0);
        if (o.dh) {
            for (int j = 0; j < P * P; ++j) o.h[j] = (b.dh ? a.v * b.h[j] : 0.0) + (a.dh ? b.v * a.h[j] : 0.0);
            if (a.dg && b.dg)
                for (int j = 0; j < P; ++j)
                    for (int k = 0; k < P; ++k) o.h[j * P + k] += a.g[j] * b.g[k] + b.g[j] * a.g[k];
        }
    }
    // o = phi(a) with phi' = d1, phi'' = d2.
    void d_unary(Dual& o, const Dual& a, double v, double d1, double d2) const {
        const int P = P_;
        o.v = v;
        o.dg = mode_ >= 1 && a.dg;
        o.dh = mode_ >= 2 && a.dg;
        if (o.dg)
            for (int j = 0; j < P; ++j) o.g[j] = d1 * a.g[j];
        if (o.dh)
            for (int j = 0; j < P; ++j)
                for (int k = 0; k < P; ++k) o.h[j * P + k] = (a.dh ? d1 * a.h[j * P + k] : 0.0) + d2 * a.g[j] * a.g[k];
    }
    void d_lse(Dual& o, const Instr& in) const {
        const int K = in.b, P = P_;
        const std::int32_t* args = prog_.args.data() + in.a;
        const std::int32_t* flags = prog_.argflags.data() + in.a;
        double mx = -std::numeric_limits<double>::infinity();
        for (int k = 0; k < K; ++k) {
            const double v = duals_[offset_[args[k]]].v;
            const double l = flags[k] ? std::log(v) : v;
            mx = l > mx ? l : mx;
        }
        double* W = lse_w_.data();
        double S = 0.0;
        for (int k = 0; k < K; ++k) {
            const double v = duals_[offset_[args[k]]].v;
            W[k] = flags[k] ? std::exp(-mx) : std::exp(v - mx);
            S += flags[k] ? v * W[k] : W[k];
        }
        o.v = mx + std::log(S);
        for (int k = 0; k < K; ++k) W[k] /= S;
        o.dg = false;
        o.dh = false;
        for (int k = 0; k < K; ++k) o.dg = o.dg || duals_[offset_[args[k]]].dg;
        o.dg = o.dg && mode_ >= 1;
        o.dh = o.dg && mode_ >= 2;
        if (!o.dg) return;
        for (int j = 0; j < P; ++j) o.g[j] = 0.0;
        for (int k = 0; k < K; ++k) {
            const Dual& a = duals_[offset_[args[k]]];
            if (a.dg)
                for (int j = 0; j < P; ++j) o.g[j] += W[k] * a.g[j];
        }
        if (!o.dh) return;
        for (int j = 0; j < P * P; ++j) o.h[j] = 0.0;
        for (int k = 0; k < K; ++k) {
            const Dual& a = duals_[offset_[args[k]]];
            if (a.dh)
                for (int j = 0; j < P * P; ++j) o.h[j] += W[k] * a.h[j];
            if (!flags[k] && a.dg)
                for (int j = 0; j < P; ++j)
                    for (int l = 0; l < P; ++l) o.h[j * P + l] += W[k] * a.g[j] * a.g[l];
        }
        for (int j = 0; j < P; ++j)
            for (int l = 0; l < P; ++l) o.h[j * P + l] -= o.g[j] * o.g[l];
    }

    // Every needed node below the root, in program order: duals of data-independent nodes, and the duals of
    // the constant part and feature coefficients of the affine ones.
    void compute_duals(const double* theta) {
        const std::size_t n = prog_.code.size();
        for (std::size_t i = 0; i + 1 < n; ++i) {
            if (!plan_.needed[i]) continue;
            const Instr& in = prog_.code[i];
            const Op op = static_cast<Op>(in.op);
            if (op == Op::feature) continue;  // its affine form is implicit (coef, cpart)
            Dual* o = &duals_[offset_[i]];
            if (!pointwise_[i]) {
                const Dual& a = in.a >= 0 && op != Op::constant && op != Op::param && op != Op::lse ? duals_[offset_[in.a]] : zero_;
                switch (op) {
                    case Op::constant:
                        o->v = in.imm;
                        o->dg = o->dh = false;
                        break;
                    case Op::param:
                        o->v = theta[in.a];
                        o->dg = mode_ >= 1;
                        o->dh = false;
                        for (int j = 0; j < P_; ++j) o->g[j] = j == in.a ? 1.0 : 0.0;
                        break;
                    case Op::add: d_lin(*o, 1.0, a, 1.0, duals_[offset_[in.b]]); break;
                    case Op::sub: d_lin(*o, 1.0, a, -1.0, duals_[offset_[in.b]]); break;
                    case Op::neg: d_lin(*o, -1.0, a, 0.0, zero_); break;
                    case Op::mul: d_mul(*o, a, duals_[offset_[in.b]]); break;
                    case Op::recip: {
                        const double v = 1.0 / a.v;
                        d_unary(*o, a, v, -v * v, 2.0 * v * v * v);
                        break;
                    }
                    case Op::exp: {
                        const double v = std::exp(a.v);
                        d_unary(*o, a, v, v, v);
                        break;
                    }
                    case Op::log: {
                        const double d1 = 1.0 / a.v;
                        d_unary(*o, a, std::log(a.v), d1, -d1 * d1);
                        break;
                    }
                    case Op::expm1: {
                        const double v = std::expm1(a.v);
                        d_unary(*o, a, v, v + 1.0, v + 1.0);
                        break;
                    }
                    case Op::log1p: {
                        const double d1 = 1.0 / (1.0 + a.v);
                        d_unary(*o, a, std::log1p(a.v), d1, -d1 * d1);
                        break;
                    }
                    case Op::lse: d_lse(*o, in); break;
                    case Op::feature: break;
                }
                continue;
            }
            // Affine node: its constant part, then one coefficient per feature in its mask.
            const std::vector<int>& feats = feats_[i];
            switch (op) {
                case Op::add:
                case Op::sub: {
                    const double sb = op == Op::add ? 1.0 : -1.0;
                    d_lin(o[0], 1.0, cpart(in.a), sb, cpart(in.b));
                    int s = 1;
                    for (int f : feats) d_lin(o[s++], 1.0, coef(in.a, f), sb, coef(in.b, f));
                    break;
                }
                case Op::neg: {
                    d_lin(o[0], -1.0, cpart(in.a), 0.0, zero_);
                    int s = 1;
                    for (int f : feats) d_lin(o[s++], -1.0, coef(in.a, f), 0.0, zero_);
                    break;
                }
                case Op::mul: {  // data-independent factor u times affine form x
                    const bool ua = !pointwise_[in.a];
                    const Dual& u = duals_[offset_[ua ? in.a : in.b]];
                    const int xa = ua ? in.b : in.a;
                    scale(o[0], u, cpart(xa));
                    int s = 1;
                    for (int f : feats) scale(o[s++], u, coef(xa, f));
                    break;
                }
                default: break;  // not reached: the plan admits only these ops
            }
        }
    }
    // o = u * x where x may be the exact constants 0 or 1 (a feature's affine form): those cost nothing and
    // round nothing, so u * log N has the coefficient u itself.
    void scale(Dual& o, const Dual& u, const Dual& x) const {
        if (&x == &zero_) {
            o.v = 0.0;
            o.dg = o.dh = false;
        } else if (&x == &one_) {
            d_lin(o, 1.0, u, 0.0, zero_);
        } else {
            d_mul(o, u, x);
        }
    }

    // The max-shifted log-sum-exp of one block (the direct sum left [1e-290, 1e290]): lv, and the weights om_k.
    // cval[k]: the value of data-independent term k (log-space, or linear), as in evaluate().
    void shifted_block(const double* cval) {
        const int K = static_cast<int>(plan_.terms.size());
        double* __restrict mx = mx_;
        double* __restrict S = sum_;
        double* __restrict lv = lv_;
        const double ninf = -std::numeric_limits<double>::infinity();
        for (int s = 0; s < B; ++s) mx[s] = ninf;
        for (int k = 0; k < K; ++k) {
            const AffineTerm& t = plan_.terms[k];
            if (t.pointwise) {
                const double* __restrict u = u_[k];
                for (int s = 0; s < B; ++s) mx[s] = u[s] > mx[s] ? u[s] : mx[s];
            } else {
                const double l = t.flag ? std::log(cval[k]) : cval[k];
                for (int s = 0; s < B; ++s) mx[s] = l > mx[s] ? l : mx[s];
            }
        }
        set_zero<B>(S);
        for (int k = 0; k < K; ++k) {
            const AffineTerm& t = plan_.terms[k];
            double* __restrict e = om_[k];
            if (t.pointwise) {
                const double* __restrict u = u_[k];
                for (int s = 0; s < B; ++s) {
                    e[s] = vm::exp(u[s] - mx[s]);
                    S[s] += e[s];
                }
            } else if (t.flag) {
                const double a = cval[k];
                for (int s = 0; s < B; ++s) {
                    e[s] = vm::exp(-mx[s]);  // d value / d linear term, times S
                    S[s] += a * e[s];
                }
            } else {
                const double c = cval[k];
                for (int s = 0; s < B; ++s) {
                    e[s] = vm::exp(c - mx[s]);
                    S[s] += e[s];
                }
            }
        }
        for (int s = 0; s < B; ++s) {
            lv[s] = mx[s] + vm::log(S[s]);
            S[s] = 1.0 / S[s];
        }
        for (int k = 0; k < K; ++k) {
            double* __restrict e = om_[k];
            for (int s = 0; s < B; ++s) e[s] *= S[s];
        }
    }

    Program prog_;
    AffinePlan plan_;
    int P_;
    int M_ = 0;
    int mode_ = 2;
    std::vector<int> offset_;
    std::vector<char> pointwise_;
    std::vector<Dual> duals_;
    std::vector<std::vector<int>> feats_;  // per node: the features of its affine form (from plan_.fmask)
    mutable std::vector<double> lse_w_;  // weights of a data-independent lse (d_lse)
    Dual zero_, one_;
    std::vector<Basis> basis_;
    std::vector<int> term_first_;
    std::vector<Extra> extra_;
    ReduceFn reduce_ = nullptr;
    const Dual* bd_[kMaxBasis] = {};        // per evaluation: the dual of each basis function
    int nz_[kMaxBasis][kMaxParams] = {};    // and the indices of its non-zero gradient entries
    int nnz_[kMaxBasis] = {};
    std::vector<double> ws_;
    std::vector<double*> u_, om_, phi_;
    double *sum_ = nullptr, *mx_ = nullptr, *lv_ = nullptr, *dd_ = nullptr;
    LossKernel lk_;
    std::vector<double> accA_, accQ_;
    std::vector<double> feat_, y_, w_;
    std::int64_t m_ = 0, mpad_ = 0;
    double floor_ = -INFINITY;  // see objective_floor()
    double objective_size_ = 0.0;
};
