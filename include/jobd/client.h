/* client.h - libjobd: submit, inspect and manage jobd jobs in Redis.
 *
 * DESIGN: a jobd_client_t is one blocking Redis connection (hiredis) plus the
 * key prefix and the script table. Every operation that changes more than one
 * key is one Lua script (schema/redis/), run with EVALSHA and reloaded once on
 * NOSCRIPT. The key layout and the v1 envelope are defined here, once; jobd
 * links this library, so jobctl and jobd never disagree on a key.
 *
 * The library never prints and never exits. Every function returns 0 (or a
 * count) on success and a negative JOBD_E* code on failure; the client keeps
 * a message for the last failure (jobd_client_errmsg). A client is not
 * thread-safe: use one per thread.
 *
 * JSON crosses the boundary as jansson values; each function says whether a
 * json_t it returns is a new reference (the caller decrefs it) or borrowed.
 */
#ifndef JOBD_CLIENT_H
#define JOBD_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes (negative). */
enum {
    JOBD_EINVAL = -1,    /* bad argument: unknown state, priority out of range, ... */
    JOBD_EJSON = -2,     /* malformed JSON (payload, batch line, reply) */
    JOBD_ETOOBIG = -3,   /* payload over the size limit */
    JOBD_ENOTFOUND = -4, /* no such job */
    JOBD_ECONN = -5,     /* Redis unreachable or the connection broke */
    JOBD_ESCHEMA = -6,   /* Redis holds an incompatible jobd layout version */
    JOBD_ESTALE = -7,    /* lease token rejected: the lease was lost */
    JOBD_EREDIS = -8,    /* Redis answered with an error */
    JOBD_ENOMEM = -9,    /* out of memory */
    JOBD_ESTATE = -10,   /* the job is not in a state that allows this */
    JOBD_ETIMEDOUT = -11 /* a wait ran out of time */
};

/* Returns a static description of a JOBD_E* code. */
const char *jobd_strerror(int err);

#define JOBD_ID_LEN 36                 /* UUIDv7, canonical text form */
#define JOBD_PAYLOAD_MAX (1024 * 1024) /* default payload limit, bytes */
/* Largest stored envelope a worker takes: the payload limit plus room for
 * every other field at its longest. A bigger one goes dead unread. */
#define JOBD_ENVELOPE_MAX (JOBD_PAYLOAD_MAX + 8192)
#define JOBD_DEFAULT_PRIORITY 5 /* 0..9, higher runs first */
#define JOBD_DEFAULT_MAX_ATTEMPTS 5
#define JOBD_BATCH_CHUNK 500 /* jobs per enqueue script call */

/* Job states, in the order the contract lists them. */
typedef enum {
    JOBD_QUEUED = 0, /* waiting in the ready set */
    JOBD_SCHEDULED,  /* waiting for run_at (delayed, or a retry's backoff) */
    JOBD_ACTIVE,     /* leased by a worker */
    JOBD_SUCCEEDED,  /* terminal: acked with a result */
    JOBD_DEAD,       /* terminal: out of attempts, or bad input */
    JOBD_CANCELED,   /* terminal: canceled */
    JOBD_NSTATES
} jobd_state_t;

/* Returns "queued", "scheduled", ... or NULL for an out-of-range value. */
const char *jobd_state_name(jobd_state_t s);
/* Returns the state named s, or -1. */
int jobd_state_parse(const char *s);

typedef struct jobd_client jobd_client_t;

typedef struct {
    const char *url;           /* redis://[:password@]host[:port][/db] or
                                  unix:///path.sock[?db=N]; NULL: the default
                                  redis://127.0.0.1:6379/0 */
    const char *password_file; /* read when the URL has no password; NULL:
                                  $JOBD_REDIS_PASSWORD_FILE if set */
    const char *prefix;        /* key prefix; NULL: "jobd" */
    int timeout_ms;            /* connect and command timeout; 0: 5000 */
    size_t payload_max;        /* 0: JOBD_PAYLOAD_MAX */
} jobd_client_opts_t;

