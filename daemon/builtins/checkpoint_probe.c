/* checkpoint_probe.c - the built-in `checkpoint.probe`: measures how long a
 * checkpoint takes to become durable, from inside a handler.
 *
 * Payload: {"count": N (default 1000), "interval_ms": M (default 0)}.
 * It calls jobd_job_checkpoint N times (each returns once the journal has
 * committed it) and times every call. Result: {"count", "p50_us", "p99_us",
 * "max_us", "per_s"}. Used by `make bench`; harmless elsewhere. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "builtins.h"
#include "num.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(jobd_job_t *job)
{
    json_t *p = jobd_job_payload(job);
    json_t *c = json_object_get(p, "count"), *iv = json_object_get(p, "interval_ms");
    /* count sizes an allocation: 2^61 of them would wrap its size to 0. */
    int64_t n = 1000, interval = 0;
    char err[256];
    if ((c && num_json_int(c, "count", 1, 10000000, &n, err, sizeof err) < 0) ||
        (iv && num_json_int(iv, "interval_ms", 0, 3600000, &interval, err, sizeof err) < 0)) {
        jobd_job_set_error(job, err);
        return JOBD_HANDLER_FAILED;
    }
    double *lat = malloc((size_t)n * sizeof *lat);
    if (!lat) return JOBD_HANDLER_FAILED;
    double start = now_us();
    int64_t done = 0;
    for (; done < n && !jobd_job_should_stop(job); done++) {
        json_t *ck = json_pack("{s:i}", "i", (json_int_t)done);
        double t0 = now_us();
        int rc = jobd_job_checkpoint(job, ck);
        lat[done] = now_us() - t0;
        json_decref(ck);
        if (rc < 0) break;
        if (interval > 0 && jobd_job_sleep(job, interval)) break;
    }
    double elapsed = (now_us() - start) / 1e6;
    qsort(lat, (size_t)done, sizeof *lat, cmp);
    if (done > 0)
        jobd_job_set_result(job, json_pack("{s:i, s:f, s:f, s:f, s:f}", "count", (json_int_t)done,
                                           "p50_us", lat[done / 2], "p99_us",
                                           lat[(done * 99) / 100], "max_us", lat[done - 1], "per_s",
                                           elapsed > 0 ? (double)done / elapsed : 0));
    free(lat);
    return done == n ? JOBD_HANDLER_OK : JOBD_HANDLER_STOPPED;
}

const builtin_t builtin_checkpoint_probe = {"checkpoint.probe", run, 0};
