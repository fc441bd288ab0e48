/* test_journal.c - black-box tests of checkpoints, the SQLite journal and
 * the graceful drain (CONTRACT guarantees 3-6): the real jobd binary against
 * real Redis (the shared test server, or a private one that a test stops),
 * real SQLite files, real exec handlers (tests/fixtures/step_handler.c) and
 * the built-in index.fts, real signals. Each test has its own key prefix and
 * queue names. Nothing here sleeps to synchronise: tests wait for log lines,
 * for Redis or SQLite conditions polled with a deadline, or for exit. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "embedded.h"
#include "testlib.h"

/* ---- jobs and jobd's log (the shared helpers are in testlib.h) ---- */

/* An integer member of the JSON object in a job's field (e.g. the
 * checkpoint's "step"), or -1. */
static long long json_field_int(const char *queue, const char *id, const char *field,
                                const char *member)
{
    char *s = test_hget(queue, id, field);
    json_t *o = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    json_t *v = json_object_get(o, member);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(o);
    free(s);
    return n;
}

static void step_payload(char *out, size_t len, int steps, int every, int ms, const char *log)
{
    snprintf(out, len, "{\"steps\":%d,\"every\":%d,\"ms\":%d,\"log\":\"%s\"}", steps, every, ms,
             log);
}

/* Polls until jobd's log has a line for job id whose msg contains needle. */
static int wait_log_job(const char *path, const char *id, const char *needle, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (!test_log_has_job(path, id, needle)) {
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
    return 0;
}

/* ---- the step handler's log ---- */

typedef struct {
    pid_t pid;
    long from;
    int attempt;
} run_t;

typedef struct {
    int nsteps;
    int *count; /* STEP lines per step */
    run_t runs[16];
    int nruns;
    int terms, done;
    long max_step; /* highest step logged, -1: none */
} steps_t;

static void steps_read(const char *path, const char *id, int nsteps, steps_t *s)
{
    free(s->count);
    memset(s, 0, sizeof *s);
    s->nsteps = nsteps;
    s->count = calloc((size_t)nsteps + 1, sizeof *s->count);
    s->max_step = -1;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char kind[16], jid[64];
        long a = 0, b = 0, c = 0;
        int n = sscanf(line, "%15s %63s %ld %ld %ld", kind, jid, &a, &b, &c);
        if (n < 2 || strcmp(jid, id) != 0) continue;
        if (strcmp(kind, "START") == 0 && n == 5 && s->nruns < 16) {
            s->runs[s->nruns++] = (run_t){(pid_t)a, b, (int)c};
        } else if (strcmp(kind, "STEP") == 0 && n >= 3) {
            if (a >= 0 && a < nsteps) s->count[a]++;
            if (a > s->max_step) s->max_step = a;
        } else if (strcmp(kind, "TERM") == 0) {
            s->terms++;
        } else if (strcmp(kind, "DONE") == 0) {
            s->done++;
        }
    }
    free(line);
    fclose(f);
}

static void steps_free(steps_t *s)
{
    free(s->count);
    s->count = NULL;
}

/* Asserts no step was skipped; returns how many steps ran more than once. */
static int steps_check(const steps_t *s, const char *id)
{
    int dups = 0;
    for (int i = 0; i < s->nsteps; i++) {
        if (s->count[i] == 0) test_fail(__FILE__, __LINE__, "job %s skipped step %d", id, i);
        dups += s->count[i] - 1;
    }
    return dups;
}

/* Polls until every job has a START line (its handler is up). */
static int wait_started(const char *path, char ids[][JOBD_ID_LEN + 1], int n, int runs, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    steps_t s = {0};
    for (;;) {
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            steps_read(path, ids[i], 1, &s);
            ok = s.nruns >= runs;
        }
        if (ok) break;
        if (test_now_ms() >= deadline) {
            steps_free(&s);
            return -1;
        }
        test_pause_ms(20);
    }
    steps_free(&s);
    return 0;
}

/* A process that exited (or is a zombie nobody reaped yet) is gone. */
static int proc_gone(pid_t pid)
{
    if (kill(pid, 0) < 0 && errno == ESRCH) return 1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *st = test_read_file(path);
    if (!st) return 1;
    const char *p = strrchr(st, ')');
    int zombie = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
    free(st);
    return zombie;
}

/* Kills the process group a handler leads (jobd starts it with setsid) and
 * waits until the handler is gone. */
static void kill_handler_group(pid_t pid)
{
    if (pid <= 1) return;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int64_t deadline = test_now_ms() + test_ms(10000);
    while (!proc_gone(pid)) {
        if (test_now_ms() >= deadline)
            test_fail(__FILE__, __LINE__, "orphaned handler %d does not go away", (int)pid);
        test_pause_ms(10);
    }
}

/* ---- SQLite files behind jobd's back: the journal, an FTS index ---- */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

/* An integer query with one optional text parameter; -1 if the file or
 * table is missing or no row came back. */
