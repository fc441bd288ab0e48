/* respawn.h - the life policy of a persistent handler's processes (pool.c):
 * how long to wait before restarting after a crash, when crashes make a
 * crash loop, and when a process that finished a job is recycled.
 *
 * DESIGN: a crash (an exit jobd did not ask for, no ready line in time, a
 * spawn failure) adds to a streak; the restart delay starts at the pool's
 * first delay (100 ms by default) and doubles per crash in the streak up to
 * RESPAWN_BACKOFF_CAP_MS. RESPAWN_CRASH_LOOP crashes in a row mark the
 * type unhealthy (logged once; readiness shows it) until a job completes,
 * which ends the streak. A process is recycled once it has run max_jobs
 * jobs or its resident set passed max_rss_mb (read from /proc/PID/statm).
 * No handles, no I/O but logs and that read. Loop thread only. */
#ifndef JOBD_RESPAWN_H
#define JOBD_RESPAWN_H

#include <stddef.h>
#include <stdint.h>

#include "exec.h"

#define RESPAWN_CRASH_LOOP 5         /* crashes in a row that make a type unhealthy */
#define RESPAWN_BACKOFF_CAP_MS 30000 /* the longest restart delay */

typedef struct {
    long long crashes, recycled; /* since the pool started */
    int crash_streak;            /* crashes since the last completed job */
    int unhealthy;               /* crash_streak reached RESPAWN_CRASH_LOOP */
} respawn_t;

/* Counts a crash of a process of type; what says how it ended (logged
 * with the crash loop). pid != 0: a process that ran, logged with what it
 * was doing (during, then job's id) and the end of its stderr (err, or
 * NULL); 0: a spawn that failed (the caller logged it). */
void respawn_crash(respawn_t *r, const char *type, const char *what, int pid, const char *during,
                   const char *job, const exec_tail_t *err);
/* A job completed: the streak ends (logged if the type was unhealthy). */
void respawn_job_done(respawn_t *r, const char *type);
/* The delay before the next restart; first_ms <= 0: 100 ms. */
int64_t respawn_backoff_ms(const respawn_t *r, int64_t first_ms);
/* Whether a process that has run jobs jobs should be recycled now (0: no
 * limit). Returns 1 with the reason in why (and counts it), else 0. */
int respawn_recycle(respawn_t *r, int pid, int64_t jobs, int64_t max_jobs, int64_t max_rss_mb,
                    char *why, size_t whylen);

#endif
