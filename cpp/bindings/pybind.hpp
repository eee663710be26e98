// The one header that includes pybind11 (only the binding files include it).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

void register_program(py::module_& m);
void register_engine(py::module_& m);

using array_d = py::array_t<double, py::array::c_style | py::array::forcecast>;
using array_i = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;
