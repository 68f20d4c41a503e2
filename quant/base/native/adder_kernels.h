/*
 * Kernel template of adder.c, included once per element type with REAL
 * (float or double), ABS (fabsf or fabs) and SUFFIX (_f32 or _f64) defined.
 * Exports adder_forward, adder_input_grad, adder_im2col and adder_col2im, each
 * with SUFFIX appended.
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

static void NAME(fwd_tile)(const job_t *job, int64_t t)
{
    const int64_t K = job->k, L = job->l, O = job->o;
    const int64_t tiles = (L + MR - 1) / MR, p = t / tiles;
    int64_t l0 = (t % tiles) * MR;
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

static void NAME(bwd_tile)(const job_t *job, int64_t t)
{
    const int64_t K = job->k, L = job->l, O = job->o;
    const int64_t tiles = (L + MR - 1) / MR, p = t / tiles;
    int64_t l0 = (t % tiles) * MR;
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

/* ---- im2col / col2im ------------------------------------------------- */

/* Task (p, c): rows c*kh*kw .. (c+1)*kh*kw - 1 of plane p of the columns. */
static void NAME(im2col_task)(const job_t *job, int64_t t)
{
    const int64_t *gm = job->geom;
    const int64_t C = gm[0], H = gm[1], W = gm[2], kh = gm[3], kw = gm[4];
    const int64_t sh = gm[5], sw = gm[6], ph = gm[7], pw = gm[8], OW = gm[9];
    const int64_t L = job->l, OH = L / OW, p = t / C, c = t % C;
    const REAL *img = (const REAL *)job->x + (p * C + c) * H * W;
    REAL *cols = (REAL *)job->out + (p * C * kh * kw + c * kh * kw) * L;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++, cols += L)
            for (int64_t oy = 0; oy < OH; oy++) {
                const int64_t iy = oy * sh - ph + i;
                REAL *row = cols + oy * OW;
                if (iy < 0 || iy >= H) {
                    for (int64_t ox = 0; ox < OW; ox++) row[ox] = 0;
                    continue;
                }
                const REAL *src = img + iy * W;
                for (int64_t ox = 0; ox < OW; ox++) {
                    const int64_t ix = ox * sw - pw + j;
                    row[ox] = (ix >= 0 && ix < W) ? src[ix] : (REAL)0;
                }
            }
}

static void NAME(col2im_task)(const job_t *job, int64_t t)
{
    const int64_t *gm = job->geom;
    const int64_t C = gm[0], H = gm[1], W = gm[2], kh = gm[3], kw = gm[4];
    const int64_t sh = gm[5], sw = gm[6], ph = gm[7], pw = gm[8], OW = gm[9];
    const int64_t L = job->l, OH = L / OW, p = t / C, c = t % C;
    const REAL *cols = (const REAL *)job->x + (p * C * kh * kw + c * kh * kw) * L;
    REAL *img = (REAL *)job->out + (p * C + c) * H * W;
    for (int64_t e = 0; e < H * W; e++) img[e] = 0;
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++, cols += L)
            for (int64_t oy = 0; oy < OH; oy++) {
                const int64_t iy = oy * sh - ph + i;
                if (iy < 0 || iy >= H) continue;
                const REAL *row = cols + oy * OW;
                REAL *dst = img + iy * W;
                for (int64_t ox = 0; ox < OW; ox++) {
                    const int64_t ix = ox * sw - pw + j;
                    if (ix >= 0 && ix < W) dst[ix] += row[ox];
                }
            }
}

/* ---- entry points ----------------------------------------------------- */

/* Y[p][o][l] = -sum_k |X[p][k][l] - W[o][k]|;  x: [P][K][L], w: [O][K], y: [P][O][L]. */
int NAME(adder_forward)(const REAL *x, const REAL *w, REAL *y,
                        int64_t planes, int64_t k, int64_t l, int64_t o, int threads)
{
    job_t job = {.x = x, .w = w, .out = y, .planes = planes, .k = k, .l = l, .o = o,
                 .tasks = planes * ((l + MR - 1) / MR), .work = planes * k * l * o,
                 .threads = threads, .task = NAME(fwd_tile)};
    return run(&job);
}

/* DX[p][k][l] = sum_o clamp(W[o][k] - X[p][k][l], -1, 1) * G[p][o][l];  g: [P][O][L], dx: [P][K][L]. */
int NAME(adder_input_grad)(const REAL *x, const REAL *w, const REAL *g, REAL *dx,
                           int64_t planes, int64_t k, int64_t l, int64_t o, int threads)
{
    job_t job = {.x = x, .w = w, .g = g, .out = dx, .planes = planes, .k = k, .l = l, .o = o,
                 .tasks = planes * ((l + MR - 1) / MR), .work = planes * k * l * o,
                 .threads = threads, .task = NAME(bwd_tile)};
    return run(&job);
}

/* F.unfold: img [P][C][H][W] -> cols [P][C*kh*kw][OH*OW] (zero padding).
   geom = {C, H, W, kh, kw, sh, sw, ph, pw, OW}; l = OH*OW. */
int NAME(adder_im2col)(const REAL *img, REAL *cols, int64_t planes, const int64_t *geom, int64_t l, int threads)
{
    job_t job = {.x = img, .out = cols, .planes = planes, .l = l, .tasks = planes * geom[0],
                 .work = planes * geom[0] * geom[3] * geom[4] * l, .threads = threads,
                 .task = NAME(im2col_task)};
    for (int i = 0; i < 10; i++) job.geom[i] = geom[i];
    return run(&job);
}

/* F.fold, the adjoint of adder_im2col: cols [P][C*kh*kw][OH*OW] -> img [P][C][H][W]. */
int NAME(adder_col2im)(const REAL *cols, REAL *img, int64_t planes, const int64_t *geom, int64_t l, int threads)
{
    job_t job = {.x = cols, .out = img, .planes = planes, .l = l, .tasks = planes * geom[0],
                 .work = planes * geom[0] * geom[3] * geom[4] * l, .threads = threads,
                 .task = NAME(col2im_task)};
    for (int i = 0; i < 10; i++) job.geom[i] = geom[i];
    return run(&job);
}

#undef NAME
#undef CAT
#undef CAT_
