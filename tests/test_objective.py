"""lawfit.evaluate (objective, gradient, Hessian) against the long-double reference in reference.py.

Tolerances. Values, gradients and Hessians must agree to 1e-8 relative, norm-wise: every component of
``got - ref`` is within ``1e-8 * max|ref|`` plus an absolute floor. The floor is the float64 rounding error
of the kernel's own sums, bounded to first order and inflated by C = 1e-12 (about 4500 ulp):

* a residual r_i = log L_hat_i - log L_i is computed from intermediates (the log-sum-exp arguments, such as
  ``a - alpha log N``) of size about s_i = 1 + |log L_hat_i| + |theta| . |g_i| (g_i: gradient of
  log L_hat_i), so it carries an error of a few ulp of s_i, and the objective one of |rho'_i| times that;
* the gradient sums w_i rho'_i g_i, whose terms can cancel (near an optimum the gradient is ~1e-7 of its
  terms), and rho' itself inherits the residual's error through rho'';
* the Hessian of a log-sum-exp is sum_k W_k (h_k + g_k g_k^T) - g g^T (the reference's log of a sum is the
  same formula, h_S/S - g_S g_S^T/S^2, in long double): when one term dominates, this is a difference of
  numbers of size |g|^2 with a small result, so its float64 error scales with |g|^2. (For Kaplan's law the
  log-sum-exp is nested and its gradient can be far larger than that of log L_hat; the kernel forms that
  Hessian in centred form, see test_kaplan_hessian_accuracy_small_alpha_D.)

So floor = C * sum_i w_i (|rho'_i| + rho''_i s_i) * scale_i, with scale_i = s_i, max|g_i|, or
(1 + max|g_i|)^2 + max|h_i|. It is far below 1e-8 * max|ref| unless the result cancels heavily.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import scipy.special
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lawfit
from lawfit import _core
from lawfit.compiler import program_predict
from lawfit.data import prepare

import reference as ref  # tests/reference.py (pytest puts tests/ on sys.path: no __init__.py there)

RTOL = 1e-8
C_FLOOR = 1e-12

# Evaluator configurations: the fastest (AVX2 build, affine log-sum-exp kernel where the law allows), the
# generic build, and the program interpreter (which every law can run; the affine kernel must agree with it).
ISAS = ["auto", "generic", "interpreter"]
BUILTINS = ["chinchilla", "chinchilla_linear_e", "kaplan", "saturating", "saturating_C", "saturating_N",
            "saturating_D"]
USER = "E + A/N**alpha + B/D**beta + G/(N**gamma * D**gamma)"

# Regressions (both found by these tests, fixed in c1719f2): Kaplan's program ends in mul(alpha_D, lse(...)),
# whose operands both depend on alpha_D, and the kernel counted the cross term a'b' of a product once
# instead of twice on the Hessian diagonal; and the objective's Gauss-Newton term sum_i w_i rho''_i g_i g_i^T
# was accumulated only over the structural Hessian pattern of log L_hat, so it was lost wherever log L_hat
# is linear in (j, k): a pure power law A / N**alpha got an all-zero Hessian, (E + A/N**alpha)**p a zero
# H[p, p]. See test_mul_hessian_diagonal and test_gauss_newton_term_outside_pattern below.


def make_law(name):
    if name == "user":
        return lawfit.law(USER, variables=["N", "D"], log_params=["E", "A", "B", "G"])
    return lawfit.laws.get(name)


# Exotic user laws: every expression op the reference knows (sub, neg, div, const and general pow, sqrt,
# exp, log, expm1, log1p, lse).
EXOTIC = {
    "lse_logspace": dict(expr="lse(e, a - alpha*log(N), b - beta*log(D))", log_space=True, log_params=[]),
    "log1p_expm1": dict(expr="E + log1p(A/N**alpha) + expm1(B/D**beta)", log_params=["E", "A", "B"]),
    # log L = p * lse(e, a - alpha log N): H[p, p] of log L is structurally zero, rho'' g_p^2 is not.
    "general_pow": dict(expr="(E + A/N**alpha)**p", log_params=["E", "A"]),
    "neg_sub_sqrt": dict(expr="E - (-A)/N**alpha + sqrt(B/D**beta) + exp(-c) * N**(-0.5) * 10",
                         log_params=["E", "A", "B"]),
    # log L = a - alpha log N - beta log D is linear: the objective's Hessian is all Gauss-Newton term.
    "power_law": dict(expr="A / N**alpha * D**(-beta)", log_params=["A"]),
    "const_pow": dict(expr="(E + A/N**alpha + B/D**beta)**1.5 / 2", log_params=["E", "A", "B"]),
}


def make_exotic(name):
    spec = EXOTIC[name]
    return lawfit.law(spec["expr"], variables=["N", "D"], log_params=spec["log_params"],
                      log_space=spec.get("log_space", False))


# Ranges of internal parameters, by internal name: typical fits, and wide ranges where terms reach far
# outside float64 (the kernels' max-shifted log-sum-exp path); the reference stays inside long double.
RANGES = {
    "e": (-3.0, 3.0), "log_E": (-3.0, 3.0), "E": (0.0, 10.0),
    "a": (-5.0, 40.0), "b": (-5.0, 40.0), "log_A": (-5.0, 40.0), "log_B": (-5.0, 40.0),
    "log_G": (-5.0, 60.0),
    "alpha": (-0.5, 3.0), "beta": (-0.5, 3.0), "gamma": (-0.5, 3.0),
    # Kaplan: small alpha_D makes the nested lse's gradient large (see
    # test_kaplan_hessian_accuracy_small_alpha_D).
    "log_Nc": (15.0, 45.0), "log_Dc": (15.0, 45.0), "alpha_N": (0.02, 1.0), "alpha_D": (0.005, 1.5),
    "p": (0.2, 3.0), "c": (-3.0, 3.0),
}
WIDE = {
    "e": (-750.0, 750.0), "log_E": (-750.0, 750.0), "E": (0.0, 1e200),
    "a": (-800.0, 1500.0), "b": (-800.0, 1500.0), "log_A": (-800.0, 1500.0), "log_B": (-800.0, 1500.0),
    "log_G": (-800.0, 3000.0),
    "alpha": (-1.0, 45.0), "beta": (-1.0, 45.0), "gamma": (-1.0, 45.0),
    "log_Dc": (-50.0, 700.0),
}


@contextlib.contextmanager
def isa(name):
    if name == "interpreter":
        _core.set_kernel("interpreter")
    else:
        assert _core.set_isa(name) is not False
    try:
        if name == "generic":
            assert _core.isa() == "generic"
        yield
    finally:
        _core.set_isa("auto")
        _core.set_kernel("auto")


def make_data(seed, n):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(6, 12, n)
    D = 10 ** rng.uniform(8, 13, n)
    return {"N": N, "D": D, "C": 6 * N * D, "loss": rng.uniform(1.5, 6.0, n)}


def make_weights(seed, n, kind, rows=None):
    rng = np.random.default_rng(seed + 1)
    shape = (n,) if rows is None else (rows, n)
    if kind == "none":
        return None if rows is None else np.ones(shape)
    if kind == "counts":  # bootstrap-like multiplicities, many zeros
        return rng.poisson(1.0, shape).astype(float)
    w = rng.exponential(1.0, shape)  # real weights with about a third zero
    w[rng.random(shape) < 0.3] = 0.0
    return w


def thetas(law, rows=1, wide=True):
    """Hypothesis strategy for a (rows, P) array of internal parameters: each from RANGES or (if ``wide``)
    from WIDE, so typical values mix with far-out ones."""
    def col(name):
        s = st.floats(*RANGES[name])
        return st.one_of(s, st.floats(*WIDE[name])) if wide and name in WIDE else s
    row = st.tuples(*[col(name) for name in law.internal_names])
    return st.lists(row, min_size=rows, max_size=rows).map(lambda r: np.array(r, dtype=float))


def floors(theta, point):
    """Absolute floors (objective, gradient, Hessian): see the module docstring."""
    w, d1, d2, g, h = (np.asarray(point[k]) for k in ("w", "d1", "d2", "g", "h"))  # long double
    if w.size == 0:
        return 0.0, 0.0, 0.0
    gmax = np.max(np.abs(g), axis=1)
    hmax = np.max(np.abs(h), axis=(1, 2))
    s = 1 + np.abs(point["logpred"]) + np.abs(g) @ np.abs(np.asarray(theta, dtype=ref.LD))
    k = w * (np.abs(d1) + d2 * s)
    out = (np.sum(w * np.abs(d1) * s), np.sum(k * gmax), np.sum(k * ((1 + gmax) ** 2 + hmax)))
    with np.errstate(over="ignore"):
        return tuple(C_FLOOR * float(x) for x in out)


def assert_close(got, want, floor, what):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert np.all(np.isfinite(got)), f"{what}: lawfit gave non-finite values {got}"
    assert np.all(np.isfinite(want)), f"{what}: reference is not finite: {want}"
    tol = RTOL * np.max(np.abs(want), initial=0.0) + floor
    err = np.abs(got - want)
    assert np.all(err <= tol), (
        f"{what}: max |got - ref| = {err.max():.3e} > tol {tol:.3e} (rtol part "
        f"{RTOL * np.max(np.abs(want), initial=0.0):.3e}, floor {floor:.3e})\n got={got}\n ref={want}")


def check_against_reference(law, data, theta, weights, loss, delta, check_hess=True, in_hypothesis=False):
    """theta: (B, P); weights: None, (n,) or (B, n)."""
    out = lawfit.evaluate(law, data, theta, weights=weights, loss=loss, delta=delta, derivatives=2)
    for i, th in enumerate(theta):
        w = weights if weights is None or np.ndim(weights) == 1 else weights[i]
        f, g, h, point = ref.objective(law, data, th, weights=w, loss=loss, delta=delta)
        # Only results that float64 can hold: e.g. a linear E = 0 with L_hat = 1e-157 has a true Hessian
        # entry 1/L_hat^2 = 1e314, and lawfit rightly gives inf. Hypothesis tests skip such examples.
        # The reference itself must be finite too (Python's max() would let a NaN in h slip through: an
        # inf - inf in long double when a term reaches e^5000, as Kaplan's with alpha_D = 0.005 can).
        sizes = [np.max(np.abs(np.asarray(v))) for v in (f, g, h)]  # in long double: no overflowing cast
        representable = bool(np.all(np.isfinite(sizes)) and max(sizes) < 1e300)
        if in_hypothesis:
            assume(representable)
        assert representable
        ff, fg, fh = floors(th, point)
        tag = (f"{law.name} theta={th.tolist()} loss={loss} delta={delta} isa={_core.isa()} "
               f"kernel={law.core_program().kernel}")
        assert_close(out.fun[i], f, ff, f"objective [{tag}]")
        assert_close(out.grad[i], g, fg, f"gradient [{tag}]")
        if check_hess:
            assert_close(out.hess[i], h, fh, f"Hessian [{tag}]")
            np.testing.assert_array_equal(out.hess[i], out.hess[i].T)


LOSS_DELTA = st.sampled_from([("huber", 1e-3), ("huber", 1e-2), ("huber", 0.1), ("huber", 1.0),
                              ("huber", 30.0), ("squared", 1e-3)])
SETTINGS = settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------------
# Random parameters, data, weights, losses and deltas, for every law and both kernel builds
# ---------------------------------------------------------------------------------------------------
def _random_case(law_name, isa_name, check_hess):
    law = make_law(law_name)

    @SETTINGS
    @given(theta=thetas(law, rows=2), seed=st.integers(0, 2**31), n=st.integers(1, 40),
           wkind=st.sampled_from(["none", "counts", "real"]), ld=LOSS_DELTA)
    def run(theta, seed, n, wkind, ld):
        data = make_data(seed, n)
        weights = make_weights(seed, n, wkind)
        with isa(isa_name):
            check_against_reference(law, data, theta, weights, *ld, check_hess=check_hess, in_hypothesis=True)

    run()


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("law_name", BUILTINS + ["user"])
def test_value_and_gradient_match_reference(law_name, isa_name):
    _random_case(law_name, isa_name, check_hess=False)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("law_name", BUILTINS + ["user"])
def test_hessian_matches_reference(law_name, isa_name):
    _random_case(law_name, isa_name, check_hess=True)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("name", sorted(EXOTIC))
def test_exotic_user_laws_match_reference(name, isa_name):
    law = make_exotic(name)

    @settings(deadline=None, max_examples=8)
    @given(theta=thetas(law, wide=False), seed=st.integers(0, 2**31), n=st.integers(1, 30), ld=LOSS_DELTA)
    def run(theta, seed, n, ld):
        data = make_data(seed, n)
        # These laws are not rewritten into log space (expm1, log1p and a sum under a power are evaluated on
        # the natural scale), so a prediction whose square (in the Hessian of its log) overflows float64,
        # L_hat > ~1e154, is out of their domain.
        lp = np.asarray(ref.log_prediction(law, data, theta[0]).v, dtype=float)
        assume(np.all(np.isfinite(lp) & (lp < 300)))
        with isa(isa_name):
            check_against_reference(law, data, theta, make_weights(seed, n, "real"), *ld, in_hypothesis=True)

    run()


# ---------------------------------------------------------------------------------------------------
# Extreme exponents: terms that underflow to 0 or overflow in float64 if computed naively
# ---------------------------------------------------------------------------------------------------
def _extreme_data():
    data = make_data(7, 25)
    data["N"][:5] = 1e12
    return data


EXTREMES = [
    # law, internal parameters, what is extreme
    ("chinchilla", {"e": 0.5, "a": 6.0, "b": 7.0, "alpha": 40.0, "beta": 0.3}),  # A/N^40 ~ e^-1100: underflows
    ("chinchilla", {"e": 0.5, "a": 800.0, "b": 7.0, "alpha": 1.0, "beta": 0.3}),  # A = e^800 overflows
    ("chinchilla", {"e": 0.5, "a": 1200.0, "b": 7.0, "alpha": 40.0, "beta": 0.3}),  # A and N^alpha both overflow
    ("chinchilla", {"e": -700.0, "a": -700.0, "b": -700.0, "alpha": 0.0, "beta": 0.0}),  # every term tiny
    ("chinchilla", {"e": 0.5, "a": 6.0, "b": 900.0, "alpha": 0.3, "beta": 60.0}),
    ("chinchilla_linear_e", {"E": 0.0, "a": 800.0, "b": 7.0, "alpha": 1.0, "beta": 0.3}),  # E = 0 and overflow
    ("chinchilla_linear_e", {"E": 1.5, "a": 6.0, "b": 7.0, "alpha": 40.0, "beta": 40.0}),  # both terms underflow
    ("saturating_N", {"e": 0.5, "a": 800.0, "alpha": 1.0}),
    ("saturating_N", {"e": 0.5, "a": 5.0, "alpha": 40.0}),
    ("kaplan", {"log_Nc": 40.0, "log_Dc": 30.0, "alpha_N": 1.0, "alpha_D": 0.01}),  # (Nc/N)^100
    ("kaplan", {"log_Nc": 15.0, "log_Dc": 30.0, "alpha_N": 1.0, "alpha_D": 0.01}),  # (Nc/N)^100 underflows
    ("user", {"log_E": 0.5, "log_A": 6.0, "log_B": 7.0, "log_G": 2000.0, "alpha": 0.3, "beta": 0.3,
              "gamma": 40.0}),  # G = e^2000, (ND)^40 ~ e^2300
    ("user", {"log_E": 0.5, "log_A": 6.0, "log_B": 7.0, "log_G": 5.0, "alpha": 0.3, "beta": 0.3,
              "gamma": 40.0}),  # G / (ND)^40 underflows
]


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("loss,delta", [("huber", 1e-3), ("huber", 0.5), ("squared", 1e-3)])
@pytest.mark.parametrize("law_name,values", EXTREMES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EXTREMES)])
def test_extreme_exponents_finite_and_match_reference(law_name, values, loss, delta, isa_name):
    law = make_law(law_name)
    theta = law.to_internal(values)[None, :]
    data = _extreme_data()
    weights = make_weights(3, 25, "real")
    with isa(isa_name):
        out = lawfit.evaluate(law, data, theta, weights=weights, loss=loss, delta=delta, derivatives=2)
        assert np.isfinite(out.fun).all() and np.isfinite(out.grad).all() and np.isfinite(out.hess).all()
        check_against_reference(law, data, theta, weights, loss, delta)


def test_extreme_terms_really_are_out_of_float64_range():
    """The extreme cases above do overflow / underflow when computed naively in float64."""
    with np.errstate(all="ignore"):
        assert np.exp(6.0) / np.float64(1e12) ** 40 == 0.0
        assert not np.isfinite(np.exp(800.0) / 1e12)
        assert not np.isfinite(np.exp(2000.0))
    lp = ref.log_prediction(make_law("chinchilla"), {"N": [1e12], "D": [1e10]},
                            [0.5, 6.0, 7.0, 40.0, 0.3]).v[0]
    assert np.isfinite(lp)


# ---------------------------------------------------------------------------------------------------
# Weight rows, zero weights, derivative modes
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("law_name", ["chinchilla", "chinchilla_linear_e", "user"])
@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 150), rows=st.integers(1, 5), ld=LOSS_DELTA,
       data=st.data())
def test_weight_rows_equal_single_rows(law_name, isa_name, seed, n, rows, ld, data):
    law = make_law(law_name)
    theta = data.draw(thetas(law, rows=rows))
    d = make_data(seed, n)
    W = make_weights(seed, n, data.draw(st.sampled_from(["counts", "real"])), rows=rows)
    with isa(isa_name):
        out = lawfit.evaluate(law, d, theta, weights=W, loss=ld[0], delta=ld[1], derivatives=2)
        for i in range(rows):
            one = lawfit.evaluate(law, d, theta[i], weights=W[i], loss=ld[0], delta=ld[1], derivatives=2)
            np.testing.assert_allclose(out.fun[i], one.fun[0], rtol=1e-14, atol=0)
            np.testing.assert_allclose(out.grad[i], one.grad[0], rtol=1e-14, atol=0)
            np.testing.assert_allclose(out.hess[i], one.hess[0], rtol=1e-14, atol=0)
        # A shared (n,) weight vector is the same as that row repeated.
        rep = lawfit.evaluate(law, d, theta, weights=np.tile(W[0], (rows, 1)), loss=ld[0], delta=ld[1])
        shared = lawfit.evaluate(law, d, theta, weights=W[0], loss=ld[0], delta=ld[1])
        np.testing.assert_allclose(shared.fun, rep.fun, rtol=1e-14, atol=0)
        np.testing.assert_allclose(shared.grad, rep.grad, rtol=1e-14, atol=0)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("law_name", ["chinchilla", "kaplan", "user"])
@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 100), extra=st.integers(1, 70), ld=LOSS_DELTA,
       data=st.data())
def test_zero_weight_points_do_not_matter(law_name, isa_name, seed, n, extra, ld, data):
    """Points with weight 0 (even with wild values) give exactly what the data without them gives."""
    law = make_law(law_name)
    theta = data.draw(thetas(law))
    d = make_data(seed, n)
    w = make_weights(seed, n, "real")
    w[w == 0] = 0.5
    junk = {"N": np.full(extra, 1e-300), "D": np.full(extra, 1e300), "loss": np.full(extra, 1e300)}
    junk["C"] = np.full(extra, 1e300)
    # Junk goes in at random places; the real points keep their order.
    rng = np.random.default_rng(seed + 2)
    is_junk = np.zeros(n + extra, dtype=bool)
    is_junk[rng.choice(n + extra, extra, replace=False)] = True
    big = {}
    for k in ("N", "D", "C", "loss"):
        big[k] = np.empty(n + extra)
        big[k][~is_junk], big[k][is_junk] = d[k], junk[k]
    wbig = np.zeros(n + extra)
    wbig[~is_junk] = w
    with isa(isa_name):
        a = lawfit.evaluate(law, d, theta, weights=w, loss=ld[0], delta=ld[1], derivatives=2)
        b = lawfit.evaluate(law, big, theta, weights=wbig, loss=ld[0], delta=ld[1], derivatives=2)
    np.testing.assert_allclose(b.fun, a.fun, rtol=1e-14, atol=0)
    np.testing.assert_allclose(b.grad, a.grad, rtol=1e-14, atol=0)
    np.testing.assert_allclose(b.hess, a.hess, rtol=1e-14, atol=0)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("law_name", BUILTINS + ["user"])
@settings(deadline=None, max_examples=8)
@given(seed=st.integers(0, 2**31), n=st.integers(1, 100), ld=LOSS_DELTA, data=st.data())
def test_derivative_modes_give_same_objective(law_name, isa_name, seed, n, ld, data):
    law = make_law(law_name)
    theta = data.draw(thetas(law, rows=3))
    d = make_data(seed, n)
    w = make_weights(seed, n, "counts")
    with isa(isa_name):
        r0, r1, r2 = (lawfit.evaluate(law, d, theta, weights=w, loss=ld[0], delta=ld[1], derivatives=k)
                      for k in (0, 1, 2))
    np.testing.assert_array_equal(r0.fun, r1.fun)
    np.testing.assert_array_equal(r0.fun, r2.fun)
    np.testing.assert_array_equal(r1.grad, r2.grad)


@pytest.mark.parametrize("law_name", BUILTINS + ["user"])
def test_kernel_builds_agree(law_name):
    """The AVX2 and generic builds agree with each other far below the reference tolerance (1e-8)."""
    law = make_law(law_name)
    rng = np.random.default_rng(11)
    theta = np.array([[rng.uniform(*RANGES[k]) for k in law.internal_names] for _ in range(4)])
    d = make_data(5, 200)
    w = make_weights(5, 200, "real")
    with isa("auto"):
        a = lawfit.evaluate(law, d, theta, weights=w, derivatives=2)
    with isa("generic"):
        b = lawfit.evaluate(law, d, theta, weights=w, derivatives=2)
    assert _core.isa() in ("avx2", "generic")
    # They differ only by FMA contraction and exp/log rounding: norm-wise 1e-11, plus the rounding floors.
    for i, th in enumerate(theta):
        fl = floors(th, ref.objective(law, d, th, weights=w)[3])
        for x, y, floor in zip(a, b, fl):
            assert np.all(np.abs(x[i] - y[i]) <= 1e-11 * np.max(np.abs(y[i])) + floor)


# ---------------------------------------------------------------------------------------------------
# The bundled Chinchilla data, computed directly
# ---------------------------------------------------------------------------------------------------
OPT = np.array([0.5973068, 6.1692464, 7.6701567, 0.3473105, 0.36717243])


@pytest.mark.parametrize("isa_name", ISAS)
def test_chinchilla_program_equals_direct_formula(isa_name):
    law = lawfit.laws.get("chinchilla")
    df = lawfit.datasets.chinchilla(drop_highest=5)
    assert len(df) == 240
    N, D, L = (df[c].to_numpy(float) for c in ("N", "D", "loss"))
    rng = np.random.default_rng(0)
    for theta in [OPT] + [OPT + rng.normal(0, [0.3, 1, 1, 0.05, 0.05]) for _ in range(5)]:
        e, a, b, alpha, beta = theta
        direct = np.log(np.exp(e) + np.exp(a) * N ** -alpha + np.exp(b) * D ** -beta)
        ds = prepare(law, df)
        np.testing.assert_allclose(program_predict(law.program, ds.features, theta), direct, rtol=1e-14)
        np.testing.assert_allclose(np.log(law.predict(df, law.to_natural(theta))), direct, rtol=1e-14)
        for delta in (1e-3, 1e-2, 1.0):
            want = np.sum(scipy.special.huber(delta, direct - np.log(L)))
            with isa(isa_name):
                got = lawfit.evaluate(law, df, theta, delta=delta, derivatives=0).fun[0]
            assert got == pytest.approx(want, rel=1e-12)
        want = np.sum(0.5 * (direct - np.log(L)) ** 2)
        with isa(isa_name):
            assert lawfit.evaluate(law, df, theta, loss="squared").fun[0] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("isa_name", ISAS)
def test_chinchilla_objective_at_reference_optimum(isa_name):
    law = lawfit.laws.get("chinchilla")
    df = lawfit.datasets.chinchilla(drop_highest=5)
    with isa(isa_name):
        out = lawfit.evaluate(law, df, OPT, derivatives=2)
    assert out.fun[0] == pytest.approx(1.0182740178e-3, rel=1e-9)
    f, g, h, point = ref.objective(law, df, OPT)
    assert float(f) == pytest.approx(1.0182740178e-3, rel=1e-9)
    ff, fg, fh = floors(OPT, point)
    assert_close(out.fun[0], f, ff, "objective")
    # Near the optimum the gradient (~1e-7) is a sum of terms of size ~1e-3 that cancel: the floor matters.
    assert_close(out.grad[0], g, fg, "gradient")
    assert_close(out.hess[0], h, fh, "Hessian")
    # The optimum is a stationary point: the gradient is tiny next to its terms.
    assert np.max(np.abs(out.grad)) < 1e-6


# ---------------------------------------------------------------------------------------------------
# Regressions: Hessian of a product of two factors that depend on the same parameter, and the objective's
# Gauss-Newton term where log L_hat is linear (both wrong before c1719f2)
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("isa_name", ISAS)
def test_mul_hessian_diagonal(isa_name):
    """log L = alpha**2 * log N (compiled to mul(alpha, alpha) * log N); one point N = e, loss 1:
    objective (squared) 0.5 alpha^4, gradient 2 alpha^3, Hessian 6 alpha^2 (= 6 at alpha = 1; was 5)."""
    law = lawfit.law("N**(alpha*alpha)", variables=["N"])
    data = {"N": [np.e], "loss": [1.0]}
    with isa(isa_name):
        out = lawfit.evaluate(law, data, [1.0], loss="squared", derivatives=2)
    assert out.fun[0] == pytest.approx(0.5, rel=1e-14)
    assert out.grad[0, 0] == pytest.approx(2.0, rel=1e-14)
    assert out.hess[0, 0, 0] == pytest.approx(6.0, rel=1e-14)


@pytest.mark.parametrize("isa_name", ISAS)
def test_kaplan_hessian(isa_name):
    """H[alpha_D, alpha_D] of Kaplan's law (was 14119.4 instead of -14.27 here)."""
    law = lawfit.laws.get("kaplan")
    df = lawfit.datasets.chinchilla(drop_highest=5)
    theta = np.array([25.0, 25.0, 0.3, 0.1])
    with isa(isa_name):
        out = lawfit.evaluate(law, df, theta, loss="squared", derivatives=2)
    _, _, h, _ = ref.objective(law, df, theta, loss="squared")
    np.testing.assert_allclose(out.hess[0], np.asarray(h, dtype=float), rtol=1e-8)


