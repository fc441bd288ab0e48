/* outcome.c - see outcome.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobd/client.h"
#include "num.h"
#include "outcome.h"

/* The one table of outcome names (the journal's words). */
static const char *const names[OUT_COUNT] = {
    [OUT_NONE] = "",
    [OUT_ACK] = "ack",
    [OUT_RETRY] = "retry",
    [OUT_DEAD] = "dead",
    [OUT_CANCELED] = "canceled",
    [OUT_RELEASE] = "release",
    [OUT_DEFER] = "release",
    [OUT_DROP] = "",
};

const char *outcome_name(job_outcome_t o)
{
    return o >= 0 && o < OUT_COUNT ? names[o] : "";
}

job_outcome_t outcome_parse(const char *name)
{
    for (int o = OUT_ACK; o <= OUT_RELEASE; o++)
        if (name && strcmp(name, names[o]) == 0) return (job_outcome_t)o;
    return OUT_RELEASE;
}

job_outcome_t outcome_of_ending(job_stop_t why, int ok, int stopped)
{
    if (why == STOP_LEASE_LOST) return OUT_DROP;
    if (!ok) {
        /* Asked to stop: cancel ends canceled, a timeout is a failed
         * attempt, a drain hands the lease back uncharged. */
        if (why == STOP_CANCEL) return OUT_CANCELED;
        if (why == STOP_TIMEOUT) return OUT_RETRY;
        if (why == STOP_DRAIN) return OUT_RELEASE;
    }
    return ok ? OUT_ACK : (stopped ? OUT_RELEASE : OUT_RETRY);
}

job_outcome_t outcome_charge(job_outcome_t o, int attempt, int max_attempts)
{
    return o == OUT_RETRY && attempt >= max_attempts ? OUT_DEAD : o;
}

int64_t outcome_setting(int64_t job, int64_t handler, int64_t dflt)
{
    return job > 0 ? job : (handler > 0 ? handler : dflt);
}

int outcome_max_attempts(int job, int handler)
{
    return (int)outcome_setting(job, handler, JOBD_DEFAULT_MAX_ATTEMPTS);
}

int64_t outcome_retry_delay(int64_t base, int64_t cap, int attempt, long (*rnd)(void))
{
    int64_t d = base;
    for (int i = 1; i < attempt && d < cap; i++)
        d = num_mul_sat(d, 2); /* a cap near INT64_MAX must not overflow it */
    if (d > cap) d = cap;
    if (d <= 0) return 0;
    long r = rnd();
    if (r < 0) r = 0;
    if (r > RAND_MAX) r = RAND_MAX;
    double x = (double)r / RAND_MAX * (double)d;
    /* A double near INT64_MAX rounds up to 2^63, which no int64_t holds. */
    return x >= (double)d ? d : (int64_t)x;
}

proto_script_t outcome_script(job_outcome_t o)
{
    if (o == OUT_DEFER) return PROTO_DEFER;
    return o == OUT_ACK ? PROTO_ACK : (o == OUT_RELEASE ? PROTO_RELEASE : PROTO_FAIL);
}

const char *outcome_word(job_outcome_t o, long long res)
{
    if (o == OUT_ACK) return "succeeded";
    if (o == OUT_RELEASE) return res == 3 ? "canceled" : "released";
    if (o == OUT_DEFER) return res == 1 ? "deferred" : (res == 2 ? "dead" : "canceled");
    return res == 1 ? "failed, retry scheduled" : (res == 2 ? "dead" : "canceled");
}

int outcome_requeued(job_outcome_t o, long long res)
{
    /* release.lua, fail.lua and defer.lua all answer 1 for "back in the queue". */
    return o != OUT_ACK && res == 1;
}

const char *outcome_error_for_log(const char *e, char *buf)
{
    size_t n = strlen(e);
    if (n <= OUTCOME_ERROR_LOG_MAX + 200) return e;
    size_t first = strcspn(e, "\n");
    if (first > 160) first = 160;
    const char *end = e + n - OUTCOME_ERROR_LOG_MAX;
    const char *nl = memchr(end, '\n', 120);
    if (nl) /* start on a whole line if one starts soon */
        end = nl + 1;
    while ((*end & 0xc0) == 0x80) /* else on a whole UTF-8 character */
        end++;
    snprintf(buf, OUTCOME_ERROR_LOG_BUF, "%.*s\n\xe2\x80\xa6%s", (int)first, e, end);
    return buf;
}
