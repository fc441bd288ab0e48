/* Unit tests of daemon/outcome.c: what a handler's ending means, attempts,
 * the retry delay with a pinned random source, and the names. No Redis. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "jobd/client.h"
#include "outcome.h"
#include "test.h"

TEST(outcome_unit_of_ending)
{
    /* No stop asked: the handler's own word. */
    ASSERT_EQ(outcome_of_ending(STOP_NONE, 1, 0), OUT_ACK);
    ASSERT_EQ(outcome_of_ending(STOP_NONE, 0, 1), OUT_RELEASE);
    ASSERT_EQ(outcome_of_ending(STOP_NONE, 0, 0), OUT_RETRY);
    /* A lost lease reports nothing, whatever the handler did. */
    ASSERT_EQ(outcome_of_ending(STOP_LEASE_LOST, 1, 0), OUT_DROP);
    ASSERT_EQ(outcome_of_ending(STOP_LEASE_LOST, 0, 1), OUT_DROP);
    ASSERT_EQ(outcome_of_ending(STOP_LEASE_LOST, 0, 0), OUT_DROP);
    /* Cancel: canceled unless it succeeded first. */
    ASSERT_EQ(outcome_of_ending(STOP_CANCEL, 0, 0), OUT_CANCELED);
    ASSERT_EQ(outcome_of_ending(STOP_CANCEL, 0, 1), OUT_CANCELED);
    ASSERT_EQ(outcome_of_ending(STOP_CANCEL, 1, 0), OUT_ACK);
    /* Timeout: a failed attempt, even if it stopped at a checkpoint. */
    ASSERT_EQ(outcome_of_ending(STOP_TIMEOUT, 0, 0), OUT_RETRY);
    ASSERT_EQ(outcome_of_ending(STOP_TIMEOUT, 0, 1), OUT_RETRY);
    ASSERT_EQ(outcome_of_ending(STOP_TIMEOUT, 1, 0), OUT_ACK);
    /* Drain: anything but success goes back uncharged. */
    ASSERT_EQ(outcome_of_ending(STOP_DRAIN, 0, 0), OUT_RELEASE);
    ASSERT_EQ(outcome_of_ending(STOP_DRAIN, 0, 1), OUT_RELEASE);
    ASSERT_EQ(outcome_of_ending(STOP_DRAIN, 1, 0), OUT_ACK);
}

TEST(outcome_unit_attempts)
{
    ASSERT_EQ(outcome_charge(OUT_RETRY, 1, 3), OUT_RETRY);
    ASSERT_EQ(outcome_charge(OUT_RETRY, 2, 3), OUT_RETRY);
    ASSERT_EQ(outcome_charge(OUT_RETRY, 3, 3), OUT_DEAD);
    ASSERT_EQ(outcome_charge(OUT_RETRY, 9, 3), OUT_DEAD);
    ASSERT_EQ(outcome_charge(OUT_RELEASE, 9, 3), OUT_RELEASE); /* never charged */
    ASSERT_EQ(outcome_charge(OUT_ACK, 9, 3), OUT_ACK);
    /* The job's, else the handler's, else the default. */
    ASSERT_EQ(outcome_max_attempts(7, 3), 7);
    ASSERT_EQ(outcome_max_attempts(0, 3), 3);
    ASSERT_EQ(outcome_max_attempts(0, 0), JOBD_DEFAULT_MAX_ATTEMPTS);
    ASSERT_EQ(outcome_setting(0, 0, 1000), 1000);
    ASSERT_EQ(outcome_setting(0, 250, 1000), 250);
    ASSERT_EQ(outcome_setting(30, 250, 1000), 30);
}

static long rnd_max(void)
{
    return RAND_MAX;
}

static long rnd_zero(void)
{
    return 0;
}

static long rnd_half(void)
{
    return RAND_MAX / 2;
}

