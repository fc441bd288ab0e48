/* Unit tests of claim_pick (daemon/claim.c): smooth weighted round robin
 * over the queues that may have work and room. No Redis. */
#define _GNU_SOURCE
#include <string.h>

#include "claim.h"
#include "test.h"

static void setup(config_queue_t *cq, claim_queue_t *q, const int *weights, int n)
{
    memset(q, 0, sizeof *q * (size_t)n);
    for (int i = 0; i < n; i++) {
        memset(&cq[i], 0, sizeof cq[i]);
        cq[i].name[0] = (char)('a' + i);
        cq[i].weight = weights[i];
    }
}

static void sequence(const config_queue_t *cq, claim_queue_t *q, int n, int picks, char *out)
{
    for (int i = 0; i < picks; i++) {
        int k = claim_pick(cq, q, n);
        out[i] = k < 0 ? '-' : (char)('a' + k);
    }
    out[picks] = '\0';
}

TEST(claim_unit_pick_smooth)
{
    config_queue_t cq[3];
    claim_queue_t q[3];
    char seq[64];
    /* nginx's smooth weighted round robin: no queue runs in long bursts. */
    setup(cq, q, (const int[]){5, 1, 1}, 3);
    sequence(cq, q, 3, 7, seq);
    ASSERT_STR_EQ(seq, "aabacaa");
    setup(cq, q, (const int[]){3, 1}, 2);
    sequence(cq, q, 2, 8, seq);
    ASSERT_STR_EQ(seq, "aabaaaba");
    /* Shares follow the weights. */
    setup(cq, q, (const int[]){3, 1}, 2);
    int count[2] = {0, 0};
    for (int i = 0; i < 400; i++)
        count[claim_pick(cq, q, 2)]++;
    ASSERT_EQ(count[0], 300);
    ASSERT_EQ(count[1], 100);
}

TEST(claim_unit_pick_skips)
{
    config_queue_t cq[3];
    claim_queue_t q[3];
    char seq[64];
    /* An empty queue is skipped until it is looked at again. */
    setup(cq, q, (const int[]){5, 1, 1}, 3);
    q[0].empty = 1;
    sequence(cq, q, 3, 4, seq);
    ASSERT_STR_EQ(seq, "bcbc");
    q[0].empty = 0;
    ASSERT_EQ(claim_pick(cq, q, 3), 0);
    /* A queue at its limit is skipped; under it, picked again. */
    setup(cq, q, (const int[]){5, 1, 1}, 3);
    cq[0].limit = 2;
    q[0].in_flight = 2;
    sequence(cq, q, 3, 2, seq);
    ASSERT_STR_EQ(seq, "bc");
    q[0].in_flight = 1;
    ASSERT_EQ(claim_pick(cq, q, 3), 0);
    /* Slots a claim call in flight may fill count against the limit. */
    q[0].reserved = 1;
    sequence(cq, q, 3, 2, seq);
    ASSERT_STR_EQ(seq, "bc");
    q[0].reserved = 0;
    /* Nothing to pick. */
    q[0].empty = q[1].empty = q[2].empty = 1;
    ASSERT_EQ(claim_pick(cq, q, 3), -1);
    ASSERT_EQ(claim_pick(cq, q, 0), -1);
}
