/* batch.h - reads the JSON Lines input of `jobctl submit --batch` into job
 * specs for one jobd_submit_batch call.
 *
 * DESIGN: a batch of 100,000 jobs should go in well under a second, and a
 * jansson tree per line costs more than Redis takes to store the job (about
 * 1 KB and a dozen allocations each). So the whole input is read into one
 * buffer and each line goes through a scanner that handles the common shape
 * - known fields, plain strings, integers, any payload - in place: strings
 * and the payload's text are NUL-terminated where they lie and the specs
 * point at them (the payload as payload_json, so libjobd checks and copies
 * its text without building a tree). Any line the scanner does not fully
 * understand (escapes, non-ASCII strings, unusual numbers, duplicate or
 * unknown fields, bad values) goes to json_loadb + jobd_job_spec_from_json,
 * which accept or reject it with the library's own message; its tree is
 * kept alive while the spec points into it. Pure parsing, no Redis.
 */
#ifndef JOBCTL_BATCH_H
#define JOBCTL_BATCH_H

#include <jansson.h>
#include <stdio.h>

#include "jobd/client.h"

typedef struct {
    char *text;    /* the whole input; the specs point into it */
    json_t **objs; /* trees of the lines jansson parsed (owned) */
    size_t nobjs, objcap;
    jobd_job_spec_t *specs; /* one per job, in input order */
    size_t *lines;          /* the input line number of each job */
    size_t n, cap;
    size_t slow; /* how many lines went to jansson */
} batch_t;

/* Reads every line of f into b (zeroed by the caller). Blank lines are
 * skipped. Returns 0, or JOBD_EJSON / JOBD_EINVAL / JOBD_ENOMEM with
 * "line N: ..." in err (JOBD_EINVAL "...: <strerror>" for a read error);
 * either way b must be freed with batch_free. */
int batch_read(batch_t *b, FILE *f, char *err, size_t errlen);

void batch_free(batch_t *b);

#endif
