/* submit_bench.c - measures batch submission through libjobd.
 *
 *   submit_bench URL [N] [QUEUE]
 *
 * Submits N (default 100000) noop jobs with a small payload to QUEUE
 * (default "bench") in one jobd_submit_batch call and prints jobs/s. Built
 * with the tests but not registered with ctest: timing goals live in
 * `make bench`, never in test assertions. Use a private redis-server
 * (tests/harness/redis-fixture.sh start DIR). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jobd/client.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s REDIS_URL [N] [QUEUE]\n", argv[0]);
        return 64;
    }
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
    const char *queue = argc > 3 ? argv[3] : "bench";
    if (n == 0) {
        fprintf(stderr, "N must be at least 1\n");
        return 64;
    }
    char err[512];
    jobd_client_t *c;
    jobd_client_opts_t o = {.url = argv[1], .prefix = "jobd-bench"};
    int rc = jobd_client_new(&o, &c, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "submit_bench: %s\n", err);
        return 69;
    }
    jobd_job_spec_t *specs = calloc(n, sizeof *specs);
    char *ids = malloc(n * (JOBD_ID_LEN + 1));
    if (!specs || !ids) {
        fprintf(stderr, "submit_bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        jobd_job_spec_init(&specs[i]);
        specs[i].queue = queue;
        specs[i].type = "noop";
        specs[i].payload_json = "{\"n\":1}";
    }
    double t0 = now_s();
    rc = jobd_submit_batch(c, specs, n, ids);
    double dt = now_s() - t0;
    if (rc < 0) {
        fprintf(stderr, "submit_bench: %s\n", jobd_client_errmsg(c));
        return 1;
    }
    printf("submitted %zu jobs in %.3f s: %.0f jobs/s\n", n, dt, (double)n / dt);
    free(specs);
    free(ids);
    jobd_client_free(c);
    return 0;
}
