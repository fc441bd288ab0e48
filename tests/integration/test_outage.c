/* test_outage.c - Redis outages shorter than the lease (CONTRACT guarantee
 * 6), counting lost leases, and the exit status of `jobd --once`: the real
 * jobd binary against a private redis-server that the tests pause (SIGSTOP),
 * stop and restart, real exec handlers (tests/fixtures/), real signals.
 *
 * The pauses are the faults under test, so they last a fixed time (0.95 x
 * the lease); everything else waits for a condition with a deadline. While
 * Redis is paused the tests read only files (handler logs, the journal). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc.h"
#include "testlib.h"

/* ---- helpers ---- */

/* Redis's clock (TIME) in ms; -1 if unreachable. */
static long long redis_now_ms(void)
{
    redisReply *r = test_rcmd("TIME");
    long long ms = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    if (r) freeReplyObject(r);
    return ms;
}

/* Waits for the holder's next extension of the job's lease, then until the
 * lease has at most left_ms to run on Redis's clock: a pause of longer than
 * left_ms then lets it expire, and the holder's next extension comes
 * (lease/3 - (lease - left_ms)) into the pause. */
static int wait_lease_left(const char *q, const char *id, long long left_ms, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    long long first = test_hget_ll(q, id, "lease_until");
    for (;;) {
        long long until = test_hget_ll(q, id, "lease_until"), now = redis_now_ms();
        if (until > 0 && until != first && now > 0 && until - now <= left_ms) return 0;
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(5);
    }
}

/* A field of the queue's reaper clock (PREFIX:{Q}:reaper) as an integer;
 * -1 if missing. */
static long long reaper_field(const char *q, const char *field)
{
    char key[1024];
    test_qkey(key, sizeof key, q, "reaper");
    redisReply *r = test_rcmd("HGET %s %s", key, field);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    if (r) freeReplyObject(r);
    return v;
}

/* Polls until the queue's reapers run as usual: the clock exists and the
 * hold that the first reap of a new queue sets is over. A pause after this
 * is an outage the reaper clock must notice by itself. (A jobd reaps first
 * within lease/3 of starting: a jobd that keeps no clock is taken as
 * running once that time, 1 s here, has passed without one.) */
