// Fragment of evaluator_impl.hpp, included inside its namespaces (once per instruction set): the interpreter,
// which evaluates any program block by block in forward mode (value and structurally non-zero gradient and
// Hessian entries per node as arrays over the block).

struct Node {
    double* v = nullptr;
    double* g[kMaxParams] = {};
    double* h[kMaxPairs] = {};
};

class Impl final : public Evaluator {
public:
    Impl(const Program& prog, const Analysis& an, const Loss& loss) : prog_(prog), an_(an) {
        const std::size_t n = prog_.code.size();
        nodes_.resize(n);
        lse_w_.resize(n);
        // The block arrays: value + gradient + Hessian slots per node, lse weights, scratch (counted, and
        // limited at the boundary, by workspace_blocks in program.cpp; take() below hands them out).
        ws_.assign(workspace_blocks(prog_, an_) * B, 0.0);
        double* p = ws_.data();
        auto take = [&p]() {
            double* q = p;
            p += B;
            return q;
        };
        d1_ = take();
        d2_ = take();
        rw1_ = take();
        rw2_ = take();
        mx_ = take();
        sum_ = take();
        zero_ = take();  // stays all zeros
        rrs_ = take();
        lk_.init(loss, prog_.n_params);
        lk_.rw1 = rw1_;
        lk_.rw2 = rw2_;
        lk_.rrs = rrs_;
        for (std::size_t i = 0; i < n; ++i) {
            const Op op = static_cast<Op>(prog_.code[i].op);
            if (op == Op::feature) {
                continue;
            }
            Node& nd = nodes_[i];
            nd.v = take();
            for (int j : an_.nodes[i].grad) nd.g[j] = take();
            for (int q : an_.nodes[i].hess) nd.h[q] = take();
            if (op == Op::lse)
                for (int k = 0; k < prog_.code[i].b; ++k) lse_w_[i].push_back(take());
            (an_.nodes[i].pointwise ? pointwise_ : uniform_).push_back(static_cast<int>(i));
        }
        for (std::size_t i = 0; i < n; ++i)
            if (static_cast<Op>(prog_.code[i].op) == Op::feature) feature_nodes_.push_back(static_cast<int>(i));
        if (static_cast<Op>(prog_.code[n - 1].op) == Op::lse && an_.nodes[n - 1].pointwise)
            fused_root_ = static_cast<int>(n - 1);
    }

    std::int64_t set_points(const DataView& data, const double* weights) override {
        m_ = gather_points(data, weights, feat_, y_, w_, &mpad_);
        floor_ = rounding_floor(lk_.loss, y_.data(), w_.data(), m_);
        return m_;
    }

