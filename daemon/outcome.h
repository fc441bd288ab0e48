/* outcome.h - what a job's ending means: pure decisions, no I/O, no state.
 *
 * DESIGN: a handler ends (ok, stopped at a checkpoint, or failed) for a
 * reason jobd may have given it (a stop request: lease lost, cancel,
 * timeout, drain). This module turns that into the outcome jobd reports,
 * charges attempts (a retry past the job's max attempts is dead), picks the
 * retry delay (full jitter; the random source is a parameter, so tests can
 * pin it), names each outcome once for the journal and the log, and reads
 * what Redis answered about it. Everything here is unit-tested without Redis
 * (tests/unit/test_outcome.c). */
#ifndef JOBD_OUTCOME_H
#define JOBD_OUTCOME_H

#include <stdint.h>

#include "proto.h"

typedef enum {
    OUT_NONE = 0, /* still running */
    OUT_ACK,      /* succeeded: ack.lua with result */
    OUT_RETRY,    /* failed: fail.lua, retry after retry_ms (or dead when out of attempts) */
    OUT_DEAD,     /* failed for good (bad input, unknown type): fail.lua -1 */
    OUT_CANCELED, /* stopped on a cancel request: fail.lua -2 */
    OUT_RELEASE,  /* stopped at a checkpoint: release.lua, attempt not charged */
    OUT_DEFER,    /* never started (resources busy or rate-limited, no handler here):
                     defer.lua, back to scheduled after retry_ms, attempt not charged */
    OUT_DROP,     /* lease lost: nothing to report */
    OUT_COUNT
} job_outcome_t;

typedef enum {
    STOP_NONE = 0,
    STOP_LEASE_LOST, /* extend said the token is stale */
    STOP_CANCEL,     /* a cancel was requested */
    STOP_TIMEOUT,    /* the job's or handler's timeout passed */
    STOP_DRAIN       /* SIGTERM: stop and checkpoint */
} job_stop_t;

/* The outcome's word in the journal ("ack", "retry", ...); "" for OUT_NONE
 * and OUT_DROP, which are never journaled. A deferral is journaled as
 * "release": after a crash it goes back uncharged, without its delay. */
const char *outcome_name(job_outcome_t o);
/* The outcome a journal word names; anything else (NULL, unknown) is
 * OUT_RELEASE: a lease cut short by a crash goes back uncharged. */
job_outcome_t outcome_parse(const char *name);

/* The outcome of a handler that ended (ok: succeeded; stopped: it returned
 * at a checkpoint, exit 75) after stop request why. A lost lease drops the
 * outcome whatever the handler did; a handler that succeeds despite a
 * cancel, timeout or drain succeeded. */
job_outcome_t outcome_of_ending(job_stop_t why, int ok, int stopped);
/* o, except that a retry on attempt >= max_attempts is dead. */
job_outcome_t outcome_charge(job_outcome_t o, int attempt, int max_attempts);
/* The job's own setting if set (> 0), else the handler's, else dflt. */
int64_t outcome_setting(int64_t job, int64_t handler, int64_t dflt);
/* The job's max attempts: its own, else its handler's, else
 * JOBD_DEFAULT_MAX_ATTEMPTS. */
int outcome_max_attempts(int job, int handler);
/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))], drawn with
 * rnd (random(3)'s contract: 0..RAND_MAX). Saturates instead of overflowing. */
int64_t outcome_retry_delay(int64_t base, int64_t cap, int attempt, long (*rnd)(void));

/* The script that reports o (ack, fail or release). */
proto_script_t outcome_script(job_outcome_t o);
/* What Redis's answer res (1, 2, 3; already made positive) to outcome o
 * means, for the log: "succeeded", "released", "dead", ... */
const char *outcome_word(job_outcome_t o, long long res);
/* Whether Redis's answer res to o put the job back in its queue (released,
 * or a retry scheduled): the queue is not exhausted then. */
int outcome_requeued(job_outcome_t o, long long res);

#define OUTCOME_ERROR_LOG_MAX 500 /* bytes of a long error's end in its log line */
#define OUTCOME_ERROR_LOG_BUF (OUTCOME_ERROR_LOG_MAX + 256)

/* A long error (a failure's output tails) as its log line shows it: the
 * first line, which says why, then "..." and the last OUTCOME_ERROR_LOG_MAX
 * bytes, where a traceback ends, starting on a whole line or character.
 * Returns e itself when it is short enough, else buf (OUTCOME_ERROR_LOG_BUF
 * bytes). */
const char *outcome_error_for_log(const char *e, char *buf);

#endif
