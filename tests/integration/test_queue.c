/* Queue protocol tests through libjobd against the real test redis-server.
 *
 * Each test has its own key prefix (test_client()), so they share the
 * fixture's server in parallel. Tests that must disturb a whole server
 * (SCRIPT FLUSH, maxmemory) start a private one. Waiting is polling a
 * condition with a deadline, never a sleep that stands in for an event. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

#define IDSZ (JOBD_ID_LEN + 1)

static void spec_for(jobd_job_spec_t *s, const char *queue)
{
    jobd_job_spec_init(s);
    s->queue = queue;
    s->type = "noop";
    s->payload_json = "{\"n\":1}";
}

static void submit(jobd_client_t *c, const char *queue, int prio, int64_t delay_ms, char *id)
{
    jobd_job_spec_t s;
    spec_for(&s, queue);
    s.priority = prio;
    s.delay_ms = delay_ms;
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
}

static void submit_max(jobd_client_t *c, const char *queue, int max_attempts, char *id)
{
    jobd_job_spec_t s;
    spec_for(&s, queue);
    s.max_attempts = max_attempts;
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
}

/* Key PREFIX:{queue}:suffix of this test, in a static buffer (4 in turn). */
static const char *qkey(const char *queue, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *qkey(const char *queue, const char *fmt, ...)
{
    static char bufs[4][600];
    static int next;
    char *b = bufs[next++ % 4];
    char suffix[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    snprintf(b, 600, "%s:{%s}:%s", test_prefix(), queue, suffix);
    return b;
}

/* A field of a job hash as a new string ("" when absent). */
static char *job_field(const char *queue, const char *id, const char *field)
{
    redisReply *r = test_cmd("HGET %s %s", qkey(queue, "job:%s", id), field);
    char *v = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

#define ASSERT_JOB_FIELD(queue, id, field, want)                                                   \
    do {                                                                                           \
        char *v_ = job_field(queue, id, field);                                                    \
        ASSERT_STR_EQ(v_, want);                                                                   \
        free(v_);                                                                                  \
    } while (0)

/* 1 if id is a member of the state set PREFIX:{queue}:set. */
static int in_set(const char *queue, const char *set, const char *id)
{
    redisReply *r = test_cmd("ZSCORE %s %s", qkey(queue, "%s", set), id);
    int in = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return in;
}

/* Claims one job, polling until one comes or ms pass. Returns 1 or 0. */
static int claim_within(jobd_client_t *c, const char *queue, int64_t lease_ms, jobd_claim_t *j,
                        int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    for (;;) {
        int n = jobd_claim(c, queue, "w-test", lease_ms, j, 1);
        ASSERT_GE(n, 0);
        if (n == 1) return 1;
        if (test_now_ms() >= deadline) return 0;
        test_pause_ms(5);
    }
}

/* Runs reap until it reports something (an expired lease moved), or fails
 * the test after ms. */
static jobd_reap_t reap_within(jobd_client_t *c, const char *queue, int64_t ms)
{
    int64_t deadline = test_now_ms() + ms;
    jobd_reap_t r;
    for (;;) {
        ASSERT_EQ(jobd_reap(c, queue, &r), 0);
        if (r.requeued + r.dead + r.canceled > 0) return r;
        if (test_now_ms() >= deadline) test_fail(__FILE__, __LINE__, "reap found nothing");
        test_pause_ms(5);
    }
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Sorts n ids (IDSZ bytes each) and asserts they are distinct. */
static void assert_distinct(char *ids, size_t n)
{
    qsort(ids, n, IDSZ, cmp_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ids + (i - 1) * IDSZ, ids + i * IDSZ) == 0)
            test_fail(__FILE__, __LINE__, "id %s appears twice", ids + i * IDSZ);
}

/* ---- ordering and scheduling ---- */

TEST(queue_priority_then_fifo)
{
    jobd_client_t *c = test_client();
    char ids[6][IDSZ];
    int prios[6] = {1, 5, 9, 5, 1, 9};
    for (int i = 0; i < 6; i++)
        submit(c, "pq", prios[i], 0, ids[i]);
    /* Expected claim order: 9s in submit order, then 5s, then 1s. */
    int order[6] = {2, 5, 1, 3, 0, 4};
    for (int i = 0; i < 6; i++) {
        jobd_claim_t j;
        ASSERT_EQ(jobd_claim(c, "pq", "w1", 30000, &j, 1), 1);
        ASSERT_STR_EQ(j.id, ids[order[i]]);
        ASSERT_EQ(j.attempt, 1);
        ASSERT(j.envelope != NULL);
        ASSERT(j.checkpoint == NULL);
        ASSERT_EQ(jobd_ack(c, "pq", j.id, j.token, "{\"ok\":true}"), 0);
        jobd_claim_clear(&j);
    }
    jobd_claim_t none;
    ASSERT_EQ(jobd_claim(c, "pq", "w1", 30000, &none, 1), 0);
    jobd_client_free(c);
}

/* Submits one delayed job (delay_ms, or run_at_ms when at is set) and
 * checks it is claimable only once its time has come. */
static void check_delayed(jobd_client_t *c, const char *queue, int at)
{
    jobd_job_spec_t s;
    spec_for(&s, queue);
    char id[IDSZ];
    int64_t t0 = test_now_ms();
    if (at)
        s.run_at_ms = jobd_now_ms() + 300;
    else
        s.delay_ms = 300;
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
    ASSERT_JOB_FIELD(queue, id, "state", "scheduled");
    ASSERT(in_set(queue, "scheduled", id));
    ASSERT_EQ(test_zcard(queue, "ready"), 0);
    jobd_claim_t j;
    int n = jobd_claim(c, queue, "w1", 30000, &j, 1);
    /* Only meaningful while run_at is surely ahead (a slow sanitizer run
     * could reach it before this first claim). */
    if (test_now_ms() - t0 < 250) ASSERT_EQ(n, 0);
    if (n == 0) ASSERT_EQ(claim_within(c, queue, 30000, &j, test_ms(5000)), 1);
    /* Clocks: run_at is on this host's wall clock, the check on the Redis
     * server's, the same host here; allow the millisecond rounding. */
    ASSERT_GE(test_now_ms() - t0, 295);
    ASSERT_STR_EQ(j.id, id);
    ASSERT_EQ(j.attempt, 1);
    ASSERT_JOB_FIELD(queue, id, "state", "active");
    ASSERT(!in_set(queue, "scheduled", id));
    ASSERT(json_is_string(json_object_get(j.envelope, "run_at")));
    jobd_claim_clear(&j);
}

TEST(queue_delayed_job)
{
    jobd_client_t *c = test_client();
    check_delayed(c, "dq", 0);
    check_delayed(c, "dq", 1);
    jobd_client_free(c);
}

/* ---- submission ---- */

TEST(queue_idempotency_key)
{
    jobd_client_t *c = test_client();
    jobd_job_spec_t s;
    spec_for(&s, "iq");
    s.idempotency_key = "order-42";
    char a[IDSZ], b[IDSZ];
    int created = -1;
    ASSERT_EQ(jobd_submit(c, &s, a, &created), 0);
    ASSERT_EQ(created, 1);
    ASSERT_EQ(jobd_submit(c, &s, b, &created), 0);
    ASSERT_EQ(created, 0);
    ASSERT_STR_EQ(b, a);
    ASSERT_EQ(test_zcard("iq", "ready"), 1);
    redisReply *r = test_cmd("KEYS %s", qkey("iq", "job:*"));
    ASSERT_EQ(r->elements, 1);
    freeReplyObject(r);
    /* The key's TTL bounds how long it dedupes. */
    ASSERT_GT(test_cmd_int("TTL %s", qkey("iq", "idem:order-42")), 0);

    /* Within one batch call too: the second job gets the first's id. */
    jobd_job_spec_t two[2];
    spec_for(&two[0], "iq");
    spec_for(&two[1], "iq");
    two[0].idempotency_key = two[1].idempotency_key = "batch-key";
    char ids[2 * IDSZ];
    ASSERT_EQ(jobd_submit_batch(c, two, 2, ids), 0);
    ASSERT_STR_EQ(ids + IDSZ, ids);
    ASSERT_EQ(test_zcard("iq", "ready"), 2);

    /* A caller-chosen id that exists already is not created again. */
    spec_for(&s, "iq");
    s.id = "my-job-1";
    ASSERT_EQ(jobd_submit(c, &s, a, &created), 0);
    ASSERT_EQ(created, 1);
    ASSERT_EQ(jobd_submit(c, &s, b, &created), 0);
    ASSERT_EQ(created, 0);
    ASSERT_STR_EQ(b, "my-job-1");
    ASSERT_EQ(test_zcard("iq", "ready"), 3);
    jobd_client_free(c);
}

TEST(queue_batch_100k)
{
    jobd_client_t *c = test_client();
    size_t n = 100000;
    jobd_job_spec_t *specs = calloc(n, sizeof *specs);
    char *ids = calloc(n, IDSZ);
    ASSERT(specs && ids);
    for (size_t i = 0; i < n; i++)
        spec_for(&specs[i], "bq");
    ASSERT_EQ(jobd_submit_batch(c, specs, n, ids), 0);
    ASSERT_EQ(test_zcard("bq", "ready"), (long long)n);
    /* Ids come back in submission order, which is also claim order. */
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "bq", "w1", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, ids);
    jobd_claim_clear(&j);
    ASSERT_JOB_FIELD("bq", ids + (n - 1) * IDSZ, "state", "queued");
    assert_distinct(ids, n);
    free(specs);
    free(ids);
    jobd_client_free(c);
}

/* Jobs of one call that differ in more than id and envelope take the
 * general argument layout; the outcome must be the same as one by one. */
TEST(queue_batch_mixed_specs)
{
    jobd_client_t *c = test_client();
    jobd_job_spec_t s[6];
    for (int i = 0; i < 6; i++)
        spec_for(&s[i], "mq");
    s[0].priority = 1;
    s[1].priority = 9;
    s[2].delay_ms = 60000;
    s[3].idempotency_key = s[4].idempotency_key = "mk";
    s[5].id = "explicit-1";
    s[5].priority = 9;
    s[5].max_attempts = 3;
    char ids[6 * IDSZ];
    ASSERT_EQ(jobd_submit_batch(c, s, 6, ids), 0);
    ASSERT_STR_EQ(ids + 4 * IDSZ, ids + 3 * IDSZ);
    ASSERT_STR_EQ(ids + 5 * IDSZ, "explicit-1");
    ASSERT_EQ(test_zcard("mq", "ready"), 4);
    ASSERT_EQ(test_zcard("mq", "scheduled"), 1);
    ASSERT_JOB_FIELD("mq", ids + 2 * IDSZ, "state", "scheduled");
    ASSERT_JOB_FIELD("mq", "explicit-1", "max", "3");
    int order[4] = {1, 5, 3, 0};
    for (int i = 0; i < 4; i++) {
        jobd_claim_t j;
        ASSERT_EQ(jobd_claim(c, "mq", "w1", 30000, &j, 1), 1);
        ASSERT_STR_EQ(j.id, ids + order[i] * IDSZ);
        ASSERT_EQ(json_integer_value(json_object_get(j.envelope, "priority")),
                  s[order[i]].priority < 0 ? JOBD_DEFAULT_PRIORITY : s[order[i]].priority);
        jobd_claim_clear(&j);
    }
    jobd_client_free(c);
}

TEST(queue_batch_rejects_bad_spec_whole)
{
    jobd_client_t *c = test_client();
    jobd_job_spec_t s[3];
    for (int i = 0; i < 3; i++)
        spec_for(&s[i], "xq");
    s[2].payload_json = "{broken";
    char ids[3 * IDSZ];
    ASSERT_EQ(jobd_submit_batch(c, s, 3, ids), JOBD_EJSON);
    ASSERT_CONTAINS(jobd_client_errmsg(c), "job 3");
    ASSERT_EQ(test_zcard("xq", "ready"), 0);
    jobd_client_free(c);
}

/* ---- concurrency ---- */

#define CC_JOBS 10000
#define CC_THREADS 8
#define CC_BATCH 16

typedef struct {
    char (*ids)[IDSZ]; /* every id this thread claimed */
    size_t n;
} claimer_t;

static void *claimer(void *arg)
{
    claimer_t *t = arg;
    jobd_client_t *c = test_client();
    jobd_claim_t got[CC_BATCH];
    char worker[32];
    snprintf(worker, sizeof worker, "w-%p", arg);
    for (;;) {
        int k = jobd_claim(c, "cq", worker, 60000, got, CC_BATCH);
        ASSERT_GE(k, 0);
        if (k == 0) break; /* everything was submitted before: empty means done */
        for (int i = 0; i < k; i++) {
            ASSERT_LT(t->n, CC_JOBS);
            memcpy(t->ids[t->n++], got[i].id, IDSZ);
            ASSERT_EQ(jobd_ack(c, "cq", got[i].id, got[i].token, NULL), 0);
            jobd_claim_clear(&got[i]);
        }
    }
    jobd_client_free(c);
    return NULL;
}

TEST(queue_concurrent_claimers_exactly_once)
{
    jobd_client_t *c = test_client();
    jobd_job_spec_t *specs = calloc(CC_JOBS, sizeof *specs);
    char *submitted = calloc(CC_JOBS, IDSZ);
    for (size_t i = 0; i < CC_JOBS; i++)
        spec_for(&specs[i], "cq");
    ASSERT_EQ(jobd_submit_batch(c, specs, CC_JOBS, submitted), 0);

    claimer_t t[CC_THREADS];
    pthread_t th[CC_THREADS];
    for (int i = 0; i < CC_THREADS; i++) {
        t[i].ids = calloc(CC_JOBS, IDSZ);
        t[i].n = 0;
        ASSERT_EQ(pthread_create(&th[i], NULL, claimer, &t[i]), 0);
    }
    char *claimed = calloc(CC_JOBS * CC_THREADS, IDSZ);
    size_t total = 0;
    for (int i = 0; i < CC_THREADS; i++) {
        ASSERT_EQ(pthread_join(th[i], NULL), 0);
        memcpy(claimed + total * IDSZ, t[i].ids, t[i].n * IDSZ);
        total += t[i].n;
        free(t[i].ids);
    }
    /* Exactly once: as many claims as jobs, no id twice, none missing. */
    ASSERT_EQ(total, CC_JOBS);
    assert_distinct(claimed, total);
    assert_distinct(submitted, CC_JOBS);
    for (size_t i = 0; i < CC_JOBS; i++)
        ASSERT_STR_EQ(claimed + i * IDSZ, submitted + i * IDSZ);
    ASSERT_EQ(test_zcard("cq", "succeeded"), CC_JOBS);
    ASSERT_EQ(test_zcard("cq", "ready"), 0);
    ASSERT_EQ(test_zcard("cq", "active"), 0);
    free(claimed);
    free(submitted);
    free(specs);
    jobd_client_free(c);
}

/* ---- leases and fencing ---- */

TEST(queue_stale_token_fenced_after_reap)
{
    jobd_client_t *c = test_client();
    char id[IDSZ];
    submit(c, "fq", -1, 0, id);
    jobd_claim_t old, cur;
    ASSERT_EQ(jobd_claim(c, "fq", "w-old", 50, &old, 1), 1);
    jobd_reap_t r = reap_within(c, "fq", test_ms(5000));
    ASSERT_EQ(r.requeued, 1);
    ASSERT_EQ(jobd_claim(c, "fq", "w-new", 60000, &cur, 1), 1);
    ASSERT_STR_EQ(cur.id, id);
    ASSERT_EQ(cur.attempt, 2);
    ASSERT(strcmp(cur.token, old.token) != 0);

    /* Every call with the old token is refused, and changes nothing. */
    ASSERT_EQ(jobd_ack(c, "fq", id, old.token, "{}"), JOBD_ESTALE);
    ASSERT_CONTAINS(jobd_client_errmsg(c), "stale");
    ASSERT_EQ(jobd_fail(c, "fq", id, old.token, "x", 0), JOBD_ESTALE);
    ASSERT_EQ(jobd_extend(c, "fq", id, old.token, 60000), JOBD_ESTALE);
    ASSERT_EQ(jobd_checkpoint(c, "fq", id, old.token, "{\"old\":1}", 0.9), JOBD_ESTALE);
    ASSERT_EQ(jobd_release(c, "fq", id, old.token, "{\"old\":1}"), JOBD_ESTALE);
    ASSERT_JOB_FIELD("fq", id, "state", "active");
    ASSERT_JOB_FIELD("fq", id, "worker", "w-new");
    ASSERT_JOB_FIELD("fq", id, "checkpoint", "");

    /* The current holder's token works. */
    ASSERT_EQ(jobd_extend(c, "fq", id, cur.token, 60000), 0);
    ASSERT_EQ(jobd_checkpoint(c, "fq", id, cur.token, "{\"new\":1}", 0.5), 0);
    ASSERT_EQ(jobd_ack(c, "fq", id, cur.token, "{\"done\":true}"), 0);
    ASSERT_JOB_FIELD("fq", id, "state", "succeeded");
    /* Once finished, no token matches, the last one included: the same ack
     * sent again (its reply lost) is told it was applied, and changes
     * nothing; any other outcome is stale. */
    ASSERT_EQ(jobd_ack(c, "fq", id, cur.token, "{}"), 0);
    ASSERT_JOB_FIELD("fq", id, "result", "{\"done\":true}");
    ASSERT_EQ(jobd_fail(c, "fq", id, cur.token, "late", -1), JOBD_ESTALE);
    ASSERT_JOB_FIELD("fq", id, "state", "succeeded");
    jobd_claim_clear(&old);
    jobd_claim_clear(&cur);
    jobd_client_free(c);
}

TEST(queue_reap_charges_attempt_then_dead)
{
    jobd_client_t *c = test_client();
    char id[IDSZ];
    submit_max(c, "rq", 2, id);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "rq", "w1", 50, &j, 1), 1);
    ASSERT_EQ(j.attempt, 1);
    jobd_claim_clear(&j);
    jobd_reap_t r = reap_within(c, "rq", test_ms(5000));
    ASSERT_EQ(r.requeued, 1);
    ASSERT_EQ(r.dead, 0);
    ASSERT_JOB_FIELD("rq", id, "state", "queued");
    ASSERT_JOB_FIELD("rq", id, "attempt", "1");
    ASSERT(in_set("rq", "ready", id));
    ASSERT(!in_set("rq", "active", id));

    ASSERT_EQ(jobd_claim(c, "rq", "w1", 50, &j, 1), 1);
    ASSERT_EQ(j.attempt, 2);
    jobd_claim_clear(&j);
    r = reap_within(c, "rq", test_ms(5000));
    ASSERT_EQ(r.requeued, 0);
    ASSERT_EQ(r.dead, 1);
    ASSERT_JOB_FIELD("rq", id, "state", "dead");
    char *err = job_field("rq", id, "error");
    ASSERT_CONTAINS(err, "lease expired on attempt 2 of 2");
    free(err);
    ASSERT(in_set("rq", "dead", id));
    ASSERT(!in_set("rq", "active", id));
    ASSERT_EQ(test_zcard("rq", "ready"), 0);
    jobd_client_free(c);
}

