/* test_ratelimit.c - cluster-wide rate limits per resource (config
 * "resources": {"api": {"rate": "20/1s"}}), black box: three jobd
 * processes share a rate of 20 starts a second; the exec handler records
 * each start with a monotonic clock, and no 1-second window of the record
 * may hold more than 20. A job the rate holds back waits in its queue
 * (deferred, attempt not charged, shown as waiting), not in a slot. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

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

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

TEST(ratelimit_holds_across_workers)
{
    enum { N = 100, RATE = 20 }; /* 5 s of work at the rate */
    const char *rec = test_tmp_path("record.log");
    char handlers_json[2048];
    snprintf(handlers_json, sizeof handlers_json,
             "{\"t.rate\": {\"exec\": [\"%s\"], \"resources\": {\"api\": 1}}}",
             test_helper("test_handler"));
    const char *handlers = test_tmp_path("handlers.json");
    test_write_file(handlers, handlers_json);
    const char *cfg = test_tmp_path("config.json");
    test_write_file(cfg, "{\"queues\": \"rl\", \"resources\": {\"api\": {\"rate\": \"20/1s\"}}}");

    jobd_client_t *c = test_client();
    char payload[1024], ids[N][JOBD_ID_LEN + 1];
    snprintf(payload, sizeof payload, "{\"mode\":\"record\",\"ms\":0,\"log\":\"%s\"}", rec);
    for (int i = 0; i < N; i++)
        test_submit(c, "rl", "t.rate", payload, 0, 0, ids[i]);

    const char *logs[3] = {test_tmp_path("a.log"), test_tmp_path("b.log"), test_tmp_path("c.log")};
    const char *names[3] = {"wa", "wb", "wc"};
    pid_t pids[3];
    for (int w = 0; w < 3; w++)
        pids[w] = start_worker(cfg, handlers, names[w], logs[w]);
    for (int w = 0; w < 3; w++)
        ASSERT_EXIT(pids[w], test_ms(120000), logs[w], 0);
    ASSERT_EQ(test_zcard("rl", "succeeded"), N);

    char *s = test_read_file(rec);
    ASSERT(s != NULL);
    long long ns[N];
    int n = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        char kind[8], id[64];
        long long t;
        if (sscanf(line, "%7s %63s %lld", kind, id, &t) == 3 && strcmp(kind, "START") == 0 && n < N)
            ns[n++] = t;
    }
    free(s);
    ASSERT_EQ(n, N); /* each job started once */
    qsort(ns, (size_t)n, sizeof ns[0], cmp_ll);
    /* The most starts in any window [t, t + 1 s) that begins at a start. */
    int peak = 0;
    for (int i = 0, k = 0; i < n; i++) {
        while (k < n && ns[k] - ns[i] < 1000000000LL)
            k++;
        if (k - i > peak) peak = k - i;
    }
    printf("most starts in a 1-s window: %d (limit %d); first to last start: %.2f s\n", peak, RATE,
           (double)(ns[n - 1] - ns[0]) / 1e9);
    ASSERT_LE(peak, RATE);
    /* And the rate was used: each wait adds a claim round trip to the
     * spacing, so a second holds a few starts less than the rate. */
    ASSERT_GE(peak, RATE * 3 / 4);

    /* Waiting jobs were deferred, not held in slots, and charged nothing. */
    long long deferred = test_stat_counter("rl", "deferred");
    printf("deferrals: %lld\n", deferred);
    ASSERT_GT(deferred, 0);
    for (int i = 0; i < N; i++)
        ASSERT_FIELD("rl", ids[i], "attempt", "1");
    jobd_client_free(c);
}
