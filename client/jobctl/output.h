/* output.h - how jobctl prints: text tables for people, one JSON value per
 * command for scripts (--json), and the progress display of `wait`.
 *
 * Results go to stdout, progress and errors to stderr, so
 * `id=$(jobctl submit ... --wait)` still captures only the id. Every json_t
 * argument is borrowed. */
#ifndef JOBCTL_OUTPUT_H
#define JOBCTL_OUTPUT_H

#include <jansson.h>
#include <stddef.h>

/* Prints v as one line of compact JSON on stdout. */
void out_json(const json_t *v);

/* Text forms of status, list, stats and workers results. */
void out_status_text(const json_t *st);
void out_list_text(const json_t *jobs);
void out_stats_text(const json_t *stats);
void out_workers_text(const json_t *workers);
void out_history_text(const json_t *history);

/* Writes a short age ("850ms", "42s", "3m05s", "2h10m", "3d4h") into buf. */
void out_format_age(double seconds, char *buf, size_t len);

/* ---- wait progress ---- */

typedef struct out_progress out_progress_t;

/* Starts a progress display for the n distinct ids (borrowed: they must
 * outlive it). On a terminal (isatty(stderr)) it redraws one bar line;
 * otherwise it prints "ID STATE NN%" per change. Returns NULL when out of
 * memory. */
out_progress_t *out_progress_new(const char *const *ids, size_t n);
/* A jobd_wait_cb: arg is the out_progress_t. */
void out_progress_cb(void *arg, const char *id, const char *state, double progress);
/* Draws the final state and ends the bar line, then frees p. */
void out_progress_free(out_progress_t *p);

#endif