    double evaluate(const double* theta, int mode, double* grad, double* hess) override {
        const int P = prog_.n_params;
        theta_ = theta;
        mode_ = mode;
        for (int i : uniform_) run_node<1>(i);
        for (int i : uniform_) broadcast(i);
        const int root = static_cast<int>(prog_.code.size()) - 1;
        const bool root_is_feature = static_cast<Op>(prog_.code[root].op) == Op::feature;
        const NodeInfo& ri = an_.nodes[root];
        double f = 0.0;
        double G[kMaxParams] = {};
        double H[kMaxPairs] = {};
        const std::int64_t nblk = mpad_ / B;
        lk_.set_theta(theta);
        double core = 0.0;
        for (std::int64_t blk = 0; blk < nblk; ++blk) {
            for (int i : feature_nodes_)
                fv_[i] = feat_.data() + prog_.code[i].a * mpad_ + blk * B;
            for (int i : pointwise_) run_node<B>(i);
            const double* v = root_is_feature ? fv_[root] : nodes_[root].v;
            const double* y = y_.data() + blk * B;
            const double* w = w_.data() + blk * B;
            f += lk_.block(v, y, w);
            core += lk_.block_core;
            if (mode >= 1 && lk_.sigma_index >= 0) {  // the loss's own parameter, log sigma
                G[lk_.sigma_index] += lk_.gs;
                if (mode >= 2) {
                    H[pair_index(lk_.sigma_index, lk_.sigma_index)] += lk_.hss;
                    if (!root_is_feature)
                        for (int j : ri.grad) H[pair_index(j, lk_.sigma_index)] += dot<B>(rrs_, nodes_[root].g[j]);
                }
            }
            if (mode >= 1 && !root_is_feature) {
                const Node& nd = nodes_[root];
                for (int j : ri.grad) G[j] += dot<B>(rw1_, nd.g[j]);
                if (mode >= 2 && root == fused_root_)
                    fused_root_hessian(H);
                else if (mode >= 2)  // every pair of the root's gradient: rho'' g g^T is there even where h = 0
                    for (std::size_t a = 0; a < ri.grad.size(); ++a)
                        for (std::size_t b = a; b < ri.grad.size(); ++b) {
                            const int j = ri.grad[a], k = ri.grad[b], pq = pair_index(j, k);
                            double acc = dot3<B>(rw2_, nd.g[j], nd.g[k]);
                            if (nd.h[pq]) acc += dot<B>(rw1_, nd.h[pq]);
                            H[pq] += acc;
                        }
            }
        }
        objective_size_ = lk_.sigma_index >= 0 ? core : std::fabs(f);
        if (mode >= 1) {
            for (int j = 0; j < P; ++j) grad[j] = G[j];
            if (mode >= 2)
                for (int j = 0; j < P; ++j)
                    for (int k = j; k < P; ++k) hess[j * P + k] = hess[k * P + j] = H[pair_index(j, k)];
        }
        return f;
    }

    void set_curvature(double c) override { lk_.curvature = c; }
    double objective_size() const override { return objective_size_; }
    double objective_floor() const override { return floor_; }

private:
    void broadcast(int i) {
        Node& nd = nodes_[i];
        auto bc = [](double* a) {
            const double x = a[0];
            for (int t = 1; t < B; ++t) a[t] = x;
        };
        bc(nd.v);
        if (mode_ >= 1)
            for (int j : an_.nodes[i].grad) bc(nd.g[j]);
        if (mode_ >= 2)
            for (int q : an_.nodes[i].hess) bc(nd.h[q]);
    }

    const double* val(int j) const {
        return static_cast<Op>(prog_.code[j].op) == Op::feature ? fv_[j] : nodes_[j].v;
    }
    const Node& node(int j) const { return nodes_[j]; }  // features have no derivative slots (all null)

