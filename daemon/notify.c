/* notify.c - see notify.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "notify.h"

/* Sends msg; a failure is logged once (systemd then times the unit out or
 * kills it: the log says why). */
static void say(notify_t *n, const char *msg)
{
    int rc = sd_notify(0, msg);
    if (rc < 0 && !n->failed) {
        n->failed = 1;
        log_warn("sd_notify to $NOTIFY_SOCKET failed: %s", strerror(-rc));
    }
}

/* Sends head ("READY=1", "STOPPING=1" or NULL) with the current status. */
static void send_status(notify_t *n, const char *head)
{
    char text[sizeof n->last], msg[sizeof n->last + 32];
    text[0] = '\0';
    n->status_fn(n->arg, text, sizeof text);
    if (!head && strcmp(text, n->last) == 0) return;
    snprintf(msg, sizeof msg, "%s%sSTATUS=%s", head ? head : "", head ? "\n" : "", text);
    say(n, msg);
    memcpy(n->last, text, sizeof text);
    n->status_at = (int64_t)uv_now(n->loop);
}

static void on_watchdog(uv_timer_t *t)
{
    say(t->data, "WATCHDOG=1");
}

static void on_status(uv_timer_t *t)
{
    send_status(t->data, NULL);
}

void notify_init(notify_t *n, uv_loop_t *loop, notify_status_fn status_fn, void *arg)
{
    memset(n, 0, sizeof *n);
    n->loop = loop;
    n->status_fn = status_fn;
    n->arg = arg;
    const char *sock = getenv("NOTIFY_SOCKET");
    n->enabled = sock && *sock;
    if (!n->enabled) return;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
        n->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
    uv_timer_init(loop, &n->watchdog);
    uv_timer_init(loop, &n->status);
    n->watchdog.data = n->status.data = n;
}

void notify_start(notify_t *n)
{
    if (!n->enabled) return;
    if (n->watchdog_ms) {
        log_info("systemd watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)n->watchdog_ms);
        uv_timer_start(&n->watchdog, on_watchdog, n->watchdog_ms, n->watchdog_ms);
    }
}

void notify_ready(notify_t *n)
{
    if (!n->enabled || n->ready_sent || n->stopping_sent) return;
    n->ready_sent = 1;
    send_status(n, "READY=1");
}

int notify_ready_sent(const notify_t *n)
{
    return n->ready_sent;
}

void notify_changed(notify_t *n)
{
    if (!n->enabled || uv_is_active((uv_handle_t *)&n->status) ||
        uv_is_closing((uv_handle_t *)&n->status))
        return;
    int64_t wait = n->status_at + NOTIFY_STATUS_MS - (int64_t)uv_now(n->loop);
    uv_timer_start(&n->status, on_status, wait > 0 ? (uint64_t)wait : 0, 0);
}

void notify_stopping(notify_t *n)
{
    if (!n->enabled || n->stopping_sent) return;
    n->stopping_sent = 1;
    send_status(n, "STOPPING=1");
}

void notify_close(notify_t *n)
{
    if (!n->enabled || uv_is_closing((uv_handle_t *)&n->status)) return;
    uv_close((uv_handle_t *)&n->watchdog, NULL);
    uv_close((uv_handle_t *)&n->status, NULL);
}
