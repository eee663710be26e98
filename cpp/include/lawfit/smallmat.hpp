// Dense symmetric eigen-decomposition for the solver's tiny matrices (n <= kMaxParams): cyclic Jacobi.
// Deterministic, accurate for small eigenvalues, no dependencies.
#pragma once
#include <cmath>

namespace lawfit {

// A: n x n symmetric, row-major, overwritten. On return lam[k] are the eigenvalues and column k of V
// (V[i * n + k]) the matching unit eigenvector.
inline void jacobi_eigen(int n, double* A, double* lam, double* V) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) V[i * n + j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 60; ++sweep) {
        double off = 0.0, diag = 0.0;
        for (int i = 0; i < n; ++i) {
            diag += A[i * n + i] * A[i * n + i];
            for (int j = i + 1; j < n; ++j) off += A[i * n + j] * A[i * n + j];
        }
        if (!(off > 1e-28 * diag) || !std::isfinite(off)) break;  // off-diagonal below 1e-14 relative
        for (int p = 0; p < n; ++p)
            for (int q = p + 1; q < n; ++q) {
                const double apq = A[p * n + q];
                if (apq == 0.0) continue;
                const double app = A[p * n + p], aqq = A[q * n + q];
                // The rotation that zeroes A[p][q] (the smaller angle): with d = aqq - app, e = 2 apq,
                // r = sqrt(d^2 + e^2) and h = |d| + r, c = h / sqrt(2 r h) and s = sign(d) e / sqrt(2 r h)
                // (the textbook t = tan(angle) form, rearranged to one division and a shorter dependency chain:
                // this loop is latency-bound). The textbook form when d^2 + e^2 or 2 r h would overflow.
                double c, s;
                const double d = aqq - app, e = 2.0 * apq;
                const double r = std::sqrt(d * d + e * e), h = std::fabs(d) + r;
                if (r <= 1e150 && h * r > 1e-290) {
                    const double inv = 1.0 / std::sqrt(2.0 * r * h);
                    c = h * inv;
                    s = (d >= 0 ? e : -e) * inv;
                } else {
                    const double theta = d / e;
                    const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
                    c = 1.0 / std::sqrt(t * t + 1.0);
                    s = t * c;
                }
                for (int k = 0; k < n; ++k) {  // A <- J^T A J
                    const double akp = A[k * n + p], akq = A[k * n + q];
                    A[k * n + p] = c * akp - s * akq;
                    A[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; ++k) {
                    const double apk = A[p * n + k], aqk = A[q * n + k];
                    A[p * n + k] = c * apk - s * aqk;
                    A[q * n + k] = s * apk + c * aqk;
                }
                A[p * n + q] = A[q * n + p] = 0.0;
                for (int k = 0; k < n; ++k) {
                    const double vkp = V[k * n + p], vkq = V[k * n + q];
                    V[k * n + p] = c * vkp - s * vkq;
                    V[k * n + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int k = 0; k < n; ++k) lam[k] = A[k * n + k];
}

// Cholesky factorisation A = L L^T (lower, row-major, overwrites A's lower triangle). Returns false if A
// is not numerically positive definite (a pivot <= tol * max diagonal).
inline bool cholesky(int n, double* A) {
    double dmax = 0.0;
    for (int i = 0; i < n; ++i) dmax = std::fmax(dmax, A[i * n + i]);
    const double tol = 1e-13 * dmax;
    if (!(dmax > 0.0)) return false;
    for (int j = 0; j < n; ++j) {
        double d = A[j * n + j];
        for (int k = 0; k < j; ++k) d -= A[j * n + k] * A[j * n + k];
        if (!(d > tol)) return false;
        d = std::sqrt(d);
        A[j * n + j] = d;
        for (int i = j + 1; i < n; ++i) {
            double v = A[i * n + j];
            for (int k = 0; k < j; ++k) v -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = v / d;
        }
    }
    return true;
}

// Solves L L^T x = b in place (b becomes x) with the factor from cholesky().
inline void cholesky_solve(int n, const double* L, double* b) {
    for (int i = 0; i < n; ++i) {
        double v = b[i];
        for (int k = 0; k < i; ++k) v -= L[i * n + k] * b[k];
        b[i] = v / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; --i) {
        double v = b[i];
        for (int k = i + 1; k < n; ++k) v -= L[k * n + i] * b[k];
        b[i] = v / L[i * n + i];
    }
}

}  // namespace lawfit
