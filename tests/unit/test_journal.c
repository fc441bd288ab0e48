/* Unit tests of daemon/journal.c: the SQLite journal on a file in a fresh
 * directory under test_tmpdir(). No Redis, no loop. */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "embedded.h"
#include "journal.h"
#include "test.h"

static const char *state_dir(const char *name)
{
    static char paths[8][600];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 600, "%s/%s", test_tmpdir(), name);
    return p;
}

static int known_versions(void)
{
    int n = 0;
    while (jobd_sql_migrations[n].name)
        n++;
    return n;
}

static journal_t *open_ok(const char *dir)
{
    journal_t *j = NULL;
    char err[1024] = "";
    int rc = journal_open(&j, dir, err, sizeof err);
    if (rc != 0 || !j) test_fail(__FILE__, __LINE__, "journal_open(%s): %d: %s", dir, rc, err);
    return j;
}

/* Opens STATE_DIR/journal.db directly, behind the module's back. */
static sqlite3 *raw_open(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/journal.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "sqlite3_open %s: %s", path, sqlite3_errmsg(db));
    return db;
}

static long long raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static char *raw_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        test_fail(__FILE__, __LINE__, "%s: %s", sql, sqlite3_errmsg(db));
    char *v = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return v;
}

/* ---- journal_load into copies ---- */

typedef struct {
    char *id, *queue, *token, *checkpoint, *outcome, *result, *error;
    int attempt;
    int64_t claimed_at, ckpt_seq, retry_ms;
    double progress;
} row_t;

typedef struct {
    row_t rows[16];
    int n;
} rows_t;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void on_row(void *arg, const journal_row_t *r)
{
    rows_t *rs = arg;
    ASSERT_LT(rs->n, 16);
    rs->rows[rs->n++] = (row_t){
        .id = dup_or_null(r->id),
        .queue = dup_or_null(r->queue),
        .token = dup_or_null(r->token),
        .checkpoint = dup_or_null(r->checkpoint),
        .outcome = dup_or_null(r->outcome),
        .result = dup_or_null(r->result),
        .error = dup_or_null(r->error),
        .attempt = r->attempt,
        .claimed_at = r->claimed_at,
        .ckpt_seq = r->ckpt_seq,
        .retry_ms = r->retry_ms,
        .progress = r->progress,
    };
}

static void rows_clear(rows_t *rs)
{
    for (int i = 0; i < rs->n; i++) {
        row_t *r = &rs->rows[i];
        free(r->id);
        free(r->queue);
        free(r->token);
        free(r->checkpoint);
        free(r->outcome);
        free(r->result);
        free(r->error);
    }
    rs->n = 0;
}

static void load(journal_t *j, rows_t *rs)
{
    rows_clear(rs);
    ASSERT_EQ(journal_load(j, on_row, rs), 0);
}

static const row_t *find(const rows_t *rs, const char *id)
{
    for (int i = 0; i < rs->n; i++)
        if (strcmp(rs->rows[i].id, id) == 0) return &rs->rows[i];
    return NULL;
}

/* ---- tests ---- */

TEST(journal_unit_migrations_applied)
{
    int known = known_versions();
    ASSERT_GE(known, 1);
    const char *dir = state_dir("fresh"); /* does not exist yet: open creates it */
    journal_t *j = open_ok(dir);
    journal_close(j);

    struct stat st;
    ASSERT_EQ(stat(dir, &st), 0);
    ASSERT(S_ISDIR(st.st_mode));
    sqlite3 *db = raw_open(dir);
    ASSERT_EQ(raw_int(db, "PRAGMA user_version"), known);
    char *mode = raw_text(db, "PRAGMA journal_mode");
    ASSERT_STR_EQ(mode, "wal"); /* a committed write survives a crash */
    free(mode);
    ASSERT_EQ(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                          "'held'"),
              1);
    ASSERT_EQ(raw_int(db, "SELECT count(*) FROM held"), 0);
    sqlite3_close(db);

    /* Opening again applies nothing twice and keeps the version. */
    j = open_ok(dir);
    journal_close(j);
    db = raw_open(dir);
    ASSERT_EQ(raw_int(db, "PRAGMA user_version"), known);
    sqlite3_close(db);
}

