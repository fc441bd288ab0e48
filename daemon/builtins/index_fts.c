/* index_fts.c - the built-in `index.fts`: indexes a JSONL file of documents
 * ({"id","title","body"} a line) into a SQLite FTS5 table, resumably.
 *
 * Payload: {"source": path, "index": path, "batch": N (default 500)}.
 * Checkpoint: {"offset": bytes of source consumed, "docs": documents indexed}.
 * Progress: offset / size.
 *
 * DESIGN: exactly once, even across kill -9. Each batch of documents and the
 * source offset it reached are committed in one transaction of the index
 * database (table jobd_progress), and only then reported as a checkpoint.
 * On resume the index's own offset is the truth: a crash between the index
 * commit and the checkpoint cannot index a document twice, and nothing past
 * the committed offset was kept, so nothing is missed. Lines that are not a
 * document object are skipped and counted. */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "builtins.h"

#define FTS_BUSY_MS 30000 /* longest wait for another connection's lock */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *ins, *save;
    long long offset, docs, skipped;
} fts_t;

static int fts_open(fts_t *f, const char *path, jobd_job_t *job)
{
    static const char *const schema =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        "CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(doc_id UNINDEXED, title, body);"
        "CREATE TABLE IF NOT EXISTS jobd_progress (job TEXT PRIMARY KEY, offset INTEGER, "
        "docs INTEGER, skipped INTEGER);";
    /* Others may use the index meanwhile (a search service reading it,
     * opening it in WAL mode): their locks are waited for, up to
     * FTS_BUSY_MS, instead of failing the attempt with "database is
     * locked". */
    if (sqlite3_open(path, &f->db) != SQLITE_OK ||
        sqlite3_busy_timeout(f->db, FTS_BUSY_MS) != SQLITE_OK ||
        sqlite3_exec(f->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT INTO docs (doc_id, title, body) VALUES (?1, ?2, ?3)", -1,
                           &f->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT OR REPLACE INTO jobd_progress VALUES (?1, ?2, ?3, ?4)",
                           -1, &f->save, NULL) != SQLITE_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "index %s: %s", path, f->db ? sqlite3_errmsg(f->db) : "open");
        jobd_job_set_error(job, msg);
        return -1;
    }
    /* The index's own record wins over the checkpoint (see DESIGN). */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(f->db, "SELECT offset, docs, skipped FROM jobd_progress WHERE job = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, jobd_job_id(job), -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            f->offset = sqlite3_column_int64(st, 0);
            f->docs = sqlite3_column_int64(st, 1);
            f->skipped = sqlite3_column_int64(st, 2);
        }
        sqlite3_finalize(st);
    }
    return 0;
}

static void fts_close(fts_t *f)
{
    sqlite3_finalize(f->ins);
    sqlite3_finalize(f->save);
    sqlite3_close(f->db);
}

static int add_doc(fts_t *f, const char *line, size_t len)
{
    json_t *d = json_loadb(line, len, 0, NULL);
    json_t *id = json_object_get(d, "id");
    const char *title = json_string_value(json_object_get(d, "title"));
    const char *body = json_string_value(json_object_get(d, "body"));
    int ok = json_is_object(d) && (json_is_string(id) || json_is_integer(id)) && body;
    if (ok) {
        if (json_is_string(id))
            sqlite3_bind_text(f->ins, 1, json_string_value(id), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(f->ins, 1, json_integer_value(id));
        sqlite3_bind_text(f->ins, 2, title ? title : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(f->ins, 3, body, -1, SQLITE_TRANSIENT);
        ok = sqlite3_step(f->ins) == SQLITE_DONE;
        sqlite3_reset(f->ins);
    }
    json_decref(d);
    if (ok)
        f->docs++;
    else
        f->skipped++;
    return 0;
}

/* Commits the batch with its offset, then reports the checkpoint. */
static int commit_batch(fts_t *f, jobd_job_t *job, long long size)
{
    sqlite3_bind_text(f->save, 1, jobd_job_id(job), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(f->save, 2, f->offset);
    sqlite3_bind_int64(f->save, 3, f->docs);
    sqlite3_bind_int64(f->save, 4, f->skipped);
    int rc = sqlite3_step(f->save);
    sqlite3_reset(f->save);
    if (rc != SQLITE_DONE || sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        jobd_job_set_error(job, sqlite3_errmsg(f->db));
        return -1;
    }
    json_t *ck =
        json_pack("{s:I, s:I}", "offset", (json_int_t)f->offset, "docs", (json_int_t)f->docs);
    jobd_job_checkpoint(job, ck);
    json_decref(ck);
    jobd_job_progress(job, size > 0 ? (double)f->offset / (double)size : 1.0);
    return 0;
}

static int run(jobd_job_t *job)
{
    json_t *p = jobd_job_payload(job);
    const char *src = json_string_value(json_object_get(p, "source"));
    const char *idx = json_string_value(json_object_get(p, "index"));
    json_t *b = json_object_get(p, "batch");
    long batch =
        json_is_integer(b) && json_integer_value(b) > 0 ? (long)json_integer_value(b) : 500;
    if (!src || !idx) {
        jobd_job_set_error(job, "payload needs \"source\" and \"index\" paths");
        return JOBD_HANDLER_FAILED;
    }
    FILE *in = fopen(src, "re");
    struct stat st;
    if (!in || fstat(fileno(in), &st) < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "cannot read source %s", src);
        jobd_job_set_error(job, msg);
        if (in) fclose(in);
        return JOBD_HANDLER_FAILED;
    }
    fts_t f = {0};
    int rc = JOBD_HANDLER_FAILED;
    if (fts_open(&f, idx, job) < 0) goto out;
    if (fseeko(in, (off_t)f.offset, SEEK_SET) < 0) goto out;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long in_batch = 0;
    sqlite3_exec(f.db, "BEGIN", NULL, NULL, NULL);
    for (;;) {
        n = getline(&line, &cap, in);
        if (n <= 0) break;
        if (line[n - 1] != '\n' && !feof(in)) break;
        f.offset += n;
        if (n > 1) add_doc(&f, line, (size_t)n);
        if (++in_batch == batch) {
            if (commit_batch(&f, job, st.st_size) < 0) goto out_line;
            in_batch = 0;
            if (jobd_job_should_stop(job)) {
                rc = JOBD_HANDLER_STOPPED;
                goto out_line;
            }
            sqlite3_exec(f.db, "BEGIN", NULL, NULL, NULL);
        }
    }
    if (commit_batch(&f, job, st.st_size) < 0) goto out_line;
    jobd_job_set_result(job, json_pack("{s:I, s:I, s:I}", "docs", (json_int_t)f.docs, "skipped",
                                       (json_int_t)f.skipped, "offset", (json_int_t)f.offset));
    rc = JOBD_HANDLER_OK;
out_line:
    free(line);
out:
    fts_close(&f);
    fclose(in);
    return rc;
}

const builtin_t builtin_index_fts = {"index.fts", run, 0};
