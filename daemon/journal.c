/* journal.c - see journal.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "embedded.h"
#include "jobd/client.h"
#include "journal.h"
#include "log.h"
#include "procs.h"

enum {
    S_HELD,
    S_CKPT,
    S_OUTCOME,
    S_DELETE,
    S_BEGIN,
    S_COMMIT,
    S_LOAD,
    S_PARK,
    S_PARKED,
    S_PROC_DELETE,
    S_PROC_LOAD,
    NSTMT
};

static const char *const sql[NSTMT] = {
    [S_HELD] = "INSERT OR IGNORE INTO held (id, queue, token, attempt, claimed_at) "
               "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_CKPT] = "UPDATE held SET ckpt_seq = ?2, checkpoint = ?3, progress = ?4 "
               "WHERE id = ?1 AND ckpt_seq < ?2",
    [S_OUTCOME] = "UPDATE held SET outcome = ?2, result = ?3, error = ?4, retry_ms = ?5, "
                  "checkpoint = coalesce(?6, checkpoint), progress = ?7, ended_at = ?8 "
                  "WHERE id = ?1",
    [S_DELETE] = "DELETE FROM held WHERE id = ?1",
    [S_BEGIN] = "BEGIN",
    [S_COMMIT] = "COMMIT",
    [S_LOAD] = "SELECT id, queue, token, attempt, claimed_at, ckpt_seq, checkpoint, progress, "
               "outcome, result, error, retry_ms, pgid, pgid_start, ended_at FROM held",
    [S_PARK] = "UPDATE held SET outcome = 'parked', token = '', ended_at = ?2 "
               "WHERE id = ?1 AND checkpoint IS NOT NULL",
    [S_PARKED] = "SELECT checkpoint FROM held WHERE id = ?1 AND outcome = 'parked'",
    [S_PROC_DELETE] = "DELETE FROM pool_procs WHERE pid = ?1",
    [S_PROC_LOAD] = "SELECT pid, pid_start, type FROM pool_procs",
};

struct journal {
    sqlite3 *db;
    sqlite3_stmt *st[NSTMT];
    int in_tx;
    long long commits;
    procs_t *procs;
    char path[1024];
};

static int fail(journal_t *j, char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "journal %s: %s: %s", j->path, what,
             j->db ? sqlite3_errmsg(j->db) : "cannot open");
    return -1;
}

static int migrate(journal_t *j, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(j->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fail(j, err, errlen, "reading its version");
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0) return fail(j, err, errlen, "reading its version");
    int known = 0;
    while (jobd_sql_migrations[known].name)
        known++;
    if (version > known) {
        snprintf(err, errlen,
                 "journal %s has schema version %d, newer than this jobd (which knows up to "
                 "version %d): use a newer jobd or another --state-dir",
                 j->path, version, known);
        return -1;
    }
    for (int v = version; v < known; v++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %d", v + 1);
        /* Each migration and its version bump in one transaction. */
        if (sqlite3_exec(j->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(j->db, jobd_sql_migrations[v].text, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(j->db, set, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            char what[128];
            snprintf(what, sizeof what, "applying migration %s", jobd_sql_migrations[v].name);
            fail(j, err, errlen, what);
            sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    return 0;
}

int journal_open(journal_t **out, const char *state_dir, char *err, size_t errlen)
{
    *out = NULL;
    journal_t *j = calloc(1, sizeof *j);
    if (!j) return -1;
    snprintf(j->path, sizeof j->path, "%s/journal.db", state_dir);
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "state dir %s: cannot create: %s", state_dir, strerror(errno));
        free(j);
        return -1;
    }
    int rc = sqlite3_open_v2(j->path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) goto bad_open;
    sqlite3_busy_timeout(j->db, 2000);
    /* journal_mode=WAL is also the first real read: a corrupt file fails here. */
    if (sqlite3_exec(j->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(j->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
        goto bad_open;
    if (migrate(j, err, errlen) < 0) goto fail_close;
    if (procs_open(&j->procs, state_dir, err, errlen) < 0) goto fail_close;
    for (int i = 0; i < NSTMT; i++)
        if (sqlite3_prepare_v2(j->db, sql[i], -1, &j->st[i], NULL) != SQLITE_OK) goto bad_open;
    /* Prove it is writable now, not at the first checkpoint. */
    if (sqlite3_exec(j->db, "BEGIN IMMEDIATE; COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto bad_open;
    *out = j;
    return 0;
bad_open:
    fail(j, err, errlen, "cannot open or write it");
fail_close:
    for (int i = 0; i < NSTMT; i++)
        sqlite3_finalize(j->st[i]);
    sqlite3_close(j->db);
    procs_close(j->procs);
    free(j);
    return -1;
}

void journal_close(journal_t *j)
{
    if (!j) return;
    journal_commit(j);
    for (int i = 0; i < NSTMT; i++)
        sqlite3_finalize(j->st[i]);
    sqlite3_close(j->db);
    procs_close(j->procs);
    free(j);
}

procs_t *journal_procs(journal_t *j)
{
    return j ? j->procs : NULL;
}

static int step(journal_t *j, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        log_error("journal %s: %s failed: %s", j->path, what, sqlite3_errmsg(j->db));
        return -1;
    }
    return 0;
}

static int begin(journal_t *j)
{
    if (j->in_tx) return 0;
    if (step(j, j->st[S_BEGIN], "BEGIN") < 0) return -1;
    j->in_tx = 1;
    return 0;
}

int journal_commit(journal_t *j)
{
    if (!j || !j->in_tx) return 0;
    j->in_tx = 0;
    j->commits++;
    if (step(j, j->st[S_COMMIT], "COMMIT") == 0) return 0;
    /* A failed COMMIT may leave the transaction open (SQLITE_BUSY): end it,
     * so that the next write begins afresh. Its writes are lost; the caller
     * (lease_commit) writes again what it still needs. */
    if (!sqlite3_get_autocommit(j->db)) sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int journal_dirty(const journal_t *j)
{
    return j && j->in_tx;
}

long long journal_commits(const journal_t *j)
{
    return j ? j->commits : 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

int journal_put_held(journal_t *j, const char *id, const char *queue, const char *token,
                     int attempt, int64_t claimed_at)
{
    if (begin(j) < 0) return -1;
    sqlite3_stmt *st = j->st[S_HELD];
    bind_text(st, 1, id);
    bind_text(st, 2, queue);
    bind_text(st, 3, token);
    sqlite3_bind_int(st, 4, attempt);
    sqlite3_bind_int64(st, 5, claimed_at);
    return step(j, st, "recording a lease");
}

int journal_put_checkpoint(journal_t *j, const char *id, int64_t seq, const char *checkpoint,
                           double progress)
{
    if (begin(j) < 0) return -1;
    sqlite3_stmt *st = j->st[S_CKPT];
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, seq);
    bind_text(st, 3, checkpoint);
    sqlite3_bind_double(st, 4, progress);
    return step(j, st, "recording a checkpoint");
}

int journal_put_outcome(journal_t *j, const char *id, const char *outcome, const char *result,
                        const char *error, int64_t retry_ms, const char *checkpoint,
                        double progress)
{
    if (begin(j) < 0) return -1;
    sqlite3_stmt *st = j->st[S_OUTCOME];
    bind_text(st, 1, id);
    bind_text(st, 2, outcome);
    bind_text(st, 3, result);
    bind_text(st, 4, error);
    sqlite3_bind_int64(st, 5, retry_ms);
    bind_text(st, 6, checkpoint);
    sqlite3_bind_double(st, 7, progress);
    sqlite3_bind_int64(st, 8, jobd_now_ms());
    return step(j, st, "recording an outcome");
}

int journal_park(journal_t *j, const char *id)
{
    if (begin(j) < 0) return -1;
    sqlite3_stmt *st = j->st[S_PARK];
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, jobd_now_ms());
    if (step(j, st, "parking a checkpoint") < 0) return -1;
    return sqlite3_changes(j->db) > 0 ? 1 : 0;
}

char *journal_take_parked(journal_t *j, const char *id)
{
    sqlite3_stmt *st = j->st[S_PARKED];
    bind_text(st, 1, id);
    char *ckpt = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        ckpt = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (ckpt) journal_delete(j, id);
    return ckpt;
}

int journal_delete(journal_t *j, const char *id)
{
    if (begin(j) < 0) return -1;
    sqlite3_stmt *st = j->st[S_DELETE];
    bind_text(st, 1, id);
    return step(j, st, "forgetting a job");
}

int journal_delete_proc(journal_t *j, int pid)
{
    if (begin(j) < 0) return -1;
    sqlite3_stmt *st = j->st[S_PROC_DELETE];
    sqlite3_bind_int(st, 1, pid);
    return step(j, st, "forgetting a handler process");
}

int journal_load_procs(journal_t *j,
                       void (*cb)(void *arg, int pid, int64_t start, const char *type), void *arg)
{
    sqlite3_stmt *st = j->st[S_PROC_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb(arg, sqlite3_column_int(st, 0), sqlite3_column_int64(st, 1),
           (const char *)sqlite3_column_text(st, 2));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static const char *col(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int journal_load(journal_t *j, void (*cb)(void *arg, const journal_row_t *row), void *arg)
{
    sqlite3_stmt *st = j->st[S_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        journal_row_t r = {
            .id = col(st, 0),
            .queue = col(st, 1),
            .token = col(st, 2),
            .attempt = sqlite3_column_int(st, 3),
            .claimed_at = sqlite3_column_int64(st, 4),
            .ckpt_seq = sqlite3_column_int64(st, 5),
            .checkpoint = col(st, 6),
            .progress = sqlite3_column_double(st, 7),
            .outcome = col(st, 8),
            .result = col(st, 9),
            .error = col(st, 10),
            .retry_ms = sqlite3_column_int64(st, 11),
            .pgid = sqlite3_column_int(st, 12),
            .pgid_start = sqlite3_column_int64(st, 13),
            .ended_at = sqlite3_column_int64(st, 14),
        };
        cb(arg, &r);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}
