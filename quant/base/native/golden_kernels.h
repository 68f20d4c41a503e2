/*
 * Kernel template of golden.c, included once per element type with ELEM
 * (codes and the int16 chunk accumulator), ACC (the tile accumulator), MR
 * (columns per tile), NR (output channels per tile) and SUFFIX (_i16, _i32,
 * _i64) defined, and CHUNKED when ELEM is narrower than ACC.  Exports golden_pack,
 * golden_im2col, golden_adder and golden_adder_rq (the sums re-quantised as
 * they are stored), each with SUFFIX appended.
 */
#define NAME(base) CAT(base, SUFFIX)
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD (4 * MR) /* elements: the same row, four tiles on */
#endif

/* ---- the kernels' layout -------------------------------------------- */

/* The kernels read X as K rows of L = N*P columns with a row stride ld >= L
   rounded up to MR (the caller pads ld so that consecutive rows do not share
   cache sets); columns L .. ld - 1 are zero (computed, never stored). */
int NAME(golden_tile_width)(void) { return MR; }

typedef struct {
    const int64_t *src;
    ELEM *dst;
    int64_t planes, k, p, offset, ld;
} NAME(pack_job_t);

/* Task k: row k, column n*P + p = src[n][k][p] - offset. */
static void NAME(pack_task)(const void *ctx, int64_t k)
{
    const NAME(pack_job_t) *job = (const NAME(pack_job_t) *)ctx;
    const int64_t N = job->planes, K = job->k, P = job->p, off = job->offset;
    ELEM *dst = job->dst + k * job->ld;
    for (int64_t n = 0; n < N; n++) {
        const int64_t *src = job->src + (n * K + k) * P;
        for (int64_t i = 0; i < P; i++)
            dst[n * P + i] = (ELEM)(src[i] - off);
    }
    for (int64_t c = N * P; c < job->ld; c++) dst[c] = 0;
}

/* src [N][K][P] int64 -> dst [K][ld] ELEM (columns n*P + p), minus offset (the caller proves the values fit). */
int NAME(golden_pack)(const int64_t *src, ELEM *dst, int64_t planes, int64_t k, int64_t p, int64_t offset,
                      int64_t ld, int threads)
{
    NAME(pack_job_t) job = {.src = src, .dst = dst, .planes = planes, .k = k, .p = p, .offset = offset, .ld = ld};
    pool_run(NAME(pack_task), &job, k, planes * k * p, threads);
    return 0;
}

/* ---- im2col --------------------------------------------------------- */

/* Two passes.  First the input is shifted, converted to ELEM and padded once:
   xp[n][c][Hp][Wp] with Hp = H + 2*ph, Wp = W + 2*pw (pad - offset around).
   Then every column entry is a plain load xp[n][c][oy*sh + i][ox*sw + j]:
   no bounds tests, no conversion. */
typedef struct {
    const int64_t *img;
    ELEM *xp, *dst;
    int64_t planes, geom[10], l, pad, offset, ks, ns, tail;
} NAME(im2col_job_t);

/* Task n*C + c: the padded plane xp[n][c]. */
static void NAME(pad_task)(const void *ctx, int64_t t)
{
    const NAME(im2col_job_t) *job = (const NAME(im2col_job_t) *)ctx;
    const int64_t *gm = job->geom;
    const int64_t H = gm[1], W = gm[2], ph = gm[7], pw = gm[8], Hp = H + 2 * ph, Wp = W + 2 * pw;
    const int64_t off = job->offset;
    const ELEM pad = (ELEM)(job->pad - off);
    const int64_t *src = job->img + t * H * W;
    ELEM *dst = job->xp + t * Hp * Wp;
    for (int64_t y = 0; y < Hp; y++, dst += Wp) {
        if (y < ph || y >= ph + H) {
            for (int64_t x = 0; x < Wp; x++) dst[x] = pad;
            continue;
        }
        const int64_t *row = src + (y - ph) * W;
        for (int64_t x = 0; x < pw; x++) dst[x] = pad;
        for (int64_t x = 0; x < W; x++) dst[pw + x] = (ELEM)(row[x] - off);
        for (int64_t x = pw + W; x < Wp; x++) dst[x] = pad;
    }
}

