/* test_output.c - what an exec handler writes is never dropped without a
 * trace (schema/handler-protocol.md): lines with several protocol keys,
 * invalid lines (logged once per attempt, every one counted), results and
 * checkpoints over the size limit or not UTF-8, the failure context (both
 * tails, and the end of the error where people look), and a handler that
 * was spawned just before a kill -9 of jobd. The real jobd binary, the
 * shared test Redis, real handler processes (tests/fixtures/test_handler.c).
 * Nothing sleeps to synchronise: tests poll Redis, jobd's log, /proc or
 * /metrics with a deadline. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

/* ---- helpers ---- */

/* The value of a metric line "name value" on /metrics; -1 if absent. */
static long long metric(int port, const char *name)
{
    char *body = httpc_get_body(port, "/metrics");
    long long v = -1;
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = body ? strstr(body, want) : NULL;
    if (p) v = atoll(p + strlen(want));
    free(body);
    return v;
}

/* Polls until the job reaches state (a terminal one, usually). */
static void wait_state(const char *q, const char *id, const char *state, const char *log)
{
    if (test_wait_field(q, id, "state", state, test_ms(20000)) < 0) {
        char *st = test_hget(q, id, "state"), *err = test_hget(q, id, "error");
        test_dump_log(log);
        test_fail(__FILE__, __LINE__, "job %s: state %s, want %s (error: %.300s)", id,
                  st ? st : "(none)", state, err ? err : "(none)");
    }
}

/* Runs jobctl with args (NULL-terminated) on this test's Redis and prefix;
 * returns its exit status, its stdout in *out (malloc'd). */
static int jobctl_run(char **out, const char *a, const char *b, const char *c)
{
    char url[600], prefix[300];
    snprintf(url, sizeof url, "JOBD_REDIS_URL=%s", test_redis_url());
    snprintf(prefix, sizeof prefix, "JOBD_PREFIX=%s", test_prefix());
    const char *env[] = {url, prefix, NULL};
    const char *argv[] = {test_env("JOBCTL_BIN"), a, b, c, NULL};
    char *err = NULL;
    int st = test_run(argv, env, NULL, out, &err);
    free(err);
    return st;
}

/* The last line of s that is not empty (static copy). */
static const char *last_line(const char *s)
{
    static char buf[4096];
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        n--;
    size_t start = n;
    while (start && s[start - 1] != '\n')
        start--;
    snprintf(buf, sizeof buf, "%.*s", (int)(n - start), s + start);
    return buf;
}

/* ---- one line, several keys ---- */

