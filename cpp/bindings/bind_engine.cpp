// lawfit._core.minimize / evaluate: convert and check arrays once, release the GIL, run the batch.
// Shape and value errors raise ValueError (std::invalid_argument), wrong types and dtypes TypeError (see
// pybind.hpp); the Python facade gives friendlier messages first.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "lawfit/batch.hpp"
#include "pybind.hpp"

lawfit::Program& program_of(py::object obj);
const lawfit::Analysis& analysis_of(py::object obj);

namespace {

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

std::string num(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", x);
    return buf;
}

// Weights are counts or other non-negative numbers (a row of zeros is a fit that is not run).
void check_weights(const array_d& w) {
    const double* p = w.data();
    for (py::ssize_t i = 0; i < w.size(); ++i)
        if (!(std::isfinite(p[i]) && p[i] >= 0.0))  // the message is built only on failure (this loop is hot)
            throw std::invalid_argument("weights must be finite and >= 0; entry " + std::to_string(i) + " is " +
                                        num(p[i]));
}

void check_progress(const py::object& progress) {
    if (!progress.is_none() && !PyCallable_Check(progress.ptr()))
        throw py::type_error("progress must be None or a callable(done, total)");
}

lawfit::DataView data_view(const lawfit::Program& prog, const array_d& features, const array_d& target) {
    require(features.ndim() == 2, "features must be a 2-d array (n_features, n_points)");
    require(target.ndim() == 1, "target must be a 1-d array (n_points,)");
    require(features.shape(0) == prog.n_features,
            "features has " + std::to_string(features.shape(0)) + " rows; the law uses " +
                std::to_string(prog.n_features));
    require(features.shape(1) == target.shape(0), "features and target disagree on the number of points");
    lawfit::DataView d;
    d.features = features.data();
    d.target = target.data();
    d.n = target.shape(0);
    d.n_features = prog.n_features;
    return d;
}

const lawfit::Loss& checked_loss(const lawfit::Loss& l) {
    const char* err = lawfit::check_loss(l);
    if (err) throw std::invalid_argument(std::string("loss: ") + err);
    return l;
}

// Whether the solver's phase-1 extra curvature applies to a loss kind (loss.hpp).
bool loss_curvature(std::int32_t kind) {
    if (kind == lawfit::kLossHuberLikelihood) return true;
#define LAWFIT_CURV_(k, name, S) \
    if (kind == k) return S::curvature;
    LAWFIT_LOSSES(LAWFIT_CURV_)
#undef LAWFIT_CURV_
    return false;
}

// Runs fn() on a helper thread while this thread, without the GIL, polls every 50 ms for Ctrl-C and, when
// given a progress callable, reports progress(done, total) to it. An exception in the callable, like Ctrl-C,
// stops handing out work and is raised here once the workers have stopped.
// Batches of at most this many (problem x run) pairs, at most kInlineIter iterations each, run without the
// helper thread (and so without Ctrl-C polling): even at the iteration limit they take well under a second.
// Evaluations of at most kInlineWork (evaluation x run) pairs likewise.
constexpr std::int64_t kInlineWork = std::int64_t(1) << 17;
constexpr std::int64_t kInlineIter = 200;

template <class Fn>
std::string run_interruptible(Fn fn, std::atomic<bool>& cancel, const std::atomic<std::int64_t>* done,
                              std::int64_t total, const py::object& progress, bool small) {
    std::string err;
    bool interrupted = false;
    if (small && progress.is_none()) {
        // A small batch (a plain fit, a few starts on a few hundred runs) finishes in milliseconds: run it on
        // this thread; the helper thread would cost more than the fit (~0.4 ms per call, measured).
        py::gil_scoped_release release;
        return fn();
    }
    {
        py::gil_scoped_release release;
        auto fut = std::async(std::launch::async, fn);
        while (fut.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
            py::gil_scoped_acquire acquire;
            if (PyErr_CheckSignals() != 0) {
                interrupted = true;
                cancel.store(true);
                break;
            }
            if (!progress.is_none() && done) {
                try {
                    progress(done->load(std::memory_order_relaxed), total);
                } catch (py::error_already_set& e) {
                    e.restore();
                    interrupted = true;
                    cancel.store(true);
                    break;
                }
            }
        }
        err = fut.get();
    }
    if (interrupted) throw py::error_already_set();
    if (!progress.is_none() && done && err.empty()) progress(done->load(), total);
    return err;
}

py::dict minimize(py::object program, py::object features_obj, py::object target_obj, py::object weights_obj,
                  py::object starts_obj, py::object free_index_obj, py::object fixed_value_obj,
                  py::object lower_obj, py::object upper_obj, const lawfit::Loss& loss,
                  const lawfit::SolverOptions& options, bool keep_all,
                  int threads, py::object progress, py::object scale_obj) {
    const lawfit::Program& prog = program_of(program);
    check_progress(progress);
    const array_d features = to_array_d(features_obj, "features"), target = to_array_d(target_obj, "target"),
                  starts = to_array_d(starts_obj, "starts"), fixed_value = to_array_d(fixed_value_obj, "fixed_value"),
                  lower = to_array_d(lower_obj, "lower"), upper = to_array_d(upper_obj, "upper");
    const array_i free_index = to_array_i(free_index_obj, "free_index");
    lawfit::BatchInput in;
    in.prog = &prog;
    in.an = &analysis_of(program);
    in.loss = checked_loss(loss);
    in.data = data_view(prog, features, target);
    array_d weights;
    if (!weights_obj.is_none()) {
        weights = to_array_d(weights_obj, "weights");
        require(weights.ndim() == 2 && weights.shape(1) == in.data.n,
                "weights must be a 2-d array (n_rows, n_points)");
        check_weights(weights);
        in.weights = weights.data();
        in.R = weights.shape(0);
    }
    require(free_index.ndim() == 1 && free_index.shape(0) == prog.n_params,
            "free_index must have one entry per law parameter");
    require(fixed_value.ndim() == 1 && fixed_value.shape(0) == prog.n_params,
            "fixed_value must have one entry per law parameter");
    int n_free = 0;
    for (py::ssize_t k = 0; k < free_index.shape(0); ++k) {
        require(free_index.at(k) >= -1 && free_index.at(k) < prog.n_params, "free_index out of range");
        n_free = std::max(n_free, free_index.at(k) + 1);
    }
    require(n_free >= 1, "at least one parameter must be free");
    require(lower.ndim() == 1 && upper.ndim() == 1 && lower.shape(0) == n_free && upper.shape(0) == n_free,
            "lower and upper must have one entry per free parameter");
    for (int j = 0; j < n_free; ++j)
        if (!(lower.at(j) <= upper.at(j)))  // true for NaN too
            throw std::invalid_argument("bounds of free parameter " + std::to_string(j) + ": lower " +
                                        num(lower.at(j)) + " must not exceed upper " + num(upper.at(j)) +
                                        " (nor be NaN)");
    in.map.n_full = prog.n_params;
    in.map.n_free = n_free;
    in.map.free_index = free_index.data();
    in.map.fixed_value = fixed_value.data();
    in.map.lower = lower.data();
    in.map.upper = upper.data();
    array_d scale;
    if (!scale_obj.is_none()) {
        scale = to_array_d(scale_obj, "scale");
        require(scale.ndim() == 1 && scale.shape(0) == n_free, "scale must have one entry per free parameter");
        for (int j = 0; j < n_free; ++j)
            if (!(scale.at(j) > 0.0 && std::isfinite(scale.at(j))))
                throw std::invalid_argument("scale of free parameter " + std::to_string(j) +
                                            " must be positive and finite, got " + num(scale.at(j)));
        in.map.trust_scale = scale.data();
    }
    if (starts.ndim() == 2) {
        require(starts.shape(1) == n_free, "starts must have one column per free parameter");
        in.S = starts.shape(0);
    } else {
        require(starts.ndim() == 3 && starts.shape(0) == in.R && starts.shape(2) == n_free,
                "per-row starts must have shape (n_rows, n_starts, n_free)");
        in.S = starts.shape(1);
        in.starts_per_row = true;
    }
    require(in.S >= 1, "at least one start is needed");
    in.starts = starts.data();
    in.opt = options;
    in.opt.cancel = nullptr;
    if (!loss_curvature(in.loss.kind)) in.opt.irls = 0.0;
    const std::string opt_err = lawfit::check_options(in.opt);
    require(opt_err.empty(), opt_err);
    in.threads = threads;

    const py::ssize_t N = keep_all ? in.R * in.S : in.R;
    py::array_t<double> x({N, static_cast<py::ssize_t>(n_free)});
    py::array_t<double> fun(N);
    py::array_t<std::int32_t> status(N), nit(N), nfev(N);
    py::array_t<std::uint32_t> at_bound(N);
    py::array_t<std::int32_t> best(keep_all ? 0 : N), nsucc(keep_all ? 0 : N);
    lawfit::BatchOutput out;
    out.x = x.mutable_data();
    out.fun = fun.mutable_data();
    out.status = status.mutable_data();
    out.nit = nit.mutable_data();
    out.nfev = nfev.mutable_data();
    out.at_bound = at_bound.mutable_data();
    if (!keep_all) {
        out.best_start = best.mutable_data();
        out.n_success = nsucc.mutable_data();
    }
    std::atomic<bool> cancel{false};
    std::atomic<std::int64_t> done{0};
    in.cancel = &cancel;
    in.opt.cancel = &cancel;  // a single long fit stops too
    in.done = &done;
    const std::int64_t work = in.R * in.S * in.data.n;  // <= kInlineWork: the product below cannot overflow
    const bool small = work <= kInlineWork && work * std::max(1, in.opt.max_iter) <= kInlineWork * kInlineIter;
    const std::string err = run_interruptible([&]() { return lawfit::run_batch(in, keep_all, out); }, cancel,
                                              &done, in.R * in.S, progress, small);
    if (!err.empty()) throw std::runtime_error(err);
    py::dict d;
    d["x"] = x;
    d["fun"] = fun;
    d["status"] = status;
    d["nit"] = nit;
    d["nfev"] = nfev;
    d["at_bound"] = at_bound;
    if (!keep_all) {
        d["best_start"] = best;
        d["n_success"] = nsucc;
    }
    return d;
}

py::tuple evaluate(py::object program, py::object features_obj, py::object target_obj, py::object theta_obj,
                   py::object weights_obj, const lawfit::Loss& loss_in, int derivatives,
                   int threads) {
    const lawfit::Program& prog = program_of(program);
    const array_d features = to_array_d(features_obj, "features"), target = to_array_d(target_obj, "target"),
                  theta = to_array_d(theta_obj, "params");
    const lawfit::DataView data = data_view(prog, features, target);
    const lawfit::Loss loss = checked_loss(loss_in);
    require(theta.ndim() == 2 && theta.shape(1) == prog.n_params,
            "params must be a 2-d array (batch, " + std::to_string(prog.n_params) + ")");
    require(derivatives >= 0 && derivatives <= 2, "derivatives must be 0, 1 or 2");
    const py::ssize_t B = theta.shape(0);
    array_d weights;
    bool per_row = false;
    const bool has_weights = !weights_obj.is_none();
    if (has_weights) {
        weights = to_array_d(weights_obj, "weights");
        check_weights(weights);
        if (weights.ndim() == 1) {
            require(weights.shape(0) == data.n, "weights must have one entry per point");
        } else {
            require(weights.ndim() == 2 && weights.shape(0) == B && weights.shape(1) == data.n,
                    "weights must have shape (n_points,) or (batch, n_points)");
            per_row = true;
        }
    }
    const py::ssize_t P = prog.n_params;
    py::array_t<double> fun(B);
    py::array_t<double> grad(derivatives >= 1 ? std::vector<py::ssize_t>{B, P} : std::vector<py::ssize_t>{0});
    py::array_t<double> hess(derivatives >= 2 ? std::vector<py::ssize_t>{B, P, P} : std::vector<py::ssize_t>{0});
    std::atomic<bool> cancel{false};
    const lawfit::Analysis& an = analysis_of(program);
    const std::string err = run_interruptible(
        [&]() {
            return lawfit::evaluate_batch(prog, an, loss, data, theta.data(), B,
                                          has_weights ? weights.data() : nullptr, per_row, fun.mutable_data(),
                                          derivatives >= 1 ? grad.mutable_data() : nullptr,
                                          derivatives >= 2 ? hess.mutable_data() : nullptr, threads, &cancel);
        },
        cancel, nullptr, 0, py::none(), static_cast<std::int64_t>(B) * data.n <= kInlineWork);
    if (!err.empty()) throw std::runtime_error(err);
    return py::make_tuple(fun, derivatives >= 1 ? py::object(grad) : py::none(),
                          derivatives >= 2 ? py::object(hess) : py::none());
}

}  // namespace

