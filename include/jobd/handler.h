/* handler.h - the API built-in C handlers use.
 *
 * A built-in handler is a function `int run(jobd_job_t *job)` named by a
 * job type in jobd's handler table (daemon/builtins/). Unless it declares
 * itself inline (trivial, never blocks), it runs on a worker thread, off the
 * event loop, so it may compute or block; these calls are thread-safe.
 *
 * It returns JOBD_HANDLER_OK (succeeded, with the result it set),
 * JOBD_HANDLER_STOPPED (it saw should_stop and stopped at its last
 * checkpoint: the lease is released for resumption, attempt not charged) or
 * JOBD_HANDLER_FAILED (the attempt failed, with the error it set). */
#ifndef JOBD_HANDLER_H
#define JOBD_HANDLER_H

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { JOBD_HANDLER_OK = 0, JOBD_HANDLER_FAILED = 1, JOBD_HANDLER_STOPPED = 75 };

typedef struct job jobd_job_t;

/* The job's id, type and attempt (1 on the first run). Borrowed. */
const char *jobd_job_id(const jobd_job_t *job);
const char *jobd_job_type(const jobd_job_t *job);
int jobd_job_attempt(const jobd_job_t *job);
/* The payload (borrowed; JSON null if none). */
json_t *jobd_job_payload(const jobd_job_t *job);
/* The checkpoint to resume from (borrowed), or NULL on a fresh start. */
json_t *jobd_job_resume(const jobd_job_t *job);

/* Reports progress in 0..1 (clamped). */
void jobd_job_progress(jobd_job_t *job, double progress);
/* Records a checkpoint (borrowed: copied before the call returns). Returns 0
 * once it is stored durably (jobd's journal committed it), or a negative
 * JOBD_E* code: JOBD_ENOMEM, or JOBD_ECONN when jobd could not make it
 * durable (the journal's commit failed, or jobd is exiting). */
int jobd_job_checkpoint(jobd_job_t *job, json_t *state);
/* Non-zero once jobd wants the handler to stop (drain, cancel, timeout, lost
 * lease). A handler that can resume checkpoints and returns
 * JOBD_HANDLER_STOPPED promptly. */
int jobd_job_should_stop(const jobd_job_t *job);
/* Sleeps up to ms, returning early (non-zero) if a stop is requested. */
int jobd_job_sleep(jobd_job_t *job, long ms);

/* Sets the result (steals the reference) or the error message (copied). */
void jobd_job_set_result(jobd_job_t *job, json_t *result);
void jobd_job_set_error(jobd_job_t *job, const char *message);

#ifdef __cplusplus
}
#endif
#endif