TEST(queue_fail_retry_then_dead)
{
    jobd_client_t *c = test_client();
    char id[IDSZ];
    submit_max(c, "fl", 2, id);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "fl", "w1", 30000, &j, 1), 1);
    int64_t t0 = test_now_ms();
    ASSERT_EQ(jobd_fail(c, "fl", id, j.token, "boom 1", 300), JOBD_FAILED_RETRY);
    jobd_claim_clear(&j);
    ASSERT_JOB_FIELD("fl", id, "state", "scheduled");
    ASSERT_JOB_FIELD("fl", id, "error", "boom 1");
    ASSERT(in_set("fl", "scheduled", id));
    ASSERT(!in_set("fl", "active", id));
    int n = jobd_claim(c, "fl", "w1", 30000, &j, 1);
    if (test_now_ms() - t0 < 250) ASSERT_EQ(n, 0);
    if (n == 0) ASSERT_EQ(claim_within(c, "fl", 30000, &j, test_ms(5000)), 1);
    ASSERT_GE(test_now_ms() - t0, 295);
    ASSERT_EQ(j.attempt, 2);
    /* Attempts used up: a retry delay does not matter any more. */
    ASSERT_EQ(jobd_fail(c, "fl", id, j.token, "boom 2", 0), JOBD_FAILED_DEAD);
    jobd_claim_clear(&j);
    ASSERT_JOB_FIELD("fl", id, "state", "dead");
    ASSERT_JOB_FIELD("fl", id, "error", "boom 2");
    ASSERT(in_set("fl", "dead", id));
    ASSERT_EQ(test_zcard("fl", "scheduled"), 0);

    /* -1: dead at once, attempts left or not. */
    submit_max(c, "fl", 5, id);
    ASSERT_EQ(jobd_claim(c, "fl", "w1", 30000, &j, 1), 1);
    ASSERT_EQ(jobd_fail(c, "fl", id, j.token, "unknown job type", -1), JOBD_FAILED_DEAD);
    jobd_claim_clear(&j);
    ASSERT_JOB_FIELD("fl", id, "state", "dead");
    ASSERT_JOB_FIELD("fl", id, "attempt", "1");
    ASSERT_JOB_FIELD("fl", id, "error", "unknown job type");
    jobd_client_free(c);
}

