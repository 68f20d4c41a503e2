/*
 * Integer kernels of the golden model (quant/golden.py via
 * quant/native/golden.py).  Every result is an exact integer: the Python
 * side picks the element type from a proven bound, so no sum can overflow.
 *
 * Layout: the im2col columns of a batch, packed as one matrix X[k][c] of
 * K rows and L = N*P columns (column c = n*P + p; row stride ld >= L, padded
 * with zeros to a whole tile and off cache-set-aliasing strides), shifted by an offset so
 * that every code and weight lies in [0, span]; the weight W[o][k] shifted
 * by the same offset (|x - w| does not change).  The kernels compute
 *
 *   acc[n][o][p] = sum_k |X[k][n*P + p] - W[o][k]|      (int64 output)
 *
 * register-blocked over a tile of MR consecutive columns (vectorised by the
 * compiler; AVX2 intrinsics for the int16 tile) and NR output channels.  Element types (the caller proves the
 * bounds; K * span < 2^31 for i16 and i32, < 2^63 for i64):
 *
 *   i16: X, W int16 (span <= 32767); the tile accumulates in int16 for at
 *        most kc = floor(32767 / span) rows, then adds into int32;
 *   i32: X, W, accumulators int32;
 *   i64: X, W, accumulators int64.
 *
 * Integer addition is associative, so the result does not depend on the
 * tile order or the thread count; each output is still written by one task.
 *
 * Also: the min/max of an int64 array, max pooling of int64 codes, the packing [N][K][P] int64 ->
 * [K][ld] (minus the offset), and im2col of int64 codes with a padding value
 * into either layout ([N][K][P] for quant.golden.im2col_batch, [K][ld]
 * shifted for the kernels: a convolution never builds its int64 columns).
 * Threads: pool.h.  C99 + pthreads; built by quant/native/build.py.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* Each thread gets at least this many |x - w| terms (or copied elements). */
#define POOL_MIN_WORK (1 << 20)
#include "pool.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* ---- min / max ------------------------------------------------------- */

#define MM_CHUNK (1 << 16)

typedef struct {
    const int64_t *x;
    int64_t n;
    int64_t *part; /* [tasks][2] */
} minmax_job_t;

static void minmax_task(const void *ctx, int64_t t)
{
    const minmax_job_t *job = (const minmax_job_t *)ctx;
    const int64_t begin = t * MM_CHUNK, end = begin + MM_CHUNK < job->n ? begin + MM_CHUNK : job->n;
    int64_t lo = job->x[begin], hi = job->x[begin];
    for (int64_t i = begin; i < end; i++) {
        const int64_t v = job->x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    job->part[2 * t] = lo;
    job->part[2 * t + 1] = hi;
}

/* out[0] = min(x), out[1] = max(x) of n >= 1 values; -1 when out of memory. */
int golden_minmax_i64(const int64_t *x, int64_t n, int64_t *out, int threads)
{
    const int64_t tasks = (n + MM_CHUNK - 1) / MM_CHUNK;
    int64_t *part = (int64_t *)malloc((size_t)(2 * tasks) * sizeof(int64_t));
    if (!part) return -1;
    minmax_job_t job = {.x = x, .n = n, .part = part};
    pool_run(minmax_task, &job, tasks, n, threads);
    int64_t lo = part[0], hi = part[1];
    for (int64_t t = 1; t < tasks; t++) {
        lo = part[2 * t] < lo ? part[2 * t] : lo;
        hi = part[2 * t + 1] > hi ? part[2 * t + 1] : hi;
    }
    free(part);
    out[0] = lo;
    out[1] = hi;
    return 0;
}

/* ---- max pool -------------------------------------------------------- */

typedef struct {
    const int64_t *x;
    int64_t *out;
    int64_t h, w, kh, kw, stride, pad, oh, ow;
} maxpool_job_t;

/* Task t: plane t; out[oy][ox] = max over the window's entries inside the plane. */
static void maxpool_task(const void *ctx, int64_t t)
{
    const maxpool_job_t *job = (const maxpool_job_t *)ctx;
    const int64_t H = job->h, W = job->w, S = job->stride, P = job->pad;
    const int64_t *x = job->x + t * H * W;
    int64_t *out = job->out + t * job->oh * job->ow;
    for (int64_t oy = 0; oy < job->oh; oy++)
        for (int64_t ox = 0; ox < job->ow; ox++) {
            int64_t best = INT64_MIN;
            for (int64_t i = 0; i < job->kh; i++) {
                const int64_t iy = oy * S - P + i;
                if (iy < 0 || iy >= H) continue;
                for (int64_t j = 0; j < job->kw; j++) {
                    const int64_t ix = ox * S - P + j;
                    if (ix >= 0 && ix < W && x[iy * W + ix] > best) best = x[iy * W + ix];
                }
            }
            out[oy * job->ow + ox] = best;
        }
}

/* x [planes][H][W] -> out [planes][OH][OW]: the max of each kh x kw window (padding never wins). */
int golden_maxpool_i64(const int64_t *x, int64_t *out, int64_t planes, int64_t h, int64_t w, int64_t kh,
                       int64_t kw, int64_t stride, int64_t pad, int64_t oh, int64_t ow, int threads)
{
    maxpool_job_t job = {.x = x, .out = out, .h = h, .w = w, .kh = kh, .kw = kw, .stride = stride, .pad = pad,
                         .oh = oh, .ow = ow};
    pool_run(maxpool_task, &job, planes, planes * oh * ow * kh * kw, threads);
    return 0;
}

/* ---- element types --------------------------------------------------- */

#define ELEM int16_t
#define ACC int32_t
#define MR 32
#define NR 4
#define SUFFIX _i16
#define CHUNKED
#include "golden_kernels.h"
#undef CHUNKED
#undef ELEM
#undef ACC
#undef MR
#undef NR
#undef SUFFIX

#define ELEM int32_t
#define ACC int32_t
#define MR 32
#define NR 4
#define SUFFIX _i32
#include "golden_kernels.h"
#undef ELEM
#undef ACC
#undef MR
#undef NR
#undef SUFFIX

#define ELEM int64_t
#define ACC int64_t
#define MR 8
#define NR 4
#define SUFFIX _i64
#include "golden_kernels.h"
