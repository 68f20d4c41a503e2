/*
 * Integer kernels of the golden model (quant/intmodel/golden.py via
 * quant/intmodel/native.py).  Every result is an exact integer: the Python
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
 * into either layout ([N][K][P] for quant.intmodel.golden.im2col_batch, [K][ld]
 * shifted for the kernels: a convolution never builds its int64 columns).
 * Threads: pool.h.  C99 + pthreads; built by quant/base/native/build.py.
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
    if (P == 0) { /* every window lies inside the plane: no bounds tests, row by row */
        for (int64_t oy = 0; oy < job->oh; oy++) {
            int64_t *o = out + oy * job->ow;
            const int64_t *r0 = x + oy * S * W;
            for (int64_t ox = 0; ox < job->ow; ox++) o[ox] = r0[ox * S];
            for (int64_t i = 0; i < job->kh; i++) {
                const int64_t *row = r0 + i * W;
                for (int64_t j = 0; j < job->kw; j++)
                    for (int64_t ox = 0; ox < job->ow; ox++) {
                        const int64_t v = row[ox * S + j];
                        o[ox] = v > o[ox] ? v : o[ox];
                    }
            }
        }
        return;
    }
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

/* ---- requant ---------------------------------------------------------- */

/* Rows of P values, row r belongs to channel r % O (O = 1: one set of
   parameters for every row).  Arithmetic is two's complement int64 done in
   uint64 (wrapping, never undefined), so an overflow gives numpy's int64
   result too; golden.py refuses the sums that could overflow before using
   any result (it reads the largest |acc| this pass reports, as numpy's
   abs(acc).max(): |INT64_MIN| wraps to INT64_MIN). */
typedef struct {
    const int64_t *a, *b, *m, *n, *thr, *neg;
    int64_t *out;
    int64_t rows, p, o, rows_per_task, shift, lo, hi, t, qmax, m1;
    int64_t *amax; /* [tasks] */
} requant_job_t;

static inline int64_t rq_wrap(uint64_t v) { return (int64_t)v; }

static inline int64_t rq_shift_clamp(int64_t v, int64_t shift, int64_t lo, int64_t hi)
{
    v >>= shift; /* arithmetic on gcc and clang (floor) */
    v = v < lo ? lo : v; /* min(max(v, lo), hi), as numpy.clip */
    return v > hi ? hi : v;
}

/* fixed: out = clamp((m[c]*acc + n[c]) >> shift, lo, hi) */
static void requant_fixed_task(const void *ctx, int64_t t)
{
    const requant_job_t *job = (const requant_job_t *)ctx;
    const int64_t P = job->p, O = job->o, sh = job->shift, lo = job->lo, hi = job->hi;
    const int64_t r0 = t * job->rows_per_task;
    const int64_t r1 = r0 + job->rows_per_task < job->rows ? r0 + job->rows_per_task : job->rows;
    int64_t amax = INT64_MIN;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t c = r % O;
        const uint64_t m = (uint64_t)job->m[c], n = (uint64_t)job->n[c];
        const int64_t *a = job->a + r * P;
        int64_t *out = job->out + r * P;
        for (int64_t i = 0; i < P; i++) {
            const int64_t v = a[i];
            const int64_t mag = v < 0 ? rq_wrap(0 - (uint64_t)v) : v;
            amax = mag > amax ? mag : amax;
            out[i] = rq_shift_clamp(rq_wrap(m * (uint64_t)v + n), sh, lo, hi);
        }
    }
    job->amax[t] = amax;
}

/* add: out = clamp((m0*a + m1*b + n) >> shift, lo, hi), one set of parameters */
static void requant_add_task(const void *ctx, int64_t t)
{
    const requant_job_t *job = (const requant_job_t *)ctx;
    const int64_t P = job->p, sh = job->shift, lo = job->lo, hi = job->hi;
    const uint64_t m0 = (uint64_t)job->m[0], m1 = (uint64_t)job->m1, n = (uint64_t)job->n[0];
    const int64_t r0 = t * job->rows_per_task;
    const int64_t r1 = r0 + job->rows_per_task < job->rows ? r0 + job->rows_per_task : job->rows;
    for (int64_t e = r0 * P; e < r1 * P; e++)
        job->out[e] = rq_shift_clamp(rq_wrap(m0 * (uint64_t)job->a[e] + m1 * (uint64_t)job->b[e] + n), sh, lo, hi);
    job->amax[t] = INT64_MIN;
}

