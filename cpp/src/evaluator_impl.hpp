// Implementation of lawfit::Evaluator, compiled once per instruction set (see evaluator_generic.cpp and
// evaluator_avx2.cpp): this file is included with LAWFIT_ISA_NS defined to a distinct namespace name. It
// assembles one fragment per concept: block operations (block_ops.hpp), the loss over a block
// (loss_kernel.hpp), the interpreter (evaluator_interp_impl.hpp) and the affine log-sum-exp kernel
// (evaluator_affine_impl.hpp), and defines make().
// No -ffast-math: exp and log come from lawfit/vecmath.hpp, which vectorises under strict IEEE semantics,
// so non-finite values propagate and are detected by the solver.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "lawfit/evaluator.hpp"
#include "lawfit/loss.hpp"
#include "lawfit/vecmath.hpp"

#ifndef LAWFIT_ISA_NS
#error "define LAWFIT_ISA_NS before including evaluator_impl.hpp"
#endif

namespace lawfit {
namespace LAWFIT_ISA_NS {

// Points per block (kBlock, program.hpp); every block is full (the point set is padded with weight 0).
constexpr int B = static_cast<int>(kBlock);

namespace {

#include "block_ops.hpp"
#include "loss_kernel.hpp"
#include "evaluator_interp_impl.hpp"
#include "evaluator_affine_impl.hpp"

}  // namespace

// affine: build the affine log-sum-exp kernel (the caller checked an.affine.ok), else the interpreter.
std::unique_ptr<Evaluator> make(const Program& prog, const Analysis& an, const Loss& loss, bool affine) {
    if (affine) return std::make_unique<AffineImpl>(prog, an, loss);
    return std::make_unique<Impl>(prog, an, loss);
}

}  // namespace LAWFIT_ISA_NS
}  // namespace lawfit