TEST(output_multi_key_line)
{
    test_install_abort_handler();
    const char *q = "omulti", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char held[JOBD_ID_LEN + 1], done[JOBD_ID_LEN + 1];
    /* Checkpoint and progress on one line, then the handler waits (until
     * canceled) so the test sees both in Redis while it runs. */
    test_submit(c, q, "t.exec",
                "{\"mode\":\"lines\",\"ms\":60000,"
                "\"lines\":[\"{\\\"checkpoint\\\":{\\\"step\\\":7},\\\"progress\\\":0.5}\"]}",
                1, 0, held);
    /* All four keys on one line, in an order unlike the applied one. */
    test_submit(c, q, "t.exec",
                "{\"mode\":\"lines\",\"lines\":[\"{\\\"log\\\":\\\"hello-7c1e\\\",\\\"result\\\":"
                "{\\\"r\\\":1},\\\"checkpoint\\\":{\\\"s\\\":2},\\\"progress\\\":0.25}\"]}",
                1, 0, done);
    pid_t pid =
        test_jobd_start(log, NULL, q, "state",
                        (const char *[]){"--sync-interval", "100ms", "--lease", "3", NULL}, NULL);
    if (test_wait_field(q, held, "checkpoint", "{\"step\":7}", test_ms(15000)) < 0) {
        test_dump_log(log);
        char *ck = test_hget(q, held, "checkpoint");
        test_fail(__FILE__, __LINE__, "the checkpoint of a two-key line never reached Redis: %s",
                  ck ? ck : "(none)");
    }
    ASSERT_EQ(test_wait_field(q, held, "progress", "0.5", test_ms(5000)), 0);
    char *out = NULL;
    ASSERT_EQ(jobctl_run(&out, "status", held, NULL), 0);
    ASSERT_CONTAINS(out, "{\"step\":7}");
    ASSERT_CONTAINS(out, "50%");
    free(out);

    wait_state(q, done, "succeeded", log);
    ASSERT_FIELD(q, done, "result", "{\"r\":1}");
    ASSERT_EQ(test_log_has_job(log, done, "hello-7c1e"), 1);

    ASSERT_EQ(jobd_cancel(c, held, NULL), 0);
    wait_state(q, held, "canceled", log);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* ---- invalid lines ---- */

TEST(output_invalid_lines_warned_once)
{
    test_install_abort_handler();
    const char *q = "oinvalid", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char a[JOBD_ID_LEN + 1], b[JOBD_ID_LEN + 1];
    /* Four invalid lines: a wrong type, another wrong type, bad JSON that
     * names a key, an unknown key beside a known one; then a good result. */
    test_submit(c, q, "t.exec",
                "{\"mode\":\"lines\",\"lines\":[\"{\\\"progress\\\":\\\"half\\\"}\","
                "\"{\\\"log\\\":42}\",\"{\\\"result\\\":\",\"{\\\"checkpoint\\\":{},\\\"x\\\":1}\","
                "\"{\\\"result\\\":1}\"]}",
                1, 0, a);
    test_submit(c, q, "t.exec",
                "{\"mode\":\"lines\",\"lines\":[\"{\\\"progress\\\":[]}\",\"{\\\"log\\\":null}\","
                "\"plain output, not counted\",\"{\\\"other\\\":1}\"]}",
                1, 0, b);
    pid_t pid =
        test_jobd_start(log, NULL, q, "state", (const char *[]){"--concurrency", "1", NULL}, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    wait_state(q, a, "succeeded", log);
    wait_state(q, b, "succeeded", log);
    ASSERT_FIELD(q, a, "result", "1");

    /* One warning per attempt, with the job's fields. */
    json_t *wa = test_log_find(log, a, "invalid");
    json_t *wb = test_log_find(log, b, "invalid");
    if (json_array_size(wa) != 1 || json_array_size(wb) != 1) {
        test_dump_log(log);
        test_fail(__FILE__, __LINE__, "warnings: %zu for job a, %zu for job b; want 1 and 1",
                  json_array_size(wa), json_array_size(wb));
    }
    json_t *w = json_array_get(wa, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(w, "level")), "warn");
    ASSERT_STR_EQ(json_string_value(json_object_get(w, "queue")), q);
    ASSERT_STR_EQ(json_string_value(json_object_get(w, "type")), "t.exec");
    ASSERT_EQ(json_integer_value(json_object_get(w, "attempt")), 1);
    json_decref(wa);
    json_decref(wb);
    /* Every invalid line is counted. */
    ASSERT_EQ(metric(port, "jobd_handler_invalid_lines_total"), 6);

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* ---- size limits and UTF-8 ---- */

TEST(output_over_limit_fails_the_attempt)
{
    test_install_abort_handler();
    const char *q = "olimit", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char big[JOBD_ID_LEN + 1], bigck[JOBD_ID_LEN + 1], latin[JOBD_ID_LEN + 1];
    /* 2 MiB and 1.5 MiB against the default 1 MiB limit: longer than any
     * line jobd keeps whole. */
    test_submit(c, q, "t.exec", "{\"mode\":\"big\",\"bytes\":2097152}", 1, 0, big);
    test_submit(c, q, "t.exec", "{\"mode\":\"big\",\"key\":\"checkpoint\",\"bytes\":1572864}", 1, 0,
                bigck);
    test_submit(c, q, "t.exec", "{\"mode\":\"badutf8\"}", 1, 0, latin);
    pid_t pid = test_jobd_start(log, NULL, q, "state", NULL, NULL);
    wait_state(q, big, "dead", log);
    ASSERT_FIELD_CONTAINS(q, big, "error", "result is over the 1048576-byte limit");
    ASSERT_FIELD_CONTAINS(q, big, "error", "its line is 2097163 bytes");
    wait_state(q, bigck, "dead", log);
    ASSERT_FIELD_CONTAINS(q, bigck, "error", "checkpoint is over the 1048576-byte limit");
    wait_state(q, latin, "dead", log);
    ASSERT_FIELD_CONTAINS(q, latin, "error", "result is not valid UTF-8");
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

TEST(output_limit_is_configurable)
{
    test_install_abort_handler();
    const char *q = "olimit2", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char over[JOBD_ID_LEN + 1], under[JOBD_ID_LEN + 1];
    test_submit(c, q, "t.exec", "{\"mode\":\"big\",\"bytes\":100000}", 1, 0, over);
    test_submit(c, q, "t.exec", "{\"mode\":\"big\",\"bytes\":65536}", 1, 0, under);
    pid_t pid = test_jobd_start(log, NULL, q, "state",
                                (const char *[]){"--max-output-bytes", "65536", NULL}, NULL);
    wait_state(q, over, "dead", log);
    ASSERT_FIELD_CONTAINS(q, over, "error", "result is 100000 bytes, over the 65536-byte limit");
    wait_state(q, under, "succeeded", log);
    char *r = test_hget(q, under, "result");
    ASSERT(r != NULL);
    ASSERT_EQ(strlen(r), 65536);
    free(r);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);

    /* Out of range: a configuration error naming the setting. */
    const char *argv[] = {test_env("JOBD_BIN"), "--max-output-bytes", "12", "--check-config", NULL};
    char *out = NULL, *err = NULL;
    ASSERT_EQ(test_run(argv, NULL, NULL, &out, &err), 78);
    ASSERT_CONTAINS(err, "max-output-bytes");
    free(out);
    free(err);
    jobd_client_free(c);
}

/* ---- failure context ---- */

TEST(output_failure_keeps_both_tails)
{
    test_install_abort_handler();
    const char *q = "otails", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1];
    test_submit(c, q, "t.exec", "{\"mode\":\"tails\",\"bytes\":102400}", 1, 0, id);
    pid_t pid = test_jobd_start(log, NULL, q, "state", NULL, NULL);
    wait_state(q, id, "dead", log);
    char *e = test_hget(q, id, "error");
    ASSERT(e != NULL);
    /* Both tails, the last 64 KiB of each, stderr's last line at the end. */
    ASSERT_CONTAINS(e, "handler exited with status 3");
    ASSERT_CONTAINS(e, "stdout ends here");
    ASSERT_CONTAINS(e, "ValueError: stderr ends here");
    ASSERT_STR_EQ(last_line(e), "ValueError: stderr ends here");
    ASSERT(strstr(e, "stdout line 00000000") == NULL); /* more than 64 KiB ago */
    ASSERT(strstr(e, "stderr line 00000000") == NULL);
    ASSERT_CONTAINS(e, "\n--- stdout: last ");
    ASSERT_CONTAINS(e, "\n--- stderr: last ");
    ASSERT_GT(strlen(e), 2 * 60000);
    ASSERT_LT(strlen(e), 2 * 65536 + 1024);

    /* jobctl status shows the end; --json all of it. */
    char *out = NULL;
    ASSERT_EQ(jobctl_run(&out, "status", id, NULL), 0);
    printf("jobctl status:\n%s", out);
    ASSERT_CONTAINS(out, "ValueError: stderr ends here");
    ASSERT_CONTAINS(out, "handler exited with status 3");
    free(out);
    ASSERT_EQ(jobctl_run(&out, "status", id, "--json"), 0);
    json_t *st = json_loads(out, 0, NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "error")), e);
    json_decref(st);
    free(out);

    /* So does the "job dead" log line. */
    json_t *lines = test_log_find(log, id, "job dead");
    ASSERT_EQ(json_array_size(lines), 1);
    const char *msg = json_string_value(json_object_get(json_array_get(lines, 0), "msg"));
    printf("log line msg:\n%s\n", msg);
    ASSERT_CONTAINS(msg, "handler exited with status 3");
    ASSERT_STR_EQ(last_line(msg), "ValueError: stderr ends here");
    json_decref(lines);
    free(e);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* ---- a handler spawned just before a kill -9 ---- */

