/* test_backoff.c - a job's own retry backoff beats the daemon's (issue
 * "worker loop": base, cap and max_attempts from the job, else the handler
 * config, else defaults). Black box: the jobd binary, real Redis. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

static char *job_state(jobd_client_t *c, const char *id)
{
    json_t *st = NULL;
    if (jobd_status(c, id, &st) < 0) return NULL;
    char *s = strdup(json_string_value(json_object_get(st, "state")));
    json_decref(st);
    return s;
}

TEST(backoff_job_setting_beats_daemon_default)
{
    jobd_client_t *c = test_client();
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = "bq";
    s.type = "fail";
    s.payload_json = "{\"message\":\"always\"}";
    s.max_attempts = 2;
    s.retry_base_ms = 100; /* the job asks for 100 ms ... */
    s.retry_cap_ms = 100;
    char id[JOBD_ID_LEN + 1];
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);

    char log[600], state[600];
    snprintf(log, sizeof log, "%s/jobd.log", test_tmpdir());
    snprintf(state, sizeof state, "%s/state", test_tmpdir());
    /* ... while jobd's own backoff is an hour: a retry within seconds can
     * only come from the job's setting. */
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          test_redis_url(),
                          "--prefix",
                          test_prefix(),
                          "--queues",
                          "bq",
                          "--state-dir",
                          state,
                          "--retry-base",
                          "1h",
                          "--retry-cap",
                          "1h",
                          NULL};
    pid_t pid = test_spawn(argv, NULL, log);
    int64_t deadline = test_now_ms() + test_ms(15000);
    char *st = NULL;
    for (;;) {
        free(st);
        st = job_state(c, id);
        if (st && strcmp(st, "dead") == 0) break;
        if (test_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            test_fail(__FILE__, __LINE__, "job still %s: its own 100 ms backoff was ignored",
                      st ? st : "(missing)");
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(st);
    json_t *js = NULL;
    ASSERT_EQ(jobd_status(c, id, &js), 0);
    ASSERT_EQ(json_integer_value(json_object_get(js, "attempt")), 2);
    ASSERT_DBL_NEAR(json_number_value(json_object_get(js, "retry_base_s")), 0.1, 1e-9);
    json_decref(js);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EQ(test_waitpid(pid, test_ms(15000)), 0);
    jobd_client_free(c);
}
