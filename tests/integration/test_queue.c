/* Queue protocol tests through libjobd against the real test redis-server. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "testlib.h"

static void submit(jobd_client_t *c, const char *queue, int prio, int64_t delay_ms, char *id)
{
    jobd_job_spec_t s;
    jobd_job_spec_init(&s);
    s.queue = queue;
    s.type = "noop";
    s.priority = prio;
    s.delay_ms = delay_ms;
    s.payload_json = "{\"n\":1}";
    ASSERT_EQ(jobd_submit(c, &s, id, NULL), 0);
}

TEST(queue_priority_then_fifo)
{
    jobd_client_t *c = test_client();
    char ids[6][JOBD_ID_LEN + 1];
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