static long long db_int(const char *path, const char *sql, const char *param)
{
    sqlite3 *db = db_open(path);
    if (!db) return -1;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (param) sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static char *db_text(const char *path, const char *sql, const char *param)
{
    sqlite3 *db = db_open(path);
    if (!db) return NULL;
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (param) sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            v = strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static const char *journal_path(const char *statedir)
{
    static char path[4][700];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 700, "%s/journal.db", statedir);
    return p;
}

/* The "step" of the journal's checkpoint for job id, -1 if none. */
static long long journal_step(const char *statedir, const char *id)
{
    char *ck = db_text(journal_path(statedir), "SELECT checkpoint FROM held WHERE id = ?1", id);
    json_t *o = ck ? json_loads(ck, JSON_DECODE_ANY, NULL) : NULL;
    json_t *v = json_object_get(o, "step");
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(o);
    free(ck);
    return n;
}

/* Polls until the journal query (one text parameter: id) gives at least
 * want for every job. */
static int wait_journal(const char *statedir, const char *sql, char ids[][JOBD_ID_LEN + 1], int n,
                        long long want, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        int ok = 1;
        for (int i = 0; i < n && ok; i++)
            ok = db_int(journal_path(statedir), sql, ids[i]) >= want;
        if (ok) return 0;
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
}

/* Polls until the journal holds no row. */
static int wait_journal_empty(const char *statedir, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    while (db_int(journal_path(statedir), "SELECT count(*) FROM held", NULL) != 0) {
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
    return 0;
}

/* ======================================================================
 * 1. SIGTERM during 16 long checkpointing jobs: released with their
 *    newest checkpoint, attempt not charged; a second jobd resumes them.
 * ====================================================================== */

TEST(journal_sigterm_drain_releases_16_checkpointing_jobs)
{
    test_install_abort_handler();
    enum { N = 16, STEPS = 400, EVERY = 5, MS = 20 };
    const char *q = "jdrain", *steplog = test_tmp_path("steps.log");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    jobd_client_t *c = test_client();
    char payload[800], ids[N][JOBD_ID_LEN + 1];
    step_payload(payload, sizeof payload, STEPS, EVERY, MS, steplog);
    for (int i = 0; i < N; i++)
        test_submit(c, q, "step", payload, 5, 0, ids[i]);

    const char *flags_a[] = {"--concurrency",
                             "16",
                             "--drain-timeout",
                             "1",
                             "--kill-grace",
                             "3",
                             "--worker-id",
                             "A",
                             NULL};
    pid_t a = test_jobd_start(log_a, NULL, q, test_tmp_path("state-a"), flags_a, NULL);
    /* Every job runs and has checkpointed at least once (its checkpoint
     * reached Redis through the 1 s sync). */
    for (int i = 0; i < N; i++) {
        CHECK_OR_DUMP(test_wait_field(q, ids[i], "state", "active", test_ms(15000)) == 0, log_a,
                      "job %d never became active", i);
        CHECK_OR_DUMP(test_wait_field_set(q, ids[i], "checkpoint", test_ms(15000)) == 0, log_a,
                      "job %d has no checkpoint in Redis (sync interval 1 s)", i);
    }
    ASSERT_EQ(test_zcard(q, "active"), N);

    int64_t t0 = test_now_ms();
    ASSERT_EQ(kill(a, SIGTERM), 0);
    /* Drain timeout 1 s + kill grace 3 s, with slack for a loaded machine. */
    ASSERT_EXIT(a, test_ms(4000) + 4000, log_a, 0);
    printf("drain took %lld ms\n", (long long)(test_now_ms() - t0));
    ASSERT(test_count_log(log_a, "draining") > 0);
    ASSERT_EQ(test_zcard(q, "active"), 0);
    ASSERT_EQ(test_zcard(q, "ready"), N);
    ASSERT_EQ(test_zcard(q, "succeeded"), 0); /* the drain really cut them short */
    ASSERT_EQ(test_stat_counter(q, "released"), N);

    long long ckpt[N];
    steps_t s = {0};
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "queued");
        ASSERT_FIELD(q, ids[i], "attempt", "0"); /* not charged */
        ckpt[i] = json_field_int(q, ids[i], "checkpoint", "step");
        ASSERT_GT(ckpt[i], 0);
        ASSERT_LT(ckpt[i], STEPS);
        steps_read(steplog, ids[i], STEPS, &s);
        ASSERT_EQ(s.nruns, 1);
        ASSERT_EQ(s.terms, 1); /* asked to stop: SIGTERM to its group */
        ASSERT_EQ(s.done, 0);
        /* Released with the newest checkpoint: the one it wrote on SIGTERM,
         * for the step it finished last. */
        ASSERT_EQ(ckpt[i], s.max_step + 1);
    }

    /* A second jobd resumes every job where the first stopped. */
    const char *flags_b[] = {"--concurrency", "16", "--once", "--worker-id", "B", NULL};
    pid_t b = test_jobd_start(log_b, NULL, q, test_tmp_path("state-b"), flags_b, NULL);
    ASSERT_EXIT(b, test_ms(60000), log_b, 0);
    ASSERT_EQ(test_zcard(q, "succeeded"), N);
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "succeeded");
        ASSERT_FIELD(q, ids[i], "attempt", "1");
        ASSERT_FIELD(q, ids[i], "worker", "B");
        ASSERT_FIELD_CONTAINS(q, ids[i], "result", "\"steps\":400");
        steps_read(steplog, ids[i], STEPS, &s);
        ASSERT_EQ(s.nruns, 2);
        ASSERT_EQ(s.runs[1].from, ckpt[i]); /* resumed at the released checkpoint */
        ASSERT_EQ(s.runs[1].attempt, 1);
        ASSERT_EQ(s.done, 1);
        /* No step skipped; at most the steps since the last checkpoint ran
         * twice. */
        int dups = steps_check(&s, ids[i]);
        ASSERT_LE(dups, EVERY);
    }
    steps_free(&s);
    jobd_client_free(c);
}

/* ======================================================================
 * 2. A second SIGTERM skips the drain wait.
 * ====================================================================== */

