/* pools.h - the daemon's pools: one pool (pool.h) per persistent handler
 * of the handlers file, found by handler.
 *
 * DESIGN: pools_start runs once, after the journal's recovery: it kills
 * the pool processes an earlier jobd recorded (procs.h; pid, start time and
 * boot must still match, so a reused pid is spared), then starts a pool per
 * persistent handler. run finds a job's pool with pools_find; health reads
 * pools_not_ready and pools_metrics; daemon.c calls pools_close when it
 * closes everything. The set is process-wide state (one daemon per
 * process). Loop thread only. */
#ifndef JOBD_POOLS_H
#define JOBD_POOLS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "handlers.h"
#include "journal.h"
#include "metrics.h"
#include "pool.h"

/* Kills the pool processes an earlier jobd recorded (procs.h, and the
 * pool_procs rows of jobd versions before it) that still run, and starts a
 * pool for every persistent handler of h. env_base: the allow-listed environment. Returns 0, or -1
 * (logged) if a pool could not start (jobs of its type then fail to start and retry). */
int pools_start(uv_loop_t *loop, const handlers_t *h, int concurrency, int64_t kill_grace_ms,
                size_t max_value, char *const *env_base, journal_t *jn);
/* The pool of a persistent handler, or NULL. */
pool_t *pools_find(const handler_t *h);
/* pool_close on every pool. */
void pools_close(void);
/* Appends a JSON string per unhealthy pool to a readiness body ("sep" before
 * the first); returns how many. */
int pools_not_ready(metrics_buf_t *b, const char *sep);
/* Per-type process gauges and counters for /metrics. */
void pools_metrics(metrics_buf_t *b);

#endif
