/* Tests against a real Redis Cluster (tests/harness/cluster-fixture.sh:
 * three primaries on JOBD_TEST_CLUSTER_BASE..+2, a replica each on +3..+5):
 * jobctl through any node, jobd serving queues that live on different
 * nodes, and a failover in the middle of a batch. The tests run one at a
 * time (RESOURCE_LOCK cluster) and each uses its own prefix. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "testlib.h"

static int base_port(void)
{
    return atoi(test_env("JOBD_TEST_CLUSTER_BASE"));
}

/* redis://127.0.0.1:BASE+i (i 3..5: replicas). */
static const char *node_url(int i)
{
    static char url[6][64];
    snprintf(url[i], sizeof url[i], "redis://127.0.0.1:%d", base_port() + i);
    return url[i];
}

static const char *seeds_url(void)
{
    static char url[128];
    snprintf(url, sizeof url, "redis+cluster://127.0.0.1:%d,127.0.0.1:%d", base_port() + 4,
             base_port());
    return url;
}

/* Runs a command on the node serving key (following MOVED by hand, so the
 * test does not lean on the code under test). Aborts if no node answers. */
static redisReply *vccmd(const char *key, const char *fmt, va_list ap0)
{
    int port = base_port();
    for (int tries = 0; tries < 8; tries++) {
        redisContext *rc = redisConnect("127.0.0.1", port);
        if (!rc || rc->err) test_fail(__FILE__, __LINE__, "cluster node %d unreachable", port);
        va_list ap;
        va_copy(ap, ap0);
        redisReply *r = redisvCommand(rc, fmt, ap);
        va_end(ap);
        redisFree(rc);
        int ask, slot;
        cluster_addr_t to;
        if (r && r->type == REDIS_REPLY_ERROR && cluster_redirect_parse(r->str, &ask, &slot, &to)) {
            port = to.port;
            freeReplyObject(r);
            continue;
        }
        if (!r) test_fail(__FILE__, __LINE__, "no reply for %s", key);
        return r;
    }
    test_fail(__FILE__, __LINE__, "redirected again and again for %s", key);
}

static redisReply *ccmd(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vccmd(key, fmt, ap);
    va_end(ap);
    return r;
}

static long long ccmd_int(const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = vccmd(key, fmt, ap);
    va_end(ap);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static long long czcard(const char *queue, const char *set)
{
    char key[512];
    snprintf(key, sizeof key, "%s:{%s}:%s", test_prefix(), queue, set);
    redisReply *r = ccmd(key, "ZCARD %s", key);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static long long cstat(const char *queue, const char *field)
{
    char key[512];
    snprintf(key, sizeof key, "%s:{%s}:stats", test_prefix(), queue);
    redisReply *r = ccmd(key, "HGET %s %s", key, field);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    return v;
}

/* The port of the primary serving queue's slot. */
static int primary_of(const char *queue)
{
    redisContext *rc = redisConnect("127.0.0.1", base_port());
    redisReply *r = redisCommand(rc, "CLUSTER SLOTS");
    cluster_map_t *m = malloc(sizeof *m);
    ASSERT_EQ(cluster_map_parse(m, r, "127.0.0.1"), 0);
    char tag[160];
    snprintf(tag, sizeof tag, "{%s}", queue);
    int port = cluster_map_node(m, cluster_key_slot(tag, strlen(tag)))->port;
    free(m);
    freeReplyObject(r);
    redisFree(rc);
    return port;
}

/* Three queue names whose slots sit on three different primaries. */
static void pick_queues(char q[3][32])
{
    int ports[3] = {0, 0, 0}, n = 0;
    for (int i = 0; n < 3 && i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "cq%d", i);
        int p = primary_of(name), dup = 0;
        for (int k = 0; k < n; k++)
            dup |= ports[k] == p;
        if (dup) continue;
        ports[n] = p;
        snprintf(q[n++], 32, "%s", name);
    }
    ASSERT_EQ(n, 3);
}

/* Runs jobctl against url with this test's prefix. */
static int ctl(const char *url, char **out, char **err, const char *stdin_text, ...)
{
    const char *argv[16] = {test_env("JOBCTL_BIN"), "--redis", url, "--prefix", test_prefix()};
    int n = 5;
    va_list ap;
    va_start(ap, stdin_text);
    for (const char *a = va_arg(ap, const char *); a && n < 15; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return test_run(argv, NULL, stdin_text, out, err);
}

#define CTL(url, out, err, in, ...) ctl(url, out, err, in, __VA_ARGS__, (const char *)NULL)

/* A batch of n jobs of type with payload over the three queues in turn. */
static char *batch(char q[3][32], int n, const char *type, const char *payload)
{
    size_t cap = (size_t)n * 160 + 1, len = 0;
    char *b = malloc(cap);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "{\"queue\":\"%s\",\"type\":\"%s\",\"payload\":%s}\n", q[i % 3],
                                type, payload);
    return b;
}

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    if (!v) test_fail(__FILE__, __LINE__, "not JSON: %s", text);
    return v;
}

