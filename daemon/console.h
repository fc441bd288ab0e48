/* console.h - the operator's console on jobd's HTTP port: the JSON API
 * under /api/v1 (api.c, apijobs.c, actions.c), its live event stream
 * (sse.c), the dashboard's
 * static files at / (dashboard.c), and who may use the write actions
 * (admin.c). This file owns the console's life (new, close, free), its
 * timer, its metrics and the routing from http.c's route callback; the
 * object itself, the throughput samples and the shared helpers are in
 * console_base.h, which every part includes instead of this file.
 *
 * DESIGN: the console reads Redis only through rq (rq_command, rq_script),
 * on the loop, never blocking; every request is answered from its replies
 * (or 503 when Redis is not ready). It keeps no job state of its own. What
 * it keeps is a ring of samples of each queue's stats counters
 * (succeeded, failed), taken at most every CONSOLE_SAMPLE_MS while someone
 * uses the console (an API request in the last CONSOLE_WATCH_MS, or an
 * open event stream): throughput and error rate are differences of those
 * counters, so they cover the whole fleet, not just this jobd. An idle
 * console costs nothing. The console's files are one concern split by
 * size; they share console_t, nobody else reaches into it. Loop thread only.
 *
 *   routes: /            the dashboard (index.html, app.js, style.css)
 *           /api/v1/...  api.c, apijobs.c (GET reads), actions.c (POST
 *                        writes, which need admin.c's token)
 *           /api/v1/events  sse.c (text/event-stream)
 */
#ifndef JOBD_CONSOLE_H
#define JOBD_CONSOLE_H

#include "console_base.h"
#include "http.h"
#include "metrics.h"

/* A new console using rq and cfg (both borrowed, outliving it); reads the
 * admin token (admin.c). Starts its timer. Returns NULL when out of memory. */
console_t *console_new(uv_loop_t *loop, rq_t *rq, const config_t *cfg);
/* http_cbs_t.route: arg is the console. */
void console_route(void *arg, http_req_t *req);
/* Closes the console's timer (the loop runs its close callback); event
 * streams close with the HTTP server. Replies still in flight are answered
 * to requests whose connections are gone. Idempotent. */
void console_close(console_t *c);
/* Frees c (after the loop has run dry). NULL is fine. */
void console_free(console_t *c);
/* Appends the console's metrics (Prometheus text) to b. NULL is fine. */
void console_metrics(const console_t *c, metrics_buf_t *b);

#endif
