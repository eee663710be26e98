"""A law program as straight-line Python source for the CUDA backend (no numba here: plain text).

The C++ evaluator interprets the program block by block; a GPU thread instead runs one fit, so the program is
turned into one device function per (program, loss kind): every node's value and its structurally non-zero
gradient and Hessian entries become local scalars (registers), nodes that do not depend on the data are
computed once per evaluation, and the loop over the points of a weight row evaluates the rest, the loss and
the sums. The per-point arithmetic is that of ``cpp/src/evaluator_impl.hpp`` term for term (same formulas,
same order of operations in each term, the same log-sum-exp fast path and max-shifted fallback); the order of
the sums over points (sequential here, 8 lanes per block of 64 there) and the exp/log implementations differ,
so results agree to rounding.

The generated function is::

    objective(x, fi, fv, nf, feat, target, pidx, pw, q0, q1, c, delta, asym, log_z, g, H) -> (f, size)

with the full parameter vector ``theta[k] = x[fi[k]]`` (``fi[k] >= 0``) or ``fv[k]``, the points
``pidx[q0:q1]`` with weights ``pw[q0:q1]``, the extra Huber curvature ``c = irls * delta`` (0 for the exact
Hessian), and outputs the objective, its size for relative tests (``Evaluator::objective_size``), and the gradient
``g`` (nf) and Hessian ``H`` (nf x nf, row-major) with respect to the free parameters ``x`` (tied parameters
summed, fixed ones left out). Names in capitals (EXP, LOG, ...) and the constants K<i> are bound by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _core

_OP = _core.OPCODES  # the core's opcodes (cpp/include/lawfit/program.hpp)
CONST, FEATURE, PARAM, ADD, SUB, MUL, NEG, RECIP, EXP, LOG, LSE, EXPM1, LOG1P = (
    _OP[k] for k in ("const", "feat", "param", "add", "sub", "mul", "neg", "recip", "exp", "log", "lse", "expm1",
                     "log1p"))
UNARY = (RECIP, EXP, LOG, EXPM1, LOG1P)

MAX_PARAMS = _core.MAX_PARAMS  # kMaxParams
# Generated code grows with the number of instructions times their derivative entries; beyond this the
# device function would take long to compile and spill registers, so such programs are refused.
MAX_INSTRUCTIONS = 256


def _loss_sources() -> dict:
    """kernel kind -> per-point source of the loss (lawfit.losses: the one table), without the Huber
    likelihood, which the emitter writes itself."""
    from .. import _core, losses

    out = {}
    for d in losses.REGISTRY.values():
        if d.cuda:
            out[int(_core.LOSS_KINDS[d.kernel])] = d.cuda
    return out


def _kind(name: str) -> int:
    from .. import _core

    return int(_core.LOSS_KINDS[name])


@dataclass(frozen=True)
class NodeInfo:
    pointwise: bool
    grad: tuple  # parameter indices with a structurally non-zero gradient, ascending
    hess: tuple  # pairs (j, k), j <= k, structurally non-zero Hessian entries, in row-major order


def program_arrays(program):
    """(op, a, b, imm, args, argflags, n_params, n_features) of a compiler Program, as numpy arrays."""
    return (np.asarray(program.op, dtype=np.int32), np.asarray(program.a, dtype=np.int32),
            np.asarray(program.b, dtype=np.int32), np.asarray(program.imm, dtype=np.float64),
            np.asarray(program.args, dtype=np.int32), np.asarray(program.argflags, dtype=np.int32),
            int(program.n_params), int(program.n_features))


def analyse(op, a, b, args, argflags) -> list[NodeInfo]:
    """Static facts per node, as lawfit::analyse (program.cpp): pointwise, gradient and Hessian patterns."""
    n = len(op)
    g: list[set] = [set() for _ in range(n)]
    h: list[set] = [set() for _ in range(n)]
    pw = [False] * n

    def outer(x, y):
        return {(min(j, k), max(j, k)) for j in x for k in y}

    for i in range(n):
        o = int(op[i])
        if o == FEATURE:
            pw[i] = True
        elif o == PARAM:
            g[i] = {int(a[i])}
        elif o in (ADD, SUB):
            g[i] = g[a[i]] | g[b[i]]
            h[i] = h[a[i]] | h[b[i]]
            pw[i] = pw[a[i]] or pw[b[i]]
        elif o == MUL:
            g[i] = g[a[i]] | g[b[i]]
            h[i] = h[a[i]] | h[b[i]] | outer(g[a[i]], g[b[i]])
            pw[i] = pw[a[i]] or pw[b[i]]
        elif o == NEG:
            g[i], h[i], pw[i] = set(g[a[i]]), set(h[a[i]]), pw[a[i]]
        elif o in UNARY:
            g[i] = set(g[a[i]])
            h[i] = h[a[i]] | outer(g[a[i]], g[a[i]])
            pw[i] = pw[a[i]]
        elif o == LSE:
            for k in range(int(b[i])):
                j = int(args[a[i] + k])
                g[i] |= g[j]
                h[i] |= h[j]
                pw[i] = pw[i] or pw[j]
            h[i] |= outer(g[i], g[i])
    return [NodeInfo(pw[i], tuple(sorted(g[i])), tuple(sorted(h[i]))) for i in range(n)]


def _prod(x: str, y: str) -> str:
    """x * y for expression strings, with the exact identities 1 * y = y and -1 * y = -y."""
    if x == "1.0":
        return y
    if y == "1.0":
        return x
    return f"{x} * {y}"


def _sum(terms: list) -> str:
    """Left-to-right sum of expression strings (the C++ accumulates from zero in the same order)."""
    return " + ".join(terms) if terms else "0.0"


class _Emitter:
    def __init__(self, op, a, b, args, argflags, info, n_params) -> None:
        self.op, self.a, self.b, self.args, self.argflags = op, a, b, args, argflags
        self.info = info
        self.P = n_params
        self.pre: list[str] = []  # once per evaluation (data-independent nodes)
        self.body: list[str] = []  # once per point
        self.val: dict[int, str] = {}
        self.grad: dict[int, dict] = {}
        self.hess: dict[int, dict] = {}

    def g(self, i, j):
        return self.grad[i].get(j)

    def h(self, i, jk):
        return self.hess[i].get(jk)

    def node(self, i):
        o, a, b = int(self.op[i]), int(self.a[i]), int(self.b[i])
        info = self.info[i]
        out = self.body if info.pointwise else self.pre
        v = f"v{i}"
        self.val[i] = v
        self.grad[i] = {j: f"g{i}_{j}" for j in info.grad}
        self.hess[i] = {jk: f"h{i}_{jk[0]}_{jk[1]}" for jk in info.hess}
        G, Hs = self.grad[i], self.hess[i]
        if o == CONST:
            out.append(f"{v} = K{i}")
        elif o == FEATURE:
            out.append(f"{v} = feat[{a}, pi]")
        elif o == PARAM:
            out.append(f"{v} = t{a}")
            self.grad[i] = {a: "1.0"}
        elif o in (ADD, SUB):
            sign = "+" if o == ADD else "-"
            out.append(f"{v} = v{a} {sign} v{b}")
            for j, name in G.items():
                out.append(f"{name} = {self._lin(self.g(a, j), self.g(b, j), sign)}")
            for jk, name in Hs.items():
                out.append(f"{name} = {self._lin(self.h(a, jk), self.h(b, jk), sign)}")
        elif o == NEG:
            out.append(f"{v} = -v{a}")
            for j, name in G.items():
                out.append(f"{name} = -{self.g(a, j)}")
            for jk, name in Hs.items():
                out.append(f"{name} = -{self.h(a, jk)}")
        elif o == MUL:
            out.append(f"{v} = v{a} * v{b}")
            for j, name in G.items():
                terms = []
                if self.g(a, j):
                    terms.append(_prod(self.g(a, j), f"v{b}"))
                if self.g(b, j):
                    terms.append(_prod(f"v{a}", self.g(b, j)))
                out.append(f"{name} = {_sum(terms)}")
            for (j, k), name in Hs.items():
                terms = []
                if self.h(a, (j, k)):
                    terms.append(_prod(self.h(a, (j, k)), f"v{b}"))
                if self.h(b, (j, k)):
                    terms.append(_prod(f"v{a}", self.h(b, (j, k))))
                # d2(ab)/dj dk includes a_j b_k + a_k b_j: both terms, also when j == k.
                if self.g(a, j) and self.g(b, k):
                    terms.append(_prod(self.g(a, j), self.g(b, k)))
                if self.g(a, k) and self.g(b, j):
                    terms.append(_prod(self.g(a, k), self.g(b, j)))
                out.append(f"{name} = {_sum(terms)}")
        elif o in UNARY:
            self._unary(out, i, o, a, G, Hs)
        elif o == LSE:
            self._lse(out, i, a, b)
        else:  # validated before: unreachable
            raise ValueError(f"law program instruction {i}: unknown opcode {o}")

    @staticmethod
    def _lin(x, y, sign):
        if x and y:
            return f"{x} {sign} {y}"
        if x:
            return x
        if y:
            return f"-{y}" if sign == "-" else y
        return "0.0"

    def _unary(self, out, i, o, a, G, Hs):
        v, x = f"v{i}", f"v{a}"
        d1, d2 = f"d1_{i}", f"d2_{i}"
        if o == RECIP:
            out.append(f"{v} = 1.0 / {x}")
            out.append(f"{d1} = -{v} * {v}")
            out.append(f"{d2} = 2.0 * {v} * {v} * {v}")
        elif o == EXP:
            out.append(f"{v} = EXP({x})")
            d1 = d2 = v
        elif o == LOG:
            out.append(f"{v} = LOG({x})")
            out.append(f"{d1} = 1.0 / {x}")
            out.append(f"{d2} = -{d1} * {d1}")
        elif o == EXPM1:
            out.append(f"{v} = EXPM1({x})")
            out.append(f"{d1} = {v} + 1.0")
            d2 = d1
        else:  # LOG1P
            out.append(f"{v} = LOG1P({x})")
            out.append(f"{d1} = 1.0 / (1.0 + {x})")
            out.append(f"{d2} = -{d1} * {d1}")
        for (j, k), name in Hs.items():
            terms = []
            if self.h(a, (j, k)):
                terms.append(_prod(d1, self.h(a, (j, k))))
            gj, gk = self.g(a, j), self.g(a, k)
            if gj and gk:
                terms.append(_prod(d2, f"({_prod(gj, gk)})"))
            out.append(f"{name} = {_sum(terms)}")
        for j, name in G.items():
            out.append(f"{name} = {_prod(d1, self.g(a, j))}")

    def _lse(self, out, i, a0, K):
        """log(sum_k exp(arg_k) + sum_l lin_l), as run_lse in evaluator_impl.hpp: the direct sum when it lies
        in [1e-290, 1e290], else max-shifted; exp of a data-independent argument once per evaluation."""
        info = self.info[i]
        args = [int(self.args[a0 + k]) for k in range(K)]
        flags = [int(self.argflags[a0 + k]) for k in range(K)]
        v, S, mx = f"v{i}", f"S{i}", f"mx{i}"
        w = [f"w{i}_{k}" for k in range(K)]
        terms = []
        for k, (arg, fl) in enumerate(zip(args, flags)):
            if fl:
                out.append(f"{w[k]} = 1.0")
                terms.append(f"v{arg}")
            elif info.pointwise and not self.info[arg].pointwise:
                self.pre.append(f"E{i}_{k} = EXP(v{arg})")
                out.append(f"{w[k]} = E{i}_{k}")
                terms.append(w[k])
            else:
                out.append(f"{w[k]} = EXP(v{arg})")
                terms.append(w[k])
        out.append(f"{S} = {_sum(terms)}")
        out.append(f"if {S} >= 1e-290 and {S} <= 1e290:")
        out.append(f"    {v} = LOG({S})")
        out.append("else:")
        out.append(f"    {mx} = -INF")
        for k, (arg, fl) in enumerate(zip(args, flags)):
            if fl:  # the log of a linear term is its log-size
                out.append(f"    {w[k]} = LOG(v{arg})")
                out.append(f"    {mx} = {w[k]} if {w[k]} > {mx} else {mx}")
            else:
                out.append(f"    {mx} = v{arg} if v{arg} > {mx} else {mx}")
        out.append(f"    {S} = 0.0")
        for k, (arg, fl) in enumerate(zip(args, flags)):
            if fl:
                out.append(f"    {w[k]} = EXP(-{mx})")
                out.append(f"    {S} += v{arg} * {w[k]}")
            else:
                out.append(f"    {w[k]} = EXP(v{arg} - {mx})")
                out.append(f"    {S} += {w[k]}")
        out.append(f"    {v} = {mx} + LOG({S})")
        G, Hs = self.grad[i], self.hess[i]
        if not G:
            return
        out.append(f"r{S} = 1.0 / {S}")
        W = [f"W{i}_{k}" for k in range(K)]
        for k in range(K):
            out.append(f"{W[k]} = {w[k]} * r{S}")
        for j, name in G.items():
            t = [_prod(W[k], self.g(arg, j)) for k, arg in enumerate(args) if self.g(arg, j)]
            out.append(f"{name} = {_sum(t)}")
        any_linear = any(flags)
        for (j, kk), name in Hs.items():
            t = []
            for k, (arg, fl) in enumerate(zip(args, flags)):
                hk = self.h(arg, (j, kk))
                if hk:
                    t.append(_prod(W[k], hk))
                if not any_linear:
                    # Centred form sum_k W_k (h_k + (g_k - g)(g_k - g)^T): no cancellation when the gradients
                    # are large (the W_k sum to 1).
                    aj = f"({self.g(arg, j)} - {G[j]})" if self.g(arg, j) else f"(0.0 - {G[j]})"
                    ak = f"({self.g(arg, kk)} - {G[kk]})" if self.g(arg, kk) else f"(0.0 - {G[kk]})"
                    t.append(f"{W[k]} * ({aj} * {ak})")
                elif fl == 0 and self.g(arg, j) and self.g(arg, kk):
                    t.append(f"{W[k]} * ({_prod(self.g(arg, j), self.g(arg, kk))})")
            expr = _sum(t)
            if any_linear:
                expr = f"{expr} - {G[j]} * {G[kk]}"
            out.append(f"{name} = {expr}")


def check_program(op, a, b, imm, args, argflags, n_params, n_features) -> None:
    """Raise ValueError for programs the CUDA backend cannot run (a valid tape is otherwise assumed: the
    caller validates it with the core's Program first)."""
    if len(op) > MAX_INSTRUCTIONS:
        raise ValueError(f"law program has {len(op)} instructions; the CUDA backend supports at most "
                         f"{MAX_INSTRUCTIONS} (use backend='cpu' for this law)")
    if not 1 <= n_params <= MAX_PARAMS:
        raise ValueError(f"law has {n_params} parameters; the engine supports 1 to {MAX_PARAMS}")


def objective_source(arrays, loss_kind: int, residual: int = 0) -> tuple[str, dict]:
    """Source of the device function ``objective`` for a program (as :func:`program_arrays` returns it), the
    loss kind and the residual scale (0 log, 1 linear), and the constants it reads (name -> value) that the
    caller binds in its namespace. The loss's per-point code comes from ``lawfit.losses.REGISTRY``; the
    device function's ``delta`` argument carries the loss's parameter."""
    op, a, b, imm, args, argflags, P, F = arrays
    check_program(op, a, b, imm, args, argflags, P, F)
    sources = _loss_sources()
    LOSS_LIKELIHOOD = _kind("huber_likelihood")
    if loss_kind not in sources and loss_kind != LOSS_LIKELIHOOD:
        raise ValueError(f"unknown loss kind {loss_kind}")
    if residual not in (0, 1):
        raise ValueError("residual must be 0 (log) or 1 (linear)")
    info = analyse(op, a, b, args, argflags)
    em = _Emitter(op, a, b, args, argflags, info, P)
    consts = {f"K{i}": float(imm[i]) for i in range(len(op)) if int(op[i]) == CONST}
    for i in range(len(op)):
        em.node(i)
    root = len(op) - 1
    rv = em.val[root]
    rg = em.grad[root]  # the root's gradient entries (parameter -> expression)
    rh = em.hess[root]
    sigma_index = P - 1 if loss_kind == LOSS_LIKELIHOOD else -1
    pairs = [(j, k) for j in sorted(rg) for k in sorted(rg) if j <= k]

    L = ["def objective(x, fi, fv, nf, feat, target, pidx, pw, q0, q1, c, delta, asym, log_z, g, H):"]
    ind = "    "
    for k in range(P):
        L.append(f"{ind}t{k} = x[fi[{k}]] if fi[{k}] >= 0 else fv[{k}]")
    L += [ind + s for s in em.pre]
    if sigma_index >= 0:
        L.append(f"{ind}s_ = t{sigma_index}")
        L.append(f"{ind}es = EXP(-s_)")
        L.append(f"{ind}es2 = es * es")
        L.append(f"{ind}cst = s_ + log_z")
    L.append(f"{ind}f = 0.0")
    L.append(f"{ind}core = 0.0")
    for j in sorted(rg):
        L.append(f"{ind}G{j} = 0.0")
    for j, k in pairs:
        L.append(f"{ind}H{j}_{k} = 0.0")
    if sigma_index >= 0:
        L += [f"{ind}GS = 0.0", f"{ind}HSS = 0.0"]
        for j in sorted(rg):
            L.append(f"{ind}HS{j} = 0.0")
    L.append(f"{ind}for q in range(q0, q1):")
    ind2 = ind * 2
    L.append(f"{ind2}pi = pidx[q]")
    L.append(f"{ind2}w = WEIGHT(pw[q])")
    L += [ind2 + s for s in em.body]
    if residual == 1:  # r = L_hat - L; chain rule through L_hat = exp(v) below
        L.append(f"{ind2}e_ = EXP({rv})")
        L.append(f"{ind2}r = e_ - target[pi]")
    else:
        L.append(f"{ind2}r = {rv} - target[pi]")
    if loss_kind != LOSS_LIKELIHOOD:
        L.append(f"{ind2}wk = w * asym if r > 0.0 else w")  # over-predictions weigh asym times
        L.append(f"{ind2}P = delta")
        L += [ind2 + line for line in sources[loss_kind].splitlines()]
        L.append(f"{ind2}f += wk * rho")
        if residual == 1:
            L += [f"{ind2}rw1 = wd1 * e_", f"{ind2}rw2 = (wd2 * e_ + wd1) * e_"]
        else:
            L += [f"{ind2}rw1 = wd1", f"{ind2}rw2 = wd2"]
    else:  # x = r / sigma; rho = huber(x) + log sigma + log Z; derivatives in r and s = log sigma
        L += [
            f"{ind2}xs = r * es",
            f"{ind2}aa = abs(xs)",
            f"{ind2}if aa <= delta:",
            f"{ind2}    hub = 0.5 * xs * xs",
            f"{ind2}    h1 = xs",
            f"{ind2}    h2 = 1.0",
            f"{ind2}    rw2 = w * es2",
            f"{ind2}else:",
            f"{ind2}    hub = delta * (aa - 0.5 * delta)",
            f"{ind2}    h1 = COPYSIGN(delta, xs)",
            f"{ind2}    h2 = 0.0",
            f"{ind2}    rw2 = w * es2 * c / aa",
            f"{ind2}f += w * (hub + cst)",
            f"{ind2}core += w * hub",
            f"{ind2}rw1 = w * h1 * es",
            f"{ind2}GS += w * (1.0 - h1 * xs)",
            f"{ind2}HSS += w * (h2 * xs * xs + h1 * xs)",
            f"{ind2}rrs = -w * es * (h2 * xs + h1)",
        ]
        if residual == 1:
            L += [f"{ind2}rw2 = (rw2 * e_ + rw1) * e_", f"{ind2}rw1 = rw1 * e_", f"{ind2}rrs = rrs * e_"]
        for j in sorted(rg):
            L.append(f"{ind2}HS{j} += {_prod('rrs', rg[j])}")
    for j in sorted(rg):
        L.append(f"{ind2}G{j} += {_prod('rw1', rg[j])}")
    for j, k in pairs:
        t = f"rw2 * ({_prod(rg[j], rg[k])})"
        if (j, k) in rh:
            t += f" + rw1 * {rh[(j, k)]}"
        L.append(f"{ind2}H{j}_{k} += {t}")
    # Scatter into the free parameters: g[fi[j]] += G_j, H[fi[j], fi[k]] += H_jk (and symmetric), as
    # evaluate_free in solver.cpp (tied parameters share a free index and add up).
    L.append(f"{ind}for j in range(nf):")
    L.append(f"{ind2}g[j] = 0.0")
    L.append(f"{ind}for j in range(nf * nf):")
    L.append(f"{ind2}H[j] = 0.0")
    grads = {j: f"G{j}" for j in rg}
    hess = {(j, k): f"H{j}_{k}" for j, k in pairs}
    if sigma_index >= 0:
        grads[sigma_index] = f"{grads[sigma_index]} + GS" if sigma_index in grads else "GS"
        key = (sigma_index, sigma_index)
        hess[key] = f"{hess[key]} + HSS" if key in hess else "HSS"
        for j in sorted(rg):
            key = (min(j, sigma_index), max(j, sigma_index))
            hess[key] = f"{hess[key]} + HS{j}" if key in hess else f"HS{j}"
    for j in sorted(grads):
        L.append(f"{ind}if fi[{j}] >= 0:")
        L.append(f"{ind2}g[fi[{j}]] += {grads[j]}")
    for (j, k) in sorted(hess):
        if j == k:
            L.append(f"{ind}if fi[{j}] >= 0:")
            L.append(f"{ind2}H[fi[{j}] * nf + fi[{j}]] += {hess[(j, k)]}")
        else:
            L.append(f"{ind}if fi[{j}] >= 0 and fi[{k}] >= 0:")
            L.append(f"{ind2}H[fi[{j}] * nf + fi[{k}]] += {hess[(j, k)]}")
            L.append(f"{ind2}H[fi[{k}] * nf + fi[{j}]] += {hess[(j, k)]}")
    L.append(f"{ind}return f, ({'core' if sigma_index >= 0 else 'abs(f)'})")
    return "\n".join(L) + "\n", consts