TEST(queue_release_keeps_attempt_and_checkpoint)
{
    jobd_client_t *c = test_client();
    char first[IDSZ], second[IDSZ];
    submit(c, "lq", -1, 0, first);
    submit(c, "lq", -1, 0, second);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "lq", "w1", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, first);
    ASSERT_EQ(jobd_release(c, "lq", j.id, j.token, "{\"page\":7}"), 0);
    ASSERT_JOB_FIELD("lq", first, "state", "queued");
    ASSERT_JOB_FIELD("lq", first, "attempt", "0");
    ASSERT_JOB_FIELD("lq", first, "checkpoint", "{\"page\":7}");
    ASSERT(!in_set("lq", "active", first));
    /* The released token is void. */
    ASSERT_EQ(jobd_ack(c, "lq", first, j.token, NULL), JOBD_ESTALE);
    jobd_claim_clear(&j);

    /* It keeps its place ahead of the job queued after it, the attempt was
     * not charged, and the claim hands back the checkpoint. */
    ASSERT_EQ(jobd_claim(c, "lq", "w2", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, first);
    ASSERT_EQ(j.attempt, 1);
    ASSERT(j.checkpoint != NULL);
    ASSERT_EQ(json_integer_value(json_object_get(j.checkpoint, "page")), 7);
    /* NULL keeps the stored checkpoint. */
    ASSERT_EQ(jobd_release(c, "lq", j.id, j.token, NULL), 0);
    jobd_claim_clear(&j);
    ASSERT_EQ(jobd_claim(c, "lq", "w2", 30000, &j, 1), 1);
    ASSERT_EQ(json_integer_value(json_object_get(j.checkpoint, "page")), 7);
    jobd_claim_clear(&j);
    jobd_client_free(c);
}

