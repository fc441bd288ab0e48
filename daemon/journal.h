/* journal.h - the SQLite journal in --state-dir: held leases, checkpoints
 * and the outbox of outcomes Redis has not confirmed.
 *
 * DESIGN: WAL mode with synchronous=FULL, so a committed write survives a
 * crash of jobd or of the machine. Writes go into one open transaction and
 * journal_commit ends it: the pump commits once per loop iteration (group
 * commit), so 64 jobs checkpointing at once share one fsync. What has to
 * survive only a crash of jobd (the handler processes to stop) is not
 * here but in the handler process table, opened with the journal
 * (journal_procs, procs.h: no fsync). Migrations are
 * schema/sqlite/NNNN_*.sql, applied in order by PRAGMA user_version; a
 * journal newer than this binary is refused with both versions named.
 * Statements are prepared at open and finalized at close. Loop thread
 * only. */
#ifndef JOBD_JOURNAL_H
#define JOBD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "procs.h"

typedef struct journal journal_t;

typedef struct {
    const char *id, *queue, *token;
    int attempt;
    int64_t claimed_at;
    int64_t ckpt_seq;
    const char *checkpoint; /* NULL: none */
    double progress;
    const char *outcome; /* NULL: still held (no outcome yet); "parked": see journal_park */
    const char *result, *error;
    int64_t retry_ms;
    /* The exec handler's process group and its start time, as jobd versions
     * before procs.h wrote them (read to stop what such a jobd left); 0: none. */
    int pgid;
    int64_t pgid_start;
    int64_t ended_at; /* when the outcome was recorded (Unix ms), 0: none */
} journal_row_t;

/* Opens (creating) STATE_DIR/journal.db. Returns 0, or -1 with a message in
 * err naming the path and the cause (unwritable, corrupt, too new). */
int journal_open(journal_t **out, const char *state_dir, char *err, size_t errlen);
/* Commits what is pending and closes. */
void journal_close(journal_t *j);

/* Records a held lease (no-op if the row exists). */
int journal_put_held(journal_t *j, const char *id, const char *queue, const char *token,
                     int attempt, int64_t claimed_at);
/* Records the newest checkpoint (seq increases per job) and progress. */
int journal_put_checkpoint(journal_t *j, const char *id, int64_t seq, const char *checkpoint,
                           double progress);
/* Records the job's outcome in the outbox. */
int journal_put_outcome(journal_t *j, const char *id, const char *outcome, const char *result,
                        const char *error, int64_t retry_ms, const char *checkpoint,
                        double progress);
/* Parks the checkpoint of a job whose release Redis rejected as stale (its
 * lease expired meanwhile): the row stays, outcome "parked", so that the job
 * resumes from it should this jobd claim the job again. Returns 1 if parked,
 * 0 if there was no checkpoint to park, -1 on error. */
int journal_park(journal_t *j, const char *id);
/* If a parked checkpoint exists for id, removes it and returns it (new,
 * malloc'd), else NULL. */
char *journal_take_parked(journal_t *j, const char *id);
/* Forgets a job (Redis confirmed or rejected its outcome). */
int journal_delete(journal_t *j, const char *id);
/* Ends the open transaction, if any. Returns 0, or -1 (logged) when the
 * commit failed: its writes are rolled back then. */
int journal_commit(journal_t *j);
/* Non-zero if writes wait for a commit. */
int journal_dirty(const journal_t *j);

/* The handler processes of this state dir (procs.h), opened with the
 * journal; NULL if j is NULL. */
procs_t *journal_procs(journal_t *j);

/* Handler processes journaled by jobd versions before procs.h (read once,
 * at start, to stop what such a jobd left): forgets one. */
int journal_delete_proc(journal_t *j, int pid);
/* Calls cb for every such process (type borrowed for the call). */
int journal_load_procs(journal_t *j,
                       void (*cb)(void *arg, int pid, int64_t start, const char *type), void *arg);

/* Calls cb for every row (strings borrowed for the call). */
int journal_load(journal_t *j, void (*cb)(void *arg, const journal_row_t *row), void *arg);

/* Commits so far, for metrics. */
long long journal_commits(const journal_t *j);

#endif