/* Connects, checks the layout version (PREFIX:schema) and loads the scripts.
 * On success *out is a new client (free with jobd_client_free). On failure
 * returns JOBD_ECONN, JOBD_ESCHEMA or JOBD_EINVAL (bad URL), *out is NULL and,
 * if errbuf is not NULL, a message is written there. */
int jobd_client_new(const jobd_client_opts_t *opts, jobd_client_t **out, char *errbuf,
                    size_t errlen);
void jobd_client_free(jobd_client_t *c);

/* Message for the last failure on c (borrowed, valid until the next call). */
const char *jobd_client_errmsg(const jobd_client_t *c);
/* The key prefix in use (borrowed). */
const char *jobd_client_prefix(const jobd_client_t *c);

/* ---- submitting ---- */

typedef struct {
    const char *queue;           /* required: [A-Za-z0-9._-]{1,128} */
    const char *type;            /* required: [A-Za-z0-9._:-]{1,128} */
    const char *payload_json;    /* JSON text; NULL means null */
    json_t *payload;             /* or an already parsed value (borrowed); wins */
    int priority;                /* 0..9; -1: JOBD_DEFAULT_PRIORITY */
    int max_attempts;            /* >= 1; 0: JOBD_DEFAULT_MAX_ATTEMPTS */
    int64_t timeout_s;           /* 0: no job timeout (the handler's applies) */
    int64_t run_at_ms;           /* Unix ms; 0: now */
    int64_t delay_ms;            /* used when run_at_ms is 0 */
    const char *idempotency_key; /* NULL: none */
    const char *traceparent;     /* W3C; NULL: none */
    const char *id;              /* NULL: a new UUIDv7 */
    int64_t retry_base_ms;       /* backoff base for this job; 0: the handler's, else jobd's */
    int64_t retry_cap_ms;        /* backoff cap for this job; 0: the handler's, else jobd's */
} jobd_job_spec_t;

/* Sets every field of s to its default (priority -1, the rest 0/NULL). */
void jobd_job_spec_init(jobd_job_spec_t *s);

/* Fills s from one batch line: {"queue","type","payload", ...} with any other
 * envelope field optional. The strings in s point into obj (borrowed: keep obj
 * alive while s is used). Returns 0 or JOBD_EINVAL/JOBD_EJSON with a message
 * in errbuf. */
int jobd_job_spec_from_json(jobd_job_spec_t *s, json_t *obj, char *errbuf, size_t errlen);

/* Checks a spec (names, priority, payload JSON and size, traceparent) without
 * touching Redis. Returns 0 or a JOBD_E* code with a message in errbuf. */
int jobd_job_spec_check(const jobd_job_spec_t *s, size_t payload_max, char *errbuf, size_t errlen);

/* Submits one job. id_out (JOBD_ID_LEN + 1 bytes) receives the job's id, or
 * the first job's id when the idempotency key was seen before (then *created
 * is 0). created may be NULL. Nothing is written to Redis when the spec is
 * invalid. */
int jobd_submit(jobd_client_t *c, const jobd_job_spec_t *spec, char *id_out, int *created);

/* Submits n jobs in pipelined script calls (JOBD_BATCH_CHUNK jobs each).
 * Every spec is checked before anything is sent: one bad spec fails the whole
 * batch with its index in the message and nothing written. ids_out receives n
 * ids in order (n * (JOBD_ID_LEN + 1) bytes, each NUL-terminated). */
int jobd_submit_batch(jobd_client_t *c, const jobd_job_spec_t *specs, size_t n, char *ids_out);

/* ---- named batches ---- */

