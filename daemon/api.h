/* api.h - the console's JSON API under /api/v1 (read-only unless
 * authorised; see admin.h). Every answer is JSON; errors are
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

#include "console.h"

/* Answers a request under /api/v1 (not /api/v1/events). */
void api_route(console_t *c, http_req_t *req);

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

/* Whether s is a queue name / job id the key layout allows. Pure. */
int api_queue_ok(const char *s);
int api_id_ok(const char *s);

#endif
