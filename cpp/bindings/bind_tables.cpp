// The tables the Python layer and the CUDA backend share with the core, exported once from here: opcodes,
// status codes, size limits and the solver's options and constants. (Loss kinds: bind_engine.cpp, from
// lawfit/loss.hpp's one list.)
#include "lawfit/program.hpp"
#include "lawfit/solver.hpp"
#include "lawfit/status.hpp"
#include "pybind.hpp"

void register_tables(py::module_& m) {
    using lawfit::Op;
    py::dict ops;  // the compiler's names for the opcodes
    ops["const"] = static_cast<int>(Op::constant);
    ops["feat"] = static_cast<int>(Op::feature);
    ops["param"] = static_cast<int>(Op::param);
    ops["add"] = static_cast<int>(Op::add);
    ops["sub"] = static_cast<int>(Op::sub);
    ops["mul"] = static_cast<int>(Op::mul);
    ops["neg"] = static_cast<int>(Op::neg);
    ops["recip"] = static_cast<int>(Op::recip);
    ops["exp"] = static_cast<int>(Op::exp);
    ops["log"] = static_cast<int>(Op::log);
    ops["lse"] = static_cast<int>(Op::lse);
    ops["expm1"] = static_cast<int>(Op::expm1);
    ops["log1p"] = static_cast<int>(Op::log1p);
    m.attr("OPCODES") = ops;

    using lawfit::Status;
    py::dict st;
    st["CONVERGED"] = static_cast<int>(Status::converged);
    st["CONVERGED_AT_BOUND"] = static_cast<int>(Status::converged_at_bound);
    st["MAX_ITERATIONS"] = static_cast<int>(Status::max_iterations);
    st["STEP_FAILED"] = static_cast<int>(Status::step_failed);
    st["NON_FINITE"] = static_cast<int>(Status::non_finite);
    st["NOT_RUN"] = static_cast<int>(Status::not_run);
    m.attr("STATUS") = st;

    m.attr("MAX_PARAMS") = lawfit::kMaxParams;
    m.attr("MAX_INSTRUCTIONS") = lawfit::kMaxInstructions;

    const lawfit::SolverOptions d;
    py::dict solver;  // defaults of the solver's options, and the constants of its adaptive curvature
    solver["max_iter"] = d.max_iter;
    solver["xtol"] = d.xtol;
    solver["ftol"] = d.ftol;
    solver["radius0"] = d.radius0;
    solver["irls"] = d.irls;
    solver["switch_rtol"] = d.switch_rtol;
    solver["irls_rho"] = lawfit::kIrlsRho;
    solver["irls_shrink"] = lawfit::kIrlsShrink;
    solver["irls_min"] = lawfit::kIrlsMin;
    m.attr("SOLVER") = solver;
}
