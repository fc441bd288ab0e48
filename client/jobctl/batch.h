/* batch.h - reads the JSON Lines input of `jobctl submit --batch` into job
 * specs for one jobd_submit_batch call.
 *
 * DESIGN: every line is parsed by jansson (json_loadb, duplicate keys
 * refused) and read by jobd_job_spec_from_json, so a batch line means
 * exactly what the same object means anywhere else in libjobd: there is no
 * second parser to disagree with the first (a hand-written fast path once
 * took {"type":null"p"} for type "p"). A raw NUL byte is refused before
 * that: it is never JSON, and jansson 2.14 skips one after a number.
 *
 * Two things keep it cheap. The whole input is read into one buffer, and
 * each line's tree is freed as soon as the line is read: the few strings a
 * spec needs are copied into an arena, and the payload is not copied at all
 * - the spec points at its text in the buffer (payload_json, NUL-terminated
 * in place), so it is stored as written (numbers and escapes kept, as the
 * schema says) rather than re-encoded from the tree. Pure parsing, no
 * Redis. tests/unit/test_batch.c holds it to jansson over a corpus of tricky
 * lines. */
#ifndef JOBCTL_BATCH_H
#define JOBCTL_BATCH_H

#include <jansson.h>
#include <stdio.h>

#include "jobd/client.h"

struct batch_chunk;

typedef struct {
    char *text;                /* the whole input; payload_json points into it */
    struct batch_chunk *arena; /* the specs' other strings (owned) */
    jobd_job_spec_t *specs;    /* one per job, in input order */
    size_t *lines;             /* the input line number of each job */
    size_t n, cap;
} batch_t;

/* Reads every line of f into b (zeroed by the caller). Blank lines are
 * skipped. Returns 0, or JOBD_EJSON / JOBD_EINVAL / JOBD_ENOMEM with
 * "line N: ..." in err (JOBD_EINVAL "...: <strerror>" for a read error);
 * either way b must be freed with batch_free. */
int batch_read(batch_t *b, FILE *f, char *err, size_t errlen);

void batch_free(batch_t *b);

#endif