@pytest.mark.parametrize("isa_name", ISAS)
def test_gauss_newton_term_outside_pattern(isa_name):
    """Pure power law L = A / N**alpha: log L = a - alpha log N is linear in (a, alpha), so the objective's
    Hessian is sum_i rho''_i g_i g_i^T with g_i = (1, -log N_i). Squared loss, N = e, e^2, loss 1, at
    a = 0, alpha = 1: objective 2.5, gradient (-3, 5), Hessian [[2, -3], [-3, 5]] (was all zeros)."""
    law = lawfit.law("A / N**alpha", variables=["N"], log_params=["A"])
    data = {"N": [np.e, np.e ** 2], "loss": [1.0, 1.0]}
    with isa(isa_name):
        out = lawfit.evaluate(law, data, [0.0, 1.0], loss="squared", derivatives=2)
    np.testing.assert_allclose(out.fun, [2.5], rtol=1e-14)
    np.testing.assert_allclose(out.grad, [[-3.0, 5.0]], rtol=1e-14)
    np.testing.assert_allclose(out.hess, [[[2.0, -3.0], [-3.0, 5.0]]], rtol=1e-14)


# ---------------------------------------------------------------------------------------------------
# Regression: Hessian accuracy of Kaplan's law for small alpha_D (found by these tests)
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("alpha_D", [0.005, 0.003, 0.002])  # smaller: the long-double reference overflows
def test_kaplan_hessian_accuracy_small_alpha_D(isa_name, alpha_D):
    """Kaplan at N = 1e9, D = 1e10, loss 1, theta = (log_Nc, log_Dc, alpha_N, alpha_D) = (40, 30, 0.5, alpha_D).

    (Nc/N)^(alpha_N/alpha_D) dominates Dc/D completely, so log L = alpha_N log(Nc/N) to float64 precision,
    and the Hessian of log L is 1 at (log_Nc, alpha_N) and 0 elsewhere. The nested lse's gradient is
    ~alpha_N log(Nc/N) / alpha_D^2; its Hessian formed as sum_k W_k (h_k + g_k g_k^T) - g g^T lost
    ~eps |g|^2 (H[alpha_D, alpha_D] = 1.3e-7 at alpha_D = 0.005, 1.9e3 at 1e-6). The kernel now uses the
    centred form sum_k W_k (h_k + (g_k - g)(g_k - g)^T), without cancellation.
    """
    law = lawfit.laws.get("kaplan")
    data = {"N": [1e9], "D": [1e10], "loss": [1.0]}
    theta = np.array([40.0, 30.0, 0.5, alpha_D])
    with isa(isa_name):
        check_against_reference(law, data, theta[None, :], None, "huber", 1e-3)