TEST(outcome_unit_retry_delay)
{
    /* The top of the jitter range doubles per attempt up to the cap. */
    ASSERT_EQ(outcome_retry_delay(1000, 60000, 1, rnd_max), 1000);
    ASSERT_EQ(outcome_retry_delay(1000, 60000, 2, rnd_max), 2000);
    ASSERT_EQ(outcome_retry_delay(1000, 60000, 4, rnd_max), 8000);
    ASSERT_EQ(outcome_retry_delay(1000, 60000, 7, rnd_max), 60000);
    ASSERT_EQ(outcome_retry_delay(1000, 60000, 1000, rnd_max), 60000);
    /* Full jitter: the bottom is 0, the middle half the range. */
    ASSERT_EQ(outcome_retry_delay(1000, 60000, 4, rnd_zero), 0);
    ASSERT_DBL_NEAR((double)outcome_retry_delay(1000, 60000, 4, rnd_half), 4000.0, 1.0);
    /* Saturates instead of overflowing with a cap near INT64_MAX. */
    int64_t big = outcome_retry_delay(INT64_MAX / 4, INT64_MAX, 100, rnd_max);
    ASSERT_GT(big, INT64_MAX / 4);
    /* No delay configured: none. */
    ASSERT_EQ(outcome_retry_delay(0, 60000, 3, rnd_max), 0);
    ASSERT_EQ(outcome_retry_delay(1000, 0, 3, rnd_max), 0);
    /* Never outside [0, cap], whatever random() says. */
    for (int i = 0; i < 1000; i++) {
        int64_t d = outcome_retry_delay(100, 5000, 1 + i % 12, random);
        ASSERT_GE(d, 0);
        ASSERT_LE(d, 5000);
    }
}

TEST(outcome_unit_names)
{
    for (int o = OUT_ACK; o <= OUT_RELEASE; o++)
        ASSERT_EQ(outcome_parse(outcome_name((job_outcome_t)o)), o);
    ASSERT_STR_EQ(outcome_name(OUT_ACK), "ack");
    ASSERT_STR_EQ(outcome_name(OUT_DROP), "");
    ASSERT_EQ(outcome_parse(NULL), OUT_RELEASE);
    ASSERT_EQ(outcome_parse("parked"), OUT_RELEASE);
    ASSERT_EQ(outcome_script(OUT_ACK), PROTO_ACK);
    ASSERT_EQ(outcome_script(OUT_RELEASE), PROTO_RELEASE);
    ASSERT_EQ(outcome_script(OUT_RETRY), PROTO_FAIL);
    ASSERT_EQ(outcome_script(OUT_DEAD), PROTO_FAIL);
    ASSERT_EQ(outcome_script(OUT_CANCELED), PROTO_FAIL);
    ASSERT_STR_EQ(outcome_word(OUT_ACK, 1), "succeeded");
    ASSERT_STR_EQ(outcome_word(OUT_RELEASE, 1), "released");
    ASSERT_STR_EQ(outcome_word(OUT_RELEASE, 3), "canceled");
    ASSERT_STR_EQ(outcome_word(OUT_RETRY, 1), "failed, retry scheduled");
    ASSERT_STR_EQ(outcome_word(OUT_RETRY, 2), "dead");
    ASSERT_STR_EQ(outcome_word(OUT_CANCELED, 3), "canceled");
    ASSERT(outcome_requeued(OUT_RELEASE, 1));
    ASSERT(outcome_requeued(OUT_RETRY, 1));
    ASSERT(!outcome_requeued(OUT_ACK, 1));
    ASSERT(!outcome_requeued(OUT_RETRY, 2));
    ASSERT(!outcome_requeued(OUT_RELEASE, 3));
}

TEST(outcome_unit_error_for_log)
{
    char buf[OUTCOME_ERROR_LOG_BUF];
    const char *short_error = "handler exited with status 1";
    ASSERT(outcome_error_for_log(short_error, buf) == short_error);
    /* A long one: its first line, an ellipsis, and its end on a whole line. */
    char *e = malloc(5000);
    strcpy(e, "handler exited with status 2\n");
    for (int i = 0; strlen(e) < 4900; i++)
        strcat(e, i % 2 ? "line of output\n" : "Traceback line\n");
    strcat(e, "ValueError: the end");
    const char *s = outcome_error_for_log(e, buf);
    ASSERT(s == buf);
    ASSERT(strncmp(s, "handler exited with status 2\n\xe2\x80\xa6", 32) == 0);
    ASSERT_CONTAINS(s, "ValueError: the end");
    ASSERT_LE(strlen(s), OUTCOME_ERROR_LOG_MAX + 200);
    free(e);
}
