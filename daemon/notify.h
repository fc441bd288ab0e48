/* notify.h - jobd's word to systemd (sd_notify, for Type=notify units).
 *
 * Owns the messages to $NOTIFY_SOCKET and the timers that pace them:
 *   READY=1     once, when the daemon says it is ready (Redis answers, the
 *               journal is open: /health/ready answers 200 from then on);
 *   STATUS=...  what the daemon's status callback writes ("running 3 of
 *               10, queues q1,q2"), sent when notify_changed was called and
 *               the text differs from the last one, at most once every
 *               NOTIFY_STATUS_MS (changes in between are merged, the last
 *               one is never lost);
 *   STOPPING=1  once, when the drain begins;
 *   WATCHDOG=1  from a loop timer every WATCHDOG_USEC / 2, when systemd
 *               asks for it for this process (sd_watchdog_enabled: unset
 *               WATCHDOG_PID, or ours): a stuck loop stops it.
 * Guarantees: nothing is sent, and no timer runs, when NOTIFY_SOCKET is
 * unset; the environment is left as it is (handlers never see these
 * variables: their environment is an allow-list, run.c). The protocol
 * itself (abstract sockets, credentials) is libsystemd's sd_notify. Loop
 * thread only. */
#ifndef JOBD_NOTIFY_H
#define JOBD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define NOTIFY_STATUS_MS 1000 /* at most one STATUS= a second */

/* Writes the status text (one line, no "STATUS=") into buf (len bytes). */
typedef void (*notify_status_fn)(void *arg, char *buf, size_t len);

typedef struct {
    uv_loop_t *loop;
    int enabled; /* NOTIFY_SOCKET is set */
    int ready_sent, stopping_sent;
    int failed;           /* a send failed (logged once) */
    uint64_t watchdog_ms; /* the watchdog timer's period; 0: no watchdog */
    uv_timer_t watchdog;  /* WATCHDOG=1 */
    uv_timer_t status;    /* the next STATUS= (rate limit) */
    int64_t status_at;    /* when the last STATUS= went out (loop ms) */
    char last[256];       /* the last STATUS= text sent */
    notify_status_fn status_fn;
    void *arg;
} notify_t;

/* Sets n up on loop (reads NOTIFY_SOCKET and the watchdog settings once);
 * status_fn(arg, ...) writes the status text when one is due. */
void notify_init(notify_t *n, uv_loop_t *loop, notify_status_fn status_fn, void *arg);
/* Starts the watchdog timer if systemd wants one for us. */
void notify_start(notify_t *n);
/* The daemon is ready: READY=1 with the status, once (never after
 * notify_stopping). */
void notify_ready(notify_t *n);
/* Non-zero once READY=1 went out. */
int notify_ready_sent(const notify_t *n);
/* Something the status shows changed: a STATUS= soon (rate limited). */
void notify_changed(notify_t *n);
/* The drain began: STOPPING=1 with the status, once. */
void notify_stopping(notify_t *n);
/* Closes the timers (async, with the loop's other handles). */
void notify_close(notify_t *n);

#endif
