/* test_spawn_hold.c - a handler spawn that does not end (its spawner thread
 * is held still with ptrace, as a posix_spawn waiting on an exec that hangs
 * would be) must not stall the rest of the worker: the pump holds flushes
 * and claims back while spawns are behind, but only while they make
 * progress. Real jobd, real Redis, real handlers. jobd is the test's own
 * child, so ptrace needs no privilege. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

/* The tids of jobd's spawner threads (named "jobd-spawn"); returns how many. */
static int spawner_tids(pid_t pid, pid_t *tids, int max)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        if (de->d_name[0] == '.') continue;
        char path[384], comm[64] = "";
        snprintf(path, sizeof path, "%s/%s/comm", dir, de->d_name);
        char *c = test_read_file(path);
        if (c) {
            snprintf(comm, sizeof comm, "%s", c);
            free(c);
        }
        if (strncmp(comm, "jobd-spawn", 10) == 0) tids[n++] = (pid_t)atoi(de->d_name);
    }
    closedir(d);
    return n;
}

/* Stops thread tid (only it: the rest of jobd runs on). */
static void freeze(pid_t tid)
{
    ASSERT_EQ(ptrace(PTRACE_SEIZE, tid, NULL, NULL), 0);
    ASSERT_EQ(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
    int st;
    ASSERT_EQ(waitpid(tid, &st, __WALL), tid);
    ASSERT(WIFSTOPPED(st));
}

static void thaw(pid_t tid)
{
    ASSERT_EQ(ptrace(PTRACE_DETACH, tid, NULL, NULL), 0);
}

/* Starts jobd on queue q with args (NULL-terminated, --log-level debug
 * added) and, once it runs, stops its two spawner threads (their tids in
 * tids). Returns jobd's pid. */
static pid_t start_frozen(const char *q, const char *log, const char *args[], pid_t tids[2])
{
    const char *argv[16];
    int k = 0;
    for (; args[k] && k < 12; k++)
        argv[k] = args[k];
    argv[k++] = "--log-level";
    argv[k++] = "debug";
    argv[k] = NULL;
    pid_t pid = test_jobd_start(log, NULL, q, "state", argv, NULL);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "jobd started", NULL), 0);
    pid_t found[4];
    int n = 0;
    for (int i = 0; i < 250 && n < 2; i++) {
        n = spawner_tids(pid, found, 4);
        if (n < 2) test_pause_ms(20);
    }
    ASSERT_EQ(n, 2);
    for (int i = 0; i < 2; i++) {
        tids[i] = found[i];
        freeze(tids[i]);
    }
    return pid;
}

TEST(spawn_stuck_spawns_do_not_stall_other_jobs)
{
    test_install_abort_handler();
    const char *q = "sphold", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    pid_t tids[2];
    const int n = 2;
    pid_t pid = start_frozen(q, log, (const char *[]){"--concurrency", "4", NULL}, tids);

    /* Two exec jobs whose spawns cannot end while the threads are held. */
    char ex[2][JOBD_ID_LEN + 1], other[JOBD_ID_LEN + 1];
    for (int i = 0; i < 2; i++) {
        test_submit(c, q, "t.exec", "{\"mode\":\"ok\"}", 0, 0, ex[i]);
        ASSERT_EQ(test_wait_field(q, ex[i], "state", "active", test_ms(10000)), 0);
        CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "job started", ex[i], NULL) == 0, log,
                      "exec job %s never started", ex[i]);
    }
    /* A built-in job has a free slot: it is claimed, runs and is acked. */
    test_submit(c, q, "noop", "{}", 0, 0, other);
    int ok = test_wait_field(q, other, "state", "succeeded", test_ms(10000)) == 0;

    for (int i = 0; i < n; i++)
        thaw(tids[i]);
    CHECK_OR_DUMP(ok, log, "job %s was held behind spawns that did not end", other);
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(test_wait_field(q, ex[i], "state", "succeeded", test_ms(10000)), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(10000), log, 0);
    jobd_client_free(c);
}

/* SIGTERM twice while every spawn is still out: the stops asked for before
 * the spawns ended are applied once they have, the leases are released
 * uncharged and jobd exits 0. */
TEST(spawn_sigterm_while_spawns_wait_releases_them)
{
    test_install_abort_handler();
    const char *q = "spterm", *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    pid_t tids[2];
    const int n = 2;
    pid_t pid = start_frozen(
        q, log, (const char *[]){"--concurrency", "4", "--kill-grace", "2", NULL}, tids);
    const char *payload = "{\"mode\":\"sleep\",\"ms\":60000}";
    char ids[3][JOBD_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        test_submit(c, q, "t.exec", payload, 0, 0, ids[i]);
        CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "job started", ids[i], NULL) == 0, log,
                      "exec job %s never started", ids[i]);
    }
    /* Twice: straight to stop-and-checkpoint, with every spawn still out. */
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "draining", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "stopping: asking", NULL), 0);
    for (int i = 0; i < n; i++)
        thaw(tids[i]);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_FIELD(q, ids[i], "state", "queued");
        ASSERT_FIELD(q, ids[i], "attempt", "0"); /* not charged */
    }
    ASSERT_EQ(test_zcard(q, "active"), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(jobd_cancel(c, ids[i], NULL), 0);
    jobd_client_free(c);
}

/* A job canceled while its handler's spawn is still out: the handler, once
 * spawned, gets no job line (its stdin is closed), so it never runs the job,
 * and the job ends canceled. */
TEST(spawn_cancel_before_the_spawn_ended_sends_no_job)
{
    test_install_abort_handler();
    const char *q = "spcx", *log = test_tmp_path("jobd.log"), *runs = test_tmp_path("runs.log");
    jobd_client_t *c = test_client();
    pid_t tids[2];
    const int n = 2;
    pid_t pid = start_frozen(q, log, (const char *[]){"--concurrency", "2", NULL}, tids);
    char payload[512], id[JOBD_ID_LEN + 1];
    snprintf(payload, sizeof payload, "{\"mode\":\"sleep\",\"ms\":60000,\"log\":\"%s\"}", runs);
    test_submit(c, q, "t.exec", payload, 0, 0, id);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "job started", id, NULL) == 0, log,
                  "exec job %s never started", id);
    int was_active = 0;
    ASSERT_EQ(jobd_cancel(c, id, &was_active), 0);
    ASSERT_EQ(was_active, 1);
    /* jobd heard of it (its stop is now waiting for the spawn) ... */
    CHECK_OR_DUMP(test_wait_log(log, test_ms(20000), "cancel requested", id, NULL) == 0, log,
                  "jobd never heard of the cancel");
    for (int i = 0; i < n; i++)
        thaw(tids[i]);
    /* ... and the spawned handler never saw the job. */
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "canceled", test_ms(10000)) == 0, log,
                  "job %s did not end canceled", id);
    char *seen = test_read_file(runs);
    CHECK_OR_DUMP(!seen || !strstr(seen, id), log, "the handler ran job %s: %s", id, seen);
    free(seen);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(10000), log, 0);
    jobd_client_free(c);
}