TEST(journal_second_signal_skips_drain_wait)
{
    test_install_abort_handler();
    enum { N = 4, STEPS = 3000, EVERY = 5, MS = 20 };
    const char *q = "jsecond", *steplog = test_tmp_path("steps.log"),
               *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char payload[800], ids[N][JOBD_ID_LEN + 1];
    step_payload(payload, sizeof payload, STEPS, EVERY, MS, steplog);
    for (int i = 0; i < N; i++)
        test_submit(c, q, "step", payload, 5, 0, ids[i]);

    const char *flags[] = {
        "--concurrency", "4", "--drain-timeout", "60", "--kill-grace", "5", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, test_tmp_path("state"), flags, NULL);
    for (int i = 0; i < N; i++)
        CHECK_OR_DUMP(test_wait_field(q, ids[i], "state", "active", test_ms(15000)) == 0, log,
                      "job %d never became active", i);
    CHECK_OR_DUMP(wait_started(steplog, ids, N, 1, test_ms(15000)) == 0, log,
                  "handlers did not start");

    int64_t t0 = test_now_ms();
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "draining", NULL) == 0, log,
                  "no \"draining\" line after SIGTERM");
    ASSERT_EQ(waitpid(pid, NULL, WNOHANG), 0); /* still draining: jobs run on */
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    /* Far below the 60 s drain timeout: stop, checkpoint, release, exit. */
    ASSERT_EXIT(pid, test_ms(7500), log, 0);
    int64_t took = test_now_ms() - t0;
    printf("exit %lld ms after the first SIGTERM\n", (long long)took);
    ASSERT_LT(took, 40000);
    ASSERT(test_count_log(log, "second signal") > 0);

    ASSERT_EQ(test_zcard(q, "active"), 0);
    ASSERT_EQ(test_zcard(q, "ready"), N);
    steps_t s = {0};
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "queued");
        ASSERT_FIELD(q, ids[i], "attempt", "0");
        steps_read(steplog, ids[i], STEPS, &s);
        ASSERT_EQ(s.terms, 1);
        ASSERT_EQ(json_field_int(q, ids[i], "checkpoint", "step"), s.max_step + 1);
        ASSERT_EQ(jobd_cancel(c, ids[i], NULL), 0);
    }
    steps_free(&s);
    jobd_client_free(c);
}

/* ======================================================================
 * 3. A job that finishes inside the drain window is acked.
 * ====================================================================== */

TEST(journal_job_finishing_during_drain_is_acked)
{
    test_install_abort_handler();
    const char *q = "jfinish", *steplog = test_tmp_path("steps.log"),
               *log = test_tmp_path("jobd.log");
    jobd_client_t *c = test_client();
    char payload[800], ex[1][JOBD_ID_LEN + 1], bi[JOBD_ID_LEN + 1];
    step_payload(payload, sizeof payload, 10, 5, 100, steplog); /* about 1 s */
    test_submit(c, q, "step", payload, 5, 0, ex[0]);
    test_submit(c, q, "sleep", "{\"ms\":1000}", 5, 0, bi);

    const char *flags[] = {
        "--concurrency", "2", "--drain-timeout", "10", "--kill-grace", "2", NULL};
    pid_t pid = test_jobd_start(log, NULL, q, test_tmp_path("state"), flags, NULL);
    CHECK_OR_DUMP(wait_started(steplog, ex, 1, 1, test_ms(15000)) == 0, log,
                  "the exec handler did not start");
    CHECK_OR_DUMP(test_wait_field(q, bi, "state", "active", test_ms(15000)) == 0, log,
                  "the sleep job never became active");

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    /* Both were still running when the drain began. */
    CHECK_OR_DUMP(test_wait_log(log, test_ms(10000), "draining", "2 jobs in flight", NULL) == 0,
                  log, "the drain did not begin with both jobs in flight");
    ASSERT_EXIT(pid, test_ms(20000), log, 0);
    /* They ended on their own: the drain timeout never passed. */
    ASSERT_EQ(test_count_log(log, "stopping"), 0);

    ASSERT_FIELD(q, ex[0], "state", "succeeded");
    ASSERT_FIELD(q, ex[0], "attempt", "1");
    ASSERT_FIELD_CONTAINS(q, ex[0], "result", "\"steps\":10");
    ASSERT_FIELD(q, bi, "state", "succeeded");
    ASSERT_FIELD(q, bi, "attempt", "1");
    ASSERT_FIELD_CONTAINS(q, bi, "result", "\"slept_ms\":1000");
    ASSERT_EQ(test_log_has_job(log, ex[0], "job succeeded"), 1);
    ASSERT_EQ(test_log_has_job(log, bi, "job succeeded"), 1);
    steps_t s = {0};
    steps_read(steplog, ex[0], 10, &s);
    ASSERT_EQ(s.terms, 0); /* never asked to stop */
    ASSERT_EQ(s.done, 1);
    ASSERT_EQ(steps_check(&s, ex[0]), 0);
    steps_free(&s);
    ASSERT_EQ(test_zcard(q, "succeeded"), 2);
    ASSERT_EQ(test_zcard(q, "ready"), 0);
    ASSERT_EQ(test_zcard(q, "active"), 0);
    jobd_client_free(c);
}

/* ======================================================================
 * 4. kill -9 and restart on the same state dir: the journal's leases are
 *    released at once, with the journal's newest checkpoint.
 * ====================================================================== */

