#include "lawfit/program.hpp"

#include <algorithm>
#include <bitset>
#include <cmath>

namespace lawfit {

namespace {

std::string at(std::size_t i) { return "law program instruction " + std::to_string(i) + ": "; }

bool is_unary(Op op) {
    return op == Op::neg || op == Op::recip || op == Op::exp || op == Op::log || op == Op::expm1 ||
           op == Op::log1p;
}
bool is_binary(Op op) { return op == Op::add || op == Op::sub || op == Op::mul; }

}  // namespace

std::string validate(const Program& prog) {
    if (prog.code.empty()) return "law program is empty";
    if (prog.n_params < 1 || prog.n_params > kMaxParams)
        return "law has " + std::to_string(prog.n_params) + " parameters; the engine supports 1 to " +
               std::to_string(kMaxParams);
    if (prog.n_features < 0) return "law has a negative number of features";
    if (prog.args.size() != prog.argflags.size()) return "law program: args and argflags differ in length";
    if (prog.code.size() > kMaxInstructions)
        return "law program has " + std::to_string(prog.code.size()) + " instructions; the engine supports at most " +
               std::to_string(kMaxInstructions);
    std::size_t lse_args = 0;
    const auto n = static_cast<std::int64_t>(prog.code.size());
    for (std::size_t i = 0; i < prog.code.size(); ++i) {
        const Instr& in = prog.code[i];
        if (in.op < 0 || in.op >= kNumOps) return at(i) + "unknown opcode " + std::to_string(in.op);
        const Op op = static_cast<Op>(in.op);
        const auto ii = static_cast<std::int64_t>(i);
        auto operand_ok = [&](std::int64_t j) { return j >= 0 && j < ii; };
        if (op == Op::constant) {
            if (!std::isfinite(in.imm)) return at(i) + "constant is not finite";
        } else if (op == Op::feature) {
            if (in.a < 0 || in.a >= prog.n_features) return at(i) + "feature index out of range";
        } else if (op == Op::param) {
            if (in.a < 0 || in.a >= prog.n_params) return at(i) + "parameter index out of range";
        } else if (is_unary(op)) {
            if (!operand_ok(in.a)) return at(i) + "operand must refer to an earlier instruction";
        } else if (is_binary(op)) {
            if (!operand_ok(in.a) || !operand_ok(in.b))
                return at(i) + "operands must refer to earlier instructions";
        } else if (op == Op::lse) {
            if (in.b < 1 || in.a < 0 || static_cast<std::size_t>(in.a) + in.b > prog.args.size())
                return at(i) + "log-sum-exp argument list out of range";
            lse_args += static_cast<std::size_t>(in.b);
            if (lse_args > kMaxLseArgs)
                return at(i) + "too many log-sum-exp arguments in the program (at most " +
                       std::to_string(kMaxLseArgs) + " in all)";
            bool any_log = false;
            for (int k = 0; k < in.b; ++k) {
                if (!operand_ok(prog.args[in.a + k]))
                    return at(i) + "log-sum-exp argument must refer to an earlier instruction";
                const int f = prog.argflags[in.a + k];
                if (f != 0 && f != 1) return at(i) + "log-sum-exp argument flag must be 0 or 1";
                any_log = any_log || f == 0;
            }
            if (!any_log) return at(i) + "log-sum-exp needs at least one log-space argument";
        }
    }
    (void)n;
    return {};
}

std::size_t workspace_blocks(const Program& prog, const Analysis& an) {
    std::size_t blocks = 8;  // d1, d2, rw1, rw2, lse max, lse sum, zeros, rrs
    for (std::size_t i = 0; i < prog.code.size(); ++i) {
        const Op op = static_cast<Op>(prog.code[i].op);
        if (op == Op::feature) continue;
        blocks += 1 + an.nodes[i].grad.size() + an.nodes[i].hess.size();
        if (op == Op::lse) blocks += static_cast<std::size_t>(prog.code[i].b);
    }
    return blocks;
}

std::string check_size(const Program& prog, const Analysis& an) {
    const std::size_t blocks = workspace_blocks(prog, an);
    if (blocks > kMaxWorkspaceBlocks)
        return "law program too large: an evaluator would need " +
               std::to_string(blocks * kBlock * sizeof(double) >> 20) + " MiB of workspace per thread (at most " +
               std::to_string(kMaxWorkspaceBlocks * kBlock * sizeof(double) >> 20) + " MiB)";
    return {};
}

Analysis analyse(const Program& prog) {
    using G = std::bitset<kMaxParams>;
    using H = std::bitset<kMaxPairs>;
    const std::size_t n = prog.code.size();
    std::vector<G> g(n);
    std::vector<H> h(n);
    std::vector<char> pw(n, 0);
    auto outer = [](const G& a, const G& b) {
        H out;
        for (int j = 0; j < kMaxParams; ++j)
            for (int k = 0; k < kMaxParams; ++k)
                if (a[j] && b[k]) out.set(pair_index(std::min(j, k), std::max(j, k)));
        return out;
    };
    for (std::size_t i = 0; i < n; ++i) {
        const Instr& in = prog.code[i];
        const Op op = static_cast<Op>(in.op);
        switch (op) {
            case Op::constant: break;
            case Op::feature: pw[i] = 1; break;
            case Op::param: g[i].set(in.a); break;
            case Op::add:
            case Op::sub:
                g[i] = g[in.a] | g[in.b];
                h[i] = h[in.a] | h[in.b];
                pw[i] = pw[in.a] | pw[in.b];
                break;
            case Op::mul:
                g[i] = g[in.a] | g[in.b];
                h[i] = h[in.a] | h[in.b] | outer(g[in.a], g[in.b]);
                pw[i] = pw[in.a] | pw[in.b];
                break;
            case Op::neg:
                g[i] = g[in.a];
                h[i] = h[in.a];
                pw[i] = pw[in.a];
                break;
            case Op::recip:
            case Op::exp:
            case Op::log:
            case Op::expm1:
            case Op::log1p:
                g[i] = g[in.a];
                h[i] = h[in.a] | outer(g[in.a], g[in.a]);
                pw[i] = pw[in.a];
                break;
            case Op::lse: {
                for (int k = 0; k < in.b; ++k) {
                    const int j = prog.args[in.a + k];
                    g[i] |= g[j];
                    h[i] |= h[j];
                    pw[i] |= pw[j];
                }
                // sum_k s_k g_k g_k^T - g g^T: dense over the union of gradients (when there are >= 2 args)
                h[i] |= outer(g[i], g[i]);
                break;
            }
        }
    }
    Analysis an;
    an.nodes.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        NodeInfo& ni = an.nodes[i];
        ni.pointwise = pw[i] != 0;
        for (int j = 0; j < prog.n_params; ++j)
            if (g[i][j]) ni.grad.push_back(j);
        for (int j = 0; j < prog.n_params; ++j)
            for (int k = j; k < prog.n_params; ++k)
                if (h[i][pair_index(j, k)]) {
                    ni.hess.push_back(pair_index(j, k));
                    ni.hess_j.push_back(j);
                    ni.hess_k.push_back(k);
                }
    }
    an.affine = plan_affine(prog, an);
    return an;
}