/* Short copies: fixed-size blocks the compiler inlines (a memcpy call costs
   more than the 8 to 32 values of a typical row). */
static inline void NAME(copy)(ELEM *restrict dst, const ELEM *restrict src, int64_t m)
{
    int64_t e = 0;
    for (; e + 8 <= m; e += 8) memcpy(dst + e, src + e, 8 * sizeof(ELEM));
    for (; e < m; e++) dst[e] = src[e];
}

/* Task k = c*kh*kw + i*kw + j (strided layout): row k of image n, at column
   oy*OW + ox and address dst + k*ks + n*ns, is xp[n][c][oy*sh + i][ox*sw + j]
   (that is img[n][c][iy][ix] - offset, or pad - offset outside the image). */
static void NAME(im2col_task)(const void *ctx, int64_t k)
{
    const NAME(im2col_job_t) *job = (const NAME(im2col_job_t) *)ctx;
    const int64_t *gm = job->geom;
    const int64_t C = gm[0], H = gm[1], W = gm[2], kh = gm[3], kw = gm[4];
    const int64_t sh = gm[5], sw = gm[6], ph = gm[7], pw = gm[8], OW = gm[9];
    const int64_t Hp = H + 2 * ph, Wp = W + 2 * pw;
    const int64_t L = job->l, OH = L / OW;
    const int64_t c = k / (kh * kw), i = (k / kw) % kh, j = k % kw;
    for (int64_t n = 0; n < job->planes; n++) {
        const ELEM *plane = job->xp + (n * C + c) * Hp * Wp + i * Wp + j;
        ELEM *dst = job->dst + k * job->ks + n * job->ns;
        for (int64_t oy = 0; oy < OH; oy++) {
            const ELEM *src = plane + oy * sh * Wp;
            ELEM *row = dst + oy * OW;
            if (sw == 1)
                NAME(copy)(row, src, OW);
            else
                for (int64_t ox = 0; ox < OW; ox++) row[ox] = src[ox * sw];
        }
    }
    ELEM *end = job->dst + k * job->ks + job->planes * job->ns;
    for (int64_t e = 0; e < job->tail; e++) end[e] = 0;
}

/* img [N][C][H][W] int64 -> im2col columns minus offset (l = OH*OW per image;
   geom = {C, H, W, kh, kw, sh, sw, ph, pw, OW}): row k of image n at
   dst + k*ks + n*ns, then `tail` zeros after the last image's row k (the
   kernels' layout: ks = ld, ns = l, tail = ld - N*l; quant.intmodel.golden's
   [N][K][l]: ks = l, ns = K*l, tail = 0).  Returns -1 when out of memory. */
int NAME(golden_im2col)(const int64_t *img, ELEM *dst, int64_t planes, const int64_t *geom, int64_t l,
                        int64_t pad, int64_t offset, int64_t ks, int64_t ns, int64_t tail, int threads)
{
    NAME(im2col_job_t) job = {.img = img, .dst = dst, .planes = planes, .l = l, .pad = pad, .offset = offset,
                              .ks = ks, .ns = ns, .tail = tail};
    for (int i = 0; i < 10; i++) job.geom[i] = geom[i];
    const int64_t C = geom[0], Hp = geom[1] + 2 * geom[7], Wp = geom[2] + 2 * geom[8];
    const int64_t k = C * geom[3] * geom[4];
    job.xp = (ELEM *)malloc((size_t)(planes * C * Hp * Wp) * sizeof(ELEM));
    if (!job.xp) return -1;
    pool_run(NAME(pad_task), &job, planes * C, planes * C * Hp * Wp, threads);
    pool_run(NAME(im2col_task), &job, k, planes * k * l, threads);
    free(job.xp);
    return 0;
}

