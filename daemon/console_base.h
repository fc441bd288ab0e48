/* console_base.h - what the console's parts share: the console object
 * (console_t), the throughput samples, the helper that runs several Redis
 * commands and waits for all replies (cmulti), keys and JSON answers.
 *
 * DESIGN: console.c (the public face: new, route, close, free, metrics)
 * sits on top of api.c, apijobs.c, actions.c, sse.c and dashboard.c; they
 * all sit on this file and never on console.h, so the arrows run one way.
 * See console.h for what the console guarantees. Loop thread only. */
#ifndef JOBD_CONSOLE_BASE_H
#define JOBD_CONSOLE_BASE_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "admin.h"
#include "config.h"
#include "http.h"
#include "metrics.h"
#include "rq.h"

#define CONSOLE_MAX_QUEUES 64   /* queues with throughput samples; more are listed without */
#define CONSOLE_SAMPLES 72      /* per queue: 6 minutes at one sample per 5 s */
#define CONSOLE_SAMPLE_MS 5000  /* at most one sample per queue this often */
#define CONSOLE_TICK_MS 1000    /* event stream updates */
#define CONSOLE_WATCH_MS 600000 /* keep sampling this long after the last API request */

typedef struct {
    int64_t t_ms;                /* Unix ms */
    long long succeeded, failed; /* the queue's stats counters then */
} console_sample_t;

typedef struct {
    char name[129];
    console_sample_t s[CONSOLE_SAMPLES]; /* a ring, oldest at head when full */
    int n, head;
} console_series_t;

typedef struct {
    long long api_requests;  /* /api/v1 requests answered */
    long long admin_actions; /* write actions carried out */
    long long admin_refused; /* write actions refused (401, 403) */
    long long events_sent;   /* events written to streams */
} console_stats_t;

struct sse_client;

typedef struct console {
    uv_loop_t *loop;
    rq_t *rq;            /* borrowed */
    const config_t *cfg; /* borrowed */
    admin_t admin;
    uv_timer_t tick; /* every CONSOLE_TICK_MS: samples and stream updates */
    int closing;
    uint64_t watched_ms; /* uv_now of the last API request (0: never) */
    int overview_inflight, workers_inflight;
    console_series_t series[CONSOLE_MAX_QUEUES];
    int nseries;
    struct sse_client *clients; /* open event streams (sse.c) */
    int nclients;
    unsigned next_client_serial;
    char *last_queues, *last_workers; /* the last "queues"/"workers" event sent */
    int tick_n;
    console_stats_t stats;
} console_t;

/* ---- shared by the console's parts ---- */

/* Marks the console in use (sampling continues for CONSOLE_WATCH_MS). */
void console_watch(console_t *c);
/* Records a sample of queue's counters (from a stats.lua reply) if the last
 * one is older than CONSOLE_SAMPLE_MS. */
void console_sample(console_t *c, const char *queue, long long succeeded, long long failed);
/* Adds to o the queue's "throughput_per_s" (succeeded per second over the
 * last minute), "error_rate" (failed / (failed + succeeded) over the last 5
 * minutes; null without activity) and "series" ({"t": [...], "succeeded":
 * [...], "failed": [...]}: per-second rates between samples). */
void console_series_json(const console_t *c, const char *queue, json_t *o);

/* A new JSON value for a Redis reply: arrays, integers, strings (null if
 * not UTF-8), nil as null, an error as {"error": text}. */
json_t *console_reply_json(const redisReply *r);

/* Several Redis commands sent at once; done runs once, when every reply
 * (or failure) is in: m->replies holds one value per command, in order
 * (null for a command that failed or could not be sent; m->down is then
 * set). done frees m with cmulti_free. */
typedef struct cmulti cmulti_t;
typedef void (*cmulti_cb)(cmulti_t *m);
struct cmulti {
    console_t *con;
    cmulti_cb done;
    void *ctx;           /* the caller's */
    http_req_t *req;     /* the request being answered, if any (the caller's) */
    char a[256], b[256]; /* the caller's scratch (queue name, id, ...) */
    int pending, n, down;
    json_t *replies;
};
cmulti_t *cmulti_new(console_t *con, cmulti_cb done, void *ctx);
/* Adds a plain command (argv copied). */
void cmulti_cmd(cmulti_t *m, int argc, const char *const argv[]);
/* Adds a script call on queue (args stolen, as rq_script). */
void cmulti_script(cmulti_t *m, proto_script_t s, const char *queue, proto_argv_t *args);
/* Done adding: done runs when the last reply is in (at once if none). */
void cmulti_go(cmulti_t *m);
void cmulti_free(cmulti_t *m);

/* Writes "PREFIX:NAME" / "PREFIX:{queue}:suffix" into out (512 bytes). */
void console_key(const console_t *c, char *out, const char *name);
void console_qkey(const console_t *c, char *out, const char *queue, const char *suffix);

/* Answers req with the JSON value v (stolen) and code. */
void console_respond_json(http_req_t *req, int code, json_t *v);
/* Answers req with {"error": msg} and code. */
void console_respond_error(http_req_t *req, int code, const char *msg);

#endif
