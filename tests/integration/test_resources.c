/* test_resources.c - cluster-wide resource limits, black box (CONTRACT,
 * Handlers: "resources" names units a job holds while it runs; the limits
 * live in the config file). Two jobd processes share a limit of 2 units;
 * the exec handler records START/END with a monotonic clock and a sweep
 * checks the limit held across both workers. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static const char *write_config(const char *name, const char *json)
{
    const char *path = test_tmp_path(name);
    test_write_file(path, json);
    return path;
}

static pid_t start_worker(const char *cfg, const char *handlers, const char *id, const char *log)
{
    const char *argv[] = {
        test_env("JOBD_BIN"), "--config",    cfg,          "--redis", test_redis_url(),
        "--prefix",           test_prefix(), "--handlers", handlers,  "--state-dir",
        test_tmp_path(id),    "--worker-id", id,           "--http",  "127.0.0.1:0",
        "--concurrency",      "4",           "--once",     NULL};
    pid_t pid = test_spawn(argv, NULL, log);
    test_track(pid);
    return pid;
}

TEST(resources_limit_holds_across_workers)
{
    enum { N = 16 };
    const char *rec = test_tmp_path("record.log");
    char handlers_json[2048];
    snprintf(handlers_json, sizeof handlers_json,
             "{\"t.res\": {\"exec\": [\"%s\"], \"resources\": {\"api\": 1}}}",
             test_helper("test_handler"));
    const char *handlers = write_config("handlers.json", handlers_json);
    const char *cfg =
        write_config("config.json", "{\"queues\": \"rq\", \"resources\": {\"api\": 2}}");

    jobd_client_t *c = test_client();
    char payload[1024], ids[N][JOBD_ID_LEN + 1];
    snprintf(payload, sizeof payload, "{\"mode\":\"record\",\"ms\":60,\"log\":\"%s\"}", rec);
    for (int i = 0; i < N; i++)
        test_submit(c, "rq", "t.res", payload, 0, 0, ids[i]);

    const char *log_a = test_tmp_path("a.log"), *log_b = test_tmp_path("b.log");
    pid_t a = start_worker(cfg, handlers, "wa", log_a);
    pid_t b = start_worker(cfg, handlers, "wb", log_b);
    ASSERT_EXIT(a, test_ms(120000), log_a, 0);
    ASSERT_EXIT(b, test_ms(120000), log_b, 0);
    ASSERT_EQ(test_zcard("rq", "succeeded"), N);

    /* Sweep over the recorded runs of both workers. */
    char *s = test_read_file(rec);
    ASSERT(s != NULL);
    long long ns[4 * N];
    int delta[4 * N], n = 0;
    for (char *line = strtok(s, "\n"); line && n < 4 * N; line = strtok(NULL, "\n")) {
        char kind[8], id[64];
        long long t;
        if (sscanf(line, "%7s %63s %lld", kind, id, &t) != 3) continue;
        ns[n] = t;
        delta[n] = strcmp(kind, "START") == 0 ? 1 : -1;
        n++;
    }
    free(s);
    ASSERT_EQ(n, 2 * N);
    /* Sort by time (ENDs first on ties): insertion sort, n is small. */
    for (int i = 1; i < n; i++)
        for (int k = i;
             k > 0 && (ns[k] < ns[k - 1] || (ns[k] == ns[k - 1] && delta[k] < delta[k - 1])); k--) {
            long long tn = ns[k];
            ns[k] = ns[k - 1];
            ns[k - 1] = tn;
            int td = delta[k];
            delta[k] = delta[k - 1];
            delta[k - 1] = td;
        }
    int now = 0, peak = 0;
    for (int i = 0; i < n; i++) {
        now += delta[i];
        if (now > peak) peak = now;
    }
    ASSERT_LE(peak, 2); /* the limit, across both workers (8 slots in all) */
    ASSERT_EQ(peak, 2); /* and it was used */

    /* Every unit was given back. */
    char key[512];
    snprintf(key, sizeof key, "%s:res:{resources}:api", test_prefix());
    redisReply *r = test_rcmd("ZCARD %s", key);
    ASSERT(r && r->type == REDIS_REPLY_INTEGER);
    ASSERT_EQ(r->integer, 0);
    freeReplyObject(r);
    jobd_client_free(c);
}

TEST(resources_unlimited_name_is_a_config_error)
{
    const char *handlers = write_config(
        "handlers.json", "{\"t\": {\"builtin\": \"noop\", \"resources\": {\"gpu\": 1}}}");
    const char *cfg = write_config("config.json", "{\"resources\": {\"api\": 2}}");
    const char *argv[] = {test_env("JOBD_BIN"),   "--config",       cfg,
                          "--handlers",           handlers,         "--state-dir",
                          test_tmp_path("state"), "--check-config", NULL};
    char *out = NULL, *err = NULL;
    ASSERT_EQ(test_run(argv, NULL, NULL, &out, &err), 78);
    ASSERT_CONTAINS(err, "gpu");
    free(out);
    free(err);
    const char *cfg2 = write_config("config2.json", "{\"resources\": {\"gpu\": 0}}");
    const char *argv2[] = {test_env("JOBD_BIN"),   "--config",       cfg2,
                           "--handlers",           handlers,         "--state-dir",
                           test_tmp_path("state"), "--check-config", NULL};
    ASSERT_EQ(test_run(argv2, NULL, NULL, &out, &err), 78);
    ASSERT_CONTAINS(err, "resources.gpu");
    free(out);
    free(err);
}