static long long qcount(json_t *stats, const char *queue, const char *state)
{
    return json_integer_value(json_object_get(json_object_get(stats, queue), state));
}

TEST(cluster_jobctl_through_any_node)
{
    char q[3][32];
    pick_queues(q);
    char *out, *err;
    /* Submit through a primary by plain redis:// (the cluster is found on
     * the first MOVED) and through the seeds URL. */
    char *b = batch(q, 30, "noop", "{}");
    ASSERT_EQ(CTL(node_url(0), &out, &err, b, "submit", "--batch", "-"), 0);
    free(b);
    free(out);
    free(err);
    ASSERT_EQ(CTL(seeds_url(), &out, &err, NULL, "submit", q[1], "noop"), 0);
    char id[64];
    snprintf(id, sizeof id, "%.36s", out);
    free(out);
    free(err);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(czcard(q[i], "ready"), i == 1 ? 11 : 10);

    /* stats, status, list through every node, replicas included. */
    for (int n = 0; n < 6; n++) {
        ASSERT_EQ(CTL(node_url(n), &out, &err, NULL, "stats", "--json"), 0);
        json_t *st = parse(out);
        for (int i = 0; i < 3; i++)
            ASSERT_EQ(qcount(st, q[i], "queued"), i == 1 ? 11 : 10);
        json_decref(st);
        free(out);
        free(err);
        ASSERT_EQ(CTL(node_url(n), &out, &err, NULL, "status", id, "--json"), 0);
        ASSERT_CONTAINS(out, "\"queued\"");
        free(out);
        free(err);
    }
    ASSERT_EQ(CTL(node_url(5), &out, &err, NULL, "list", q[2], "--json"), 0);
    json_t *l = parse(out);
    ASSERT_EQ(json_array_size(l), 10);
    json_decref(l);
    free(out);
    free(err);

    /* cancel; a dead job made by a worker-side call, then retry. */
    ASSERT_EQ(CTL(node_url(3), &out, &err, NULL, "cancel", id), 0);
    free(out);
    free(err);
    ASSERT_EQ(czcard(q[1], "canceled"), 1);
    jobd_client_t *c = test_client_at(node_url(4));
    jobd_claim_t cl;
    ASSERT_EQ(jobd_claim(c, q[2], "w-test", 30000, &cl, 1), 1);
    ASSERT_EQ(jobd_fail(c, q[2], cl.id, cl.token, "boom", -1), JOBD_FAILED_DEAD);
    ASSERT_EQ(czcard(q[2], "dead"), 1);
    ASSERT_EQ(CTL(node_url(1), &out, &err, NULL, "retry", cl.id), 0);
    free(out);
    free(err);
    ASSERT_EQ(czcard(q[2], "dead"), 0);
    ASSERT_EQ(czcard(q[2], "ready"), 10);
    jobd_claim_clear(&cl);
    ASSERT_EQ(jobd_claim(c, q[0], "w-test", 30000, &cl, 1), 1);
    ASSERT_EQ(jobd_fail(c, q[0], cl.id, cl.token, "boom", -1), JOBD_FAILED_DEAD);
    jobd_claim_clear(&cl);
    ASSERT_EQ(CTL(node_url(2), &out, &err, NULL, "retry", "--dead", q[0]), 0);
    free(out);
    free(err);
    ASSERT_EQ(czcard(q[0], "ready"), 10);

    /* workers: a registry entry as jobd writes it, read through a replica. */
    char key[256], zkey[256];
    snprintf(key, sizeof key, "%s:{:global}:worker:w-1", test_prefix());
    snprintf(zkey, sizeof zkey, "%s:{:global}:workers", test_prefix());
    freeReplyObject(ccmd(key, "SET %s {\"id\":\"w-1\",\"queues\":[]} PX 60000", key));
    ASSERT_EQ(ccmd_int(zkey, "ZADD %s %lld w-1", zkey, (long long)jobd_now_ms()), 1);
    ASSERT_EQ(CTL(node_url(4), &out, &err, NULL, "workers", "--json"), 0);
    ASSERT_CONTAINS(out, "\"w-1\"");
    free(out);
    free(err);

    /* wait: subscribed on one node, the job's queue on another. */
    ASSERT_EQ(CTL(node_url(0), &out, &err, NULL, "submit", q[1], "noop"), 0);
    snprintf(id, sizeof id, "%.36s", out);
    free(out);
    free(err);
    ASSERT_EQ(jobd_claim(c, q[1], "w-test", 30000, &cl, 1), 1);
    while (strcmp(cl.id, id) != 0) {
        ASSERT_EQ(jobd_ack(c, q[1], cl.id, cl.token, NULL), 0);
        jobd_claim_clear(&cl);
        ASSERT_EQ(jobd_claim(c, q[1], "w-test", 30000, &cl, 1), 1);
    }
    ASSERT_EQ(jobd_ack(c, q[1], cl.id, cl.token, "{\"ok\":1}"), 0);
    jobd_claim_clear(&cl);
    ASSERT_EQ(CTL(node_url(3), &out, &err, NULL, "wait", id, "--timeout", "10s"), 0);
    free(out);
    free(err);
    jobd_client_free(c);
}