static int wait_reaper_running(const char *q, int64_t ms)
{
    int64_t start = test_now_ms(), deadline = start + ms;
    for (;;) {
        long long last = reaper_field(q, "last"), hold = reaper_field(q, "hold_until");
        if (last > 0 && hold < redis_now_ms()) return 0;
        if (last < 0 && test_now_ms() - start > 1500) return 0;
        if (test_now_ms() >= deadline) return -1;
        test_pause_ms(20);
    }
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

/* A counter from jobd's /metrics (name followed by a space); -1 if absent. */
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

/* An integer from the journal at <statedir>/journal.db (one text parameter);
 * -1 if there is no such row. */
static long long db_int(const char *statedir, const char *sql, const char *param)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/journal.db", statedir);
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (param) sqlite3_bind_text(st, 1, param, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                v = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static void step_payload(char *out, size_t len, int steps, int every, int ms, const char *log)
{
    snprintf(out, len, "{\"steps\":%d,\"every\":%d,\"ms\":%d,\"log\":\"%s\"}", steps, every, ms,
             log);
}

/* The first step and attempt of the step handler's n-th START line for id
 * (0-based); -1 each if there is no such line. */
static void step_start(const char *path, const char *id, int n, long *from, int *attempt)
{
    *from = -1;
    *attempt = -1;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    int seen = 0;
    while (getline(&line, &cap, f) > 0) {
        char kind[16], jid[64];
        long pid, a, b;
        if (sscanf(line, "%15s %63s %ld %ld %ld", kind, jid, &pid, &a, &b) == 5 &&
            strcmp(kind, "START") == 0 && strcmp(jid, id) == 0 && seen++ == n) {
            *from = a;
            *attempt = (int)b;
            break;
        }
    }
    free(line);
    fclose(f);
}

/* The step of the job's checkpoint in Redis; -1 if none. */
static long long ckpt_step(const char *q, const char *id)
{
    char *ck = test_hget(q, id, "checkpoint");
    json_t *o = ck ? json_loads(ck, JSON_DECODE_ANY, NULL) : NULL;
    json_t *v = json_object_get(o, "step");
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(o);
    free(ck);
    return n;
}

/* The highest step the step handler logged for id; -1 if none. */
static long max_step(const char *path, const char *id)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    long max = -1;
    while (getline(&line, &cap, f) > 0) {
        char kind[16], jid[64];
        long st;
        if (sscanf(line, "%15s %63s %ld", kind, jid, &st) == 3 && strcmp(kind, "STEP") == 0 &&
            strcmp(jid, id) == 0 && st > max)
            max = st;
    }
    free(line);
    fclose(f);
    return max;
}

/* Starts a private redis-server under the test's directory. */
static void private_redis(char *dir, char *url)
{
    snprintf(dir, 600, "%s/redis", test_tmpdir());
    test_private_redis_start(dir, url);
}

/* Pauses the private redis-server for ms (the fault under test), running
 * during(arg) first while it is paused. */
static void pause_redis(int ms, void (*during)(void *), void *arg)
{
    ASSERT_GT(test_private_redis_pid, 0);
    int64_t end = test_now_ms() + ms;
    ASSERT_EQ(kill(test_private_redis_pid, SIGSTOP), 0);
    if (during) during(arg);
    int64_t left = end - test_now_ms();
    if (left > 0) test_pause_ms((int)left);
    ASSERT_EQ(kill(test_private_redis_pid, SIGCONT), 0);
}

/* ======================================================================
 * 1. Redis paused for 0.95 x the lease while a job finishes: the job ends
 *    succeeded at attempt 1 with its result; nothing was reaped.
 * ====================================================================== */

/* A handlers file with "t.gate": waits until the file <tmp>/gate exists,
 * touches <tmp>/gate.done, prints {"result":{"attempt":N}} and exits 0.
 * The test decides when the job finishes. */
static const char *gate_handlers(void)
{
    const char *path = test_tmp_path("gate-handlers.json");
    char text[2048];
    snprintf(text, sizeof text,
             "{\"t.gate\": {\"exec\": [\"/bin/sh\", \"-c\", "
             "\"while [ ! -e %s ]; do sleep 0.02; done; touch %s; "
             "echo \\\"{\\\\\\\"result\\\\\\\":{\\\\\\\"attempt\\\\\\\":$JOBD_ATTEMPT}}\\\"\"]}}\n",
             test_tmp_path("gate"), test_tmp_path("gate.done"));
    test_write_file(path, text);
    return path;
}

/* While Redis is paused: open the gate late in the pause, once every
 * worker has queued reaps and the holder its extension; the handler
 * finishes. */
static void open_gate(void *arg)
{
    int *done = arg;
    test_pause_ms(1200); /* part of the fault: the job ends late in the pause */
    test_write_file(test_tmp_path("gate"), "");
    int64_t deadline = test_now_ms() + 1400;
    while (!(*done = access(test_tmp_path("gate.done"), F_OK) == 0) && test_now_ms() < deadline)
        test_pause_ms(10);
}

TEST(outage_redis_pause_while_job_finishes)
{
    test_install_abort_handler();
    const char *q = "opause";
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    char dir[600], url[256], id[JOBD_ID_LEN + 1];
    private_redis(dir, url);

    /* A holds the job (lease 3 s, extended every 1 s). B, the other worker,
     * has a short lease, so its reaper runs every 0.17..0.33 s: during the
     * pause it queues reaps well before A's next extension. */
    const char *fa[] = {"--lease", "3",          "--worker-id",   "A", "--concurrency",
                        "1",       "--handlers", gate_handlers(), NULL};
    const char *fb[] = {"--lease", "1",          "--worker-id",   "B", "--concurrency",
                        "1",       "--handlers", gate_handlers(), NULL};
    pid_t a = test_jobd_start(log_a, url, q, "state-a", fa, NULL);
    ASSERT_EQ(test_wait_log(log_a, test_ms(10000), "Redis ready", NULL), 0);
    jobd_client_t *c = test_client_at(url);
    test_submit(c, q, "t.gate", "{}", 5, 0, id);
    jobd_client_free(c);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "active", test_ms(10000)) == 0, log_a,
                  "the job never became active");
    ASSERT_FIELD(q, id, "worker", "A");
    pid_t b = test_jobd_start(log_b, url, q, "state-b", fb, NULL);
    ASSERT_EQ(test_wait_log(log_b, test_ms(10000), "Redis ready", NULL), 0);
    ASSERT_EQ(wait_reaper_running(q, test_ms(10000)), 0);

    /* Pause once the lease has less than the pause left: without its
     * holder's extension it expires while Redis is paused. The handler
     * finishes during the pause. */
    ASSERT_EQ(wait_lease_left(q, id, 2750, test_ms(5000)), 0);
    int done = 0;
    pause_redis(2850, open_gate, &done);
    ASSERT(done); /* the job really finished while Redis was paused */

    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(15000)) == 0, log_a,
                  "the job did not end succeeded");
    if (!test_field_is(q, id, "attempt", "1")) test_dump_log(log_a);
    ASSERT_FIELD(q, id, "attempt", "1");
    ASSERT_FIELD(q, id, "claims", "1");
    ASSERT_FIELD(q, id, "worker", "A");
    ASSERT_FIELD_CONTAINS(q, id, "result", "\"attempt\":1");
    ASSERT_EQ(test_stat_counter(q, "reaped"), 0);
    ASSERT_EQ(test_log_has_job(log_a, id, "stale"), 0);

    ASSERT_EQ(kill(a, SIGTERM), 0);
    ASSERT_EQ(kill(b, SIGTERM), 0);
    ASSERT_EXIT(a, test_ms(15000), log_a, 0);
    ASSERT_EXIT(b, test_ms(15000), log_b, 0);
    test_private_redis_stop(dir);
}

