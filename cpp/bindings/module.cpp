// The private extension module lawfit._core. Users never import it: lawfit's Python layer owns the
// public API, defaults, validation messages and documentation. One register_* per concept.
#include "pybind.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "lawfit's compiled core (private; use the lawfit package)";
    register_program(m);
    register_engine(m);
    register_tables(m);
}
