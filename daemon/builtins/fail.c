/* fail.c - fails every attempt with {"message": "..."}; for tests of
 * retries and dead-lettering. */
#include "builtins.h"

static int run(jobd_job_t *job)
{
    json_t *m = json_object_get(jobd_job_payload(job), "message");
    jobd_job_set_error(job, json_is_string(m) ? json_string_value(m) : "failed on purpose");
    return JOBD_HANDLER_FAILED;
}

const builtin_t builtin_fail = {"fail", run, 1};