/* Submits n jobs (any queues) as the batch named name ([A-Za-z0-9._:-],
 * 1..128; a name used before is refused with JOBD_ESTATE). Each job's hash
 * records the batch; each queue keeps its part (counters by state, the
 * ids). When every job of the batch is terminal, jobd enqueues the
 * completion job once, if on_complete_type is set: in on_complete_queue
 * (NULL: the first job's queue), its payload the batch's summary {"batch",
 * "total", "counts": {state: n}, "ids"}. ids_out as for jobd_submit_batch.
 * Idempotency keys are not taken in a named batch (JOBD_EINVAL). */
int jobd_batch_submit(jobd_client_t *c, const char *name, const jobd_job_spec_t *specs, size_t n,
                      const char *on_complete_type, const char *on_complete_queue, char *ids_out);
/* A batch's state, as a new object: name, total, counts (by state name,
 * every state), progress (mean of its jobs' 0..1), done (every job
 * terminal), completion (the completion job's id, or null), queues.
 * JOBD_ENOTFOUND if there is no such batch. */
int jobd_batch_status(jobd_client_t *c, const char *name, json_t **out);

/* ---- inspecting and managing ---- */

/* Finds a job by id. *out receives a new object with the envelope fields and
 * state, attempt, progress, checkpoint, result, error, worker, started_at,
 * finished_at (times as RFC 3339 strings). Returns JOBD_ENOTFOUND if no queue
 * holds it. */
int jobd_status(jobd_client_t *c, const char *id, json_t **out);

/* Cancels a job: queued or scheduled jobs end canceled at once (*was_active
 * 0); an active job gets a flag its worker sees on its next lease extension
 * (*was_active 1). Returns JOBD_ENOTFOUND, or JOBD_ESTATE if it has already
 * finished. */
int jobd_cancel(jobd_client_t *c, const char *id, int *was_active);

/* Lists up to limit jobs of queue in state (-1: every state), as a new array
 * of status objects. Queued jobs come in claim order, the others oldest first. */
int jobd_list(jobd_client_t *c, const char *queue, int state, size_t limit, json_t **out);

/* Per-queue figures, as a new object keyed by queue name; each value holds a
 * count per state name, "oldest_age_s" (age of the oldest queued job, null if
 * none), "counters" (enqueued, claimed, succeeded, failed, dead, ...),
 * "paused" (true or false) and "paused_for_s" (null when not paused). */
int jobd_stats(jobd_client_t *c, json_t **out);

/* Names of the queues that ever received a job, as a new array of strings. */
int jobd_queues(jobd_client_t *c, json_t **out);

/* Puts a dead job back to queued with fresh attempts. JOBD_ESTATE if it is not
 * dead, JOBD_ENOTFOUND if there is no such job. */
int jobd_retry(jobd_client_t *c, const char *id);
/* Puts every dead job of queue back; returns how many (>= 0) or an error. */
int jobd_retry_dead(jobd_client_t *c, const char *queue);

/* Live workers (from the registry jobd keeps), as a new array of objects:
 * id, host, pid, started_at, last_seen, in_flight, concurrency, draining,
 * queues, version, and jobs (one object per job it holds: id, queue, type,
 * attempt, progress, started_at). */
int jobd_workers(jobd_client_t *c, json_t **out);

/* Cron schedules, as the jobd processes that have them publish them: a new
 * array of objects name, cron, tz, queue, type, next (RFC 3339, or null:
 * never), worker (the jobd that published it last), updated_at, and from
 * the schedule's queue last (the last tick recorded, RFC 3339, or null),
 * last_job (its job's id, or null) and skipped (missed ticks not
 * enqueued). Sorted by name. */
int jobd_schedules(jobd_client_t *c, json_t **out);

/* ---- layout migration ---- */

typedef struct {
    int from, to;         /* layout versions; from 0: nothing under the prefix */
    int already;          /* the layout was current: nothing but a clean-up done */
    long queues;          /* queue names copied into the new registry */
    long live_workers;    /* layout 1 workers whose records had not expired */
    long workers_dropped; /* old worker records deleted */
} jobd_migrate_result_t;