TEST(queue_checkpoint_and_progress)
{
    jobd_client_t *c = test_client();
    char id[IDSZ];
    submit(c, "kq", -1, 0, id);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "kq", "w1", 30000, &j, 1), 1);
    ASSERT_EQ(jobd_checkpoint(c, "kq", id, j.token, "{\"i\":3}", 0.5), 0);
    json_t *st;
    ASSERT_EQ(jobd_status(c, id, &st), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "state")), "active");
    ASSERT_DBL_NEAR(json_real_value(json_object_get(st, "progress")), 0.5, 1e-9);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "checkpoint"), "i")), 3);
    ASSERT_EQ(json_integer_value(json_object_get(st, "attempt")), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(st, "worker")), "w1");
    json_decref(st);
    /* A new checkpoint with progress unchanged, then progress alone. */
    ASSERT_EQ(jobd_checkpoint(c, "kq", id, j.token, "{\"i\":4}", -1), 0);
    ASSERT_EQ(jobd_checkpoint(c, "kq", id, j.token, NULL, 0.75), 0);
    ASSERT_EQ(jobd_status(c, id, &st), 0);
    ASSERT_DBL_NEAR(json_real_value(json_object_get(st, "progress")), 0.75, 1e-9);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(st, "checkpoint"), "i")), 4);
    json_decref(st);
    jobd_claim_clear(&j);
    jobd_client_free(c);
}

