/* Unit tests of client/libjobd/ops.c: each script call's arguments in order
 * and the checks on its reply, with replies built by hand. No Redis. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "test.h"

static redisReply *r_int(long long v)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static redisReply *r_str(const char *s)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *r_arr(size_t n, redisReply **items)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    for (size_t i = 0; i < n; i++)
        r->element[i] = items[i];
    return r;
}

static void argv_is(proto_argv_t *a, const char *const want[], int n)
{
    const size_t *lens;
    const char **v = proto_argv_finish(a, &lens);
    ASSERT(v != NULL);
    ASSERT_EQ(a->argc, n);
    for (int i = 0; i < n; i++)
        ASSERT_STR_EQ(v[i], want[i]);
}

TEST(ops_unit_arguments)
{
    proto_argv_t a;
    proto_argv_init(&a);
    ops_claim_args(&a, "w1", 30000, 64, 1048576, 604800000);
    argv_is(&a, (const char *[]){"w1", "30000", "64", "1000", "1048576", "604800000"}, 6);
    proto_argv_reset(&a);
    ops_extend_begin(&a, 30000);
    ops_lease_add(&a, "a", "1.1");
    ops_lease_add(&a, "b", "2.2");
    argv_is(&a, (const char *[]){"30000", "a", "1.1", "b", "2.2"}, 5);
    proto_argv_reset(&a);
    ops_ack_add(&a, "a", "1.1", NULL);
    ops_ack_add(&a, "b", "2.2", "{\"n\":1}");
    argv_is(&a, (const char *[]){"a", "1.1", "", "b", "2.2", "{\"n\":1}"}, 6);
    proto_argv_reset(&a);
    ops_fail_begin(&a, 5000, 3);
    ops_fail_add(&a, "a", "1.1", "boom", 250, 3);
    ops_fail_add(&a, "b", "2.2", "bad input", OPS_FAIL_DEAD, 0);
    ops_fail_add(&a, "c", "3.3", "canceled", OPS_FAIL_CANCELED, 0);
    argv_is(&a,
            (const char *[]){"5000", "3", "a", "1.1", "boom", "250", "3", "b", "2.2", "bad input",
                             "-1", "0", "c", "3.3", "canceled", "-2", "0"},
            17);
    proto_argv_reset(&a);
    ops_defer_begin(&a, 5000);
    ops_defer_add(&a, "a", "1.1", 250, "rate limit", 0);
    argv_is(&a, (const char *[]){"5000", "a", "1.1", "250", "rate limit", "0"}, 6);
    proto_argv_reset(&a);
    ops_release_begin(&a, 5000);
    ops_release_add(&a, "a", "1.1", "{\"step\":4}", 0.5);
    ops_release_add(&a, "b", "2.2", NULL, -1);
    argv_is(&a, (const char *[]){"5000", "a", "1.1", "{\"step\":4}", "0.5", "b", "2.2", "", ""}, 9);
    proto_argv_reset(&a);
    ops_checkpoint_add(&a, "a", "1.1", "{}", 1);
    argv_is(&a, (const char *[]){"a", "1.1", "{}", "1"}, 4);
    proto_argv_reset(&a);
    ops_reap_args(&a, 1000, 1, 2, 10000, 30000, 3);
    argv_is(&a, (const char *[]){"1000", "1", "2", "10000", "30000", "3"}, 6);
    proto_argv_free(&a);
}

TEST(ops_unit_claim_reply)
{
    redisReply *note[] = {r_str("dead"),    r_str("bad-1"), r_str("job record is corrupt"),
                          r_str("dropped"), r_str("gone"),  r_str("no job record")};
    redisReply *items[] = {r_int(1700000000000LL),
                           r_arr(6, note),
                           r_str("id-1"),
                           r_str("5.99"),
                           r_int(2),
                           r_str("{\"v\":1}"),
                           r_str(""),
                           r_str("id-2"),
                           r_str("6.99"),
                           r_int(1),
                           r_str("{\"v\":1}"),
                           r_str("{\"step\":3}")};
    redisReply *r = r_arr(12, items);
    ops_claim_t c;
    ASSERT_EQ(ops_claim_reply(r, &c), 0);
    ASSERT_EQ(c.n, 2);
    ASSERT_EQ(c.next_ms, 1700000000000LL);
    ops_claimed_t j;
    ops_claim_job(&c, 1, &j);
    ASSERT_EQ(j.id_len, 4);
    ASSERT(memcmp(j.id, "id-2", 4) == 0);
    ASSERT(memcmp(j.token, "6.99", 4) == 0);
    ASSERT_EQ(j.attempt, 1);
    ASSERT_EQ(j.checkpoint_len, strlen("{\"step\":3}"));
    ops_claim_job(&c, 0, &j);
    ASSERT_EQ(j.checkpoint_len, 0);
    /* The notes. */
    ASSERT_EQ(ops_notes(c.set_aside), 2);
    ops_note_t n;
    ASSERT_EQ(ops_note(c.set_aside, 0, &n), 0);
    ASSERT_EQ(n.dead, 1);
    ASSERT_STR_EQ(n.why, "job record is corrupt");
    ASSERT_EQ(ops_note(c.set_aside, 1, &n), 0);
    ASSERT_EQ(n.dead, 0);
    ASSERT_EQ(ops_note(c.set_aside, 2, &n), -1);
    /* A job value of the wrong type makes the whole reply unusable. */
    redisReply *attempt = r->element[4];
    r->element[4] = r_str("2");
    ASSERT_EQ(ops_claim_reply(r, &c), -1);
    freeReplyObject(r->element[4]);
    r->element[4] = attempt;
    /* So does a short job. */
    r->elements = 11;
    ASSERT_EQ(ops_claim_reply(r, &c), -1);
    r->elements = 12;
    ASSERT_EQ(ops_claim_reply(NULL, &c), -1);
    redisReply *err = r_str("ERR boom");
    err->type = REDIS_REPLY_ERROR;
    ASSERT_EQ(ops_claim_reply(err, &c), -1);
    freeReplyObject(err);
    freeReplyObject(r);
}

