/* jobmetrics.h - how the attempts of each queue and job type ended, and
 * how long they ran: the labelled job series of /metrics.
 *
 * Owns jobd_jobs_finished_total{queue,type,outcome} (terminal outcomes
 * only: succeeded, dead, canceled), jobd_jobs_retried_total{queue,type}
 * (failed, another attempt scheduled), jobd_jobs_released_total{queue,type}
 * (handed back uncharged: drain, exit 75, no descriptors),
 * jobd_jobs_deferred_total{queue,type} (put back unstarted: resources busy
 * or rate-limited, or no handler here yet) and the histogram
 * jobd_job_duration_seconds{queue,type} (every attempt that ran and ended,
 * released ones excepted).
 *
 * DESIGN: cardinality is fixed at start. The types are every type of the
 * handlers file, then every built-in the file does not take, under its own
 * name, then "unknown" for a job no handler here serves (or whose envelope
 * could not be read); a job's type string never becomes a label. Every
 * series of every served queue exists from the start, at 0, so rate() has a
 * series before the first event. Outcomes are counted once Redis confirmed
 * them (outbox.c), durations when the handler ended (daemon.c). Loop
 * thread only. */
#ifndef JOBD_JOBMETRICS_H
#define JOBD_JOBMETRICS_H

#include "config.h"
#include "handlers.h"
#include "job.h"
#include "metrics.h"

/* The counters of a cell, in the order they are rendered. */
typedef enum {
    JM_SUCCEEDED, /* jobd_jobs_finished_total{outcome="succeeded"} */
    JM_DEAD,      /* jobd_jobs_finished_total{outcome="dead"} */
    JM_CANCELED,  /* jobd_jobs_finished_total{outcome="canceled"} */
    JM_RETRIED,   /* jobd_jobs_retried_total */
    JM_RELEASED,  /* jobd_jobs_released_total */
    JM_DEFERRED,  /* jobd_jobs_deferred_total */
    JM_NCOUNTS
} jobmetrics_count_t;

typedef struct {
    long long count[JM_NCOUNTS];
    metrics_hist_t duration;
} jobmetrics_cell_t;

typedef struct jobmetrics {
    const config_t *cfg;        /* borrowed */
    const handlers_t *handlers; /* borrowed */
    int ntypes;                 /* label values */
    int unknown;                /* the index of "unknown" */
    const char **types;         /* borrowed names; new array */
    int *builtin_slot;          /* handlers->builtins[i] -> type index; -1: taken by the file */
    jobmetrics_cell_t *cells;   /* [queue * ntypes + type]; new */
} jobmetrics_t;

/* Sets m up for cfg's queues and the handlers' types (both borrowed, kept
 * for m's life). Returns 0 or JOBD_ENOMEM (nothing is left allocated). */
int jobmetrics_init(jobmetrics_t *m, const config_t *cfg, const handlers_t *handlers);
void jobmetrics_free(jobmetrics_t *m);
/* The cell of queue qidx and handler h (NULL: "unknown"). */
jobmetrics_cell_t *jobmetrics_cell(jobmetrics_t *m, int qidx, const handler_t *h);
/* j's handler ended with outcome o (before charging): observes its run
 * time, unless o hands the job back (OUT_RELEASE, OUT_DEFER). */
void jobmetrics_ran(jobmetrics_t *m, const job_t *j, job_outcome_t o);
/* Appends every series, in Prometheus text. */
void jobmetrics_render(const jobmetrics_t *m, metrics_buf_t *b);

#endif