static long long succeeded_total(char q[3][32])
{
    return czcard(q[0], "succeeded") + czcard(q[1], "succeeded") + czcard(q[2], "succeeded");
}

/* Polls until every queue's succeeded set holds want jobs. */
static int wait_all_succeeded(char q[3][32], long long want, int64_t ms)
{
    int64_t end = test_now_ms() + ms;
    while (test_now_ms() < end) {
        if (succeeded_total(q) >= 3 * want) return 0;
        test_pause_ms(50);
    }
    return -1;
}

/* The port of a replica of the primary on port (from CLUSTER NODES). */
static int replica_of(int port)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    redisReply *me = redisCommand(rc, "CLUSTER MYID");
    redisReply *nodes = redisCommand(rc, "CLUSTER NODES");
    int found = 0;
    char *save, *line = strtok_r(nodes->str, "\n", &save);
    for (; line && !found; line = strtok_r(NULL, "\n", &save)) {
        char id[64], addr[128], flags[128], master[64];
        if (sscanf(line, "%63s %127s %127s %63s", id, addr, flags, master) != 4) continue;
        if (strstr(flags, "slave") && strcmp(master, me->str) == 0)
            found = atoi(strchr(addr, ':') + 1);
    }
    freeReplyObject(me);
    freeReplyObject(nodes);
    redisFree(rc);
    return found;
}

static int is_primary(int port)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    redisReply *r = redisCommand(rc, "ROLE");
    int yes = r && r->type == REDIS_REPLY_ARRAY && strcmp(r->element[0]->str, "master") == 0;
    if (r) freeReplyObject(r);
    redisFree(rc);
    return yes;
}

