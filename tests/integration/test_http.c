/* test_http.c - jobd's HTTP endpoints, black box: /health/live,
 * /health/ready (200, or 503 with reasons while Redis is away or jobd
 * drains) and /metrics (the contract's metric names). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

/* GET path on 127.0.0.1:port. Returns the status code (-1: no answer) and
 * the body in *body (malloc'd). */
static int http_get(int port, const char *path, char **body)
{
    httpc_resp_t r;
    int code = httpc_request(port, "GET", path, NULL, NULL, test_ms(10000), &r);
    *body = strdup(r.body ? r.body : "");
    httpc_resp_free(&r);
    return code;
}

/* Polls until GET path answers want (deadline-bound). */
static void wait_code(int port, const char *path, int want, char **body)
{
    int64_t deadline = test_now_ms() + test_ms(15000);
    for (;;) {
        int code = http_get(port, path, body);
        if (code == want) return;
        if (test_now_ms() >= deadline)
            test_fail(__FILE__, __LINE__, "GET %s: %d, want %d (%s)", path, code, want,
                      *body ? *body : "");
        free(*body);
        test_pause_ms(20);
    }
}

TEST(http_health_and_metrics)
{
    char dir[600], url[256], log[700], state[700];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    snprintf(log, sizeof log, "%s/jobd.log", test_tmpdir());
    snprintf(state, sizeof state, "%s/state", test_tmpdir());
    test_redis_start(dir, url, NULL);

    /* A job to count, and one long job to hold jobd in its drain. */
    jobd_client_t *c = test_client_at(url);
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "hq";
    s.type = "noop";
    char id[JOBD_ID_LEN + 1];
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
    jobd_client_free(c);

    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          url,
                          "--prefix",
                          test_prefix(),
                          "--queues",
                          "hq",
                          "--state-dir",
                          state,
                          "--http",
                          "127.0.0.1:0",
                          "--drain-timeout",
                          "30",
                          NULL};
    pid_t pid = test_spawn(argv, NULL, log);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    char *body;
    ASSERT_EQ(http_get(port, "/health/live", &body), 200);
    free(body);
    wait_code(port, "/health/ready", 200, &body);
    free(body);
    ASSERT_EQ(http_get(port, "/nope", &body), 404);
    free(body);

    /* The job ran: the metrics say so, with every name the contract lists. */
    int64_t deadline = test_now_ms() + test_ms(10000);
    for (;;) {
        ASSERT_EQ(http_get(port, "/metrics", &body), 200);
        if (strstr(body,
                   "jobd_jobs_finished_total{queue=\"hq\",type=\"noop\",outcome=\"succeeded\"} 1"))
            break;
        ASSERT(test_now_ms() < deadline);
        free(body);
        test_pause_ms(20);
    }
    static const char *const names[] = {
        "jobd_jobs_claimed_total 1",
        "jobd_jobs_in_flight 0",
        "jobd_job_duration_seconds_bucket",
        "jobd_job_duration_seconds_count{queue=\"hq\",type=\"noop\"} 1",
        "jobd_checkpoints_total",
        "jobd_lease_lost_total 0",
        "jobd_redis_up 1",
        "jobd_draining 0",
        "jobd_ready 1",
        "# TYPE jobd_queue_depth gauge"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ASSERT_CONTAINS(body, names[i]);
    free(body);

    /* Redis away: alive, not ready, and the body says why. */
    test_redis_stop(dir);
    wait_code(port, "/health/ready", 503, &body);
    ASSERT_CONTAINS(body, "redis unreachable");
    free(body);
    ASSERT_EQ(http_get(port, "/health/live", &body), 200);
    free(body);
    ASSERT_EQ(http_get(port, "/metrics", &body), 200);
    ASSERT_CONTAINS(body, "jobd_redis_up 0");
    ASSERT_CONTAINS(body, "jobd_ready 0");
    free(body);

    /* Back again: ready again. */
    test_redis_start(dir, url, NULL);
    wait_code(port, "/health/ready", 200, &body);
    free(body);

    /* Draining: not ready at once (a long job keeps jobd in the drain). */
    c = test_client_at(url);
    s.type = "sleep";
    s.payload_json = "{\"ms\":60000}";
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
    deadline = test_now_ms() + test_ms(10000);
    for (;;) { /* wait until the sleep job is active */
        json_t *st = NULL;
        ASSERT_EQ(jobd_status(c, id, &st), 0);
        int active = strcmp(json_string_value(json_object_get(st, "state")), "active") == 0;
        json_decref(st);
        if (active) break;
        ASSERT(test_now_ms() < deadline);
        test_pause_ms(20);
    }
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    wait_code(port, "/health/ready", 503, &body);
    ASSERT_CONTAINS(body, "draining");
    free(body);
    ASSERT_EQ(http_get(port, "/metrics", &body), 200);
    ASSERT_CONTAINS(body, "jobd_draining 1");
    free(body);
    ASSERT_EQ(kill(pid, SIGTERM), 0); /* the second signal ends the wait */
    ASSERT_EQ(test_waitpid(pid, test_ms(20000)), 0);
    jobd_client_free(c);
    test_redis_stop(dir);
}
