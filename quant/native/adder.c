/*
 * CPU kernels of the float adder layers (quant/layers.py, backend "native").
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
 * caller's thread included.  C99 + pthreads; built by quant/native/__init__.py.
 */
#include <math.h>
#include <pthread.h>
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
#define MAX_THREADS 256
/* Starting a thread costs tens of microseconds: each must get at least this
   many |x - w| terms (about 0.1 ms of work; a copied element counts as one). */
#define MIN_WORK_PER_THREAD (1 << 21)

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

typedef struct {
    const job_t *job;
    int index;
} worker_t;

/* Worker i takes the contiguous task range [i*T/n, (i+1)*T/n). */
static void *run_worker(void *arg)
{
    const worker_t *wk = (const worker_t *)arg;
    const job_t *job = wk->job;
    const int64_t begin = job->tasks * wk->index / job->threads;
    const int64_t end = job->tasks * (wk->index + 1) / job->threads;
    for (int64_t t = begin; t < end; t++)
        job->task(job, t);
    return 0;
}

static int run(job_t *job)
{
    int n = job->threads;
    if (n > job->work / MIN_WORK_PER_THREAD) n = (int)(job->work / MIN_WORK_PER_THREAD);
    if (n > MAX_THREADS) n = MAX_THREADS;
    if (n > job->tasks) n = (int)job->tasks;
    if (n < 1) n = 1;
    job->threads = n;
    worker_t workers[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started = 0;
    for (int i = 0; i < n; i++) {
        workers[i].job = job;
        workers[i].index = i;
    }
    for (int i = 1; i < n; i++) {
        if (pthread_create(&ids[i], 0, run_worker, &workers[i]) != 0)
            break;
        started = i;
    }
    for (int i = started + 1; i < n; i++) /* threads that could not start */
        run_worker(&workers[i]);
    run_worker(&workers[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(ids[i], 0);
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