/* ======================================================================
 * 2. The same for a drain: SIGTERM during the pause; the job is released
 *    uncharged and resumes from its checkpoint on the other worker.
 * ====================================================================== */

typedef struct {
    pid_t a;
    const char *steplog, *id;
    int termed;
} drain_during_t;

/* While Redis is paused: SIGTERM A once the pause has outlasted every
 * worker's reap interval, and wait for the handler to stop (TERM line). */
static void drain_during_pause(void *arg)
{
    drain_during_t *d = arg;
    test_pause_ms(1200); /* part of the fault: the drain comes late in the pause */
    ASSERT_EQ(kill(d->a, SIGTERM), 0);
    char term[128];
    snprintf(term, sizeof term, "TERM %s", d->id);
    d->termed = test_wait_log(d->steplog, 1400, term, NULL) == 0;
}

TEST(outage_redis_pause_during_drain_releases_uncharged)
{
    test_install_abort_handler();
    const char *q = "odrain", *steplog = test_tmp_path("steps.log");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    char dir[600], url[256], id[JOBD_ID_LEN + 1];
    private_redis(dir, url);

    const char *fa[] = {
        "--lease",      "3", "--worker-id", "A", "--concurrency", "1", "--drain-timeout", "0",
        "--kill-grace", "8", NULL};
    const char *fb[] = {"--lease", "1", "--worker-id", "B", "--concurrency", "1", NULL};
    pid_t a = test_jobd_start(log_a, url, q, "state-a", fa, NULL);
    ASSERT_EQ(test_wait_log(log_a, test_ms(10000), "Redis ready", NULL), 0);
    jobd_client_t *c = test_client_at(url);
    char p[800];
    step_payload(p, sizeof p, 100, 1, 50, steplog);
    test_submit(c, q, "step", p, 5, 0, id);
    jobd_client_free(c);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "active", test_ms(10000)) == 0, log_a,
                  "the job never became active");
    ASSERT_FIELD(q, id, "worker", "A");
    pid_t b = test_jobd_start(log_b, url, q, "state-b", fb, NULL);
    ASSERT_EQ(test_wait_log(log_b, test_ms(10000), "Redis ready", NULL), 0);
    ASSERT_EQ(wait_reaper_running(q, test_ms(10000)), 0);
    ASSERT_EQ(test_wait_log(steplog, test_ms(10000), "STEP", NULL), 0);

    ASSERT_EQ(wait_lease_left(q, id, 2750, test_ms(5000)), 0);
    drain_during_t d = {a, steplog, id, 0};
    pause_redis(2850, drain_during_pause, &d);
    ASSERT(d.termed); /* the handler stopped at a checkpoint during the pause */

    /* A hands the lease back once Redis is back, and exits 0. */
    ASSERT_EXIT(a, test_ms(15000), log_a, 0);
    CHECK_OR_DUMP(wait_log_job(log_a, id, "job released", test_ms(1000)) == 0, log_a,
                  "A did not release the job");
    /* B resumes it: attempt 1 again, from A's checkpoint. */
    int64_t deadline = test_now_ms() + test_ms(15000);
    long from = -1;
    int attempt = -1;
    for (;;) {
        step_start(steplog, id, 1, &from, &attempt);
        if (attempt >= 0) break;
        CHECK_OR_DUMP(test_now_ms() < deadline, log_b, "B never ran the job");
        test_pause_ms(20);
    }
    if (attempt != 1) test_dump_log(log_a);
    ASSERT_EQ(attempt, 1);
    ASSERT_GT(from, 0);
    ASSERT_EQ(test_stat_counter(q, "reaped"), 0);
    ASSERT_EQ(test_stat_counter(q, "released"), 1);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(20000)) == 0, log_b,
                  "B did not finish the job");
    ASSERT_FIELD(q, id, "attempt", "1");
    ASSERT_FIELD(q, id, "worker", "B");

    ASSERT_EQ(kill(b, SIGTERM), 0);
    ASSERT_EXIT(b, test_ms(15000), log_b, 0);
    test_private_redis_stop(dir);
}

