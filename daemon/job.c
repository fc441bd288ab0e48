/* job.c - job_t lifetime and the handler API of include/jobd/handler.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "job.h"

job_t *job_new(void)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->proc_slot = -1;
    return j;
}

void job_free(job_t *j)
{
    if (!j) return;
    envelope_clear(&j->env);
    json_decref(j->resume);
    free(j->raw_env);
    free(j->checkpoint);
    free(j->result);
    free(j->error);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void job_set_error(job_t *j, const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    pthread_mutex_lock(&j->mu);
    free(j->error);
    j->error = s;
    pthread_mutex_unlock(&j->mu);
}

void job_request_stop(job_t *j, job_stop_t why)
{
    if (j->stop_reason == STOP_NONE) j->stop_reason = why;
    atomic_store(&j->stop, 1);
    pthread_mutex_lock(&j->mu);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* ---- include/jobd/handler.h ---- */

const char *jobd_job_id(const jobd_job_t *job)
{
    return job->id;
}

const char *jobd_job_type(const jobd_job_t *job)
{
    return job->env.type;
}

int jobd_job_attempt(const jobd_job_t *job)
{
    return job->attempt;
}

json_t *jobd_job_payload(const jobd_job_t *job)
{
    return job->env.payload;
}

json_t *jobd_job_resume(const jobd_job_t *job)
{
    return job->resume;
}

void jobd_job_progress(jobd_job_t *job, double p)
{
    pthread_mutex_lock(&job->mu);
    job->progress = p < 0 ? 0 : (p > 1 ? 1 : p);
    job->ckpt_dirty = 1;
    pthread_mutex_unlock(&job->mu);
}

int64_t job_store_checkpoint(job_t *j, char *text)
{
    pthread_mutex_lock(&j->mu);
    free(j->checkpoint);
    j->checkpoint = text;
    j->ckpt_dirty = 1;
    int64_t seq = ++j->ckpt_seq;
    pthread_mutex_unlock(&j->mu);
    return seq;
}

int jobd_job_checkpoint(jobd_job_t *job, json_t *state)
{
    char *text = json_dumps(state, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) return JOBD_ENOMEM;
    int64_t seq = job_store_checkpoint(job, text);
    if (!job->ckpt_async) return 0;
    /* Guarantee 3: tell the handler only once the journal has it on disk.
     * The loop journals it and commits (grouped with other jobs'), then
     * wakes us; it also wakes us, to give up, when that commit failed or
     * when it is going away (lease.c sets ckpt_failed and ckpt_closing). */
    uv_async_send(job->ckpt_async);
    pthread_mutex_lock(&job->mu);
    while (job->ckpt_durable < seq && job->ckpt_failed < seq && !job->ckpt_closing)
        pthread_cond_wait(&job->cv, &job->mu);
    int ok = job->ckpt_durable >= seq;
    pthread_mutex_unlock(&job->mu);
    return ok ? 0 : JOBD_ECONN;
}

int jobd_job_should_stop(const jobd_job_t *job)
{
    return atomic_load(&((jobd_job_t *)job)->stop);
}

int jobd_job_sleep(jobd_job_t *job, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job->mu);
    while (!atomic_load(&job->stop))
        if (pthread_cond_timedwait(&job->cv, &job->mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&job->mu);
    return atomic_load(&job->stop);
}

void jobd_job_set_result(jobd_job_t *job, json_t *result)
{
    char *text = result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(result);
    pthread_mutex_lock(&job->mu);
    free(job->result);
    job->result = text;
    pthread_mutex_unlock(&job->mu);
}

void jobd_job_set_error(jobd_job_t *job, const char *message)
{
    job_set_error(job, "%s", message ? message : "failed");
}