/* Moves the Redis layout under opts' prefix forward to this build's
 * (JOBD_REDIS_SCHEMA), on a stopped fleet: it refuses (JOBD_ESTATE) while a
 * worker of the old layout is registered, unless force. Idempotent: a
 * current layout is left as it is (res->already), and a run cut short is
 * finished by the next. Connects without the layout check. Returns 0,
 * JOBD_ESTATE, JOBD_ESCHEMA (a layout it does not know), JOBD_ECONN or
 * JOBD_EINVAL, with a message in errbuf. */
int jobd_migrate(const jobd_client_opts_t *opts, int force, jobd_migrate_result_t *res,
                 char *errbuf, size_t errlen);

/* ---- queue controls (the operator's console) ---- */

/* Pauses queue for every worker at once: no job of it is claimed once this
 * returns; jobs already running run on. *changed (may be NULL) is 0 if it
 * was paused already. jobd_stats shows "paused". */
int jobd_pause(jobd_client_t *c, const char *queue, int *changed);
/* Resumes a paused queue (idle workers are woken). *changed is 0 if it was
 * not paused. */
int jobd_resume(jobd_client_t *c, const char *queue, int *changed);
/* Deletes every job of queue in state (JOBD_QUEUED, JOBD_SCHEDULED,
 * JOBD_SUCCEEDED, JOBD_DEAD or JOBD_CANCELED; never JOBD_ACTIVE: cancel
 * those), with their history and idempotency keys, in slices. Returns how
 * many (>= 0) or an error (JOBD_EINVAL for another state). Jobs entering
 * the state meanwhile may stay. */
int jobd_purge(jobd_client_t *c, const char *queue, int state);
/* Deletes one job (record, history, idempotency key). JOBD_ENOTFOUND, or
 * JOBD_ESTATE if it is active (cancel it first). */
int jobd_delete(jobd_client_t *c, const char *id);
/* The job's last attempts (at most 20), oldest first, as a new array of
 * objects: attempt, worker, started_at, ended_at (RFC 3339), duration_s,
 * outcome ("succeeded", "failed" (a retry follows), "dead", "canceled",
 * "released", "lease_expired"), error (the last 2 KiB, or null).
 * JOBD_ENOTFOUND if no queue holds the job. */
int jobd_history(jobd_client_t *c, const char *id, json_t **out);

/* ---- waiting ---- */

/* Called when a watched job changes: its id, state name, progress 0..1. */
typedef void (*jobd_wait_cb)(void *arg, const char *id, const char *state, double progress);

/* Waits until every job in ids is terminal, without polling: it subscribes
 * to the jobs' event channels (a second connection), then reads their state.
 * cb (may be NULL) runs on every change seen. timeout_ms <= 0 waits forever.
 * Returns 0 when all ended (states_out, if not NULL, gets n state values),
 * JOBD_ETIMEDOUT, JOBD_ENOTFOUND (naming the id), or JOBD_ECONN. */
int jobd_wait(jobd_client_t *c, const char *const *ids, size_t n, int64_t timeout_ms,
              jobd_wait_cb cb, void *arg, jobd_state_t *states_out);

/* ---- worker side (jobd uses its own asynchronous transport for these; the
 * blocking forms serve tests and tools). Leases are fenced: a call with a
 * token that is no longer the job's current one is rejected. ---- */

typedef struct {
    char id[JOBD_ID_LEN + 1];
    char token[48];
    int attempt;        /* 1 on the first run */
    json_t *envelope;   /* new reference; NULL if the stored one is malformed */
    json_t *checkpoint; /* new reference; NULL on a fresh start */
    char *raw_envelope; /* the stored text, malloc'd (for dead-lettering) */
} jobd_claim_t;

/* Frees what a jobd_claim_t owns (not the struct itself). */
void jobd_claim_clear(jobd_claim_t *j);

