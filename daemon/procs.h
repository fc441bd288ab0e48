/* procs.h - the handler processes jobd runs, recorded in STATE_DIR/procs
 * so that the next jobd on the state directory stops what a crashed one
 * left running, and releases the leases of their jobs.
 *
 * DESIGN: one fixed slot per live process group, written by one pwrite and
 * never fsynced. That is enough: what the records guard against is a crash
 * of jobd (kill -9, OOM kill, abort), and a written page lives in the
 * kernel's page cache, not in jobd; a crash of the machine kills the
 * processes too. So a handler gets its input at once after the spawn, with
 * no fsync in between (the journal's group commit is not waited for). A
 * slot holds the group leader's pid, its start time (/proc/PID/stat), the
 * boot it started in (a pid and start time of an earlier boot mean
 * nothing), and for a process-per-job handler the lease of its job (id,
 * token, queue, attempt): a lease the journal does not hold yet (lease.h's
 * young jobs) is released at once after the crash too, instead of expiring.
 * A checksum per slot makes a slot torn by a machine crash read as empty.
 * procs_open reads what an earlier run left; recovery uses it
 * (procs_each_old), then procs_forget_old clears those slots. Free slots
 * are reused lowest first, so the file stays as long as the most processes
 * ever recorded at once. Loop thread only. */
#ifndef JOBD_PROCS_H
#define JOBD_PROCS_H

#include <stddef.h>
#include <stdint.h>

#include "jobd/client.h"

#define PROCS_TOKEN_MAX 48 /* a lease token, NUL included (job.h's JOB_TOKEN_MAX) */
#define PROCS_NAME_MAX 129 /* a queue or type name, NUL included */

typedef struct procs procs_t;

typedef struct {
    int pid;       /* the process group's leader */
    int64_t start; /* its start time (child_start_time) */
    /* A process-per-job handler's job; id[0] == '\0' for a pool's process. */
    char id[JOBD_ID_LEN + 1];
    char token[PROCS_TOKEN_MAX];
    char queue[PROCS_NAME_MAX];
    int attempt;
    int64_t claimed_at;        /* Unix ms */
    char type[PROCS_NAME_MAX]; /* the job type of its handler (for the log) */
    int this_boot;             /* (read back) written since the machine last booted */
} procs_rec_t;

/* Opens (creating) STATE_DIR/procs and reads what an earlier run left in
 * it. Returns 0, or -1 with a message in err naming the path and cause. */
int procs_open(procs_t **out, const char *state_dir, char *err, size_t errlen);
void procs_close(procs_t *p);

/* Writes r into slot (reusing it), or into a free slot when slot < 0.
 * Returns the slot, or -1 (logged) if it could not be written: the caller
 * then makes the record durable some other way. Strings too long for a
 * slot count as a failure. */
int procs_put(procs_t *p, int slot, const procs_rec_t *r);
/* Empties slot (the process is gone and its lease let go). */
void procs_clear(procs_t *p, int slot);

/* Calls cb for every record an earlier run left (r borrowed for the call). */
void procs_each_old(const procs_t *p, void (*cb)(void *arg, const procs_rec_t *r), void *arg);
/* Clears the earlier run's records: recovery is done with them. */
void procs_forget_old(procs_t *p);

/* Kills r's process group if it is still the process r names (same boot,
 * same pid, same start time). Returns 1 if it sent the signal. */
int procs_kill_if_same(const procs_rec_t *r);

#endif
