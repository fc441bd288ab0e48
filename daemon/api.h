/* api.h - the console's JSON API under /api/v1 (read-only unless
 * authorised; see admin.h). console.c routes the paths below; this file
 * answers info, queues and workers and holds the helpers apijobs.c (a
 * queue's jobs, one job) and actions.c (the write actions) share. Every answer is JSON; errors are
 * {"error": "..."} with 400 (bad name, state or number), 401/403 (writes
 * without the token), 404, 405, 409 (the job is not in a state that allows
 * it) or 503 (Redis not ready).
 *
 *   GET  /api/v1/info                      version, worker, writable (and why not)
 *   GET  /api/v1/queues                    every queue: counts by state, oldest age,
 *                                          paused, counters, throughput, error rate,
 *                                          sparkline series
 *   GET  /api/v1/queues/Q                  one queue, the same fields
 *   GET  /api/v1/queues/Q/jobs?state=S&offset=N&limit=M&q=TEXT
 *                                          jobs of Q in state S (default queued;
 *                                          claim order, terminal states newest
 *                                          first), or those whose id or
 *                                          idempotency key is TEXT; limit <= 100
 *   GET  /api/v1/queues/Q/jobs/ID          one job: envelope, state, progress,
 *                                          checkpoint, result, error, history
 *   GET  /api/v1/jobs/ID                   the same, found in whichever queue holds it
 *   GET  /api/v1/workers                   live workers: in-flight jobs with
 *                                          progress, draining, version
 *   POST /api/v1/queues/Q/pause | resume
 *   POST /api/v1/queues/Q/purge            body {"state":"dead"} (or ?state=)
 *   POST /api/v1/queues/Q/retry-dead
 *   POST /api/v1/queues/Q/jobs/ID/retry | cancel | delete   (DELETE on the job too)
 *
 * Write actions run the same scripts as jobctl and are logged with what,
 * the result, the token id and the client's address. */
#ifndef JOBD_API_H
#define JOBD_API_H

#include "console_base.h"

#define API_QUEUES_LISTED 500 /* queue names read from the registry, at most */

/* Called with a new JSON value, or NULL when Redis could not answer. */
typedef void (*api_json_cb)(console_t *c, json_t *v, void *arg);

/* Every queue's figures, as a new array sorted by name (records the
 * throughput samples on the way); queue non-NULL: that queue only. */
void api_fetch_overview(console_t *c, const char *queue, api_json_cb cb, void *arg);
/* The worker registry, as a new array. */
void api_fetch_workers(console_t *c, api_json_cb cb, void *arg);
/* A job's live fields (state, progress, attempt, worker, error,
 * checkpoint, result, history length) as a new object; {"state": null} if
 * there is no such job. */
void api_fetch_job_brief(console_t *c, const char *queue, const char *id, api_json_cb cb,
                         void *arg);

/* GET /api/v1/info: version, worker, prefix, writable (and why not). */
void api_info(console_t *c, http_req_t *req);
/* api_json_cb answering the request (arg) with api_fetch_overview's
 * array: {"queues": [...]} for /api/v1/queues, the queue's object (or 404)
 * for /api/v1/queues/Q; 503 without Redis. */
void api_on_overview(console_t *c, json_t *v, void *arg);
/* api_json_cb answering the request (arg) with {"workers": [...]}. */
void api_on_workers(console_t *c, json_t *v, void *arg);

/* Whether s is a queue name / job id the key layout allows. Pure. */
int api_queue_ok(const char *s);
int api_id_ok(const char *s);

/* ---- helpers shared by apijobs.c and actions.c ---- */

/* The string at a[i], or "" (never NULL). */
const char *api_jstr(const json_t *a, size_t i);
/* An integer or a decimal string as a number (0 otherwise). */
long long api_jint(const json_t *v);
/* A Unix ms text as an RFC 3339 string, or null (empty, 0 or below). */
json_t *api_time_json(const char *ms);
/* A stored JSON text as a value (or as a string if it is not JSON; null if
 * empty); over max bytes (max > 0): {"truncated": true, "bytes": n}. */
json_t *api_json_text(const char *s, size_t len, size_t max);
/* qsort comparator of char * elements. */
int api_cmp_str(const void *a, const void *b);
/* If m's Redis was down: answers m->req 503 (if any) and returns 1. */
int api_down(cmulti_t *m);

#endif
