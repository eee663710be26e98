// AVX2 + FMA build of the evaluator; CMake compiles this file with -mavx2 -mfma on x86-64 only.
#define LAWFIT_ISA_NS isa_avx2
#include "evaluator_impl.hpp"