TEST(journal_unit_refuses_newer_version)
{
    const char *dir = state_dir("newer");
    ASSERT_EQ(mkdir(dir, 0700), 0);
    sqlite3 *db = raw_open(dir);
    ASSERT_EQ(
        sqlite3_exec(db, "CREATE TABLE other (x); PRAGMA user_version = 99", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    journal_t *j = (journal_t *)(uintptr_t)1;
    char err[1024] = "";
    ASSERT_EQ(journal_open(&j, dir, err, sizeof err), -1);
    ASSERT(j == NULL);
    printf("message: %s\n", err);
    /* The message names the path and both versions. */
    ASSERT_CONTAINS(err, dir);
    ASSERT_CONTAINS(err, "99");
    char known[64];
    snprintf(known, sizeof known, "version %d", known_versions());
    ASSERT_CONTAINS(err, known);

    /* Refused, not touched: the version is still 99 and nothing was added. */
    db = raw_open(dir);
    ASSERT_EQ(raw_int(db, "PRAGMA user_version"), 99);
    ASSERT_EQ(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'held'"), 0);
    sqlite3_close(db);
}

TEST(journal_unit_round_trip)
{
    const char *dir = state_dir("rt");
    journal_t *j = open_ok(dir);
    rows_t rs = {0};
    long long commits0 = journal_commits(j);
    ASSERT_EQ(journal_dirty(j), 0);

    ASSERT_EQ(journal_put_held(j, "job-a", "qa", "1.1000", 1, 1000), 0);
    ASSERT(journal_dirty(j));
    ASSERT_EQ(journal_put_held(j, "job-b", "qb", "2.2000", 3, 2000), 0);
    ASSERT_EQ(journal_put_held(j, "job-c", "qa", "1.3000", 2, 3000), 0);
    /* A second put_held of a held job changes nothing. */
    ASSERT_EQ(journal_put_held(j, "job-a", "other", "9.9999", 7, 9999), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job-a", 1, "{\"step\":5}", 0.25), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job-b", 1, "{\"offset\":10}", 0.5), 0);
    /* An outcome without a checkpoint keeps the stored one. */
    ASSERT_EQ(journal_put_outcome(j, "job-b", "ack", "{\"docs\":3}", NULL, 0, NULL, 1.0), 0);
    ASSERT_EQ(
        journal_put_outcome(j, "job-c", "retry", NULL, "disk on fire", 1500, "{\"step\":2}", 0.1),
        0);
    ASSERT_EQ(journal_commit(j), 0);
    ASSERT_EQ(journal_dirty(j), 0);
    ASSERT_EQ(journal_commits(j), commits0 + 1);
    ASSERT_EQ(journal_commit(j), 0); /* nothing pending: no commit */
    ASSERT_EQ(journal_commits(j), commits0 + 1);

    for (int pass = 0; pass < 2; pass++) {
        load(j, &rs);
        ASSERT_EQ(rs.n, 3);
        const row_t *a = find(&rs, "job-a"), *b = find(&rs, "job-b"), *c = find(&rs, "job-c");
        ASSERT(a && b && c);
        ASSERT_STR_EQ(a->queue, "qa");
        ASSERT_STR_EQ(a->token, "1.1000");
        ASSERT_EQ(a->attempt, 1);
        ASSERT_EQ(a->claimed_at, 1000);
        ASSERT_EQ(a->ckpt_seq, 1);
        ASSERT_STR_EQ(a->checkpoint, "{\"step\":5}");
        ASSERT_DBL_NEAR(a->progress, 0.25, 1e-9);
        ASSERT(a->outcome == NULL); /* still held */
        ASSERT(a->result == NULL && a->error == NULL);

        ASSERT_STR_EQ(b->queue, "qb");
        ASSERT_STR_EQ(b->token, "2.2000");
        ASSERT_EQ(b->attempt, 3);
        ASSERT_STR_EQ(b->outcome, "ack");
        ASSERT_STR_EQ(b->result, "{\"docs\":3}");
        ASSERT_STR_EQ(b->checkpoint, "{\"offset\":10}");
        ASSERT_DBL_NEAR(b->progress, 1.0, 1e-9);

        ASSERT_STR_EQ(c->outcome, "retry");
        ASSERT_STR_EQ(c->error, "disk on fire");
        ASSERT_EQ(c->retry_ms, 1500);
        ASSERT_STR_EQ(c->checkpoint, "{\"step\":2}");
        ASSERT(c->ckpt_seq == 0);

        /* Second pass: what was committed survives a close and reopen. */
        if (pass == 0) {
            journal_close(j);
            j = open_ok(dir);
        }
    }

    ASSERT_EQ(journal_delete(j, "job-a"), 0);
    ASSERT_EQ(journal_delete(j, "no-such-job"), 0);
    ASSERT_EQ(journal_commit(j), 0);
    load(j, &rs);
    ASSERT_EQ(rs.n, 2);
    ASSERT(find(&rs, "job-a") == NULL);
    /* A deleted job may be journaled afresh (claimed again later). */
    ASSERT_EQ(journal_put_held(j, "job-a", "qa", "3.4000", 1, 4000), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job-a", 1, "{\"step\":1}", 0), 0);
    /* journal_close commits what is pending. */
    journal_close(j);
    j = open_ok(dir);
    load(j, &rs);
    ASSERT_EQ(rs.n, 3);
    const row_t *a = find(&rs, "job-a");
    ASSERT(a != NULL);
    ASSERT_STR_EQ(a->token, "3.4000");
    ASSERT_STR_EQ(a->checkpoint, "{\"step\":1}");
    rows_clear(&rs);
    journal_close(j);
}

TEST(journal_unit_checkpoint_seq_moves_forward)
{
    const char *dir = state_dir("seq");
    journal_t *j = open_ok(dir);
    rows_t rs = {0};
    ASSERT_EQ(journal_put_held(j, "job", "q", "1.1", 1, 1), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job", 1, "\"c1\"", 0.1), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job", 3, "\"c3\"", 0.3), 0);
    /* Older or repeated sequence numbers never overwrite a newer checkpoint. */
    ASSERT_EQ(journal_put_checkpoint(j, "job", 2, "\"c2\"", 0.2), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job", 3, "\"c3-again\"", 0.35), 0);
    ASSERT_EQ(journal_put_checkpoint(j, "job", 0, "\"c0\"", 0.0), 0);
    ASSERT_EQ(journal_commit(j), 0);
    load(j, &rs);
    ASSERT_EQ(rs.n, 1);
    ASSERT_EQ(rs.rows[0].ckpt_seq, 3);
    ASSERT_STR_EQ(rs.rows[0].checkpoint, "\"c3\"");
    ASSERT_DBL_NEAR(rs.rows[0].progress, 0.3, 1e-9);

    /* Across transactions and a reopen too. */
    journal_close(j);
    j = open_ok(dir);
    ASSERT_EQ(journal_put_checkpoint(j, "job", 2, "\"late\"", 0.2), 0);
    ASSERT_EQ(journal_commit(j), 0);
    load(j, &rs);
    ASSERT_STR_EQ(rs.rows[0].checkpoint, "\"c3\"");
    ASSERT_EQ(journal_put_checkpoint(j, "job", 4, "\"c4\"", 0.4), 0);
    ASSERT_EQ(journal_commit(j), 0);
    load(j, &rs);
    ASSERT_EQ(rs.rows[0].ckpt_seq, 4);
    ASSERT_STR_EQ(rs.rows[0].checkpoint, "\"c4\"");

    /* A checkpoint of a job without a lease row is not recorded. */
    ASSERT_EQ(journal_put_checkpoint(j, "ghost", 1, "\"g\"", 0.5), 0);
    ASSERT_EQ(journal_commit(j), 0);
    load(j, &rs);
    ASSERT_EQ(rs.n, 1);
    rows_clear(&rs);
    journal_close(j);
}