AffinePlan plan_affine(const Program& prog, const Analysis& an) {
    AffinePlan plan;
    const std::size_t n = prog.code.size();
    auto fail = [&plan](std::string why) {
        plan.ok = false;
        plan.why_not = std::move(why);
        plan.terms.clear();
        return plan;
    };
    const Instr& root = prog.code[n - 1];
    if (static_cast<Op>(root.op) != Op::lse) return fail("the law's log is not a log-sum-exp");
    if (!an.nodes[n - 1].pointwise) return fail("the law does not depend on the data");
    if (prog.n_features > 32) return fail("more than 32 features");
    // Which nodes are affine in the features (with data-independent coefficients), and in which features.
    std::vector<char> affine(n, 0);
    std::vector<std::uint32_t> mask(n, 0);
    for (std::size_t i = 0; i + 1 < n; ++i) {
        if (!an.nodes[i].pointwise) continue;
        const Instr& in = prog.code[i];
        auto ok = [&](int j) { return !an.nodes[j].pointwise || affine[j]; };
        switch (static_cast<Op>(in.op)) {
            case Op::feature:
                affine[i] = 1;
                mask[i] = 1u << in.a;
                break;
            case Op::add:
            case Op::sub:
                affine[i] = ok(in.a) && ok(in.b);
                mask[i] = mask[in.a] | mask[in.b];
                break;
            case Op::neg:
                affine[i] = ok(in.a);
                mask[i] = mask[in.a];
                break;
            case Op::mul:  // a data-independent factor times an affine form
                affine[i] = (!an.nodes[in.a].pointwise && affine[in.b]) || (!an.nodes[in.b].pointwise && affine[in.a]);
                mask[i] = mask[in.a] | mask[in.b];
                break;
            default:
                break;
        }
    }
    for (int k = 0; k < root.b; ++k) {
        AffineTerm t;
        t.node = prog.args[root.a + k];
        t.flag = prog.argflags[root.a + k];
        t.pointwise = an.nodes[t.node].pointwise;
        if (t.pointwise) {
            if (t.flag != 0) return fail("a linear log-sum-exp argument depends on the data");
            if (!affine[t.node])
                return fail("log-sum-exp argument " + std::to_string(k) + " is not affine in the features");
            for (int f = 0; f < prog.n_features; ++f)
                if (mask[t.node] >> f & 1u) t.features.push_back(f);
        }
        plan.n_basis += 1 + static_cast<int>(t.features.size());
        plan.terms.push_back(std::move(t));
    }
    if (plan.n_basis > kMaxBasis)
        return fail("the affine terms have " + std::to_string(plan.n_basis) + " coefficients (at most " +
                    std::to_string(kMaxBasis) + ")");
    plan.needed.assign(n, 0);
    for (const AffineTerm& t : plan.terms) plan.needed[t.node] = 1;
    for (std::size_t i = n - 1; i-- > 0;) {
        if (!plan.needed[i]) continue;
        const Instr& in = prog.code[i];
        const Op op = static_cast<Op>(in.op);
        if (op == Op::lse) {
            for (int k = 0; k < in.b; ++k) plan.needed[prog.args[in.a + k]] = 1;
        } else if (op != Op::constant && op != Op::feature && op != Op::param) {
            plan.needed[in.a] = 1;
            if (is_binary(op)) plan.needed[in.b] = 1;
        }
    }
    plan.fmask = mask;
    plan.ok = true;
    return plan;
}

}  // namespace lawfit