TEST(cluster_jobd_once_over_three_nodes)
{
    char q[3][32];
    pick_queues(q);
    char *out, *err, *b = batch(q, 300, "noop", "{}");
    ASSERT_EQ(CTL(node_url(4), &out, &err, b, "submit", "--batch", "-"), 0);
    free(b);
    free(out);
    free(err);
    char queues[128];
    snprintf(queues, sizeof queues, "%s,%s,%s", q[0], q[1], q[2]);
    const char *const once[] = {"--once", "--concurrency", "8", NULL};
    const char *log1 = test_tmp_path("jobd1.log"), *log2 = test_tmp_path("jobd2.log");
    /* One through a replica by redis://, one through the seeds. */
    pid_t p1 = test_jobd_start(log1, node_url(3), queues, "s1", once, NULL);
    pid_t p2 = test_jobd_start(log2, seeds_url(), queues, "s2", once, NULL);
    ASSERT_EXIT(p1, test_ms(30000), log1, 0);
    ASSERT_EXIT(p2, test_ms(30000), log2, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(czcard(q[i], "succeeded"), 100);
        ASSERT_EQ(cstat(q[i], "succeeded"), 100);
    }
    ASSERT_GE(test_count_log(log1, "is a Redis Cluster"), 1);
}

TEST(cluster_failover_during_batch)
{
    char q[3][32];
    pick_queues(q);
    char *out, *err, *b = batch(q, 1500, "sleep", "{\"ms\":10}");
    ASSERT_EQ(CTL(node_url(0), &out, &err, b, "submit", "--batch", "-"), 0);
    free(b);
    free(out);
    free(err);
    char queues[128];
    snprintf(queues, sizeof queues, "%s,%s,%s", q[0], q[1], q[2]);
    const char *const flags[] = {"--concurrency", "4", NULL};
    const char *log1 = test_tmp_path("jobd1.log"), *log2 = test_tmp_path("jobd2.log");
    pid_t p1 = test_jobd_start(log1, node_url(1), queues, "s1", flags, NULL);
    pid_t p2 = test_jobd_start(log2, seeds_url(), queues, "s2", flags, NULL);

    /* Mid-batch: the replica of q[0]'s primary takes over (a manual
     * failover: the replica catches up first, so no write is lost). */
    int64_t end = test_now_ms() + test_ms(30000);
    while (succeeded_total(q) < 150 && test_now_ms() < end)
        test_pause_ms(20);
    ASSERT_GE(succeeded_total(q), 150);
    int old = primary_of(q[0]), rep = replica_of(old);
    ASSERT_GT(rep, 0);
    redisContext *rc = redisConnect("127.0.0.1", rep);
    redisReply *r = redisCommand(rc, "CLUSTER FAILOVER");
    ASSERT_STR_EQ(r->str, "OK");
    freeReplyObject(r);
    redisFree(rc);
    while (!is_primary(rep) && test_now_ms() < end)
        test_pause_ms(20);
    ASSERT(is_primary(rep));
    ASSERT(succeeded_total(q) < 1500); /* the batch was still running */

    /* Both workers follow the new primary and finish the batch. */
    char want[128];
    snprintf(want, sizeof want, "Redis Cluster primary 127.0.0.1:%d ready", rep);
    ASSERT_EQ(test_wait_log(log1, test_ms(30000), want, NULL), 0);
    ASSERT_EQ(test_wait_log(log2, test_ms(30000), want, NULL), 0);
    if (wait_all_succeeded(q, 500, test_ms(60000)) < 0) {
        test_dump_log(log1);
        test_fail(__FILE__, __LINE__, "only %lld of 1500 succeeded", succeeded_total(q));
    }
    /* None lost, none acked twice (fencing: a second ack would be refused,
     * and the counter counts accepted acks), none dead. */
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(czcard(q[i], "succeeded"), 500);
        ASSERT_EQ(cstat(q[i], "succeeded"), 500);
        ASSERT_EQ(czcard(q[i], "dead"), 0);
        ASSERT_EQ(czcard(q[i], "active"), 0);
    }
    /* Both registered, through the global keys' node. */
    ASSERT_EQ(CTL(node_url(2), &out, &err, NULL, "workers", "--json"), 0);
    json_t *ws = parse(out);
    ASSERT_EQ(json_array_size(ws), 2);
    json_decref(ws);
    free(out);
    free(err);
    kill(p1, SIGTERM);
    kill(p2, SIGTERM);
    ASSERT_EXIT(p1, test_ms(30000), log1, 0);
    ASSERT_EXIT(p2, test_ms(30000), log2, 0);
}