TEST(journal_sigkill_restart_releases_leases_at_once)
{
    test_install_abort_handler();
    enum { N = 4, STEPS = 200, EVERY = 5, MS = 20 };
    const char *q = "jcrash", *steplog = test_tmp_path("steps.log"),
               *state = test_tmp_path("state");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    jobd_client_t *c = test_client();
    char payload[800], ids[N][JOBD_ID_LEN + 1];
    step_payload(payload, sizeof payload, STEPS, EVERY, MS, steplog);
    for (int i = 0; i < N; i++)
        test_submit(c, q, "step", payload, 5, 0, ids[i]);

    /* A 30 s lease, and a sync interval so long that no checkpoint reaches
     * Redis: whatever checkpoint the jobs resume from came from the journal. */
    const char *flags_a[] = {"--concurrency", "4", "--lease", "30", "--sync-interval", "60",
                             "--worker-id",   "A", NULL};
    pid_t a = test_jobd_start(log_a, NULL, q, state, flags_a, NULL);
    for (int i = 0; i < N; i++)
        CHECK_OR_DUMP(test_wait_field(q, ids[i], "state", "active", test_ms(15000)) == 0, log_a,
                      "job %d never became active", i);
    /* Guarantee 3: the checkpoints are in the journal (committed: another
     * connection sees them). */
    CHECK_OR_DUMP(wait_journal(state,
                               "SELECT json_extract(checkpoint, '$.step') FROM held WHERE id = ?1",
                               ids, N, 2 * EVERY, test_ms(15000)) == 0,
                  log_a, "the journal never held a checkpoint of every job");

    ASSERT_EQ(kill(a, SIGKILL), 0);
    ASSERT_EXIT(a, test_ms(10000), log_a, 128 + SIGKILL);
    /* The orphaned handlers: kill their process groups. */
    steps_t s = {0};
    for (int i = 0; i < N; i++) {
        steps_read(steplog, ids[i], STEPS, &s);
        ASSERT_EQ(s.nruns, 1);
        kill_handler_group(s.runs[0].pid);
    }

    long long jstep[N];
    for (int i = 0; i < N; i++) {
        jstep[i] = journal_step(state, ids[i]);
        ASSERT_GE(jstep[i], 2 * EVERY);
        ASSERT_LT(jstep[i], STEPS);
        /* The lease is still A's, and Redis never got a checkpoint. */
        ASSERT_FIELD(q, ids[i], "state", "active");
        ASSERT_FIELD(q, ids[i], "worker", "A");
        char *ck = test_hget(q, ids[i], "checkpoint");
        ASSERT(ck == NULL || *ck == '\0');
        free(ck);
        char *tok = test_hget(q, ids[i], "token");
        char *jtok = db_text(journal_path(state), "SELECT token FROM held WHERE id = ?1", ids[i]);
        ASSERT_STR_EQ(jtok, tok);
        free(tok);
        free(jtok);
    }

    /* B on the same state dir gives the leases back at once (far below the
     * 30 s lease) and, with a free slot, claims them again itself. */
    int64_t t0 = test_now_ms();
    const char *flags_b[] = {"--concurrency", "4",           "--lease", "30",
                             "--once",        "--worker-id", "B",       NULL};
    pid_t b = test_jobd_start(log_b, NULL, q, state, flags_b, NULL);
    int64_t limit = test_ms(4000) < 20000 ? test_ms(4000) : 20000;
    for (int i = 0; i < N; i++)
        CHECK_OR_DUMP(test_wait_field(q, ids[i], "worker", "B", limit - (test_now_ms() - t0)) == 0,
                      log_b, "job %d was not back within %lld ms of the restart", i,
                      (long long)limit);
    printf("leases back and claimed again %lld ms after the restart\n",
           (long long)(test_now_ms() - t0));
    ASSERT(test_count_log(log_b, "jobs from an earlier run") > 0);
    /* Its log says so (the line may trail the claim Redis already saw). */
    for (int i = 0; i < N; i++)
        CHECK_OR_DUMP(wait_log_job(log_b, ids[i], "job released", test_ms(5000)) == 0, log_b,
                      "no \"job released\" line for job %d", i);

    ASSERT_EXIT(b, test_ms(60000), log_b, 0);
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "state", "succeeded");
        ASSERT_FIELD(q, ids[i], "attempt", "1"); /* the crash charged nothing */
        steps_read(steplog, ids[i], STEPS, &s);
        ASSERT_EQ(s.nruns, 2);
        /* The resumed handler started at the journal's checkpoint. */
        ASSERT_EQ(s.runs[1].from, jstep[i]);
        steps_check(&s, ids[i]); /* nothing skipped */
    }
    /* Every row of the journal is gone once Redis confirmed. */
    ASSERT_EQ(db_int(journal_path(state), "SELECT count(*) FROM held", NULL), 0);
    steps_free(&s);
    jobd_client_free(c);
}

/* ======================================================================
 * 5. Redis down while jobs finish: the outcomes wait in the journal and are
 *    reported when Redis is back; an outcome whose token went stale is
 *    rejected, not applied.
 * ====================================================================== */

TEST(journal_outcomes_reported_after_redis_returns)
{
    test_install_abort_handler();
    enum { N = 3, STEPS = 30, EVERY = 5, MS = 100 };
    const char *q = "jdown", *steplog = test_tmp_path("steps.log"),
               *log = test_tmp_path("jobd.log");
    const char *state = test_tmp_path("state");
    char dir[600], url[256];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    test_private_redis_start(dir, url);

    jobd_client_t *c = test_client_at(url);
    char payload[800], ids[N][JOBD_ID_LEN + 1];
    step_payload(payload, sizeof payload, STEPS, EVERY, MS, steplog);
    for (int i = 0; i < N; i++)
        test_submit(c, q, "step", payload, 5, 0, ids[i]);
    jobd_client_free(c);

    const char *flags[] = {"--concurrency", "4", "--lease", "30", NULL};
    pid_t pid = test_jobd_start(log, url, q, state, flags, NULL);
    for (int i = 0; i < N; i++)
        CHECK_OR_DUMP(test_wait_field(q, ids[i], "state", "active", test_ms(15000)) == 0, log,
                      "job %d never became active", i);
    CHECK_OR_DUMP(wait_started(steplog, ids, N, 1, test_ms(15000)) == 0, log,
                  "handlers did not start");

    test_private_redis_stop(dir);
    /* The jobs finish while Redis is away ... */
    int64_t deadline = test_now_ms() + test_ms(30000);
    steps_t s = {0};
    for (int i = 0; i < N; i++) {
        for (;;) {
            steps_read(steplog, ids[i], STEPS, &s);
            if (s.done) break;
            CHECK_OR_DUMP(test_now_ms() < deadline, log, "job %d did not finish", i);
            test_pause_ms(20);
        }
    }
    /* ... and their outcomes wait in the journal's outbox (Guarantee 6). */
    CHECK_OR_DUMP(wait_journal(state, "SELECT outcome = 'ack' FROM held WHERE id = ?1", ids, N, 1,
                               test_ms(15000)) == 0,
                  log, "the outcomes never reached the journal");
    ASSERT_EQ(waitpid(pid, NULL, WNOHANG), 0); /* jobd stays up without Redis */

    test_private_redis_start(dir, url);
    for (int i = 0; i < N; i++)
        CHECK_OR_DUMP(test_wait_field(q, ids[i], "state", "succeeded", test_ms(30000)) == 0, log,
                      "job %d was not reported after Redis returned", i);
    for (int i = 0; i < N; i++) {
        ASSERT_FIELD(q, ids[i], "attempt", "1");
        ASSERT_FIELD_CONTAINS(q, ids[i], "result", "\"steps\":30");
        steps_read(steplog, ids[i], STEPS, &s);
        ASSERT_EQ(s.nruns, 1); /* ran once, reported once */
    }
    ASSERT_EQ(test_zcard(q, "succeeded"), N);
    ASSERT_EQ(test_zcard(q, "active"), 0);
    CHECK_OR_DUMP(wait_journal_empty(state, test_ms(10000)) == 0, log,
                  "the journal still holds the reported outcomes");

    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EXIT(pid, test_ms(15000), log, 0);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(test_log_has_job(log, ids[i], "job succeeded"), 1);
    steps_free(&s);
    test_private_redis_stop(dir);
}