/* ---- sum_k |x - w| ------------------------------------------------- */

typedef struct {
    const ELEM *x, *w; /* x: K rows of L columns, row stride ld */
    int64_t *out;
    int64_t k, l, ld, o, p, kc;
    const int64_t *rq_m, *rq_n; /* fused fixed-point requant of every sum (NULL: store the sums) */
    int64_t rq_shift, rq_lo, rq_hi;
} NAME(adder_job_t);

/* The value stored for sum v of channel o: v, or clamp((m[o]*v + n[o]) >> shift, lo, hi) when fused. */
static inline int64_t NAME(out_value)(const NAME(adder_job_t) *job, int64_t o, ACC v)
{
    if (!job->rq_m) return (int64_t)v;
    return rq_shift_clamp(rq_wrap((uint64_t)job->rq_m[o] * (uint64_t)(int64_t)v + (uint64_t)job->rq_n[o]),
                          job->rq_shift, job->rq_lo, job->rq_hi);
}

static inline int64_t NAME(tile_start)(int64_t start, int64_t size, int64_t tile, int *skip)
{
    if (start + tile <= size || size < tile) {
        *skip = 0;
        return start;
    }
    *skip = (int)(start + tile - size);
    return size - tile;
}

/* |a - b|; no overflow as a, b are in [0, span].  int16 as max - min, which
   stays in int16 (abs() would promote to int and vectorise at half width). */
static inline ELEM NAME(absdiff)(ELEM a, ELEM b)
{
#ifdef CHUNKED
    const ELEM hi = a > b ? a : b, lo = a > b ? b : a;
    return (ELEM)(hi - lo);
#else
    const ELEM d = a - b;
    return d < 0 ? -d : d;
#endif
}

/* Stores acc[j][i] (rows o0 + oskip .. o0 + nr - 1, columns c0 + i < L) into out [N][O][P]. */
static inline void NAME(store)(const NAME(adder_job_t) *job, ACC acc[NR][MR], int64_t o0, int oskip, int nr,
                               int64_t c0)
{
    const int64_t O = job->o, P = job->p;
    const int mr = (int)(job->l - c0 < MR ? job->l - c0 : MR);
    int64_t n = c0 / P, p = c0 % P; /* column c = n*P + p */
    if (mr == MR && p + MR <= P) { /* one image's contiguous columns: vectorised widening stores */
        int64_t *dst = job->out + n * O * P + p;
        if (job->rq_m) {
            for (int j = oskip; j < nr; j++)
                for (int i = 0; i < MR; i++)
                    dst[(o0 + j) * P + i] = NAME(out_value)(job, o0 + j, acc[j][i]);
            return;
        }
        for (int j = oskip; j < nr; j++)
            for (int i = 0; i < MR; i++)
                dst[(o0 + j) * P + i] = (int64_t)acc[j][i];
        return;
    }
    for (int i = 0; i < mr; i++) {
        int64_t *dst = job->out + n * O * P + p;
        for (int j = oskip; j < nr; j++)
            dst[(o0 + j) * P] = NAME(out_value)(job, o0 + j, acc[j][i]);
        if (++p == P) {
            p = 0;
            n++;
        }
    }
}