/* ======================================================================
 * 3. A paused jobd loses a checkpointing job's lease to another worker:
 *    its jobd_lease_lost_total is exactly 1 (extend and checkpoint sync
 *    both find out; the lease was lost once).
 * ====================================================================== */

TEST(outage_lease_lost_counted_once)
{
    test_install_abort_handler();
    const char *q = "olost", *steplog = test_tmp_path("steps.log");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_b = test_tmp_path("jobd-b.log");
    char dir[600], url[256], id[JOBD_ID_LEN + 1];
    private_redis(dir, url);

    const char *fa[] = {"--lease", "2", "--worker-id", "A", "--concurrency", "1", NULL};
    const char *fb[] = {"--lease",         "2", "--worker-id", "B", "--concurrency", "1",
                        "--drain-timeout", "0", NULL};
    pid_t a = test_jobd_start(log_a, url, q, "state-a", fa, NULL);
    int port = httpc_jobd_port(log_a, test_ms(10000));
    ASSERT_GT(port, 0);
    ASSERT_EQ(test_wait_log(log_a, test_ms(10000), "Redis ready", NULL), 0);
    jobd_client_t *c = test_client_at(url);
    char p[800];
    step_payload(p, sizeof p, 200, 1, 50, steplog);
    test_submit(c, q, "step", p, 5, 0, id);
    jobd_client_free(c);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "active", test_ms(10000)) == 0, log_a,
                  "the job never became active");
    ASSERT_FIELD(q, id, "worker", "A");
    pid_t b = test_jobd_start(log_b, url, q, "state-b", fb, NULL);
    ASSERT_EQ(test_wait_log(log_b, test_ms(10000), "Redis ready", NULL), 0);
    /* Stop A just after a checkpoint sync (every 1 s), once it has read
     * newer checkpoints: when it wakes, its extension and its checkpoint
     * sync both go out, and both are rejected. */
    long long synced = ckpt_step(q, id);
    int64_t deadline = test_now_ms() + test_ms(10000);
    while (ckpt_step(q, id) == synced) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log_a, "no checkpoint sync");
        test_pause_ms(5);
    }
    synced = ckpt_step(q, id);
    while (max_step(steplog, id) < synced + 3) {
        CHECK_OR_DUMP(test_now_ms() < deadline, log_a, "the handler stopped stepping");
        test_pause_ms(5);
    }
    ASSERT_EQ(kill(a, SIGSTOP), 0);
    if (test_wait_field(q, id, "worker", "B", test_ms(20000)) < 0) {
        kill(a, SIGCONT);
        test_dump_log(log_b);
        test_fail(__FILE__, __LINE__, "B never took the job over");
    }
    ASSERT_EQ(kill(a, SIGCONT), 0);
    CHECK_OR_DUMP(wait_log_job(log_a, id, "handler stopped: lease lost", test_ms(10000)) == 0,
                  log_a, "A did not stop its copy of the job");
    long long lost = metric(port, "jobd_lease_lost_total");
    if (lost != 1) test_dump_log(log_a);
    ASSERT_EQ(lost, 1);

    ASSERT_EQ(kill(a, SIGTERM), 0);
    ASSERT_EQ(kill(b, SIGTERM), 0);
    ASSERT_EXIT(a, test_ms(15000), log_a, 0);
    ASSERT_EXIT(b, test_ms(15000), log_b, 0);
    test_private_redis_stop(dir);
}

/* ======================================================================
 * 4. An outcome that Redis applied but whose reply was lost (jobd died
 *    before reading it) is sent again from the journal by the next jobd:
 *    Redis says it was already applied; no lost lease, no stale outcome.
 * ====================================================================== */

