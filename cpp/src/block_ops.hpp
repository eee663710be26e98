// Fragment of evaluator_impl.hpp, included inside its namespaces (once per instruction set): operations on
// blocks of B points that both evaluators use (fixed-order partial sums, range checks, exp over a block,
// accumulations) and the gathering of a weight row's points into block-padded copies.

// Deterministic 8-lane partial sums (the order is fixed, independent of threads and data).
template <int M>
inline double dot(const double* __restrict a, const double* __restrict b) {
    if constexpr (M < 8) {
        double s = 0.0;
        for (int i = 0; i < M; ++i) s += a[i] * b[i];
        return s;
    } else {
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < M; i += 8)
            for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
        return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
}

template <int M>
inline double dot3(const double* __restrict a, const double* __restrict b, const double* __restrict c) {
    if constexpr (M < 8) {
        double s = 0.0;
        for (int i = 0; i < M; ++i) s += a[i] * b[i] * c[i];
        return s;
    } else {
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int i = 0; i < M; i += 8)
            for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * (b[i + l] * c[i + l]);
        return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    }
}

// True when every entry lies in [lo, hi] (a NaN does not). The comparison masks of 4-lane vectors are ORed and
// tested once at the end: cheaper than counting, which ends in a chain of scalar additions.
template <int M>
inline bool all_within(const double* __restrict a, double lo, double hi) {
    if constexpr (M % 4 != 0) {
        bool ok = true;
        for (int i = 0; i < M; ++i) ok = ok && a[i] >= lo && a[i] <= hi;
        return ok;
    } else {
        using d4 = double __attribute__((vector_size(32)));
        using m4 = long long __attribute__((vector_size(32)));
        const d4 l = {lo, lo, lo, lo}, h = {hi, hi, hi, hi};
        m4 bad = {0, 0, 0, 0};
        for (int i = 0; i < M; i += 4) {
            d4 x;
            std::memcpy(&x, a + i, sizeof x);
            bad |= ~((x >= l) & (x <= h));
        }
        return ((bad[0] | bad[1]) | (bad[2] | bad[3])) == 0;
    }
}

// out = exp(a) over M points; through vm::exp_normal (the same values, less work) when every argument lies in
// [-708, 709].
template <int M>
inline void exp_block(const double* __restrict a, double* __restrict out) {
    if (all_within<M>(a, -708.0, 709.0))
        for (int i = 0; i < M; ++i) out[i] = vm::exp_normal(a[i]);
    else
        for (int i = 0; i < M; ++i) out[i] = vm::exp(a[i]);
}

template <int M>
inline void set_zero(double* __restrict o) {
    for (int i = 0; i < M; ++i) o[i] = 0.0;
}
template <int M>  // o += x * y
inline void acc_xy(double* __restrict o, const double* __restrict x, const double* __restrict y) {
    for (int i = 0; i < M; ++i) o[i] += x[i] * y[i];
}
template <int M>  // o += s * x
inline void acc_sx(double* __restrict o, double s, const double* __restrict x) {
    for (int i = 0; i < M; ++i) o[i] += s * x[i];
}
template <int M>  // o += x * y * z
inline void acc_xyz(double* __restrict o, const double* __restrict x, const double* __restrict y,
                    const double* __restrict z) {
    for (int i = 0; i < M; ++i) o[i] += x[i] * (y[i] * z[i]);
}
template <int M>  // o += w * (a - ma) * (b - mb)
inline void acc_centred(double* __restrict o, const double* __restrict w, const double* __restrict a,
                        const double* __restrict ma, const double* __restrict b, const double* __restrict mb) {
    for (int i = 0; i < M; ++i) o[i] += w[i] * ((a[i] - ma[i]) * (b[i] - mb[i]));
}
template <int M>  // o -= x * y
inline void sub_xy(double* __restrict o, const double* __restrict x, const double* __restrict y) {
    for (int i = 0; i < M; ++i) o[i] -= x[i] * y[i];
}

// Gathers the points with non-zero weight (all points if weights is null) into compact, block-padded copies
// (features (F, mpad) row-major, target, weights; padding has weight 0). Returns their number; *mpad the padded
// length.
inline std::int64_t gather_points(const DataView& data, const double* weights, std::vector<double>& feat,
                                  std::vector<double>& y, std::vector<double>& w, std::int64_t* mpad_out) {
    std::vector<std::int64_t> idx;
    idx.reserve(static_cast<std::size_t>(data.n));
    for (std::int64_t i = 0; i < data.n; ++i)
        if (weights == nullptr || weights[i] != 0.0) idx.push_back(i);
    const auto m = static_cast<std::int64_t>(idx.size());
    const std::int64_t mpad = m == 0 ? 0 : ((m + B - 1) / B) * B;
    const int F = data.n_features;
    feat.assign(static_cast<std::size_t>(F * mpad), 0.0);
    y.assign(static_cast<std::size_t>(mpad), 0.0);
    w.assign(static_cast<std::size_t>(mpad), 0.0);
    for (std::int64_t t = 0; t < mpad; ++t) {
        const std::int64_t i = idx[static_cast<std::size_t>(t < m ? t : 0)];
        for (int f = 0; f < F; ++f) feat[f * mpad + t] = data.features[f * data.n + i];
        y[t] = data.target[i];
        w[t] = t < m ? (weights ? weights[i] : 1.0) : 0.0;
    }
    *mpad_out = mpad;
    return m;
}
