/* sleep.c - sleeps {"ms": N} milliseconds (default 1000), stopping promptly
 * when asked: it then checkpoints the time already slept and returns
 * STOPPED, so a resumed run sleeps only what is left. */
#include "builtins.h"

static int run(jobd_job_t *job)
{
    json_t *ms = json_object_get(jobd_job_payload(job), "ms");
    long total = json_is_integer(ms) ? (long)json_integer_value(ms) : 1000;
    json_t *resume = jobd_job_resume(job);
    long done = json_is_integer(json_object_get(resume, "slept_ms"))
                    ? (long)json_integer_value(json_object_get(resume, "slept_ms"))
                    : 0;
    /* Sleep in slices so progress moves and a stop is seen within 100 ms. */
    while (done < total) {
        long slice = total - done < 100 ? total - done : 100;
        if (jobd_job_sleep(job, slice)) {
            json_t *ck = json_pack("{s:i}", "slept_ms", (json_int_t)done);
            jobd_job_checkpoint(job, ck);
            json_decref(ck);
            return JOBD_HANDLER_STOPPED;
        }
        done += slice;
        jobd_job_progress(job, (double)done / (double)total);
    }
    jobd_job_set_result(job, json_pack("{s:i}", "slept_ms", (json_int_t)total));
    return JOBD_HANDLER_OK;
}

const builtin_t builtin_sleep = {"sleep", run, 0};