/* Whether process pid is gone (or a zombie nobody has reaped yet). */
static int pid_gone(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH) return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *s = test_read_file(path);
    const char *p = s ? strrchr(s, ')') : NULL;
    int zombie = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    free(s);
    return !s || zombie;
}

TEST(output_handler_journaled_at_spawn)
{
    test_install_abort_handler();
    const char *q = "ospawn", *log = test_tmp_path("jobd.log"),
               *hlog = test_tmp_path("handler.log");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], payload[1024];
    /* The first run sleeps for 5 minutes; the rerun finishes at once. */
    snprintf(payload, sizeof payload,
             "{\"mode\":\"sleep\",\"ms\":300000,\"rerun_ms\":0,\"log\":\"%s\"}", hlog);
    test_submit(c, q, "t.exec", payload, 3, 0, id);
    /* A long lease: waiting for it to expire would time the test out. */
    const char *const flags[] = {"--lease", "300", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, "state", flags, NULL);
    ASSERT_EQ(test_wait_log(hlog, test_ms(15000), "RUN ", id, NULL), 0);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_EXIT(pid, test_ms(5000), log, 128 + SIGKILL);
    char *text = test_read_file(hlog);
    int hpid = 0;
    const char *p = strstr(text, "RUN ");
    ASSERT(p != NULL);
    ASSERT_EQ(sscanf(p, "RUN %*s %*d %d", &hpid), 1);
    free(text);
    ASSERT_GT(hpid, 0);
    ASSERT_EQ(pid_gone(hpid), 0); /* the old handler outlived jobd */

    pid = test_jobd_start(log, NULL, q, "state", flags, NULL);
    int64_t deadline = test_now_ms() + test_ms(15000);
    while (!pid_gone(hpid)) {
        if (test_now_ms() >= deadline) {
            kill(-hpid, SIGKILL);
            test_dump_log(log);
            test_fail(__FILE__, __LINE__, "the restarted jobd left the old handler %d running",
                      hpid);
        }
        test_pause_ms(20);
    }
    ASSERT_EQ(test_log_has_job(log, NULL, "stopping handler process group"), 1);
    /* Released at once, not after the 300 s lease: it runs again and ends. */
    wait_state(q, id, "succeeded", log);
    ASSERT_EQ(test_count_log(hlog, "RUN "), 2);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* A handler that ran past a second is in the journal (its lease) and in
 * the handler process table (its process group and lease): the restarted
 * jobd stops it once and releases the lease once. */
