// A law as data: a straight-line program (SSA tape) over features and parameters.
//
// Instruction i defines node i. Operands always refer to earlier nodes, so the tape is evaluated in order.
// The Python compiler (lawfit/compiler.py) produces the tape; this header validates it and derives the
// static facts the evaluator needs: which nodes vary across data points, and which gradient and Hessian
// entries of each node are structurally non-zero.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lawfit {

constexpr int kMaxParams = 12;                              // parameters of a law (full vector)
constexpr int kMaxPairs = kMaxParams * (kMaxParams + 1) / 2;  // Hessian entries (upper triangle)
// Size limits, so that a malformed or absurd program is rejected by validate() instead of exhausting memory:
// the compiler's programs have tens of instructions (Chinchilla: 12).
constexpr std::size_t kMaxInstructions = 1 << 16;  // instructions of a program
constexpr std::size_t kMaxLseArgs = 1 << 16;       // log-sum-exp operands, summed over all lse instructions
constexpr std::size_t kBlock = 64;                 // points per block of the evaluator
// An evaluator's workspace holds at most this many blocks of kBlock doubles (256 MiB).
constexpr std::size_t kMaxWorkspaceBlocks = std::size_t(1) << 19;

enum class Op : std::int32_t {
    constant = 0,  // imm
    feature = 1,   // a = feature column
    param = 2,     // a = parameter index
    add = 3,       // a + b
    sub = 4,       // a - b
    mul = 5,       // a * b
    neg = 6,       // -a
    recip = 7,     // 1 / a
    exp = 8,       // exp(a)
    log = 9,       // log(a)
    lse = 10,      // log(sum_k exp(arg_k) + sum_l lin_l): args[a .. a+b), flags 0 = log-space, 1 = linear
    expm1 = 11,    // exp(a) - 1
    log1p = 12,    // log(1 + a)
};
constexpr int kNumOps = 13;

struct Instr {
    std::int32_t op;
    std::int32_t a;
    std::int32_t b;
    double imm;
};

inline int pair_index(int j, int k) {  // j <= k, upper triangle, row-major
    return j * kMaxParams - j * (j - 1) / 2 + (k - j);
}

struct Program {
    std::vector<Instr> code;
    std::vector<std::int32_t> args;      // operand lists of lse
    std::vector<std::int32_t> argflags;  // 0: log-space argument, 1: linear (non-negative) argument
    int n_params = 0;
    int n_features = 0;
};

// Static analysis of a validated program.
struct NodeInfo {
    bool pointwise = false;       // depends on a feature
    std::vector<int> grad;        // parameter indices with a structurally non-zero gradient
    std::vector<int> hess;        // pair_index(j, k) of structurally non-zero Hessian entries, j <= k
    std::vector<int> hess_j, hess_k;
};

// The affine log-sum-exp form, which most scaling laws take (Chinchilla, the saturating power laws, OLMo's
// linear E, user laws adding terms like G / (N D)^gamma): log L_hat = lse_k(u_k) where every term u_k is either
// data-independent (a function of the parameters only; log-space or linear) or affine in the features,
// u_k = c_k(theta) + sum_f d_kf(theta) x_f, with coefficients that are functions of the parameters only.
// For such programs the evaluator (evaluator_affine_impl.hpp) computes the coefficients and their exact
// derivatives once per evaluation and the per-point work reduces to a few exps, a log and moment sums.
constexpr int kMaxBasis = 12;    // sum over terms of (1 + features of the term) the affine kernel supports
struct AffineTerm {
    int node = -1;                 // the root's argument
    int flag = 0;                  // 0: log-space, 1: linear (data-independent only)
    bool pointwise = false;        // affine in the features (else data-independent)
    std::vector<int> features;     // feature columns with a structurally non-zero coefficient, ascending
};
struct AffinePlan {
    bool ok = false;
    std::string why_not;             // when !ok: the first reason the program is not of this form
    std::vector<AffineTerm> terms;   // the root log-sum-exp's arguments, in order
    int n_basis = 0;                 // sum over terms of 1 + features.size()
    std::vector<char> needed;        // per node: an ancestor of the root's arguments (or one of them)
    std::vector<std::uint32_t> fmask;  // per pointwise needed node: the features of its affine form
};

struct Analysis {
    std::vector<NodeInfo> nodes;
    AffinePlan affine;
};

// Returns an empty string if the program is valid, else a message naming the instruction and the problem.
std::string validate(const Program& prog);
Analysis analyse(const Program& prog);
// The affine log-sum-exp plan of a validated, analysed program (see AffinePlan); analyse() fills it in.
AffinePlan plan_affine(const Program& prog, const Analysis& an);
// Blocks of kBlock doubles an evaluator's workspace needs for this (validated, analysed) program: value,
// gradient and Hessian slots of every non-feature node, log-sum-exp weights and 8 scratch blocks.
std::size_t workspace_blocks(const Program& prog, const Analysis& an);
// Empty string if an evaluator's workspace for this program is within kMaxWorkspaceBlocks, else a message.
std::string check_size(const Program& prog, const Analysis& an);

}  // namespace lawfit