/* Starts a private redis-server in <tmp>/redis (dir and url receive its
 * directory and URL) and submits one step_handler job to q on it. */
static void one_step_job_on_private_redis(const char *q, int steps, int every, int ms,
                                          const char *steplog, char *dir, char *url, char *id)
{
    snprintf(dir, 600, "%s/redis", test_tmpdir());
    test_private_redis_start(dir, url);
    jobd_client_t *c = test_client_at(url);
    char payload[800];
    step_payload(payload, sizeof payload, steps, every, ms, steplog);
    test_submit(c, q, "step", payload, 5, 0, id);
    jobd_client_free(c);
}

TEST(journal_stale_outbox_entry_is_rejected)
{
    test_install_abort_handler();
    enum { STEPS = 20, EVERY = 5, MS = 100 };
    const char *q = "jstale", *steplog = test_tmp_path("steps.log"),
               *state = test_tmp_path("state");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_a2 = test_tmp_path("jobd-a2.log");
    char dir[600], url[256], ids[1][JOBD_ID_LEN + 1];
    one_step_job_on_private_redis(q, STEPS, EVERY, MS, steplog, dir, url, ids[0]);
    const char *id = ids[0];

    const char *flags[] = {"--concurrency", "1", "--lease", "2", "--worker-id", "A", NULL};
    pid_t a = test_jobd_start(log_a, url, q, state, flags, NULL);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "active", test_ms(15000)) == 0, log_a,
                  "the job never became active");
    CHECK_OR_DUMP(wait_started(steplog, ids, 1, 1, test_ms(15000)) == 0, log_a,
                  "the handler did not start");
    char *old_token = test_hget(q, id, "token");
    ASSERT(old_token != NULL);

    /* Redis goes away; the job finishes; its outcome waits in the outbox;
     * then jobd dies before it could report it. */
    test_private_redis_stop(dir);
    CHECK_OR_DUMP(wait_journal(state, "SELECT outcome = 'ack' FROM held WHERE id = ?1", ids, 1, 1,
                               test_ms(20000)) == 0,
                  log_a, "the outcome never reached the journal");
    ASSERT_EQ(kill(a, SIGKILL), 0);
    ASSERT_EXIT(a, test_ms(10000), log_a, 128 + SIGKILL);

    /* Redis is back, and another worker takes the job over once A's lease
     * has expired: A's token is stale now. */
    test_private_redis_start(dir, url);
    jobd_client_t *c = test_client_at(url);
    jobd_claim_t cl;
    memset(&cl, 0, sizeof cl);
    int64_t deadline = test_now_ms() + test_ms(20000);
    for (;;) {
        jobd_reap_t rp;
        ASSERT_EQ(jobd_reap(c, q, &rp), 0);
        int n = jobd_claim(c, q, "thief", 60000, &cl, 1);
        ASSERT_GE(n, 0);
        if (n == 1) break;
        if (test_now_ms() >= deadline) test_fail(__FILE__, __LINE__, "could not claim the job");
        test_pause_ms(50);
    }
    ASSERT_STR_EQ(cl.id, id);
    ASSERT(strcmp(cl.token, old_token) != 0);
    ASSERT_EQ(cl.attempt, 2); /* the expired lease charged A's attempt */

    /* A restarts on the same state dir: its outbox entry is rejected. */
    pid_t a2 = test_jobd_start(log_a2, url, q, state, flags, NULL);
    CHECK_OR_DUMP(wait_log_job(log_a2, id, "stale", test_ms(15000)) == 0, log_a2,
                  "the stale outcome was not rejected");
    ASSERT_EQ(test_log_has_job(log_a2, id, "job succeeded"), 0);
    ASSERT_FIELD(q, id, "state", "active"); /* not succeeded from the old outbox */
    ASSERT_FIELD(q, id, "worker", "thief");
    ASSERT_FIELD(q, id, "token", cl.token);
    char *res = test_hget(q, id, "result");
    ASSERT(res == NULL || *res == '\0');
    free(res);
    ASSERT_EQ(test_stat_counter(q, "succeeded"), 0);
    /* The rejected entry is forgotten. */
    CHECK_OR_DUMP(wait_journal_empty(state, test_ms(10000)) == 0, log_a2,
                  "the journal still holds the rejected entry");
    ASSERT_EQ(kill(a2, SIGTERM), 0);
    ASSERT_EXIT(a2, test_ms(15000), log_a2, 0);

    /* The new holder's token still works. */
    ASSERT_EQ(jobd_ack(c, q, id, cl.token, "{\"by\":\"thief\"}"), 0);
    ASSERT_FIELD(q, id, "state", "succeeded");
    ASSERT_FIELD_CONTAINS(q, id, "result", "thief");
    jobd_claim_clear(&cl);
    free(old_token);
    jobd_client_free(c);
    test_private_redis_stop(dir);
}

