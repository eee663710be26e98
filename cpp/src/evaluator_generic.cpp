// Baseline build of the evaluator (any x86-64 or other CPU).
#define LAWFIT_ISA_NS isa_generic
#include "evaluator_impl.hpp"