TEST(journal_unit_unwritable_dir)
{
    /* A path under a regular file: no one, root included, can create it. */
    char file[700], dir[800];
    snprintf(file, sizeof file, "%s/plain-file", test_tmpdir());
    FILE *f = fopen(file, "w");
    ASSERT(f != NULL);
    fputs("not a directory\n", f);
    fclose(f);
    snprintf(dir, sizeof dir, "%s/sub", file);
    journal_t *j = (journal_t *)(uintptr_t)1;
    char err[1024] = "";
    ASSERT_EQ(journal_open(&j, dir, err, sizeof err), -1);
    ASSERT(j == NULL);
    printf("message: %s\n", err);
    ASSERT_CONTAINS(err, dir);
    ASSERT_CONTAINS(err, "Not a directory");

    /* journal.db is a directory: SQLite cannot open it. */
    const char *d2 = state_dir("dbisdir");
    ASSERT_EQ(mkdir(d2, 0700), 0);
    char dbdir[700];
    snprintf(dbdir, sizeof dbdir, "%s/journal.db", d2);
    ASSERT_EQ(mkdir(dbdir, 0700), 0);
    err[0] = '\0';
    j = (journal_t *)(uintptr_t)1;
    ASSERT_EQ(journal_open(&j, d2, err, sizeof err), -1);
    ASSERT(j == NULL);
    printf("message: %s\n", err);
    ASSERT_CONTAINS(err, dbdir);
}

TEST(journal_unit_corrupt_file)
{
    const char *dir = state_dir("corrupt");
    ASSERT_EQ(mkdir(dir, 0700), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/journal.db", dir);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    for (int i = 0; i < 512; i++)
        fputs("this is not an SQLite database, just garbage\n", f);
    fclose(f);
    journal_t *j = (journal_t *)(uintptr_t)1;
    char err[1024] = "";
    ASSERT_EQ(journal_open(&j, dir, err, sizeof err), -1);
    ASSERT(j == NULL);
    printf("message: %s\n", err);
    ASSERT_CONTAINS(err, path);
    ASSERT_CONTAINS(err, "not a database");
}
