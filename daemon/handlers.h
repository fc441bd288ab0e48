/* handlers.h - the handlers file: job type -> how it runs.
 *
 *   {"index.docs": {"exec": ["/usr/local/bin/index-docs", "--fast"],
 *                   "timeout_s": 3600, "max_attempts": 10,
 *                   "retry_base_s": 2, "retry_cap_s": 600,
 *                   "resources": {"embedding-api": 1}},
 *    "quick":      {"builtin": "sleep", "timeout_s": 5}}
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
} handler_t;

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
/* Returns the handler for type (borrowed), or NULL if none: unknown type. */
const handler_t *handlers_find(const handlers_t *h, const char *type);
void handlers_free(handlers_t *h);

#endif