    template <int M>
    void run_node(int i) {
        const Instr& in = prog_.code[i];
        const NodeInfo& info = an_.nodes[i];
        Node& o = nodes_[i];
        const Op op = static_cast<Op>(in.op);
        switch (op) {
            case Op::feature: return;
            case Op::constant:
                for (int t = 0; t < M; ++t) o.v[t] = in.imm;
                return;
            case Op::param:
                for (int t = 0; t < M; ++t) o.v[t] = theta_[in.a];
                if (mode_ >= 1)
                    for (int t = 0; t < M; ++t) o.g[in.a][t] = 1.0;
                return;
            case Op::add:
            case Op::sub: {
                const double s = op == Op::add ? 1.0 : -1.0;
                const double* __restrict a = val(in.a);
                const double* __restrict b = val(in.b);
                double* __restrict v = o.v;
                for (int t = 0; t < M; ++t) v[t] = a[t] + s * b[t];
                if (mode_ >= 1)
                    for (int j : info.grad) lin2<M>(o.g[j], node(in.a).g[j], 1.0, node(in.b).g[j], s);
                if (mode_ >= 2)
                    for (int q : info.hess) lin2<M>(o.h[q], node(in.a).h[q], 1.0, node(in.b).h[q], s);
                return;
            }
            case Op::neg: {
                const double* __restrict a = val(in.a);
                for (int t = 0; t < M; ++t) o.v[t] = -a[t];
                if (mode_ >= 1)
                    for (int j : info.grad) lin2<M>(o.g[j], node(in.a).g[j], -1.0, nullptr, 0.0);
                if (mode_ >= 2)
                    for (int q : info.hess) lin2<M>(o.h[q], node(in.a).h[q], -1.0, nullptr, 0.0);
                return;
            }
            case Op::mul: {
                const double* __restrict a = val(in.a);
                const double* __restrict b = val(in.b);
                for (int t = 0; t < M; ++t) o.v[t] = a[t] * b[t];
                const Node& na = node(in.a);
                const Node& nb = node(in.b);
                if (mode_ >= 1)
                    for (int j : info.grad) {
                        double* g = o.g[j];
                        set_zero<M>(g);
                        if (na.g[j]) acc_xy<M>(g, na.g[j], b);
                        if (nb.g[j]) acc_xy<M>(g, a, nb.g[j]);
                    }
                if (mode_ >= 2)
                    for (std::size_t q = 0; q < info.hess.size(); ++q) {
                        const int pq = info.hess[q], j = info.hess_j[q], k = info.hess_k[q];
                        double* h = o.h[pq];
                        set_zero<M>(h);
                        if (na.h[pq]) acc_xy<M>(h, na.h[pq], b);
                        if (nb.h[pq]) acc_xy<M>(h, a, nb.h[pq]);
                        // d2(ab)/dj dk includes a_j b_k + a_k b_j: both terms, also when j == k.
                        if (na.g[j] && nb.g[k]) acc_xy<M>(h, na.g[j], nb.g[k]);
                        if (na.g[k] && nb.g[j]) acc_xy<M>(h, na.g[k], nb.g[j]);
                    }
                return;
            }
            case Op::recip:
            case Op::exp:
            case Op::log:
            case Op::expm1:
            case Op::log1p: {
                const double* __restrict a = val(in.a);
                double* __restrict v = o.v;
                double* __restrict d1 = d1_;
                double* __restrict d2 = d2_;
                switch (op) {
                    case Op::recip:
                        for (int t = 0; t < M; ++t) {
                            v[t] = 1.0 / a[t];
                            d1[t] = -v[t] * v[t];
                            d2[t] = 2.0 * v[t] * v[t] * v[t];
                        }
                        break;
                    case Op::exp:
                        exp_block<M>(a, v);
                        for (int t = 0; t < M; ++t) {
                            d1[t] = v[t];
                            d2[t] = v[t];
                        }
                        break;
                    case Op::log:
                        for (int t = 0; t < M; ++t) {
                            v[t] = vm::log(a[t]);
                            d1[t] = 1.0 / a[t];
                            d2[t] = -d1[t] * d1[t];
                        }
                        break;
                    case Op::expm1:
                        for (int t = 0; t < M; ++t) {
                            v[t] = std::expm1(a[t]);
                            d1[t] = v[t] + 1.0;
                            d2[t] = d1[t];
                        }
                        break;
                    default:  // log1p
                        for (int t = 0; t < M; ++t) {
                            v[t] = std::log1p(a[t]);
                            d1[t] = 1.0 / (1.0 + a[t]);
                            d2[t] = -d1[t] * d1[t];
                        }
                        break;
                }
                const Node& na = node(in.a);
                if (mode_ >= 2)  // before the gradient: reads d1 and the operand only
                    for (std::size_t q = 0; q < info.hess.size(); ++q) {
                        const int pq = info.hess[q], j = info.hess_j[q], k = info.hess_k[q];
                        double* h = o.h[pq];
                        set_zero<M>(h);
                        if (na.h[pq]) acc_xy<M>(h, d1, na.h[pq]);
                        acc_xyz<M>(h, d2, na.g[j], na.g[k]);
                    }
                if (mode_ >= 1)
                    for (int j : info.grad) {
                        double* g = o.g[j];
                        set_zero<M>(g);
                        acc_xy<M>(g, d1, na.g[j]);
                    }
                return;
            }
            case Op::lse: run_lse<M>(i); return;
        }
    }

    template <int M>  // o = ca * a + cb * b, with null meaning zero
    static void lin2(double* __restrict o, const double* __restrict a, double ca, const double* __restrict b,
                     double cb) {
        if (a && b) {
            for (int t = 0; t < M; ++t) o[t] = ca * a[t] + cb * b[t];
        } else if (a) {
            for (int t = 0; t < M; ++t) o[t] = ca * a[t];
        } else if (b) {
            for (int t = 0; t < M; ++t) o[t] = cb * b[t];
        } else {
            set_zero<M>(o);
        }
    }

