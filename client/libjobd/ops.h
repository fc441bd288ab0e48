/* ops.h - the arguments and the replies of every script call a worker
 * makes, written once for both transports.
 *
 * DESIGN: libjobd's blocking calls (worker_ops.c) and jobd's asynchronous
 * modules (daemon/claim.c, lease.c, outbox.c, reap.c) send the same scripts
 * through different transports. Both build each call's ARGV here and read
 * each reply here, so the two cannot disagree on argument order, on what a
 * reply must look like, or on what its numbers mean. The builders append to
 * a proto_argv_t (per-job adders may be called many times for a batch); the
 * readers check the whole shape and type of a reply before anyone reads a
 * field of it, and lend pointers into the reply (valid while it lives).
 * Pure: no I/O. The scripts' own comments (schema/redis/NAME.lua) define
 * every argument and answer. */
#ifndef JOBD_OPS_H
#define JOBD_OPS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* ---- claim.lua ---- */

/* One claimed job, borrowed from the reply. ckpt_len 0: no checkpoint. */
typedef struct {
    const char *id, *token, *envelope, *checkpoint;
    size_t id_len, token_len, envelope_len, checkpoint_len;
    long long attempt;
} ops_claimed_t;

/* A claim reply, checked: n jobs; next_ms the Unix ms of the queue's next
 * scheduled job (<= 0: none); set_aside the flat array of notes
 * (ops_note). */
typedef struct {
    long long next_ms;
    const redisReply *set_aside;
    size_t n;
    const redisReply *reply;
} ops_claim_t;

/* ARGV of a claim of up to max jobs by worker_id with a lease of lease_ms;
 * envelopes over envelope_max bytes go dead unread, with retention
 * ttl_dead_ms. */
void ops_claim_args(proto_argv_t *a, const char *worker_id, int64_t lease_ms, long long max,
                    long long envelope_max, int64_t ttl_dead_ms);
/* Checks a claim reply; returns 0, or -1 if it is not one (an error reply,
 * a wrong shape or type). */
int ops_claim_reply(const redisReply *r, ops_claim_t *out);
/* The i-th job (i < c->n) of a checked reply. */
void ops_claim_job(const ops_claim_t *c, size_t i, ops_claimed_t *out);

/* A note of what claim.lua or reap.lua set aside: what is "dead" (its
 * record unusable, sent dead unrun) or "dropped" (no job record, removed
 * from its set); id (possibly garbage itself) and why, borrowed. */
typedef struct {
    int dead; /* 1: "dead", 0: "dropped" */
    const char *id, *why;
    size_t id_len;
} ops_note_t;

/* How many notes the set-aside array holds. */
size_t ops_notes(const redisReply *set_aside);
/* The i-th note; returns 0, or -1 if it is malformed (skip it). */
int ops_note(const redisReply *set_aside, size_t i, ops_note_t *out);

/* ---- per-job scripts: extend, ack, fail, release, checkpoint ---- */

/* extend.lua: ARGV[1], then ops_lease_add per lease. */
void ops_extend_begin(proto_argv_t *a, int64_t lease_ms);
void ops_lease_add(proto_argv_t *a, const char *id, const char *token);
/* ack.lua: per job. result NULL: none. */
void ops_ack_add(proto_argv_t *a, const char *id, const char *token, const char *result);
/* fail.lua: ARGV[1], then per job. disposition: delay >= 0 (retry after it
 * if attempts remain), OPS_FAIL_DEAD or OPS_FAIL_CANCELED; max_attempts the
 * caller's for a job that sets none (0: the default). */
#define OPS_FAIL_DEAD (-1)
#define OPS_FAIL_CANCELED (-2)
/* no_progress: the poison limit (fail.lua ARGV[2]; 0: off). */
#define OPS_NO_PROGRESS_DEFAULT 3
void ops_fail_begin(proto_argv_t *a, int64_t ttl_dead_ms, int no_progress);
void ops_fail_add(proto_argv_t *a, const char *id, const char *token, const char *error,
                  int64_t disposition, int max_attempts);
/* release.lua: ARGV[1], then per job. checkpoint NULL keeps the stored one,
 * progress < 0 keeps the stored progress. */
void ops_release_begin(proto_argv_t *a, int64_t ttl_dead_ms);
void ops_release_add(proto_argv_t *a, const char *id, const char *token, const char *checkpoint,
                     double progress);
/* defer.lua: ARGV[1], then per job: back to scheduled after delay_ms,
 * attempt not charged, why kept as the job's 'waiting'; bound > 0 counts
 * the deferral and makes the job dead once it is over bound. */
void ops_defer_begin(proto_argv_t *a, int64_t ttl_dead_ms);
void ops_defer_add(proto_argv_t *a, const char *id, const char *token, int64_t delay_ms,
                   const char *why, int bound);
/* checkpoint.lua: per job, the same arguments as a release. */
void ops_checkpoint_add(proto_argv_t *a, const char *id, const char *token, const char *checkpoint,
                        double progress);

/* Checks the reply of a per-job script sent for n jobs: an array of n
 * integers. Returns 0 or -1. Read answer i as r->element[i]->integer. */
int ops_results(const redisReply *r, size_t n);

/* What an answer to ack, fail or release means (see the scripts): 1, 2, 3
 * as the script says; 0 stale token. A negative answer -N says this very
 * token's outcome was applied before (a re-send after a lost reply): it
 * stands, as N; *again is set then (may be NULL). */
long long ops_outcome_answer(long long res, int *again);

/* Answers of extend.lua. */
enum { OPS_EXTEND_LOST = 0, OPS_EXTEND_OK = 1, OPS_EXTEND_CANCEL = 2 };

/* ---- reap.lua ---- */

typedef struct {
    long long requeued, dead, canceled;
    int more;                    /* the retention trim hit its budget: run again soon */
    const redisReply *set_aside; /* notes (ops_note) */
    long long held_ms;           /* lease expiry on hold for this long (0: none) */
    long long gap_ms;            /* the silence that set a hold (-1: no clock yet; 0: none) */
} ops_reap_t;

/* ARGV of a reap of up to max leases, with the retentions; gap_ms and
 * grace_ms keep the reaper clock (0, 0: this caller does not); no_progress
 * the poison limit (as for fail; 0: off). */
void ops_reap_args(proto_argv_t *a, long long max, int64_t ttl_succeeded_ms, int64_t ttl_dead_ms,
                   int64_t gap_ms, int64_t grace_ms, int no_progress);
/* Checks a reap reply; returns 0 or -1. */
int ops_reap_reply(const redisReply *r, ops_reap_t *out);

/* ---- stats.lua ---- */

/* The queue's depth per state, in jobd_state_t order (queued, scheduled,
 * active, succeeded, dead, canceled). Returns 0 or -1. */
int ops_stats_reply(const redisReply *r, long long depth[6]);
/* The ms since the queue's oldest waiting job became ready; -1 when none
 * waits or the reply is not stats.lua's. */
long long ops_stats_oldest_ms(const redisReply *r);

#endif