void register_engine(py::module_& m) {
    py::class_<lawfit::Loss>(m, "Loss", "A loss as the core takes it: kind (LOSS_KINDS), parameter, asymmetry, "
                                        "residual (0 log, 1 linear). Checked where it is used.")
        .def(py::init([](std::int32_t kind, double param, double asymmetry, std::int32_t residual) {
                 lawfit::Loss l;
                 l.kind = kind;
                 l.param = param;
                 l.asymmetry = asymmetry;
                 l.residual = static_cast<lawfit::Residual>(residual);
                 return l;
             }),
             py::arg("kind"), py::arg("param"), py::arg("asymmetry") = 1.0, py::arg("residual") = 0)
        .def_readonly("kind", &lawfit::Loss::kind)
        .def_readonly("param", &lawfit::Loss::param)
        .def_readonly("asymmetry", &lawfit::Loss::asymmetry)
        .def_property_readonly("residual", [](const lawfit::Loss& l) { return static_cast<int>(l.residual); })
        .def("check", [](const lawfit::Loss& l) {
            const char* e = lawfit::check_loss(l);
            return e ? py::object(py::str(e)) : py::object(py::none());
        }, "None if valid, else the message.")
        .def("__repr__", [](const lawfit::Loss& l) {
            return "Loss(kind=" + std::to_string(l.kind) + ", param=" + num(l.param) + ", asymmetry=" +
                   num(l.asymmetry) + ", residual=" + std::to_string(static_cast<int>(l.residual)) + ")";
        });
    py::dict kinds, curv;
#define LAWFIT_EXPORT_(k, name, S) \
    kinds[#name] = k;              \
    curv[#name] = S::curvature;
    LAWFIT_LOSSES(LAWFIT_EXPORT_)
#undef LAWFIT_EXPORT_
    kinds["huber_likelihood"] = lawfit::kLossHuberLikelihood;
    curv["huber_likelihood"] = true;
    m.attr("LOSS_KINDS") = kinds;
    py::class_<lawfit::SolverOptions>(m, "SolverOptions",
                                      "The per-fit solver's options (solver.hpp); checked where they are used.")
        .def(py::init([](int max_iter, double xtol, double ftol, double radius0, double irls, double switch_rtol) {
                 lawfit::SolverOptions o;
                 o.max_iter = max_iter;
                 o.xtol = xtol;
                 o.ftol = ftol;
                 o.radius0 = radius0;
                 o.irls = irls;
                 o.switch_rtol = switch_rtol;
                 return o;
             }),
             py::arg("max_iter") = lawfit::SolverOptions{}.max_iter, py::arg("xtol") = lawfit::SolverOptions{}.xtol,
             py::arg("ftol") = lawfit::SolverOptions{}.ftol, py::arg("radius0") = lawfit::SolverOptions{}.radius0,
             py::arg("irls") = lawfit::SolverOptions{}.irls,
             py::arg("switch_rtol") = lawfit::SolverOptions{}.switch_rtol)
        .def_readonly("max_iter", &lawfit::SolverOptions::max_iter)
        .def_readonly("xtol", &lawfit::SolverOptions::xtol)
        .def_readonly("ftol", &lawfit::SolverOptions::ftol)
        .def_readonly("radius0", &lawfit::SolverOptions::radius0)
        .def_readonly("irls", &lawfit::SolverOptions::irls)
        .def_readonly("switch_rtol", &lawfit::SolverOptions::switch_rtol)
        .def("check", [](const lawfit::SolverOptions& o) {
            const char* e = lawfit::check_options(o);
            return e && *e ? py::object(py::str(e)) : py::object(py::none());
        }, "None if valid, else the message.");
    m.attr("LOSS_CURVATURE") = curv;
    m.def("minimize", &minimize, py::arg("program"), py::arg("features"), py::arg("target"), py::arg("weights"),
          py::arg("starts"), py::arg("free_index"), py::arg("fixed_value"), py::arg("lower"), py::arg("upper"),
          py::arg("loss"), py::arg("options"), py::arg("keep_all"), py::arg("threads"),
          py::arg("progress") = py::none(), py::arg("scale") = py::none());
    m.def("evaluate", &evaluate, py::arg("program"), py::arg("features"), py::arg("target"), py::arg("params"),
          py::arg("weights"), py::arg("loss"), py::arg("derivatives"),
          py::arg("threads"));
    m.def("isa", &lawfit::evaluator_isa, "Instruction set of the evaluator build in use.");
    m.def("set_kernel", [](const std::string& name) {
        if (!lawfit::set_kernel(name)) throw std::invalid_argument("unknown kernel: " + name + " (auto or interpreter)");
    }, "TEST-ONLY, process-wide: force the interpreter ('interpreter') or restore the automatic choice ('auto').");
    m.def("set_isa", [](const std::string& name) {
        if (!lawfit::set_isa(name)) throw std::invalid_argument("unknown or unavailable instruction set: " + name);
    }, "TEST-ONLY, process-wide: force an evaluator build ('auto', 'generic', 'avx2').");
    m.def("default_threads", &lawfit::default_threads);
}