/* Promotes due scheduled jobs and leases up to max jobs of queue for lease_ms.
 * out must hold max entries; returns how many were claimed (>= 0). Jobs whose
 * record is unusable (no envelope, an envelope over the client's payload
 * limit plus 8 KiB, a malformed id, counters that are no numbers) go dead
 * with the reason instead, and entries with no record are removed
 * (claim.lua). */
int jobd_claim(jobd_client_t *c, const char *queue, const char *worker_id, int64_t lease_ms,
               jobd_claim_t *out, size_t max);

/* Extends one lease. Returns 0, 1 if a cancel was requested, JOBD_ESTALE. */
int jobd_extend(jobd_client_t *c, const char *queue, const char *id, const char *token,
                int64_t lease_ms);
/* Marks the job succeeded with result_json (NULL: no result). JOBD_ESTALE.
 * ack, fail and release are idempotent per token: sent again after a lost
 * reply, each returns what the call that was applied returned. */
int jobd_ack(jobd_client_t *c, const char *queue, const char *id, const char *token,
             const char *result_json);

typedef enum {
    JOBD_FAILED_RETRY = 1, /* scheduled for another attempt */
    JOBD_FAILED_DEAD = 2,  /* out of attempts (or told to die) */
    JOBD_FAILED_CANCELED = 3
} jobd_fail_outcome_t;

/* Fails the attempt: retry after retry_delay_ms if attempts remain, else dead;
 * retry_delay_ms -1 means dead now, -2 canceled. Returns a jobd_fail_outcome_t
 * (> 0) or JOBD_ESTALE. */
int jobd_fail(jobd_client_t *c, const char *queue, const char *id, const char *token,
              const char *error, int64_t retry_delay_ms);
/* Hands the lease back with checkpoint_json (NULL keeps the stored one),
 * attempt not charged. Returns 0, JOBD_FAILED_CANCELED if a cancel was pending,
 * or JOBD_ESTALE. */
int jobd_release(jobd_client_t *c, const char *queue, const char *id, const char *token,
                 const char *checkpoint_json);
/* Stores a checkpoint (NULL: none) and progress (< 0: unchanged). */
int jobd_checkpoint(jobd_client_t *c, const char *queue, const char *id, const char *token,
                    const char *checkpoint_json, double progress);

typedef struct {
    long requeued, dead, canceled;
    long dropped; /* expired leases with no job record behind them, removed */
} jobd_reap_t;

/* Recovers expired leases of queue (attempt charged) and trims expired
 * finished records. Honours a hold jobd's reapers set after an outage
 * (schema/redis/README.md, "Outages"): no lease is reaped during it. */
int jobd_reap(jobd_client_t *c, const char *queue, jobd_reap_t *out);

/* ---- retention (defaults; jobd's config may change them) ---- */
#define JOBD_TTL_SUCCEEDED_MS (24LL * 3600 * 1000)
#define JOBD_TTL_DEAD_MS (7LL * 24 * 3600 * 1000)
#define JOBD_TTL_IDEMPOTENCY_S (24 * 3600)

/* ---- helpers shared by jobctl and jobd ---- */

/* Writes a new UUIDv7 (time-ordered; monotonic within this process) into out,
 * which holds JOBD_ID_LEN + 1 bytes. */
void jobd_id_new(char *out);

/* Parses "250ms", "30s", "5m", "2h", "1d" or a bare number of seconds.
 * Returns milliseconds, or -1 if s is not a duration. */
int64_t jobd_parse_duration_ms(const char *s);

/* Parses an RFC 3339 time ("2026-11-24T10:00:00Z", offsets and fractions
 * allowed). Returns Unix ms, or -1. */
int64_t jobd_parse_rfc3339_ms(const char *s);
/* Formats Unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (>= 32 bytes). */
void jobd_format_rfc3339(int64_t ms, char *out, size_t len);

/* Current wall-clock time in Unix ms. */
int64_t jobd_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
