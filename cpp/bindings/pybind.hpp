// The one header that includes pybind11 (only the binding files include it).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

void register_program(py::module_& m);
void register_engine(py::module_& m);
void register_tables(py::module_& m);

using array_d = py::array_t<double, py::array::c_style | py::array::forcecast>;
using array_i = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;

// Arrays at the boundary are converted once, with their dtype checked first: a forced cast would turn strings
// into numbers, drop imaginary parts, truncate 2.7 to 2 or wrap 2**32 + 1 to 1. Anything but real numbers
// (integers for index arrays) is a TypeError naming the argument; integers outside int32 are a ValueError.
inline py::array checked_array(py::handle obj, const char* name, const char* kinds, const char* what) {
    py::array arr = py::array::ensure(obj);
    if (!arr)
        throw py::type_error(std::string(name) + " must be " + what + ", got " +
                             Py_TYPE(obj.ptr())->tp_name);
    const char kind = arr.dtype().kind();
    if (std::strchr(kinds, kind) == nullptr)
        throw py::type_error(std::string(name) + " must be " + what + ", got dtype " +
                             std::string(py::str(arr.dtype())));
    return arr;
}

inline array_d to_array_d(py::handle obj, const char* name) {
    array_d out = array_d::ensure(checked_array(obj, name, "iuf", "an array of real numbers"));
    if (!out) throw py::type_error(std::string(name) + " cannot be converted to float64");
    return out;
}

inline array_i to_array_i(py::handle obj, const char* name) {
    py::array arr = checked_array(obj, name, "iu", "an array of integers");
    if (arr.size() > 0) {
        const py::object lo = arr.attr("min")(), hi = arr.attr("max")();
        if (lo < py::int_(INT32_MIN) || hi > py::int_(INT32_MAX))
            throw py::value_error(std::string(name) + " has values outside the 32-bit integer range");
    }
    array_i out = array_i::ensure(arr);
    if (!out) throw py::type_error(std::string(name) + " cannot be converted to int32");
    return out;
}
