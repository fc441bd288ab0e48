/* builtins.h - the table of built-in C handlers.
 *
 * Adding a handler is one new file in daemon/builtins/ defining a
 * builtin_t, and one line in the table in builtins.c. */
#ifndef JOBD_BUILTINS_H
#define JOBD_BUILTINS_H

#include <stddef.h>

#include "jobd/handler.h"

typedef struct {
    const char *name;            /* the job type it serves by default */
    int (*run)(jobd_job_t *job); /* see jobd/handler.h */
    int inline_ok;               /* runs on the loop thread: never blocks */
} builtin_t;

/* Returns the built-in named name, or NULL. */
const builtin_t *builtin_find(const char *name);
/* The number of built-ins, and the i-th (NULL past the end): every one
 * gets its handler_t (handlers.c), however many there are. */
size_t builtin_count(void);
const builtin_t *builtin_at(size_t i);

extern const builtin_t builtin_noop, builtin_sleep, builtin_fail, builtin_index_fts,
    builtin_checkpoint_probe;

#endif
