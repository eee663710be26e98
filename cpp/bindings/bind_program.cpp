// lawfit._core.Program: a validated, analysed law program (see cpp/include/lawfit/program.hpp).
#include <stdexcept>
#include <string>

#include "lawfit/evaluator.hpp"
#include "lawfit/program.hpp"
#include "pybind.hpp"

namespace {

struct PyProgram {
    lawfit::Program prog;
    lawfit::Analysis an;
};

}  // namespace

lawfit::Program& program_of(py::object obj);
const lawfit::Analysis& analysis_of(py::object obj);

void register_program(py::module_& m) {
    py::class_<PyProgram>(m, "Program")
        .def(py::init([](py::object op_obj, py::object a_obj, py::object b_obj, py::object imm_obj,
                         py::object args_obj, py::object argflags_obj, int n_params, int n_features) {
                 const array_i op = to_array_i(op_obj, "law program: op"), a = to_array_i(a_obj, "law program: a"),
                               b = to_array_i(b_obj, "law program: b"),
                               args = to_array_i(args_obj, "law program: args"),
                               argflags = to_array_i(argflags_obj, "law program: argflags");
                 const array_d imm = to_array_d(imm_obj, "law program: imm");
                 const auto n = op.size();
                 if (op.ndim() != 1 || a.ndim() != 1 || b.ndim() != 1 || imm.ndim() != 1 || a.size() != n ||
                     b.size() != n || imm.size() != n)
                     throw std::invalid_argument("law program: op, a, b and imm must be 1-d arrays of one length");
                 if (args.ndim() != 1 || argflags.ndim() != 1 || args.size() != argflags.size())
                     throw std::invalid_argument("law program: args and argflags must be 1-d arrays of one length");
                 if (static_cast<std::size_t>(n) > lawfit::kMaxInstructions)
                     throw std::invalid_argument("law program has " + std::to_string(n) +
                                                 " instructions; the engine supports at most " +
                                                 std::to_string(lawfit::kMaxInstructions));
                 PyProgram p;
                 p.prog.n_params = n_params;
                 p.prog.n_features = n_features;
                 p.prog.code.resize(static_cast<std::size_t>(n));
                 for (py::ssize_t i = 0; i < n; ++i)
                     p.prog.code[i] = {op.at(i), a.at(i), b.at(i), imm.at(i)};
                 p.prog.args.assign(args.data(), args.data() + args.size());
                 p.prog.argflags.assign(argflags.data(), argflags.data() + argflags.size());
                 const std::string err = lawfit::validate(p.prog);
                 if (!err.empty()) throw std::invalid_argument(err);
                 p.an = lawfit::analyse(p.prog);
                 const std::string size_err = lawfit::check_size(p.prog, p.an);
                 if (!size_err.empty()) throw std::invalid_argument(size_err);
                 return p;
             }),
             py::arg("op"), py::arg("a"), py::arg("b"), py::arg("imm"), py::arg("args"), py::arg("argflags"),
             py::arg("n_params"), py::arg("n_features"))
        .def_property_readonly("n_params", [](const PyProgram& p) { return p.prog.n_params; })
        .def_property_readonly("n_features", [](const PyProgram& p) { return p.prog.n_features; })
        .def_property_readonly("n_instructions", [](const PyProgram& p) { return p.prog.code.size(); })
        .def_property_readonly("kernel", [](const PyProgram& p) { return std::string(lawfit::kernel_name(p.an)); },
                               "The evaluator this program runs on: 'affine_lse' or 'interpreter'.")
        .def_property_readonly("affine_why_not", [](const PyProgram& p) { return p.an.affine.why_not; },
                               "Why the program is not of the affine log-sum-exp form ('' if it is).")
        .def("hessian_entries", [](const PyProgram& p) { return p.an.nodes.back().hess.size(); },
             "Structurally non-zero Hessian entries (upper triangle) of the law's output.");
}

// The program argument of minimize / evaluate: anything else is a TypeError (a failed cast would be a
// RuntimeError).
static PyProgram& py_program(py::object obj) {
    if (!py::isinstance<PyProgram>(obj))
        throw py::type_error(std::string("program must be a lawfit._core.Program, got ") + Py_TYPE(obj.ptr())->tp_name);
    return obj.cast<PyProgram&>();
}
lawfit::Program& program_of(py::object obj) { return py_program(obj).prog; }
const lawfit::Analysis& analysis_of(py::object obj) { return py_program(obj).an; }
