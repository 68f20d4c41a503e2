/*
 * Kernel template of adder.c, included once per element type with REAL
 * (float or double), ABS (fabsf or fabs) and SUFFIX (_f32 or _f64) defined.
 * Exports adder_forward##SUFFIX and adder_input_grad##SUFFIX.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define NAME(base) CAT(base, SUFFIX)

/* Edges.  A tile that would run past the end of L (or of O in the forward,
 * of K in the input gradient) is moved back to end exactly at the edge and
 * stores only the part not already covered: the full-size, vectorised code
 * runs everywhere and each output is still written once.  Only dimensions
 * smaller than one tile take the generic loops. */

static inline int64_t NAME(tile_start)(int64_t start, int64_t size, int64_t tile, int *skip)
{
    if (start + tile <= size || size < tile) {
        *skip = 0;
        return start;
    }
    *skip = (int)(start + tile - size);
    return size - tile;
}

/* ---- forward ---------------------------------------------------------- */

static inline __attribute__((always_inline)) void NAME(fwd_full)(
    const REAL *restrict x, const REAL *restrict w, REAL *restrict y,
    int64_t K, int64_t L, int64_t o0, int oskip, int64_t l0, int lskip)
{
    REAL acc[FWD_NR][MR] = {{0}};
    for (int64_t k = 0; k < K; k++) {
        const REAL *xk = x + k * L + l0;
        for (int j = 0; j < FWD_NR; j++) {
            const REAL wv = w[(o0 + j) * K + k];
            for (int i = 0; i < MR; i++)
                acc[j][i] += ABS(xk[i] - wv);
        }
    }
    for (int j = oskip; j < FWD_NR; j++)
        for (int i = lskip; i < MR; i++)
            y[(o0 + j) * L + l0 + i] = -acc[j][i];
}

static void NAME(fwd_small)(const REAL *x, const REAL *w, REAL *y, int64_t K, int64_t L,
                            int64_t o0, int oskip, int nr, int64_t l0, int lskip, int mr)
{
    for (int j = oskip; j < nr; j++) {
        REAL acc[MR] = {0};
        const REAL *wo = w + (o0 + j) * K;
        for (int64_t k = 0; k < K; k++) {
            const REAL *xk = x + k * L + l0;
            for (int i = 0; i < mr; i++)
                acc[i] += ABS(xk[i] - wo[k]);
        }
        for (int i = lskip; i < mr; i++)
            y[(o0 + j) * L + l0 + i] = -acc[i];
    }
}

static void NAME(fwd_tile)(const job_t *job, int64_t p, int64_t l0)
{
    const int64_t K = job->k, L = job->l, O = job->o;
    const REAL *x = (const REAL *)job->x + p * K * L;
    const REAL *w = (const REAL *)job->w;
    REAL *y = (REAL *)job->out + p * O * L;
    int lskip, oskip;
    l0 = NAME(tile_start)(l0, L, MR, &lskip);
    for (int64_t o = 0; o < O; o += FWD_NR) {
        const int64_t o0 = NAME(tile_start)(o, O, FWD_NR, &oskip);
        if (L >= MR && O >= FWD_NR)
            NAME(fwd_full)(x, w, y, K, L, o0, oskip, l0, lskip);
        else
            NAME(fwd_small)(x, w, y, K, L, o0, oskip, (int)(O - o0 < FWD_NR ? O - o0 : FWD_NR),
                            l0, lskip, (int)(L - l0 < MR ? L - l0 : MR));
    }
}

/* ---- input gradient --------------------------------------------------- */

/* clamp(w - x, -1, 1) = min(max(w, x - 1), x + 1) - x; the "- x" part,
 * x * sum_o G, is subtracted once per output. */
