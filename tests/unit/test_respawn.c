/* Unit tests of the persistent handlers' process policy (daemon/respawn.c):
 * restart backoff, the crash loop and its end, recycling at max_jobs. */
#define _GNU_SOURCE
#include <unistd.h>

#include "respawn.h"
#include "test.h"

TEST(respawn_backoff_doubles_to_the_cap)
{
    respawn_t r = {0};
    ASSERT_EQ(respawn_backoff_ms(&r, 0), 100);
    respawn_crash(&r, "t", "exited with status 1", 0, NULL, NULL, NULL);
    ASSERT_EQ(respawn_backoff_ms(&r, 0), 100);
    respawn_crash(&r, "t", "exited with status 1", 0, NULL, NULL, NULL);
    ASSERT_EQ(respawn_backoff_ms(&r, 0), 200);
    ASSERT_EQ(respawn_backoff_ms(&r, 50), 100);
    for (int i = 0; i < 30; i++)
        respawn_crash(&r, "t", "exited with status 1", 0, NULL, NULL, NULL);
    ASSERT_EQ(respawn_backoff_ms(&r, 0), RESPAWN_BACKOFF_CAP_MS);
}

TEST(respawn_crash_loop_until_a_job_completes)
{
    respawn_t r = {0};
    for (int i = 1; i < RESPAWN_CRASH_LOOP; i++)
        respawn_crash(&r, "t", "killed by signal 9", 0, NULL, NULL, NULL);
    ASSERT(!r.unhealthy);
    respawn_crash(&r, "t", "killed by signal 9", 0, NULL, NULL, NULL);
    ASSERT(r.unhealthy);
    ASSERT_EQ(r.crashes, RESPAWN_CRASH_LOOP);
    respawn_job_done(&r, "t");
    ASSERT(!r.unhealthy);
    ASSERT_EQ(r.crash_streak, 0);
    ASSERT_EQ(r.crashes, RESPAWN_CRASH_LOOP); /* a counter, never reset */
}

TEST(respawn_recycles_at_max_jobs_and_max_rss)
{
    respawn_t r = {0};
    char why[128];
    ASSERT_EQ(respawn_recycle(&r, getpid(), 9, 10, 0, why, sizeof why), 0);
    ASSERT_EQ(respawn_recycle(&r, getpid(), 10, 10, 0, why, sizeof why), 1);
    ASSERT(strstr(why, "max_jobs") != NULL);
    ASSERT_EQ(r.recycled, 1);
    /* This process has more than 0 MiB resident but not 16 TiB. */
    ASSERT_EQ(respawn_recycle(&r, getpid(), 1, 0, INT64_C(16777216), why, sizeof why), 0);
    ASSERT_EQ(respawn_recycle(&r, 0, 1, 0, 0, why, sizeof why), 0);
}
