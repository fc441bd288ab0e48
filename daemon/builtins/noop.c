/* noop.c - succeeds at once with a null result; used by tests and benchmarks. */
#include "builtins.h"

static int run(jobd_job_t *job)
{
    (void)job;
    return JOBD_HANDLER_OK;
}

const builtin_t builtin_noop = {"noop", run, 1};
