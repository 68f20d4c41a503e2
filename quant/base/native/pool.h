/*
 * The thread pool of the C kernels (adder.c for the float layers, golden.c
 * for the integer golden model): `tasks` independent tasks spread over at
 * most `threads` POSIX threads, the caller's thread included.  Worker i
 * takes the contiguous task range [i*T/n, (i+1)*T/n).  A task's result must
 * not depend on which thread runs it (each output is written by one task in
 * a fixed order), so results do not depend on the thread count.
 *
 * Starting a thread costs tens of microseconds: each gets at least
 * POOL_MIN_WORK units of `work` (about 0.1 ms), so small jobs run on fewer
 * threads.  A thread that cannot start leaves its range to the caller.
 */
#ifndef ADDERHW_POOL_H
#define ADDERHW_POOL_H

#include <pthread.h>
#include <stdint.h>

#define POOL_MAX_THREADS 256
#ifndef POOL_MIN_WORK
#define POOL_MIN_WORK (1 << 21)
#endif

typedef void (*pool_task_fn)(const void *ctx, int64_t task);

typedef struct {
    pool_task_fn fn;
    const void *ctx;
    int64_t tasks;
    int threads, index;
} pool_worker_t;

static void *pool_worker(void *arg)
{
    const pool_worker_t *wk = (const pool_worker_t *)arg;
    const int64_t begin = wk->tasks * wk->index / wk->threads;
    const int64_t end = wk->tasks * (wk->index + 1) / wk->threads;
    for (int64_t t = begin; t < end; t++)
        wk->fn(wk->ctx, t);
    return 0;
}

/* Run fn(ctx, t) for t in [0, tasks); returns the number of threads used. */
static int pool_run(pool_task_fn fn, const void *ctx, int64_t tasks, int64_t work, int threads)
{
    int n = threads;
    if (n > work / POOL_MIN_WORK) n = (int)(work / POOL_MIN_WORK);
    if (n > POOL_MAX_THREADS) n = POOL_MAX_THREADS;
    if (n > tasks) n = (int)tasks;
    if (n < 1) n = 1;
    pool_worker_t workers[POOL_MAX_THREADS];
    pthread_t ids[POOL_MAX_THREADS];
    int started = 0;
    for (int i = 0; i < n; i++) {
        workers[i].fn = fn;
        workers[i].ctx = ctx;
        workers[i].tasks = tasks;
        workers[i].threads = n;
        workers[i].index = i;
    }
    for (int i = 1; i < n; i++) {
        if (pthread_create(&ids[i], 0, pool_worker, &workers[i]) != 0)
            break;
        started = i;
    }
    for (int i = started + 1; i < n; i++) /* threads that could not start */
        pool_worker(&workers[i]);
    pool_worker(&workers[0]);
    for (int i = 1; i <= started; i++)
        pthread_join(ids[i], 0);
    return n;
}

#endif