/* A release that reaches Redis only after the lease expired is rejected;
 * the journal keeps its checkpoint, and when this worker claims the job
 * again it resumes from that one, newer than anything Redis holds (Issue 4:
 * "from the local journal when the same state dir holds a newer one"). */
TEST(journal_stale_release_resumes_from_local_checkpoint)
{
    test_install_abort_handler();
    enum { STEPS = 150, EVERY = 5, MS = 20 };
    const char *q = "jpark", *steplog = test_tmp_path("steps.log"), *state = test_tmp_path("state");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_a2 = test_tmp_path("jobd-a2.log");
    char dir[600], url[256], ids[1][JOBD_ID_LEN + 1];
    one_step_job_on_private_redis(q, STEPS, EVERY, MS, steplog, dir, url, ids[0]);
    const char *id = ids[0];

    /* Checkpoints stay local (sync interval 10 min); a drain stops at once. */
    const char *flags[] = {"--concurrency",
                           "1",
                           "--lease",
                           "2",
                           "--sync-interval",
                           "600",
                           "--drain-timeout",
                           "0",
                           "--kill-grace",
                           "1",
                           "--worker-id",
                           "A",
                           NULL};
    pid_t a = test_jobd_start(log_a, url, q, state, flags, NULL);
    CHECK_OR_DUMP(wait_journal(state,
                               "SELECT json_extract(checkpoint, '$.step') >= 10 FROM held "
                               "WHERE id = ?1",
                               ids, 1, 1, test_ms(20000)) == 0,
                  log_a, "no checkpoint reached the journal");
    char *redis_ckpt = test_hget(q, id, "checkpoint");
    ASSERT(redis_ckpt == NULL); /* Redis never saw one */

    /* Redis goes away, then the drain: the release waits in the outbox. */
    test_private_redis_stop(dir);
    ASSERT_EQ(kill(a, SIGTERM), 0);
    ASSERT_EXIT(a, test_ms(20000), log_a, 0);
    CHECK_OR_DUMP(wait_journal(state, "SELECT outcome = 'release' FROM held WHERE id = ?1", ids, 1,
                               1, test_ms(1000)) == 0,
                  log_a, "the release is not in the outbox");
    long long local_step = journal_step(state, id);
    ASSERT_GT(local_step, 0);

    /* Redis is back; the lease expires and is reaped: A's token is stale,
     * and the job waits in Redis with no checkpoint at all. */
    test_private_redis_start(dir, url);
    jobd_client_t *c = test_client_at(url);
    int64_t deadline = test_now_ms() + test_ms(20000);
    while (!test_field_is(q, id, "state", "queued")) {
        jobd_reap_t rp;
        ASSERT_EQ(jobd_reap(c, q, &rp), 0);
        ASSERT(test_now_ms() < deadline);
        test_pause_ms(50);
    }
    jobd_client_free(c);

    /* A again, on the same state dir: the release is stale, the checkpoint
     * is kept, and A's claim resumes from it. */
    const char *flags2[] = {"--concurrency", "1", "--lease", "2",
                            "--worker-id",   "A", "--once",  NULL};
    pid_t a2 = test_jobd_start(log_a2, url, q, state, flags2, NULL);
    ASSERT_EXIT(a2, test_ms(60000), log_a2, 0);
    ASSERT_EQ(test_log_has_job(log_a2, id, "release rejected"), 1);
    ASSERT_EQ(test_log_has_job(log_a2, id, "resuming from the local journal"), 1);
    ASSERT_FIELD(q, id, "state", "succeeded");
    steps_t st = {0};
    steps_read(steplog, id, STEPS, &st);
    ASSERT_GE(st.nruns, 2);
    ASSERT_EQ(st.runs[st.nruns - 1].from, local_step); /* not 0: Redis had nothing */
    for (int i = 0; i < STEPS; i++)
        ASSERT_GE(st.count[i], 1); /* none skipped */
    steps_free(&st);
    CHECK_OR_DUMP(wait_journal_empty(state, test_ms(10000)) == 0, log_a2,
                  "the journal still holds the job");
    test_private_redis_stop(dir);
}

/* ======================================================================
 * 6. index.fts stopped by SIGTERM three times and resumed builds the same
 *    index as one uninterrupted run.
 * ====================================================================== */

static void write_docs(const char *path, int n)
{
    static const char *const words[] = {
        "alpha",  "bravo",  "charlie", "delta",  "echo",    "foxtrot",  "golf",    "hotel",
        "india",  "juliet", "kilo",    "lima",   "mike",    "november", "oscar",   "papa",
        "quebec", "romeo",  "sierra",  "tango",  "uniform", "victor",   "whiskey", "xray",
        "yankee", "zulu",   "queue",   "worker", "lease",   "journal",  "drain",   "resume"};
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    unsigned long long x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < n; i++) {
        fprintf(f, "{\"id\":%d,\"title\":\"Document %d %s\",\"body\":\"", i, i, words[i % 32]);
        int nw = 40 + i % 40;
        for (int w = 0; w < nw; w++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            fprintf(f, "%s%s", w ? " " : "", words[x % 32]);
            if (w % 5 == 4) fprintf(f, " n%llu", (x >> 8) % 1000);
        }
        fputs("\"}\n", f);
    }
    fclose(f);
}

static long long index_docs(const char *index, const char *job)
{
    return db_int(index, "SELECT docs FROM jobd_progress WHERE job = ?1", job);
}