/* ---- cancel ---- */

TEST(queue_cancel_states)
{
    jobd_client_t *c = test_client();
    char queued[IDSZ], sched[IDSZ], active[IDSZ];
    int was_active = -1;

    submit(c, "xc", -1, 0, queued);
    ASSERT_EQ(jobd_cancel(c, queued, &was_active), 0);
    ASSERT_EQ(was_active, 0);
    ASSERT_JOB_FIELD("xc", queued, "state", "canceled");
    ASSERT(in_set("xc", "canceled", queued));
    ASSERT(!in_set("xc", "ready", queued));
    ASSERT_GT(test_cmd_int("PTTL %s", qkey("xc", "job:%s", queued)), 0);

    submit(c, "xc", -1, 60000, sched);
    ASSERT_EQ(jobd_cancel(c, sched, &was_active), 0);
    ASSERT_EQ(was_active, 0);
    ASSERT_JOB_FIELD("xc", sched, "state", "canceled");
    ASSERT(!in_set("xc", "scheduled", sched));

    /* Active: a flag the holder sees on its next extend. */
    submit(c, "xc", -1, 0, active);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "xc", "w1", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, active);
    ASSERT_EQ(jobd_cancel(c, active, &was_active), 0);
    ASSERT_EQ(was_active, 1);
    ASSERT_JOB_FIELD("xc", active, "state", "active");
    ASSERT_EQ(jobd_extend(c, "xc", active, j.token, 30000), 1);
    ASSERT_EQ(jobd_fail(c, "xc", active, j.token, "canceled by request", -2), JOBD_FAILED_CANCELED);
    ASSERT_JOB_FIELD("xc", active, "state", "canceled");
    ASSERT(in_set("xc", "canceled", active));
    ASSERT(!in_set("xc", "active", active));
    jobd_claim_clear(&j);

    /* Finished jobs cannot be canceled; unknown ids are not found. */
    ASSERT_EQ(jobd_cancel(c, active, &was_active), JOBD_ESTATE);
    ASSERT_CONTAINS(jobd_client_errmsg(c), "canceled");
    ASSERT_EQ(jobd_cancel(c, "no-such-job", &was_active), JOBD_ENOTFOUND);
    jobd_client_free(c);
}

