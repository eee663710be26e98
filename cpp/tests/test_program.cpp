// Law programs (lawfit/program.hpp): validate() accepts well-formed programs and rejects malformed ones with a
// message naming the instruction and the problem; analyse() derives which nodes vary with the data, their
// structurally non-zero derivatives and the affine log-sum-exp plan; check_size() refuses absurd workspaces.
// Exit status 0 means every check passed.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "check.hpp"
#include "lawfit/program.hpp"
#include "synthetic.hpp"

using namespace lawfit;
using namespace lawfit_test;

namespace {

// validate(p) fails with a message containing every part.
void expect_invalid(const Program& p, const std::vector<std::string>& parts, int line) {
    const std::string msg = validate(p);
    bool ok = !msg.empty();
    for (const std::string& part : parts) ok = ok && contains(msg, part);
    std::string want;
    for (const std::string& part : parts) want += "\"" + part + "\" ";
    record(ok, __FILE__, line, "validate() rejects the program", "message \"" + msg + "\", expected " + want);
}
#define EXPECT_INVALID(p, ...) expect_invalid((p), {__VA_ARGS__}, __LINE__)

void test_good_programs() {
    for (const Program& p : {saturating_law(), chinchilla_law(), symmetric_law()}) {
        CHECK_MSG(validate(p).empty(), validate(p));
        const Analysis an = analyse(p);
        CHECK(an.nodes.size() == p.code.size());
        CHECK_MSG(an.affine.ok, an.affine.why_not);
        CHECK(check_size(p, an).empty());
    }
    // Every opcode in one program: log(1 + x) etc. (not of the affine form).
    Builder b;
    b.p.n_params = 2;
    b.p.n_features = 1;
    const int c = b.emit(Op::constant, 0, 0, 2.5);
    const int x = b.feature(0), t0 = b.param(0), t1 = b.param(1);
    const int n1 = b.emit(Op::add, x, c), n2 = b.emit(Op::mul, t0, n1), n3 = b.emit(Op::neg, n2);
    const int n4 = b.emit(Op::recip, n1), n5 = b.emit(Op::exp, n3), n6 = b.emit(Op::log, n1);
    const int n7 = b.emit(Op::expm1, n4), n8 = b.emit(Op::log1p, n7), n9 = b.emit(Op::sub, n8, n5);
    const int n10 = b.emit(Op::mul, t1, n9);
    b.p.args = {n10, n6, t1};
    b.p.argflags = {0, 0, 1};
    b.emit(Op::lse, 0, 3);
    const Program p = b.p;
    CHECK_MSG(validate(p).empty(), validate(p));
    const Analysis an = analyse(p);
    // Static facts: features make nodes pointwise; gradients follow the parameters each node depends on.
    CHECK(!an.nodes[c].pointwise && an.nodes[x].pointwise && !an.nodes[t0].pointwise);
    CHECK(an.nodes[t0].grad == std::vector<int>{0} && an.nodes[t1].grad == std::vector<int>{1});
    CHECK(an.nodes[n1].grad.empty() && an.nodes[n1].hess.empty() && an.nodes[n1].pointwise);
    CHECK(an.nodes[n2].grad == std::vector<int>{0} && an.nodes[n2].hess.empty());  // linear in t0
    CHECK(an.nodes[n5].hess == std::vector<int>{pair_index(0, 0)});                 // exp(-t0 (x + c))
    CHECK(an.nodes[n10].grad == (std::vector<int>{0, 1}));
    CHECK(an.nodes.back().hess.size() == 3);  // (0,0), (0,1), (1,1)
    CHECK(!an.affine.ok && !an.affine.why_not.empty());
    CHECK_MSG(contains(an.affine.why_not, "not affine"), an.affine.why_not);
    CHECK(std::string(plan_affine(p, an).why_not) == an.affine.why_not);
    // The affine plan of Chinchilla's form: e (data-independent) and two terms affine in one feature each.
    const Program chin = chinchilla_law();
    const Analysis ac = analyse(chin);
    CHECK(ac.affine.terms.size() == 3 && ac.affine.n_basis == 5);
    CHECK(!ac.affine.terms[0].pointwise && ac.affine.terms[1].features == std::vector<int>{0} &&
          ac.affine.terms[2].features == std::vector<int>{1});
    // A law whose root is not a log-sum-exp is valid but not of the affine form.
    Builder r;
    r.p.n_params = 1;
    r.p.n_features = 1;
    r.emit(Op::mul, r.param(0), r.feature(0));
    CHECK(validate(r.p).empty());
    CHECK_MSG(contains(analyse(r.p).affine.why_not, "not a log-sum-exp"), analyse(r.p).affine.why_not);
}

void test_bad_programs() {
    const Program good = saturating_law();  // 0 e, 1 a, 2 alpha, 3 x, 4 alpha*x, 5 a - alpha*x, 6 lse
    Program p;
    EXPECT_INVALID(p, "empty");
    p = good;
    p.n_params = 0;
    EXPECT_INVALID(p, "0 parameters", "1 to 12");
    p.n_params = kMaxParams + 1;
    EXPECT_INVALID(p, "13 parameters");
    p = good;
    p.n_features = -1;
    EXPECT_INVALID(p, "negative number of features");
    p = good;
    p.argflags.push_back(0);
    EXPECT_INVALID(p, "args and argflags differ");
    // Unknown opcodes.
    p = good;
    p.code[4].op = kNumOps;
    EXPECT_INVALID(p, "instruction 4", "unknown opcode 13");
    p.code[4].op = -1;
    EXPECT_INVALID(p, "instruction 4", "unknown opcode -1");
    // Forward references and self references.
    p = good;
    p.code[4].b = 4;  // alpha * (itself)
    EXPECT_INVALID(p, "instruction 4", "earlier instruction");
    p = good;
    p.code[5].a = 6;  // refers to a later instruction
    EXPECT_INVALID(p, "instruction 5", "earlier instruction");
    p = good;
    p.code[4].a = -1;
    EXPECT_INVALID(p, "instruction 4", "earlier instruction");
    p = good;
    p.code.insert(p.code.begin() + 4, Instr{static_cast<std::int32_t>(Op::log), 4, 0, 0.0});
    EXPECT_INVALID(p, "instruction 4", "operand must refer to an earlier instruction");
    p = good;
    p.args[1] = 6;  // the lse's own index
    EXPECT_INVALID(p, "instruction 6", "log-sum-exp argument must refer to an earlier instruction");
    // Out-of-range indices.
    p = good;
    p.code[3].a = 1;  // feature 1 of a one-feature law
    EXPECT_INVALID(p, "instruction 3", "feature index out of range");
    p = good;
    p.code[2].a = 3;  // parameter 3 of a three-parameter law
    EXPECT_INVALID(p, "instruction 2", "parameter index out of range");
    p.code[2].a = -1;
    EXPECT_INVALID(p, "instruction 2", "parameter index out of range");
    p = good;
    p.code[6].b = 3;  // three arguments, two in the list
    EXPECT_INVALID(p, "instruction 6", "argument list out of range");
    p.code[6].b = 0;
    EXPECT_INVALID(p, "instruction 6", "argument list out of range");
    p = good;
    p.code[6].a = -1;
    EXPECT_INVALID(p, "instruction 6", "argument list out of range");
    // Bad values.
    p = good;
    p.code[0] = Instr{static_cast<std::int32_t>(Op::constant), 0, 0, std::numeric_limits<double>::quiet_NaN()};
    EXPECT_INVALID(p, "instruction 0", "constant is not finite");
    p.code[0].imm = std::numeric_limits<double>::infinity();
    EXPECT_INVALID(p, "instruction 0", "constant is not finite");
    p = good;
    p.argflags[0] = 2;
    EXPECT_INVALID(p, "instruction 6", "flag must be 0 or 1");
    p.argflags = {1, 1};
    EXPECT_INVALID(p, "instruction 6", "at least one log-space argument");
    p.argflags = {1, 0};  // a linear argument next to a log-space one is fine
    CHECK_MSG(validate(p).empty(), validate(p));
    // Size limits.
    p = good;
    p.code.resize(kMaxInstructions + 1, Instr{static_cast<std::int32_t>(Op::constant), 0, 0, 1.0});
    EXPECT_INVALID(p, "65537 instructions", "at most 65536");
    p = good;
    p.args.assign(kMaxLseArgs + 1, 5);
    p.argflags.assign(kMaxLseArgs + 1, 0);
    p.code[6].b = static_cast<std::int32_t>(kMaxLseArgs + 1);
    EXPECT_INVALID(p, "instruction 6", "too many log-sum-exp arguments");
}

// A valid program whose evaluator would need more than kMaxWorkspaceBlocks blocks: 12 parameters mixed in a
// log-sum-exp (dense gradient and Hessian: 1 + 12 + 78 blocks per node), then a chain of negations of it.
void test_check_size() {
    Builder b;
    b.p.n_params = kMaxParams;
    b.p.n_features = 1;
    std::vector<int> params;
    for (int k = 0; k < kMaxParams; ++k) params.push_back(b.param(k));
    int node = b.emit(Op::mul, b.lse(params), b.feature(0));
    const std::size_t per_node = 1 + kMaxParams + kMaxPairs;
    const std::size_t chain = kMaxWorkspaceBlocks / per_node + 1;
    for (std::size_t i = 0; i < chain; ++i) node = b.emit(Op::neg, node);
    CHECK_MSG(validate(b.p).empty(), validate(b.p));
    const Analysis an = analyse(b.p);
    CHECK(an.nodes.back().hess.size() == static_cast<std::size_t>(kMaxPairs));
    CHECK(workspace_blocks(b.p, an) > kMaxWorkspaceBlocks);
    const std::string msg = check_size(b.p, an);
    CHECK_MSG(contains(msg, "too large") && contains(msg, "MiB"), msg);
    // The same program cut short fits.
    b.p.code.resize(b.p.code.size() - chain + 10);
    const Analysis small = analyse(b.p);
    CHECK_MSG(check_size(b.p, small).empty(), check_size(b.p, small));
}

}  // namespace

int main() {
    test_good_programs();
    test_bad_programs();
    test_check_size();
    return finish("test_program");
}
