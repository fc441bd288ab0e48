/* handlers.h - the handlers file: job type -> how it runs.
 *
 *   {"index.docs": {"exec": ["/usr/local/bin/index-docs", "--fast"],
 *                   "timeout_s": 3600, "max_attempts": 10,
 *                   "retry_base_s": 2, "retry_cap_s": 600,
 *                   "resources": {"embedding-api": 1}},
 *    "quick":      {"builtin": "sleep", "timeout_s": 5},
 *    "embed":      {"exec": ["/usr/local/bin/embed"], "mode": "persistent",
 *                   "processes": 4, "max_jobs": 1000, "max_rss_mb": 2048,
 *                   "start_timeout_s": 120}}
 *
 * "mode": "persistent" (exec handlers only; protocol v2, pool.h) keeps
 * "processes" processes warm (default: the type's share of --concurrency,
 * handlers_persistent_processes) and sends each one job at a time; a
 * process is recycled after "max_jobs" jobs or once its RSS passes
 * "max_rss_mb" (0: never), and must say it is ready within
 * "start_timeout_s" (default 60). The pool keys are refused without the
 * mode, and every number is range-checked.
 *
 * Built-ins (noop, sleep, fail, ...) serve their own type names unless the
 * file maps that type elsewhere. The command comes from this file only,
 * never from a job, and runs with execve (no shell). */
#ifndef JOBD_HANDLERS_H
#define JOBD_HANDLERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "builtins/builtins.h"

typedef struct {
    char *type;
    char **argv;                         /* exec handler: NULL-terminated; NULL for a built-in */
    const builtin_t *builtin;            /* built-in handler, or NULL */
    int64_t timeout_ms;                  /* 0: none */
    int max_attempts;                    /* 0: the job's */
    int64_t retry_base_ms, retry_cap_ms; /* 0: the daemon's */
    json_t *resources;                   /* {"name": units} or NULL; new reference */
    /* "mode": "persistent" (protocol v2): the pool's settings. */
    int persistent;
    int processes;            /* 0: the type's share of --concurrency */
    int64_t max_jobs;         /* recycle after this many jobs; 0: never */
    int64_t max_rss_mb;       /* recycle past this RSS; 0: never */
    int64_t start_timeout_ms; /* from spawn to the ready line */
} handler_t;

#define HANDLER_START_TIMEOUT_MS 60000 /* default start_timeout_s: 60 */
#define HANDLER_PROCESSES_MAX 1024

typedef struct {
    handler_t *items; /* from the file */
    size_t n;
    handler_t *builtins; /* one per built-in, for its own name */
    size_t nbuiltins;
} handlers_t;

/* Loads path (NULL: built-ins only). Returns 0, or -1 with a message naming
 * the type and key at fault. An exec path must exist and be executable. */
int handlers_load(handlers_t *h, const char *path, char *err, size_t errlen);
/* Checks every handler's "resources" against the config's limits (an object
 * {"name": limit}, may be NULL): each name must have a limit, and the units
 * must be integers in 1..limit. Returns 0, or -1 with a message. */
int handlers_check_resources(const handlers_t *h, json_t *limits, char *err, size_t errlen);
/* The number of processes of a persistent handler: its "processes", else
 * its share of concurrency (concurrency divided among the persistent
 * handlers, rounded up, at least 1). */
int handlers_persistent_processes(const handlers_t *h, const handler_t *one, int concurrency);
/* Returns the handler for type (borrowed), or NULL if none: unknown type. */
const handler_t *handlers_find(const handlers_t *h, const char *type);
void handlers_free(handlers_t *h);

#endif