TEST(queue_cancel_requested_then_released_or_reaped)
{
    jobd_client_t *c = test_client();
    char a[IDSZ], b[IDSZ];
    submit(c, "xr", -1, 0, a);
    submit(c, "xr", -1, 0, b);
    jobd_claim_t ja, jb;
    ASSERT_EQ(jobd_claim(c, "xr", "w1", 30000, &ja, 1), 1);
    ASSERT_EQ(jobd_claim(c, "xr", "w1", 50, &jb, 1), 1);
    ASSERT_EQ(jobd_cancel(c, a, NULL), 0);
    ASSERT_EQ(jobd_cancel(c, b, NULL), 0);
    /* A release of a job with a cancel pending ends it canceled. */
    ASSERT_EQ(jobd_release(c, "xr", a, ja.token, "{}"), JOBD_FAILED_CANCELED);
    ASSERT_JOB_FIELD("xr", a, "state", "canceled");
    /* So does the expiry of its lease. */
    jobd_reap_t r = reap_within(c, "xr", test_ms(5000));
    ASSERT_EQ(r.canceled, 1);
    ASSERT_JOB_FIELD("xr", b, "state", "canceled");
    ASSERT_EQ(test_zcard("xr", "active"), 0);
    jobd_claim_clear(&ja);
    jobd_claim_clear(&jb);
    jobd_client_free(c);
}