/* Output channels o0 .. o0 + NR - 1, columns c0 .. c0 + MR - 1 (xp = x + c0). */
static inline __attribute__((always_inline)) void NAME(full)(const NAME(adder_job_t) *job, const ELEM *xp,
                                                           int64_t o0, int oskip, int64_t c0)
{
    const int64_t K = job->k, ld = job->ld;
    const ELEM *restrict x = xp;
    const ELEM *restrict w = job->w;
    ACC acc[NR][MR] = {{0}};
#if defined(CHUNKED) && defined(__AVX2__) && MR == 32 && NR == 4
    /* int16 tile by hand: |x - w| as vpsubw + vpabsw (the portable code below
       cannot say abs at 16 bits and needs max - min, one instruction more). */
    const int64_t kc = job->kc;
    const ELEM *w0 = w + o0 * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
        const int64_t k1 = k0 + kc < K ? k0 + kc : K;
        __m256i p00 = _mm256_setzero_si256(), p01 = p00, p10 = p00, p11 = p00;
        __m256i p20 = p00, p21 = p00, p30 = p00, p31 = p00;
        for (int64_t k = k0; k < k1; k++) {
            const ELEM *xk = x + k * ld;
            __builtin_prefetch(xk + PREFETCH_AHEAD); /* rows are ld apart: too many streams for the hardware */
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)xk);
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(xk + 16));
            __m256i wv = _mm256_set1_epi16(w0[k]);
            p00 = _mm256_add_epi16(p00, _mm256_abs_epi16(_mm256_sub_epi16(x0, wv)));
            p01 = _mm256_add_epi16(p01, _mm256_abs_epi16(_mm256_sub_epi16(x1, wv)));
            wv = _mm256_set1_epi16(w1[k]);
            p10 = _mm256_add_epi16(p10, _mm256_abs_epi16(_mm256_sub_epi16(x0, wv)));
            p11 = _mm256_add_epi16(p11, _mm256_abs_epi16(_mm256_sub_epi16(x1, wv)));
            wv = _mm256_set1_epi16(w2[k]);
            p20 = _mm256_add_epi16(p20, _mm256_abs_epi16(_mm256_sub_epi16(x0, wv)));
            p21 = _mm256_add_epi16(p21, _mm256_abs_epi16(_mm256_sub_epi16(x1, wv)));
            wv = _mm256_set1_epi16(w3[k]);
            p30 = _mm256_add_epi16(p30, _mm256_abs_epi16(_mm256_sub_epi16(x0, wv)));
            p31 = _mm256_add_epi16(p31, _mm256_abs_epi16(_mm256_sub_epi16(x1, wv)));
        }
        ELEM part[NR][MR];
        _mm256_storeu_si256((__m256i *)&part[0][0], p00);
        _mm256_storeu_si256((__m256i *)&part[0][16], p01);
        _mm256_storeu_si256((__m256i *)&part[1][0], p10);
        _mm256_storeu_si256((__m256i *)&part[1][16], p11);
        _mm256_storeu_si256((__m256i *)&part[2][0], p20);
        _mm256_storeu_si256((__m256i *)&part[2][16], p21);
        _mm256_storeu_si256((__m256i *)&part[3][0], p30);
        _mm256_storeu_si256((__m256i *)&part[3][16], p31);
        for (int j = 0; j < NR; j++)
            for (int i = 0; i < MR; i++)
                acc[j][i] += (ACC)part[j][i];
    }
#elif defined(CHUNKED)
    const int64_t kc = job->kc;
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
        const int64_t k1 = k0 + kc < K ? k0 + kc : K;
        ELEM part[NR][MR] = {{0}};
        for (int64_t k = k0; k < k1; k++) {
            const ELEM *restrict xk = x + k * ld;
            __builtin_prefetch(xk + PREFETCH_AHEAD);
            for (int j = 0; j < NR; j++) {
                const ELEM wv = w[(o0 + j) * K + k];
                for (int i = 0; i < MR; i++)
                    part[j][i] = (ELEM)(part[j][i] + NAME(absdiff)(xk[i], wv));
            }
        }
        for (int j = 0; j < NR; j++)
            for (int i = 0; i < MR; i++)
                acc[j][i] += (ACC)part[j][i];
    }
#else
    for (int64_t k = 0; k < K; k++) {
        const ELEM *restrict xk = x + k * ld;
        __builtin_prefetch(xk + PREFETCH_AHEAD);
        for (int j = 0; j < NR; j++) {
            const ELEM wv = w[(o0 + j) * K + k];
            for (int i = 0; i < MR; i++)
                acc[j][i] += NAME(absdiff)(xk[i], wv);
        }
    }
