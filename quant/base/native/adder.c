/*
 * CPU kernels of the float adder layers (quant/net/layers.py, backend "native").
 *
 * Layout ("column" layout, what F.unfold returns): a batch of P planes, each
 * plane an unfolded input X[k][l] (K rows, L contiguous output positions).
 * The weight is W[o][k].  Per plane:
 *
 *   forward:     Y[o][l]  = -sum_k |X[k][l] - W[o][k]|
 *   input_grad:  DX[k][l] =  sum_o clamp(W[o][k] - X[k][l], -1, 1) * G[o][l]
 *
 * Both are register-blocked over a tile of MR consecutive l (vectorised by
 * the compiler) and a few o (forward) or k (input gradient), so every X, W
 * and G value is loaded once per tile and no [O][K][L] temporary exists.
 * Every output element is summed by one thread in a fixed order (k or o
 * ascending), so results do not depend on the thread count.
 *
 * im2col/col2im are F.unfold/F.fold for one (plane, channel) per task, so
 * the input gradient's overlapping sums never race and keep a fixed order.
 *
 * The kernels exist for float and double (adder_kernels.h is included once
 * per type).  The tasks are spread over `threads` POSIX threads, the
 * caller's thread included (pool.h, shared with golden.c).  C99 + pthreads;
 * built by quant/base/native/build.py.
 */
#include <math.h>
#include <stdint.h>

#ifndef MR
#define MR 32      /* output positions per tile */
#endif
#ifndef FWD_NR
#define FWD_NR 4   /* output channels per forward tile */
#endif
#ifndef BWD_KR
#define BWD_KR 4   /* input rows per input-gradient tile */
#endif
/* Starting a thread costs tens of microseconds: each must get at least this
   many |x - w| terms (about 0.1 ms of work; a copied element counts as one). */
#define POOL_MIN_WORK (1 << 21)
#include "pool.h"

typedef struct job job_t;
typedef void (*task_fn)(const job_t *, int64_t task);

struct job {
    const void *x, *w, *g;
    void *out;
    int64_t planes, k, l, o;   /* adder kernels: P planes of [K][L], O outputs */
    int64_t geom[10];          /* im2col/col2im: C, H, W, kh, kw, sh, sw, ph, pw, OW */
    int64_t tasks, work;       /* independent tasks; total work in |x - w| terms */
    int threads;
    task_fn task;
};

static void run_task(const void *ctx, int64_t t)
{
    const job_t *job = (const job_t *)ctx;
    job->task(job, t);
}

static int run(job_t *job)
{
    job->threads = pool_run(run_task, job, job->tasks, job->work, job->threads);
    return 0;
}

#define REAL float
#define ABS fabsf
#define SUFFIX _f32
#include "adder_kernels.h"
#undef REAL
#undef ABS
#undef SUFFIX

#define REAL double
#define ABS fabs
#define SUFFIX _f64
#include "adder_kernels.h"