TEST(ops_unit_results_and_reap)
{
    redisReply *items[] = {r_int(1), r_int(0), r_int(-3)};
    redisReply *r = r_arr(3, items);
    ASSERT_EQ(ops_results(r, 3), 0);
    ASSERT_EQ(ops_results(r, 2), -1);
    int again = 0;
    ASSERT_EQ(ops_outcome_answer(r->element[0]->integer, &again), 1);
    ASSERT_EQ(again, 0);
    ASSERT_EQ(ops_outcome_answer(r->element[2]->integer, &again), 3);
    ASSERT_EQ(again, 1);
    freeReplyObject(r->element[1]);
    r->element[1] = r_str("0");
    ASSERT_EQ(ops_results(r, 3), -1);
    freeReplyObject(r);

    redisReply *reap[] = {r_int(2),       r_int(1),     r_int(0), r_int(1),
                          r_arr(0, NULL), r_int(30000), r_int(-1)};
    r = r_arr(7, reap);
    ops_reap_t rp;
    ASSERT_EQ(ops_reap_reply(r, &rp), 0);
    ASSERT_EQ(rp.requeued, 2);
    ASSERT_EQ(rp.dead, 1);
    ASSERT_EQ(rp.more, 1);
    ASSERT_EQ(rp.held_ms, 30000);
    ASSERT_EQ(rp.gap_ms, -1);
    ASSERT_EQ(ops_notes(rp.set_aside), 0);
    r->elements = 5; /* a reply of an older script */
    ASSERT_EQ(ops_reap_reply(r, &rp), -1);
    r->elements = 7;
    freeReplyObject(r);

    redisReply *st[] = {r_int(3),  r_int(0), r_int(1),  r_int(9),
                        r_int(-1), r_int(0), r_int(-1), r_arr(0, NULL)};
    r = r_arr(8, st);
    long long depth[6];
    ASSERT_EQ(ops_stats_reply(r, depth), 0);
    ASSERT_EQ(depth[0], 3);
    ASSERT_EQ(depth[4], -1);
    ASSERT_EQ(ops_stats_oldest_ms(r), -1);
    r->element[6]->integer = 1500;
    ASSERT_EQ(ops_stats_oldest_ms(r), 1500);
    r->elements = 6; /* too short to say */
    ASSERT_EQ(ops_stats_oldest_ms(r), -1);
    r->elements = 8;
    freeReplyObject(r);
}
