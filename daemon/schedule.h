/* schedule.h - cron schedules: every jobd that has a schedule enqueues its
 * ticks, and each tick makes one job in all.
 *
 * DESIGN: no leader. Each schedule (config "schedules") has a cron
 * expression and a zone (cron.h, tz.h); at each tick every jobd with the
 * schedule runs tick.lua on the schedule's queue, which records the last
 * tick per schedule in PREFIX:{QUEUE}:schedules and enqueues only if the
 * tick is newer than the one recorded: one job per tick, whatever the
 * number of replicas, atomically on the queue's slot. When Redis becomes
 * ready (start, reconnect), each schedule looks at its latest tick: a tick
 * missed while no jobd ran is enqueued once if it is at most
 * schedule_catch_up old; older ones (and the ticks between the recorded one
 * and it) are logged and counted in NAME|skipped, not enqueued. A new
 * schedule starts from its next tick. One timer, armed for the soonest
 * tick (no scan on a fixed beat). Each jobd also publishes its schedules,
 * with their next tick, in the global hash PREFIX:schedules (jobctl
 * schedules reads it).
 *
 * TEST ONLY: JOBD_TEST_CLOCK_FILE names a file holding the Unix ms the
 * schedules take as "now" (re-read every 20 ms), so tests move time across
 * ticks and DST changes without waiting. Never set it in production.
 * Loop thread only. */
#ifndef JOBD_SCHEDULE_H
#define JOBD_SCHEDULE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "cron.h"
#include "rq.h"
#include "tz.h"

typedef struct {
    char name[129], queue[129], type[129];
    char cron_text[256];
    json_t *payload; /* new reference (JSON null if none) */
    int priority;    /* -1: the default */
    int max_attempts;
    int64_t timeout_s;
    cron_t cron;
    tz_t tz;
    int64_t next_s; /* the next tick (Unix s) this jobd will fire; -1: none */
} schedule_entry_t;

typedef struct {
    uv_loop_t *loop;
    const config_t *cfg;
    rq_t *rq; /* borrowed */
    schedule_entry_t *e;
    size_t n;
    uv_timer_t timer;
    int timer_open;
    char clock_file[512]; /* test-only fake clock; "" in production */
} schedule_t;

/* Checks cfg->schedules (names, cron expressions, zones, the job each
 * makes) without keeping anything. Returns 0, or -1 with a message naming
 * the schedule and key. */
int schedule_check(const config_t *cfg, char *err, size_t errlen);
/* Sets s up (no I/O on the loop yet). Returns 0 or -1 with a message. */
int schedule_init(schedule_t *s, uv_loop_t *loop, const config_t *cfg, rq_t *rq, char *err,
                  size_t errlen);
/* Redis is ready (start or reconnect): catch up, publish, arm the timer. */
void schedule_start(schedule_t *s);
/* Closes the timer (async). */
void schedule_close(schedule_t *s);
/* Frees the entries; after the loop ran dry. */
void schedule_free(schedule_t *s);

#endif