static void compare_indexes(const char *ia, const char *ib, int n)
{
    sqlite3 *a = db_open(ia), *b = db_open(ib);
    ASSERT(a != NULL && b != NULL);
    const char *sql = "SELECT doc_id, title, body FROM docs ORDER BY doc_id";
    sqlite3_stmt *sa = NULL, *sb = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(a, sql, -1, &sa, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(b, sql, -1, &sb, NULL), SQLITE_OK);
    long long rows = 0, prev = -1;
    for (;;) {
        int ra = sqlite3_step(sa), rb = sqlite3_step(sb);
        ASSERT_EQ(ra, rb);
        if (ra != SQLITE_ROW) break;
        long long da = sqlite3_column_int64(sa, 0), db = sqlite3_column_int64(sb, 0);
        if (da != db || da <= prev)
            test_fail(__FILE__, __LINE__, "row %lld: doc_id %lld vs %lld (previous %lld)", rows, da,
                      db, prev);
        prev = da;
        for (int col = 1; col <= 2; col++) {
            const char *ta = (const char *)sqlite3_column_text(sa, col);
            const char *tb = (const char *)sqlite3_column_text(sb, col);
            if (!ta || !tb || strcmp(ta, tb) != 0)
                test_fail(__FILE__, __LINE__, "doc %lld column %d differs", da, col);
        }
        rows++;
    }
    sqlite3_finalize(sa);
    sqlite3_finalize(sb);
    ASSERT_EQ(rows, n); /* none twice (ids strictly increase), none missed */

    /* The full-text indexes agree too, not only the stored columns. */
    static const char *const terms[] = {"journal", "drain", "zulu", "alpha AND resume",
                                        "\"lease worker\""};
    for (size_t t = 0; t < sizeof terms / sizeof *terms; t++) {
        char q[200];
        snprintf(q, sizeof q, "SELECT count(*) FROM docs WHERE docs MATCH '%s'", terms[t]);
        sqlite3_stmt *x = NULL, *y = NULL;
        ASSERT_EQ(sqlite3_prepare_v2(a, q, -1, &x, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_prepare_v2(b, q, -1, &y, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(x), SQLITE_ROW);
        ASSERT_EQ(sqlite3_step(y), SQLITE_ROW);
        ASSERT_GT(sqlite3_column_int64(x, 0), 0);
        ASSERT_EQ(sqlite3_column_int64(x, 0), sqlite3_column_int64(y, 0));
        sqlite3_finalize(x);
        sqlite3_finalize(y);
    }
    ASSERT_EQ(sqlite3_exec(a, "INSERT INTO docs(docs) VALUES('integrity-check')", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(a);
    sqlite3_close(b);
}

TEST(journal_index_fts_stopped_three_times_equals_one_run)
{
    test_install_abort_handler();
    enum { N = 20000, BATCH = 200, STOPS = 3 };
    const char *q = "jfts", *src = test_tmp_path("docs.jsonl");
    const char *ia = test_tmp_path("index-a.db"), *ib = test_tmp_path("index-b.db");
    write_docs(src, N);
    jobd_client_t *c = test_client();
    char payload[2000], a[JOBD_ID_LEN + 1], b[JOBD_ID_LEN + 1];
    snprintf(payload, sizeof payload, "{\"source\":\"%s\",\"index\":\"%s\",\"batch\":%d}", src, ia,
             BATCH);
    test_submit(c, q, "index.fts", payload, 5, 0, a);

    /* Each run is stopped by SIGTERM (drain timeout 0: stop at once) once it
     * has indexed 2,000 more documents. */
    const char *flags[] = {
        "--concurrency", "1", "--drain-timeout", "0", "--kill-grace", "10", NULL};
    long long prev = 0;
    for (int k = 0; k < STOPS; k++) {
        char name[32];
        snprintf(name, sizeof name, "jobd-%d.log", k);
        const char *log = test_tmp_path(name);
        pid_t pid = test_jobd_start(log, NULL, q, test_tmp_path("state"), flags, NULL);
        int64_t deadline = test_now_ms() + test_ms(60000);
        while (index_docs(ia, a) < prev + 2000) {
            CHECK_OR_DUMP(test_now_ms() < deadline, log, "indexing does not move (run %d)", k);
            CHECK_OR_DUMP(waitpid(pid, NULL, WNOHANG) == 0, log, "jobd exited (run %d)", k);
            test_pause_ms(5);
        }
        ASSERT_EQ(kill(pid, SIGTERM), 0);
        ASSERT_EXIT(pid, test_ms(20000), log, 0);
        /* Released with the checkpoint of the last committed batch. */
        ASSERT_FIELD(q, a, "state", "queued");
        ASSERT_FIELD(q, a, "attempt", "0");
        long long docs = index_docs(ia, a);
        printf("run %d stopped at %lld documents\n", k, docs);
        ASSERT_GT(docs, prev);
        ASSERT_LT(docs, N); /* really stopped before the end */
        ASSERT_EQ(json_field_int(q, a, "checkpoint", "docs"), docs);
        ASSERT_EQ(docs % BATCH, 0);
        prev = docs;
    }
    const char *log = test_tmp_path("jobd-last.log");
    pid_t pid = test_jobd_start(log, NULL, q, test_tmp_path("state"),
                                (const char *[]){"--concurrency", "1", "--once", NULL}, NULL);
    ASSERT_EXIT(pid, test_ms(120000), log, 0);
    ASSERT_FIELD(q, a, "state", "succeeded");
    ASSERT_FIELD(q, a, "attempt", "1");
    ASSERT_EQ(json_field_int(q, a, "result", "docs"), N);
    ASSERT_EQ(json_field_int(q, a, "result", "skipped"), 0);

    /* The same documents in one uninterrupted run, into a fresh index. */
    snprintf(payload, sizeof payload, "{\"source\":\"%s\",\"index\":\"%s\",\"batch\":%d}", src, ib,
             BATCH);
    test_submit(c, q, "index.fts", payload, 5, 0, b);
    log = test_tmp_path("jobd-b.log");
    pid = test_jobd_start(log, NULL, q, test_tmp_path("state-b"),
                          (const char *[]){"--concurrency", "1", "--once", NULL}, NULL);
    ASSERT_EXIT(pid, test_ms(120000), log, 0);
    ASSERT_FIELD(q, b, "state", "succeeded");
    ASSERT_EQ(json_field_int(q, b, "result", "docs"), N);

    compare_indexes(ia, ib, N);
    jobd_client_free(c);
}

/* index.fts shares its index with others (a search service reading it, a
 * test polling its progress): a lock held for a moment is waited for, not
 * a failed attempt ("database is locked" used to fail it now and then). */
TEST(journal_index_fts_waits_for_a_locked_index)
{
    test_install_abort_handler();
    enum { N = 2000 };
    const char *q = "jftslock", *src = test_tmp_path("docs.jsonl");
    const char *index = test_tmp_path("index.db"), *log = test_tmp_path("jobd.log");
    write_docs(src, N);
    sqlite3 *holder = NULL;
    ASSERT_EQ(sqlite3_open(index, &holder), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(holder,
                           "PRAGMA journal_mode=WAL; CREATE TABLE other (x);"
                           "BEGIN IMMEDIATE; INSERT INTO other VALUES (1);",
                           NULL, NULL, NULL),
              SQLITE_OK);
    jobd_client_t *c = test_client();
    char payload[2000], id[JOBD_ID_LEN + 1];
    snprintf(payload, sizeof payload, "{\"source\":\"%s\",\"index\":\"%s\",\"batch\":100}", src,
             index);
    test_submit(c, q, "index.fts", payload, 3, 0, id);
    pid_t pid = test_jobd_start(log, NULL, q, test_tmp_path("state"),
                                (const char *[]){"--concurrency", "1", "--once", NULL}, NULL);
    /* The write lock stays held for a while after the handler started: its
     * first write meets it. */
    CHECK_OR_DUMP(test_wait_field_set(q, id, "started_at", test_ms(20000)) == 0, log,
                  "the job never started");
    test_pause_ms(500);
    ASSERT_EQ(sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(holder);
    ASSERT_EXIT(pid, test_ms(60000), log, 0);
    ASSERT_FIELD(q, id, "state", "succeeded");
    ASSERT_FIELD(q, id, "attempt", "1");
    ASSERT_EQ(test_log_has_job(log, id, "locked"), 0);
    ASSERT_EQ(json_field_int(q, id, "result", "docs"), N);
    jobd_client_free(c);
}

/* ======================================================================
 * 7. A state dir jobd cannot use: exit 78 with a clear message, no crash.
 * ====================================================================== */

static int run_jobd_state(const char *statedir, char **err)
{
    const char *argv[] = {test_env("JOBD_BIN"),
                          "--redis",
                          test_redis_url(),
                          "--prefix",
                          test_prefix(),
                          "--queues",
                          "jbad",
                          "--handlers",
                          test_handlers_file(),
                          "--state-dir",
                          statedir,
                          "--log-format",
                          "json",
                          "--http",
                          "127.0.0.1:0",
                          NULL};
    char *out = NULL;
    int st = test_run(argv, NULL, NULL, &out, err);
    free(out);
    return st;
}

static void assert_no_crash_report(const char *err)
{
    ASSERT(strstr(err, "AddressSanitizer") == NULL);
    ASSERT(strstr(err, "runtime error") == NULL);
    ASSERT(strstr(err, "Segmentation") == NULL);
}

TEST(journal_bad_state_dir_exits_78)
{
    test_install_abort_handler();
    char *err = NULL;

    /* Garbage in journal.db. */
    const char *corrupt = test_tmp_path("corrupt");
    ASSERT_EQ(mkdir(corrupt, 0700), 0);
    char db[700];
    snprintf(db, sizeof db, "%s/journal.db", corrupt);
    FILE *f = fopen(db, "w");
    ASSERT(f != NULL);
    for (int i = 0; i < 1000; i++)
        fprintf(f, "garbage line %d: this is not an SQLite database\n", i);
    fclose(f);
    ASSERT_EQ(run_jobd_state(corrupt, &err), 78);
    printf("corrupt: %s", err);
    ASSERT_CONTAINS(err, db);
    ASSERT_CONTAINS(err, "not a database");
    assert_no_crash_report(err);
    free(err);

    /* A path under a regular file (chmod would not stop root). */
    const char *plain = test_tmp_path("plain-file");
    test_write_file(plain, "I am a file\n");
    char sub[700];
    snprintf(sub, sizeof sub, "%s/sub", plain);
    ASSERT_EQ(run_jobd_state(sub, &err), 78);
    printf("unwritable: %s", err);
    ASSERT_CONTAINS(err, sub);
    ASSERT_CONTAINS(err, "Not a directory");
    assert_no_crash_report(err);
    free(err);

    /* A journal written by a newer jobd. */
    const char *newer = test_tmp_path("newer");
    ASSERT_EQ(mkdir(newer, 0700), 0);
    snprintf(db, sizeof db, "%s/journal.db", newer);
    sqlite3 *h = NULL;
    ASSERT_EQ(sqlite3_open(db, &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ASSERT_EQ(run_jobd_state(newer, &err), 78);
    printf("newer: %s", err);
    ASSERT_CONTAINS(err, db);
    ASSERT_CONTAINS(err, "99");
    int known = 0;
    while (jobd_sql_migrations[known].name)
        known++;
    char kv[64];
    snprintf(kv, sizeof kv, "version %d", known);
    ASSERT_CONTAINS(err, kv);
    assert_no_crash_report(err);
    free(err);

    /* And the stderr message is a single clear line, not a log dump. */
    ASSERT_EQ(run_jobd_state(sub, &err), 78);
    ASSERT(strncmp(err, "jobd: ", 6) == 0);
    free(err);
}