TEST(outage_resent_outcome_already_applied)
{
    test_install_abort_handler();
    const char *q = "oresend", *rec = test_tmp_path("handler.log"), *state = test_tmp_path("state");
    const char *log_a = test_tmp_path("jobd-a.log"), *log_a2 = test_tmp_path("jobd-a2.log");
    char dir[600], url[256], id[JOBD_ID_LEN + 1];
    private_redis(dir, url);

    const char *fa[] = {"--lease", "30", "--worker-id", "A", "--concurrency", "1", NULL};
    pid_t a = test_jobd_start(log_a, url, q, state, fa, NULL);
    jobd_client_t *c = test_client_at(url);
    char p[800];
    snprintf(p, sizeof p, "{\"mode\":\"sleep\",\"ms\":1500,\"log\":\"%s\"}", rec);
    test_submit(c, q, "t.exec", p, 5, 0, id);
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "active", test_ms(10000)) == 0, log_a,
                  "the job never became active");
    char *token = test_hget(q, id, "token");
    ASSERT(token != NULL && *token);

    /* Redis pauses; the job finishes; A journals its outcome and sends the
     * ack, which waits in the socket; A dies before any reply. */
    ASSERT_EQ(kill(test_private_redis_pid, SIGSTOP), 0);
    char done[128];
    snprintf(done, sizeof done, "DONE %s 1", id);
    ASSERT_EQ(test_wait_log(rec, test_ms(10000), done, NULL), 0);
    int64_t deadline = test_now_ms() + test_ms(10000);
    while (db_int(state, "SELECT outcome = 'ack' FROM held WHERE id = ?1", id) != 1) {
        if (test_now_ms() >= deadline) {
            kill(test_private_redis_pid, SIGCONT);
            test_dump_log(log_a);
            test_fail(__FILE__, __LINE__, "the outcome never reached the journal");
        }
        test_pause_ms(20);
    }
    ASSERT_EQ(kill(a, SIGKILL), 0);
    ASSERT_EXIT(a, test_ms(10000), log_a, 128 + SIGKILL);
    ASSERT_EQ(kill(test_private_redis_pid, SIGCONT), 0);
    /* Redis ran the ack A left in the socket. */
    CHECK_OR_DUMP(test_wait_field(q, id, "state", "succeeded", test_ms(10000)) == 0, log_a,
                  "A's ack was not applied");

    /* A restarts on the same state directory and reports the journal's
     * outcome again: already applied, which is success. */
    pid_t a2 = test_jobd_start(log_a2, url, q, state, fa, NULL);
    int port = httpc_jobd_port(log_a2, test_ms(10000));
    ASSERT_GT(port, 0);
    CHECK_OR_DUMP(wait_log_job(log_a2, id, "job succeeded", test_ms(10000)) == 0, log_a2,
                  "the re-sent outcome was not taken as applied");
    ASSERT_EQ(test_log_has_job(log_a2, id, "stale"), 0);
    ASSERT_EQ(metric(port, "jobd_lease_lost_total"), 0);
    ASSERT_FIELD(q, id, "state", "succeeded");
    ASSERT_FIELD(q, id, "attempt", "1");
    ASSERT_FIELD_CONTAINS(q, id, "result", "\"attempt\":1");
    ASSERT_EQ(db_int(state, "SELECT count(*) FROM held", NULL), 0);

    ASSERT_EQ(kill(a2, SIGTERM), 0);
    ASSERT_EXIT(a2, test_ms(15000), log_a2, 0);

    /* The same through libjobd: a re-sent ack with the applied token
     * succeeds, and leaves the stored result alone; any other token is
     * stale. */
    ASSERT_EQ(jobd_ack(c, q, id, token, "{\"again\":true}"), 0);
    ASSERT_FIELD_CONTAINS(q, id, "result", "\"attempt\":1");
    ASSERT_EQ(jobd_ack(c, q, id, "1.1", "{}"), JOBD_ESTALE);
    free(token);
    jobd_client_free(c);
    test_private_redis_stop(dir);
}

/* ======================================================================
 * 5. jobd --once: exit 0 when every job it finished succeeded (a retry
 *    that later succeeded included), 1 when one ended dead.
 * ====================================================================== */

/* A handlers file with "t.flaky": fails on attempt 1, succeeds after. */
static const char *flaky_handlers(void)
{
    const char *path = test_tmp_path("flaky-handlers.json");
    test_write_file(path, "{\"t.flaky\": {\"exec\": [\"/bin/sh\", \"-c\", "
                          "\"[ \\\"$JOBD_ATTEMPT\\\" -ge 2 ] && echo '{\\\"result\\\":1}'\"]}}\n");
    return path;
}