TEST(output_handler_in_journal_and_table_released_once)
{
    test_install_abort_handler();
    const char *q = "olong", *log = test_tmp_path("jobd.log"), *hlog = test_tmp_path("handler.log"),
               *state = test_tmp_path("state");
    jobd_client_t *c = test_client();
    char id[JOBD_ID_LEN + 1], payload[1024];
    snprintf(payload, sizeof payload,
             "{\"mode\":\"sleep\",\"ms\":300000,\"rerun_ms\":0,\"log\":\"%s\"}", hlog);
    test_submit(c, q, "t.exec", payload, 3, 0, id);
    const char *const flags[] = {"--lease", "300", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, "state", flags, NULL);
    ASSERT_EQ(test_wait_log(hlog, test_ms(15000), "RUN ", id, NULL), 0);
    int64_t end = test_now_ms() + test_ms(15000);
    while (test_held_rows(state, id) != 1 && test_now_ms() < end)
        test_pause_ms(20);
    ASSERT_EQ(test_held_rows(state, id), 1);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_EXIT(pid, test_ms(5000), log, 128 + SIGKILL);
    char *text = test_read_file(hlog);
    int hpid = 0;
    const char *p = strstr(text, "RUN ");
    ASSERT(p != NULL);
    ASSERT_EQ(sscanf(p, "RUN %*s %*d %d", &hpid), 1);
    free(text);
    ASSERT_GT(hpid, 0);
    ASSERT_EQ(pid_gone(hpid), 0);

    pid = test_jobd_start(log, NULL, q, "state", flags, NULL);
    int64_t deadline = test_now_ms() + test_ms(15000);
    while (!pid_gone(hpid)) {
        if (test_now_ms() >= deadline) {
            kill(-hpid, SIGKILL);
            test_dump_log(log);
            test_fail(__FILE__, __LINE__, "the restarted jobd left the old handler %d running",
                      hpid);
        }
        test_pause_ms(20);
    }
    wait_state(q, id, "succeeded", log);
    ASSERT_EQ(test_count_log(hlog, "RUN "), 2);
    /* Stopped once, released once: a second release would be refused as
     * stale (and logged so). */
    ASSERT_EQ(test_count_log(log, "stopping handler process group"), 1);
    ASSERT_EQ(test_count_log(log, "stale"), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    jobd_client_free(c);
}

/* ---- what a short exec job costs the journal ---- */

TEST(output_short_exec_jobs_skip_the_journal)
{
    test_install_abort_handler();
    const char *q = "oshort", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    enum { N = 20 };
    char ids[N][JOBD_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        test_submit(c, q, "t.exec", "{\"mode\":\"ok\"}", 1, 0, ids[i]);
    /* One at a time: no group commit to share, so journaling each job's
     * lease, outcome and deletion would cost more commits than jobs. */
    pid_t pid =
        test_jobd_start(log, NULL, q, "state", (const char *[]){"--concurrency", "1", NULL}, NULL);
    int port = httpc_jobd_port(log, test_ms(10000));
    ASSERT_GT(port, 0);
    for (int i = 0; i < N; i++)
        wait_state(q, ids[i], "succeeded", log);
    /* A job gets a journal row only once it has run for a second (or
     * checkpointed, or Redis is away): these never do, however slow the
     * machine, unless a handler is that slow to start. */
    long long commits = metric(port, "jobd_journal_commits_total");
    printf("%lld journal commits for %d exec jobs\n", commits, N);
    ASSERT(commits >= 0);
    ASSERT_LT(commits, N / 2);
    /* Nothing is left in the handler process table: every slot cleared. */
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    char path[700];
    snprintf(path, sizeof path, "%s/state/procs", test_tmpdir());
    FILE *f = fopen(path, "rbe");
    ASSERT(f != NULL);
    unsigned char slot[512];
    int slots = 0, used = 0;
    while (fread(slot, 1, sizeof slot, f) == sizeof slot) {
        slots++;
        used += slot[0] || slot[1] || slot[2] || slot[3]; /* a magic number: a live record */
    }
    fclose(f);
    ASSERT_GT(slots, 0);
    ASSERT_EQ(used, 0);
    jobd_client_free(c);
}
