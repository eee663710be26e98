// Runtime choice between the evaluator builds. Each build is bit-for-bit deterministic on its own;
// the choice depends only on the CPU, never on the thread count.
#include "lawfit/evaluator.hpp"

#include <atomic>
#include <string>

namespace lawfit {
namespace isa_generic {
std::unique_ptr<Evaluator> make(const Program&, const Analysis&, const Loss&, bool affine);
}
#if defined(LAWFIT_HAVE_AVX2_BUILD)
namespace isa_avx2 {
std::unique_ptr<Evaluator> make(const Program&, const Analysis&, const Loss&, bool affine);
}
#endif

namespace {
bool cpu_has_avx2() {
#if defined(LAWFIT_HAVE_AVX2_BUILD) && (defined(__GNUC__) || defined(__clang__))
    static const bool ok = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return ok;
#else
    return false;
#endif
}
std::atomic<bool> force_generic{false};
std::atomic<bool> force_interpreter{false};
bool use_avx2() { return cpu_has_avx2() && !force_generic.load(); }
bool use_affine(const Analysis& an) { return an.affine.ok && !force_interpreter.load(); }
}  // namespace

bool set_isa(const std::string& name) {
    if (name == "generic") {
        force_generic = true;
        return true;
    }
    if (name == "auto" || (name == "avx2" && cpu_has_avx2())) {
        force_generic = false;
        return true;
    }
    return false;
}

std::unique_ptr<Evaluator> make_evaluator(const Program& prog, const Analysis& an, const Loss& loss) {
#if defined(LAWFIT_HAVE_AVX2_BUILD)
    if (use_avx2()) return isa_avx2::make(prog, an, loss, use_affine(an));
#endif
    return isa_generic::make(prog, an, loss, use_affine(an));
}

bool set_kernel(const std::string& name) {
    if (name == "auto" || name == "interpreter") {
        force_interpreter = name == "interpreter";
        return true;
    }
    return false;
}

const char* kernel_name(const Analysis& an) {
    return use_affine(an) ? "affine_lse" : "interpreter";
}

const char* evaluator_isa() { return use_avx2() ? "avx2" : "generic"; }

}  // namespace lawfit
