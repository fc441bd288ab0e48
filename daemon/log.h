/* log.h - structured logs: one JSON object per line on stdout (or text).
 *
 * Fields: ts, level, msg, and where they apply job_id, queue, type, attempt,
 * trace_id (taken from the job's W3C traceparent). Secrets are never passed
 * here: callers log redis_url_describe(), not the URL. The logger is process
 * wide (like redis's serverLog): set up once by main before the loop starts. */
#ifndef JOBD_LOG_H
#define JOBD_LOG_H

#include <stdarg.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Returns the level named s ("debug", "info", "warn", "error"), or -1. */
int log_level_parse(const char *s);
/* json: 1 for JSON lines, 0 for text. */
void log_setup(log_level_t level, int json);

/* The job fields a line may carry; any may be NULL/0. */
typedef struct {
    const char *job_id, *queue, *type, *traceparent;
    int attempt;
} log_job_t;

void log_msg(log_level_t level, const log_job_t *job, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(...) log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
