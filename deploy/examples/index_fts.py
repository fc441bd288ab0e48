#!/usr/bin/env python3
"""index.fts as an exec handler on jobd.handler, Python standard library only.

Indexes a JSONL file of documents ({"id","title","body"} a line) into a
SQLite FTS5 table. Payload: {"source": path, "index": path, "batch": N}.
Each batch and the source offset it reached are committed in one transaction
of the index database, and only then reported as a checkpoint, so a resume
(after SIGTERM, a crash or kill -9) neither indexes a document twice nor
misses one. On SIGTERM it stops after the current batch and exits 75.
"""
import json
import os
import sqlite3
import sys

try:
    from jobd.handler import run
except ImportError:  # in the source tree, without the package installed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "client", "python"))
    from jobd.handler import run


def index(job):
    p = job.payload or {}
    src, idx, batch = p.get("source"), p.get("index"), int(p.get("batch") or 500)
    if not src or not idx:
        raise ValueError('payload needs "source" and "index" paths')

    db = sqlite3.connect(idx, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(doc_id UNINDEXED, title, body)")
    db.execute("CREATE TABLE IF NOT EXISTS jobd_progress "
               "(job TEXT PRIMARY KEY, offset INTEGER, docs INTEGER, skipped INTEGER)")
    # The index database, not jobd's checkpoint, says where we are: the two
    # commit together there, and a checkpoint is only reported after.
    row = db.execute("SELECT offset, docs, skipped FROM jobd_progress WHERE job = ?",
                     (job.id,)).fetchone()
    offset, docs, skipped = row if row else (0, 0, 0)
    size = os.path.getsize(src)
    if offset:
        job.log(f"resuming at byte {offset} of {size} ({docs} documents done)")

    def commit():
        db.execute("INSERT OR REPLACE INTO jobd_progress VALUES (?, ?, ?, ?)",
                   (job.id, offset, docs, skipped))
        db.execute("COMMIT")
        job.checkpoint_save({"offset": offset, "docs": docs},
                            progress=offset / size if size else 1.0)

    with open(src, "rb") as f:
        f.seek(offset)
        db.execute("BEGIN")
        n = 0
        for raw in f:
            offset += len(raw)
            try:
                d = json.loads(raw)
                if not isinstance(d, dict) or "body" not in d:
                    raise ValueError
                db.execute("INSERT INTO docs (doc_id, title, body) VALUES (?, ?, ?)",
                           (d["id"], d.get("title", ""), d["body"]))
                docs += 1
            except ValueError:
                if raw.strip():
                    skipped += 1
            n += 1
            if n % batch == 0:
                commit()
                if job.stopping:
                    job.stop()
                db.execute("BEGIN")
        commit()
    return {"docs": docs, "skipped": skipped, "offset": offset}


run(index)