static inline __attribute__((always_inline)) void NAME(bwd_full)(
    const REAL *restrict x, const REAL *restrict w, const REAL *restrict g, REAL *restrict dx,
    int64_t K, int64_t L, int64_t O, int64_t k0, int kskip, int64_t l0, int lskip)
{
    REAL lo[BWD_KR][MR], hi[BWD_KR][MR], acc[BWD_KR][MR] = {{0}}, gsum[MR] = {0};
    for (int r = 0; r < BWD_KR; r++)
        for (int i = 0; i < MR; i++) {
            lo[r][i] = x[(k0 + r) * L + l0 + i] - (REAL)1;
            hi[r][i] = x[(k0 + r) * L + l0 + i] + (REAL)1;
        }
    for (int64_t o = 0; o < O; o++) {
        const REAL *go = g + o * L + l0;
        for (int i = 0; i < MR; i++)
            gsum[i] += go[i];
        for (int r = 0; r < BWD_KR; r++) {
            const REAL wv = w[o * K + k0 + r];
            for (int i = 0; i < MR; i++) {
                REAL d = wv < lo[r][i] ? lo[r][i] : wv;
                d = d > hi[r][i] ? hi[r][i] : d;
                acc[r][i] += d * go[i];
            }
        }
    }
    for (int r = kskip; r < BWD_KR; r++)
        for (int i = lskip; i < MR; i++)
            dx[(k0 + r) * L + l0 + i] = acc[r][i] - x[(k0 + r) * L + l0 + i] * gsum[i];
}

static inline REAL NAME(clamp1)(REAL d)
{
    d = d > (REAL)1 ? (REAL)1 : d;
    return d < (REAL)-1 ? (REAL)-1 : d;
}

static void NAME(bwd_small)(const REAL *x, const REAL *w, const REAL *g, REAL *dx, int64_t K, int64_t L,
                            int64_t O, int64_t k0, int kskip, int kr, int64_t l0, int lskip, int mr)
{
    for (int r = kskip; r < kr; r++) {
        REAL acc[MR] = {0};
        const REAL *xr = x + (k0 + r) * L + l0;
        for (int64_t o = 0; o < O; o++) {
            const REAL *go = g + o * L + l0;
            const REAL wv = w[o * K + k0 + r];
            for (int i = 0; i < mr; i++)
                acc[i] += NAME(clamp1)(wv - xr[i]) * go[i];
        }
        for (int i = lskip; i < mr; i++)
            dx[(k0 + r) * L + l0 + i] = acc[i];
    }
}

static void NAME(bwd_tile)(const job_t *job, int64_t p, int64_t l0)
{
    const int64_t K = job->k, L = job->l, O = job->o;
    const REAL *x = (const REAL *)job->x + p * K * L;
    const REAL *w = (const REAL *)job->w;
    const REAL *g = (const REAL *)job->g + p * O * L;
    REAL *dx = (REAL *)job->out + p * K * L;
    int lskip, kskip;
    l0 = NAME(tile_start)(l0, L, MR, &lskip);
    for (int64_t k = 0; k < K; k += BWD_KR) {
        const int64_t k0 = NAME(tile_start)(k, K, BWD_KR, &kskip);
        if (L >= MR && K >= BWD_KR)
            NAME(bwd_full)(x, w, g, dx, K, L, O, k0, kskip, l0, lskip);
        else
            NAME(bwd_small)(x, w, g, dx, K, L, O, k0, kskip, (int)(K - k0 < BWD_KR ? K - k0 : BWD_KR),
                            l0, lskip, (int)(L - l0 < MR ? L - l0 : MR));
    }
}

/* ---- entry points ----------------------------------------------------- */

/* Y[p][o][l] = -sum_k |X[p][k][l] - W[o][k]|;  x: [P][K][L], w: [O][K], y: [P][O][L]. */
int NAME(adder_forward)(const REAL *x, const REAL *w, REAL *y,
                        int64_t planes, int64_t k, int64_t l, int64_t o, int threads)
{
    job_t job = {x, w, 0, y, planes, k, l, o, 0, 0, threads, NAME(fwd_tile)};
    return run(&job);
}

/* DX[p][k][l] = sum_o clamp(W[o][k] - X[p][k][l], -1, 1) * G[p][o][l];  g: [P][O][L], dx: [P][K][L]. */
int NAME(adder_input_grad)(const REAL *x, const REAL *w, const REAL *g, REAL *dx,
                           int64_t planes, int64_t k, int64_t l, int64_t o, int threads)
{
    job_t job = {x, w, g, dx, planes, k, l, o, 0, 0, threads, NAME(bwd_tile)};
    return run(&job);
}

#undef NAME
#undef CAT
#undef CAT_