/* ---- retention ---- */

TEST(queue_retention_ttls)
{
    jobd_client_t *c = test_client();
    char ok[IDSZ], dead[IDSZ], live[IDSZ];
    submit(c, "tq", -1, 0, ok);
    submit(c, "tq", -1, 0, dead);
    submit(c, "tq", -1, 0, live);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "tq", "w1", 30000, &j, 1), 1);
    ASSERT_EQ(jobd_ack(c, "tq", ok, j.token, NULL), 0);
    jobd_claim_clear(&j);
    ASSERT_EQ(jobd_claim(c, "tq", "w1", 30000, &j, 1), 1);
    ASSERT_EQ(jobd_fail(c, "tq", dead, j.token, "bad input", -1), JOBD_FAILED_DEAD);
    jobd_claim_clear(&j);

    /* Succeeded records carry no TTL: reap.lua deletes them in batches once
     * past their retention (see test_retention.c). */
    ASSERT_EQ(test_cmd_int("PTTL %s", qkey("tq", "job:%s", ok)), -1);
    long long t = test_cmd_int("PTTL %s", qkey("tq", "job:%s", dead));
    ASSERT_GT(t, JOBD_TTL_SUCCEEDED_MS); /* dead records are kept longer */
    ASSERT_LE(t, JOBD_TTL_DEAD_MS);
    /* Unfinished jobs never expire. */
    ASSERT_EQ(test_cmd_int("PTTL %s", qkey("tq", "job:%s", live)), -1);
    jobd_client_free(c);
}

/* ---- connection, schema and script cache ---- */

TEST(queue_schema_version_mismatch)
{
    char key[300];
    snprintf(key, sizeof key, "%s:{:global}:schema", test_prefix());
    freeReplyObject(test_cmd("SET %s 999", key));
    jobd_client_opts_t o = {.url = test_redis_url(), .prefix = test_prefix()};
    jobd_client_t *c = (jobd_client_t *)1;
    char err[512] = "";
    ASSERT_EQ(jobd_client_new(&o, &c, err, sizeof err), JOBD_ESCHEMA);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(err, "999");
    ASSERT_CONTAINS(err, key);
    ASSERT_CONTAINS(err, "version 2");
    ASSERT_CONTAINS(err, "upgrade");
    /* A fresh prefix is claimed for this version, in both places: layout
     * 1's key too, so that a layout 1 binary refuses it. */
    freeReplyObject(test_cmd("DEL %s", key));
    c = test_client();
    redisReply *r = test_cmd("GET %s", key);
    ASSERT_STR_EQ(r->str, "2");
    freeReplyObject(r);
    r = test_cmd("GET %s:schema", test_prefix());
    ASSERT_STR_EQ(r->str, "2");
    freeReplyObject(r);
    jobd_client_free(c);
}