    template <int M>
    void run_lse(int i) {
        const Instr& in = prog_.code[i];
        const NodeInfo& info = an_.nodes[i];
        Node& o = nodes_[i];
        const int K = in.b;
        const std::int32_t* args = prog_.args.data() + in.a;
        const std::int32_t* flags = prog_.argflags.data() + in.a;
        std::vector<double*>& W = lse_w_[i];
        double* __restrict S = sum_;
        double* __restrict v = o.v;
        // Fast path: sum the terms directly (exp of a data-independent argument once per call). Exact
        // whenever every sum lies well inside the normal range, which is checked; otherwise the block is
        // redone with the max-shifted form below. Both give log(sum) to a few ulp.
        set_zero<M>(S);
        for (int k = 0; k < K; ++k) {
            const double* __restrict a = val(args[k]);
            double* __restrict wk = W[k];
            if (flags[k] != 0) {
                for (int t = 0; t < M; ++t) {
                    wk[t] = 1.0;  // d sum / d linear term
                    S[t] += a[t];
                }
            } else if (M > 1 && !an_.nodes[args[k]].pointwise) {
                const double e = vm::exp(a[0]);
                for (int t = 0; t < M; ++t) {
                    wk[t] = e;
                    S[t] += e;
                }
            } else {
                exp_block<M>(a, wk);
                for (int t = 0; t < M; ++t) S[t] += wk[t];
            }
        }
        if (all_within<M>(S, 1e-290, 1e290)) {
            for (int t = 0; t < M; ++t) v[t] = vm::log_normal(S[t]);  // S in [1e-290, 1e290]: checked above
        } else {
            double* __restrict mx = mx_;
            const double ninf = -std::numeric_limits<double>::infinity();
            for (int t = 0; t < M; ++t) mx[t] = ninf;
            // Shift by the largest term, log-space and linear alike (log of a linear term is its log-size).
            for (int k = 0; k < K; ++k) {
                const double* __restrict a = val(args[k]);
                double* __restrict wk = W[k];
                if (flags[k] == 0) {
                    for (int t = 0; t < M; ++t) mx[t] = a[t] > mx[t] ? a[t] : mx[t];
                } else {
                    for (int t = 0; t < M; ++t) {
                        wk[t] = vm::log(a[t]);
                        mx[t] = wk[t] > mx[t] ? wk[t] : mx[t];
                    }
                }
            }
            set_zero<M>(S);
            for (int k = 0; k < K; ++k) {
                const double* __restrict a = val(args[k]);
                double* __restrict wk = W[k];
                if (flags[k] == 0) {
                    for (int t = 0; t < M; ++t) {
                        wk[t] = vm::exp(a[t] - mx[t]);
                        S[t] += wk[t];
                    }
                } else {
                    for (int t = 0; t < M; ++t) {
                        wk[t] = vm::exp(-mx[t]);  // d value / d linear term, times S
                        S[t] += a[t] * wk[t];
                    }
                }
            }
            for (int t = 0; t < M; ++t) v[t] = mx[t] + vm::log(S[t]);
        }
        if (mode_ < 1) return;
        for (int t = 0; t < M; ++t) S[t] = 1.0 / S[t];
        for (int k = 0; k < K; ++k) {
            double* __restrict wk = W[k];
            for (int t = 0; t < M; ++t) wk[t] *= S[t];
        }
        for (int j : info.grad) {
            double* g = o.g[j];
            set_zero<M>(g);
            for (int k = 0; k < K; ++k) {
                const double* gk = node(args[k]).g[j];
                if (gk) acc_xy<M>(g, W[k], gk);
            }
        }
        if (mode_ < 2 || (M > 1 && i == fused_root_)) return;  // the fused root's Hessian goes straight into H
        bool any_linear = false;
        for (int k = 0; k < K; ++k) any_linear = any_linear || flags[k] != 0;
        for (std::size_t q = 0; q < info.hess.size(); ++q) {
            const int pq = info.hess[q], j = info.hess_j[q], kk = info.hess_k[q];
            double* h = o.h[pq];
            set_zero<M>(h);
            if (!any_linear) {
                // Centred form sum_k W_k (h_k + (g_k - g)(g_k - g)^T) (the W_k sum to 1): no cancellation
                // when the gradients are large (Kaplan's inner sum has gradients ~ 1 / alpha_D^2).
                for (int k = 0; k < K; ++k) {
                    const Node& nk = node(args[k]);
                    if (nk.h[pq]) acc_xy<M>(h, W[k], nk.h[pq]);
                    acc_centred<M>(h, W[k], nk.g[j] ? nk.g[j] : zero_, o.g[j], nk.g[kk] ? nk.g[kk] : zero_,
                                   o.g[kk]);
                }
                continue;
            }
            for (int k = 0; k < K; ++k) {
                const Node& nk = node(args[k]);
                if (nk.h[pq]) acc_xy<M>(h, W[k], nk.h[pq]);
                if (flags[k] == 0 && nk.g[j] && nk.g[kk]) acc_xyz<M>(h, W[k], nk.g[j], nk.g[kk]);
            }
            sub_xy<M>(h, o.g[j], o.g[kk]);
        }
    }

