/* jobmetrics.c - see jobmetrics.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobd/client.h"
#include "jobmetrics.h"

#define UNKNOWN "unknown"

int jobmetrics_init(jobmetrics_t *m, const config_t *cfg, const handlers_t *handlers)
{
    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    m->handlers = handlers;
    m->types = calloc(handlers->n + handlers->nbuiltins + 1, sizeof *m->types);
    m->builtin_slot = calloc(handlers->nbuiltins + 1, sizeof *m->builtin_slot);
    if (!m->types || !m->builtin_slot) goto fail;
    int n = 0;
    for (size_t i = 0; i < handlers->n; i++)
        m->types[n++] = handlers->items[i].type;
    for (size_t i = 0; i < handlers->nbuiltins; i++) {
        /* A built-in the file maps elsewhere is never looked up by its name. */
        int own = handlers_find(handlers, handlers->builtins[i].type) == &handlers->builtins[i];
        m->builtin_slot[i] = own ? n : -1;
        if (own) m->types[n++] = handlers->builtins[i].type;
    }
    /* A type named "unknown" shares its series with the jobs no handler
     * serves: one label set, never two. */
    m->unknown = -1;
    for (int t = 0; t < n; t++)
        if (strcmp(m->types[t], UNKNOWN) == 0) m->unknown = t;
    if (m->unknown < 0) {
        m->unknown = n;
        m->types[n++] = UNKNOWN;
    }
    m->ntypes = n;
    m->cells = calloc((size_t)cfg->nqueues * (size_t)n, sizeof *m->cells);
    if (!m->cells) goto fail;
    for (int i = 0; i < cfg->nqueues * n; i++)
        metrics_hist_init(&m->cells[i].duration);
    return 0;
fail:
    jobmetrics_free(m);
    return JOBD_ENOMEM;
}

void jobmetrics_free(jobmetrics_t *m)
{
    free(m->types);
    free(m->builtin_slot);
    free(m->cells);
    m->types = NULL;
    m->builtin_slot = NULL;
    m->cells = NULL;
}

static int type_index(const jobmetrics_t *m, const handler_t *h)
{
    const handlers_t *hs = m->handlers;
    if (h && h >= hs->items && h < hs->items + hs->n) return (int)(h - hs->items);
    if (h && h >= hs->builtins && h < hs->builtins + hs->nbuiltins) {
        int slot = m->builtin_slot[h - hs->builtins];
        if (slot >= 0) return slot;
    }
    return m->unknown;
}

jobmetrics_cell_t *jobmetrics_cell(jobmetrics_t *m, int qidx, const handler_t *h)
{
    return &m->cells[qidx * m->ntypes + type_index(m, h)];
}

void jobmetrics_ran(jobmetrics_t *m, const job_t *j, job_outcome_t o)
{
    if (o == OUT_RELEASE || o == OUT_DEFER) return;
    double s = (double)(jobd_now_ms() - j->started_ms) / 1000.0;
    metrics_hist_observe(&jobmetrics_cell(m, j->qidx, j->handler)->duration, s > 0 ? s : 0);
}

static const struct {
    const char *name, *outcome, *help; /* help: the family's first series only */
} series[JM_NCOUNTS] = {
    [JM_SUCCEEDED] = {"jobd_jobs_finished_total", "succeeded",
                      "Jobs that reached a terminal state here, as Redis confirmed it: "
                      "succeeded, dead (failed for good) or canceled."},
    [JM_DEAD] = {"jobd_jobs_finished_total", "dead", NULL},
    [JM_CANCELED] = {"jobd_jobs_finished_total", "canceled", NULL},
    [JM_RETRIED] = {"jobd_jobs_retried_total", NULL,
                    "Attempts that failed with another attempt scheduled, as Redis confirmed "
                    "it."},
    [JM_RELEASED] = {"jobd_jobs_released_total", NULL,
                     "Attempts handed back uncharged (drain, exit 75, no descriptors to start "
                     "a handler), as Redis confirmed it."},
    [JM_DEFERRED] = {"jobd_jobs_deferred_total", NULL,
                     "Jobs put back unstarted and uncharged: cluster-wide resources busy or "
                     "rate-limited, or no handler for the type here."},
};

void jobmetrics_render(const jobmetrics_t *m, metrics_buf_t *b)
{
    for (int k = 0; k < JM_NCOUNTS; k++) {
        const char *name = series[k].name, *oc = series[k].outcome;
        if (series[k].help)
            metrics_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, series[k].help, name);
        for (int qi = 0; qi < m->cfg->nqueues; qi++)
            for (int t = 0; t < m->ntypes; t++)
                metrics_printf(b, "%s{queue=\"%s\",type=\"%s\"%s%s%s} %lld\n", name,
                               m->cfg->queues[qi].name, m->types[t], oc ? ",outcome=\"" : "",
                               oc ? oc : "", oc ? "\"" : "", m->cells[qi * m->ntypes + t].count[k]);
    }
    metrics_printf(b, "# HELP jobd_job_duration_seconds Handler run time of every attempt that "
                      "ended, released ones excepted.\n"
                      "# TYPE jobd_job_duration_seconds histogram\n");
    for (int qi = 0; qi < m->cfg->nqueues; qi++)
        for (int t = 0; t < m->ntypes; t++) {
            char labels[320];
            snprintf(labels, sizeof labels, "queue=\"%s\",type=\"%s\"", m->cfg->queues[qi].name,
                     m->types[t]);
            metrics_hist_render_series(b, "jobd_job_duration_seconds", labels,
                                       &m->cells[qi * m->ntypes + t].duration);
        }
}
