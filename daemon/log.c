/* log.c - see log.h. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jobd/client.h"
#include "log.h"

static struct {
    log_level_t level;
    int json;
} g = {LOG_INFO, 1};

static const char *const names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0) return i;
    if (s && strcmp(s, "warning") == 0) return LOG_WARN;
    return -1;
}

void log_setup(log_level_t level, int json)
{
    g.level = level;
    g.json = json;
}

/* Replaces bytes that are not valid UTF-8 with '?', in place, so a handler's
 * garbage in a message never costs us the log line. */
static void sanitize_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void log_msg(log_level_t level, const log_job_t *job, const char *fmt, ...)
{
    if (level < g.level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sanitize_utf8(msg);
    char ts[40];
    jobd_format_rfc3339(jobd_now_ms(), ts, sizeof ts);
    char trace[33] = "";
    if (job && job->traceparent && strlen(job->traceparent) >= 35)
        snprintf(trace, sizeof trace, "%.32s", job->traceparent + 3);
    if (!g.json) {
        if (job && job->job_id)
            printf("%s %-5s %s [job=%s queue=%s type=%s attempt=%d]\n", ts, names[level], msg,
                   job->job_id, job->queue ? job->queue : "-", job->type ? job->type : "-",
                   job->attempt);
        else
            printf("%s %-5s %s\n", ts, names[level], msg);
        fflush(stdout);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", names[level], "msg", msg);
    if (!o) return;
    if (job) {
        if (job->job_id) json_object_set_new(o, "job_id", json_string(job->job_id));
        if (job->queue) json_object_set_new(o, "queue", json_string(job->queue));
        if (job->type) json_object_set_new(o, "type", json_string(job->type));
        if (job->attempt) json_object_set_new(o, "attempt", json_integer(job->attempt));
        if (trace[0]) json_object_set_new(o, "trace_id", json_string(trace));
    }
    /* Invalid UTF-8 in msg (a handler's garbage) makes json_string fail;
     * fall back to an escaped form rather than dropping the line. */
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (line) {
        puts(line);
        free(line);
    } else {
        printf("{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"(unprintable message)\"}\n", ts,
               names[level]);
    }
    fflush(stdout);
    json_decref(o);
}