#endif
    NAME(store)(job, acc, o0, oskip, NR, c0);
}

/* Fewer than NR output channels (O < NR). */
static void NAME(small)(const NAME(adder_job_t) *job, const ELEM *xp, int64_t o0, int nr, int64_t c0)
{
    const int64_t K = job->k, kc = job->kc, ld = job->ld;
    ACC acc[NR][MR] = {{0}};
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
        const int64_t k1 = k0 + kc < K ? k0 + kc : K;
        ELEM part[NR][MR] = {{0}};
        for (int64_t k = k0; k < k1; k++) {
            const ELEM *xk = xp + k * ld;
            for (int j = 0; j < nr; j++) {
                const ELEM wv = job->w[(o0 + j) * K + k];
                for (int i = 0; i < MR; i++)
                    part[j][i] = (ELEM)(part[j][i] + NAME(absdiff)(xk[i], wv));
            }
        }
        for (int j = 0; j < nr; j++)
            for (int i = 0; i < MR; i++)
                acc[j][i] += (ACC)part[j][i];
    }
    NAME(store)(job, acc, o0, 0, nr, c0);
}

/* Task t: columns t*MR .. t*MR + MR - 1, every output channel; a last block
   of channels past O is moved back to end at O and stores only its new rows. */
static void NAME(adder_task)(const void *ctx, int64_t t)
{
    const NAME(adder_job_t) *job = (const NAME(adder_job_t) *)ctx;
    const int64_t O = job->o, c0 = t * MR;
    const ELEM *xp = job->x + c0;
    int oskip;
    if (O < NR) {
        NAME(small)(job, xp, 0, (int)O, c0);
        return;
    }
    for (int64_t o = 0; o < O; o += NR) {
        const int64_t o0 = NAME(tile_start)(o, O, NR, &oskip);
        NAME(full)(job, xp, o0, oskip, c0);
    }
}

/* out[n][o][p] = sum_k |x[k*ld + n*P + p] - w[o][k]|;  x: K rows of L = N*P columns (row stride
   ld >= L rounded up to MR, zero past L), w: [O][K], out: [N][O][P] int64.  kc: rows summed in ELEM
   before adding into ACC (the caller proves that kc * span and K * span fit). */
int NAME(golden_adder)(const ELEM *x, const ELEM *w, int64_t *out, int64_t k, int64_t l, int64_t ld, int64_t o,
                       int64_t p, int64_t kc, int threads)
{
    NAME(adder_job_t) job = {.x = x, .w = w, .out = out, .k = k, .l = l, .ld = ld, .o = o, .p = p,
                             .kc = kc < 1 ? 1 : kc};
    pool_run(NAME(adder_task), &job, (l + MR - 1) / MR, k * l * o, threads);
    return 0;
}

/* golden_adder with each sum re-quantised before it is stored: out[n][o][p] =
   clamp((m[o]*acc + n[o]) >> shift, lo, hi), acc as above (the caller proves
   that |m*acc + n| < 2^62 over 0 <= acc <= K*span). */
int NAME(golden_adder_rq)(const ELEM *x, const ELEM *w, int64_t *out, int64_t k, int64_t l, int64_t ld, int64_t o,
                          int64_t p, int64_t kc, const int64_t *m, const int64_t *n, int64_t shift, int64_t lo,
                          int64_t hi, int threads)
{
    NAME(adder_job_t) job = {.x = x, .w = w, .out = out, .k = k, .l = l, .ld = ld, .o = o, .p = p,
                             .kc = kc < 1 ? 1 : kc, .rq_m = m, .rq_n = n, .rq_shift = shift, .rq_lo = lo,
                             .rq_hi = hi};
    pool_run(NAME(adder_task), &job, (l + MR - 1) / MR, k * l * o, threads);
    return 0;
}

#undef NAME