    // Hessian contribution of a log-sum-exp root without forming its per-point Hessian:
    // sum_i rw1_i h_i + rw2_i g_i g_i^T with h = sum_k W_k (h_k + [log arg] g_k g_k^T) - g g^T.
    void fused_root_hessian(double* H) {
        const int i = fused_root_;
        const Instr& in = prog_.code[i];
        const NodeInfo& info = an_.nodes[i];
        const Node& o = nodes_[i];
        const int K = in.b;
        const std::int32_t* args = prog_.args.data() + in.a;
        const std::int32_t* flags = prog_.argflags.data() + in.a;
        std::vector<double*>& W = lse_w_[i];
        for (int k = 0; k < K; ++k) {  // u_k = rw1 * W_k, in place (W is not needed after this)
            double* __restrict wk = W[k];
            for (int t = 0; t < B; ++t) wk[t] *= rw1_[t];
        }
        double* __restrict d = d1_;
        for (int t = 0; t < B; ++t) d[t] = rw2_[t] - rw1_[t];
        for (std::size_t q = 0; q < info.hess.size(); ++q) {
            const int pq = info.hess[q], j = info.hess_j[q], kk = info.hess_k[q];
            double acc = dot3<B>(d, o.g[j], o.g[kk]);
            for (int k = 0; k < K; ++k) {
                const Node& nk = node(args[k]);
                if (nk.h[pq]) acc += dot<B>(W[k], nk.h[pq]);
                if (flags[k] == 0 && nk.g[j] && nk.g[kk]) acc += dot3<B>(W[k], nk.g[j], nk.g[kk]);
            }
            H[pq] += acc;
        }
    }

    Program prog_;
    Analysis an_;
    std::vector<Node> nodes_;
    std::vector<std::vector<double*>> lse_w_;
    std::vector<int> uniform_, pointwise_, feature_nodes_;
    std::vector<double> ws_;
    double *d1_ = nullptr, *d2_ = nullptr, *rw1_ = nullptr, *rw2_ = nullptr, *mx_ = nullptr, *sum_ = nullptr;
    double* zero_ = nullptr;
    std::vector<double> feat_, y_, w_;
    std::int64_t m_ = 0, mpad_ = 0;
    const double* theta_ = nullptr;
    int mode_ = 0;
    int fused_root_ = -1;  // the root node, when it is a pointwise log-sum-exp
    LossKernel lk_;
    double floor_ = -INFINITY;  // see objective_floor()
    double objective_size_ = 0.0;  // see objective_size()
    double* rrs_ = nullptr;  // Huber likelihood: w d2 rho / dv ds per point
    mutable std::vector<const double*> fv_ = std::vector<const double*>(prog_.code.size(), nullptr);
};