/* threshold: cnt = #{t : thr[c][t] <= acc} (thr[c] non-decreasing: a binary
   search), out = neg[c] ? qmax - cnt : cnt */
static void requant_threshold_task(const void *ctx, int64_t t)
{
    const requant_job_t *job = (const requant_job_t *)ctx;
    const int64_t P = job->p, O = job->o, T = job->t, qmax = job->qmax;
    const int64_t r0 = t * job->rows_per_task;
    const int64_t r1 = r0 + job->rows_per_task < job->rows ? r0 + job->rows_per_task : job->rows;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t c = r % O;
        const int64_t *thr = job->thr + c * T;
        const int neg = job->neg[c] != 0;
        const int64_t *a = job->a + r * P;
        int64_t *out = job->out + r * P;
        for (int64_t i = 0; i < P; i++) {
            const int64_t v = a[i];
            int64_t lo = 0, hi = T; /* first index with thr > v */
            while (lo < hi) {
                const int64_t mid = lo + (hi - lo) / 2;
                if (thr[mid] <= v)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            out[i] = neg ? qmax - lo : lo;
        }
    }
    job->amax[t] = INT64_MIN;
}

#define RQ_TASK_ELEMS (1 << 15)

static int requant_run(pool_task_fn fn, requant_job_t *job, int64_t *amax_out, int threads)
{
    const int64_t P = job->p > 0 ? job->p : 1;
    job->rows_per_task = RQ_TASK_ELEMS / P > 0 ? RQ_TASK_ELEMS / P : 1;
    const int64_t tasks = (job->rows + job->rows_per_task - 1) / job->rows_per_task;
    job->amax = (int64_t *)malloc((size_t)(tasks > 0 ? tasks : 1) * sizeof(int64_t));
    if (!job->amax) return -1;
    /* one requant costs about as much as 16 vectorised |x - w| terms (POOL_MIN_WORK's unit) */
    pool_run(fn, job, tasks, job->rows * job->p * 16, threads);
    int64_t amax = INT64_MIN;
    for (int64_t t = 0; t < tasks; t++) amax = job->amax[t] > amax ? job->amax[t] : amax;
    free(job->amax);
    if (amax_out) *amax_out = amax;
    return 0;
}

/* acc [rows][P] int64 (row r: channel r % O) -> out (may be acc itself); amax_out: max |acc|. */
int golden_requant_fixed_i64(const int64_t *acc, int64_t *out, int64_t rows, int64_t p, int64_t o,
                             const int64_t *m, const int64_t *n, int64_t shift, int64_t lo, int64_t hi,
                             int64_t *amax_out, int threads)
{
    requant_job_t job = {.a = acc, .out = out, .rows = rows, .p = p, .o = o, .m = m, .n = n, .shift = shift,
                         .lo = lo, .hi = hi};
    return requant_run(requant_fixed_task, &job, amax_out, threads);
}

/* a, b [count] int64 -> out: the residual add's requant. */
int golden_requant_add_i64(const int64_t *a, const int64_t *b, int64_t *out, int64_t count, int64_t m0, int64_t m1,
                           int64_t n, int64_t shift, int64_t lo, int64_t hi, int threads)
{
    const int64_t m = m0;
    requant_job_t job = {.a = a, .b = b, .out = out, .rows = count, .p = 1, .o = 1, .m = &m, .m1 = m1, .n = &n,
                         .shift = shift, .lo = lo, .hi = hi};
    return requant_run(requant_add_task, &job, 0, threads);
}

/* acc [rows][P] int64 (row r: channel r % O), thr [O][T], neg [O] -> out (may be acc). */
int golden_requant_threshold_i64(const int64_t *acc, int64_t *out, int64_t rows, int64_t p, int64_t o,
                                 const int64_t *thr, const int64_t *neg, int64_t t, int64_t qmax, int threads)
{
    requant_job_t job = {.a = acc, .out = out, .rows = rows, .p = p, .o = o, .thr = thr, .neg = neg, .t = t,
                         .qmax = qmax};
    return requant_run(requant_threshold_task, &job, 0, threads);
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
