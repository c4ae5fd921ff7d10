/* The activation loops compiled with -mavx2 (setup.py gives this file only its
 * own flags); the load-time ISA choice in activation.c decides whether they run. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "activation.h"

#define T float
#define FN(name) pycnn_activation_##name##_avx2_f32
#include "activation_loops.h"
#undef T
#undef FN

#define T double
#define FN(name) pycnn_activation_##name##_avx2_f64
#include "activation_loops.h"
#undef T
#undef FN