TEST(once_exit_status_dead_is_1)
{
    test_install_abort_handler();
    const char *log1 = test_tmp_path("jobd-1.log"), *log2 = test_tmp_path("jobd-2.log");
    jobd_client_t *c = test_client();
    char ok[JOBD_ID_LEN + 1], flaky[JOBD_ID_LEN + 1], dead[JOBD_ID_LEN + 1];
    const char *flags[] = {"--once", "--handlers",  flaky_handlers(), "--retry-base",
                           "100ms",  "--retry-cap", "200ms",          NULL};

    /* Every job succeeded, one of them after a retry: 0. */
    test_submit(c, "once-ok", "noop", "{}", 0, 0, ok);
    test_submit(c, "once-ok", "t.flaky", "{}", 3, 0, flaky);
    pid_t pid = test_jobd_start(log1, NULL, "once-ok", "state-1", flags, NULL);
    ASSERT_EXIT(pid, test_ms(30000), log1, 0);
    ASSERT_FIELD("once-ok", ok, "state", "succeeded");
    ASSERT_FIELD("once-ok", flaky, "state", "succeeded");
    ASSERT_FIELD("once-ok", flaky, "attempt", "2");

    /* One job ended dead: 1. */
    test_submit(c, "once-dead", "noop", "{}", 0, 0, ok);
    test_submit(c, "once-dead", "fail", "{\"message\":\"no luck\"}", 1, 0, dead);
    pid = test_jobd_start(log2, NULL, "once-dead", "state-2", flags, NULL);
    ASSERT_EXIT(pid, test_ms(30000), log2, 1);
    ASSERT_FIELD("once-dead", ok, "state", "succeeded");
    ASSERT_FIELD("once-dead", dead, "state", "dead");
    jobd_client_free(c);
}

/* ======================================================================
 * 6. jobd --once exits 69 when Redis stays unreachable longer than the
 *    drain timeout: never reachable, or gone in the middle of a job.
 * ====================================================================== */

TEST(once_redis_unreachable_exits_69)
{
    test_install_abort_handler();
    const char *log1 = test_tmp_path("jobd-1.log"), *log2 = test_tmp_path("jobd-2.log");
    char dir[600], url[256], nowhere[700], id[JOBD_ID_LEN + 1];
    const char *flags[] = {"--once", "--drain-timeout", "1", "--kill-grace", "1", NULL};

    /* Never reachable. */
    snprintf(nowhere, sizeof nowhere, "unix://%s/nowhere.sock", test_tmpdir());
    pid_t pid = test_jobd_start(log1, nowhere, "ogone", "state-1", flags, NULL);
    ASSERT_EXIT(pid, test_ms(15000), log1, 69);

    /* Gone while a job runs: jobd drains (the job's lease is left to expire
     * and its outcome stays in the journal) and exits 69. */
    private_redis(dir, url);
    jobd_client_t *c = test_client_at(url);
    test_submit(c, "ogone", "sleep", "{\"ms\":60000}", 0, 0, id);
    jobd_client_free(c);
    pid = test_jobd_start(log2, url, "ogone", "state-2", flags, NULL);
    CHECK_OR_DUMP(test_wait_field("ogone", id, "state", "active", test_ms(10000)) == 0, log2,
                  "the job never became active");
    test_private_redis_stop(dir);
    ASSERT_EXIT(pid, test_ms(20000), log2, 69);
}

/* ======================================================================
 * 7. A --once run stopped by signals whose drain could not complete (the
 *    release never reached Redis) does not exit 0: 75.
 * ====================================================================== */

TEST(once_forced_drain_is_not_0)
{
    test_install_abort_handler();
    const char *log = test_tmp_path("jobd.log");
    char dir[600], url[256], id[JOBD_ID_LEN + 1];
    private_redis(dir, url);
    jobd_client_t *c = test_client_at(url);
    test_submit(c, "oforced", "sleep", "{\"ms\":60000}", 0, 0, id);
    jobd_client_free(c);
    const char *flags[] = {"--once", "--drain-timeout", "60", "--kill-grace", "1", NULL};
    pid_t pid = test_jobd_start(log, url, "oforced", "state", flags, NULL);
    CHECK_OR_DUMP(test_wait_field("oforced", id, "state", "active", test_ms(10000)) == 0, log,
                  "the job never became active");
    test_private_redis_stop(dir);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "connection lost", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_EQ(test_wait_log(log, test_ms(10000), "draining", NULL), 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0); /* skip the wait: stop and release */
    ASSERT_EXIT(pid, test_ms(20000), log, 75);
}
