#!/usr/bin/env python3
"""Writes N made-up documents as JSONL ({"id","title","body"} a line)."""
import json
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
words = ("redis lease worker queue checkpoint journal drain batch index vector "
         "embedding shard replica commit offset token fence resume retry").split()
rng = random.Random(42)
for i in range(n):
    body = " ".join(rng.choice(words) for _ in range(40))
    print(json.dumps({"id": f"doc-{i}", "title": f"Document {i}", "body": body}))