TEST(queue_redis_unreachable)
{
    char url[600];
    snprintf(url, sizeof url, "unix://%s/no-such.sock", test_tmpdir());
    jobd_client_opts_t o = {.url = url, .prefix = test_prefix(), .timeout_ms = 1000};
    jobd_client_t *c = (jobd_client_t *)1;
    char err[512] = "";
    ASSERT_EQ(jobd_client_new(&o, &c, err, sizeof err), JOBD_ECONN);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(err, "unreachable");
    ASSERT_CONTAINS(err, "no-such.sock");
    o.url = "http://nowhere";
    ASSERT_EQ(jobd_client_new(&o, &c, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "bad Redis URL");
}

/* SCRIPT FLUSH drops every script of a server, so this runs on its own. */
TEST(queue_noscript_recovery)
{
    char dir[600], url[256];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    test_redis_start(dir, url, NULL);
    jobd_client_t *c = test_client_at(url);
    redisContext *raw = redisConnectUnix(url + 7);
    ASSERT(raw && !raw->err);

    freeReplyObject(redisCommand(raw, "SCRIPT FLUSH"));
    char id[IDSZ];
    submit(c, "nq", -1, 0, id); /* one call: reloaded and retried */

    freeReplyObject(redisCommand(raw, "SCRIPT FLUSH"));
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "nq", "w1", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, id);
    jobd_claim_clear(&j);

    /* A pipelined batch: every chunk in flight is refused, then resent. */
    freeReplyObject(redisCommand(raw, "SCRIPT FLUSH"));
    size_t n = 5 * JOBD_BATCH_CHUNK + 7;
    jobd_job_spec_t *specs = calloc(n, sizeof *specs);
    char *ids = calloc(n, IDSZ);
    for (size_t i = 0; i < n; i++)
        spec_for(&specs[i], "nq");
    ASSERT_EQ(jobd_submit_batch(c, specs, n, ids), 0);
    redisReply *r = redisCommand(raw, "ZCARD %s:{nq}:ready", test_prefix());
    ASSERT_EQ(r->integer, (long long)n);
    freeReplyObject(r);
    assert_distinct(ids, n);

    /* Redis restarted: the broken connection is replaced on the next call
     * and the empty script cache refilled. */
    redisFree(raw);
    test_redis_stop(dir);
    test_redis_start(dir, url, NULL);
    submit(c, "nq", -1, 0, id);
    ASSERT_EQ(jobd_claim(c, "nq", "w1", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, id);
    jobd_claim_clear(&j);
    free(specs);
    free(ids);
    jobd_client_free(c);
    test_redis_stop(dir);
}

/* A Redis error in the middle of a pipelined batch (here: out of memory)
 * fails the batch and leaves no reply behind for the next call. */
TEST(queue_batch_error_leaves_client_in_sync)
{
    char dir[600], url[256];
    snprintf(dir, sizeof dir, "%s/redis", test_tmpdir());
    const char *conf[] = {"maxmemory 4mb", "maxmemory-policy noeviction", NULL};
    test_redis_start(dir, url, conf);
    jobd_client_t *c = test_client_at(url);
    size_t n = 40000;
    jobd_job_spec_t *specs = calloc(n, sizeof *specs);
    char *ids = calloc(n, IDSZ);
    for (size_t i = 0; i < n; i++)
        spec_for(&specs[i], "oq");
    ASSERT_EQ(jobd_submit_batch(c, specs, n, ids), JOBD_EREDIS);
    ASSERT_CONTAINS(jobd_client_errmsg(c), "OOM");

    redisContext *raw = redisConnectUnix(url + 7);
    ASSERT(raw && !raw->err);
    freeReplyObject(redisCommand(raw, "FLUSHALL"));
    redisFree(raw);
    jobd_claim_t j;
    ASSERT_EQ(jobd_claim(c, "oq", "w1", 30000, &j, 1), 0);
    char id[IDSZ];
    submit(c, "oq", -1, 0, id);
    ASSERT_EQ(jobd_claim(c, "oq", "w1", 30000, &j, 1), 1);
    ASSERT_STR_EQ(j.id, id);
    jobd_claim_clear(&j);
    free(specs);
    free(ids);
    jobd_client_free(c);
    test_redis_stop(dir);
}
