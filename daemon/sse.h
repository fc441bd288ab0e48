/* sse.h - the console's live updates: GET /api/v1/events as Server-Sent
 * Events (text/event-stream).
 *
 *   event: queues    the /api/v1/queues array, when it changed
 *   event: workers   the /api/v1/workers array, when it changed
 *   event: job       with ?queue=Q&job=ID: that job's live fields (state,
 *                    progress, attempt, worker, error, checkpoint, result,
 *                    history length), when they changed
 *   : ping           every 15 s, so proxies and dead peers are noticed
 *
 * DESIGN: by sampling, not pub/sub: while a stream is open the console
 * reads the figures from Redis once a second (one stats.lua per queue, the
 * registry, one HMGET per watched job) and sends what changed. The job
 * watch channels would need watch.lua's flag on every viewed job and a
 * subscription per job on rq's pub/sub connection, which subscribes for
 * good (no unsubscribe) and is shared with the worker's wake-ups; a one
 * second sample is what a person watching a page needs, and costs nothing
 * while nobody watches. Streams have their own cap and no answer deadline
 * (http.h); a stream that falls behind is closed by http.c. Loop thread
 * only. */
#ifndef JOBD_SSE_H
#define JOBD_SSE_H

#include "console_base.h"

/* Turns req into an event stream (or answers 400/405/503). */
void sse_open(console_t *c, http_req_t *req);
/* Reads what changed and sends it (the console's timer, while streams are
 * open). */
void sse_tick(console_t *c);

#endif
