#!/usr/bin/env python3
"""check_layout.py - the daemon's house rules, checked from the sources.

    python3 tests/tools/check_layout.py SOURCE_DIR [--graph]

Modules are the files of daemon/ (and daemon/builtins/) by name: x.c and x.h
are one module. An edge a -> b means a.c or a.h includes b.h. Checks:
  - no include cycle between modules (a -> ... -> a);
  - the pump's modules call down only: lease, claim, run, outbox, resources,
    reap and drain never include daemon.h, and among themselves only the
    arrows listed in ALLOWED (everything else goes through callbacks that
    daemon.c wires);
  - registry and health see a stats snapshot, never the daemon;
  - no file in daemon/ is over MAX_LINES lines;
  - no static function borrows another module's prefix (a static
    journal_job in worker.c read as journal.c's).
Exits 1 and says why on a violation; --graph prints the module graph."""
import os
import re
import sys

MAX_LINES = 600
PUMP = {"lease", "claim", "run", "outbox", "resources", "reap", "drain"}
# Sibling arrows that are allowed (the rest is callbacks wired in daemon.c).
ALLOWED = {("claim", "lease"), ("run", "lease"), ("outbox", "lease"), ("resources", "lease")}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
STATIC_FN = re.compile(r'^static\s[^=;(]*?\b([a-z][a-z0-9]*)_([a-z0-9_]+)\s*\(', re.M)
# Static functions allowed to borrow another module's prefix (none now).
KNOWN_BORROWERS = set()


def modules(src):
    files = {}
    for sub in ("daemon", "daemon/builtins"):
        d = os.path.join(src, sub)
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                files.setdefault(name[:-2], []).append(os.path.join(d, name))
    return files


def graph(src, files):
    g = {m: set() for m in files}
    for m, paths in files.items():
        for p in paths:
            with open(p, encoding="utf-8") as f:
                for inc in INCLUDE.findall(f.read()):
                    dep = os.path.basename(inc)[:-2]
                    if dep in files and dep != m:
                        g[m].add(dep)
    return g


def find_cycle(g):
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if not state.get(d):
                c = visit(d)
                if c:
                    return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if not state.get(m):
            c = visit(m)
            if c:
                return c
    return None


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "."
    files = modules(src)
    g = graph(src, files)
    bad = []
    cycle = find_cycle(g)
    if cycle:
        bad.append("include cycle: " + " -> ".join(cycle))
    for m in sorted(PUMP & set(g)):
        for d in sorted(g[m]):
            if d == "daemon" or (d in PUMP and (m, d) not in ALLOWED):
                bad.append("%s includes %s.h: news goes up through callbacks daemon.c wires" % (m, d))
    for m in ("registry", "health"):
        for d in sorted(g.get(m, ())):
            if d == "daemon" or d in PUMP:
                bad.append("%s includes %s.h: it reads a stats snapshot only" % (m, d))
    for paths in files.values():
        for p in paths:
            with open(p, encoding="utf-8") as f:
                n = sum(1 for _ in f)
            if n > MAX_LINES:
                bad.append("%s has %d lines (at most %d)" % (os.path.relpath(p, src), n, MAX_LINES))
    for m, paths in files.items():
        for p in paths:
            if not p.endswith(".c"):
                continue
            with open(p, encoding="utf-8") as f:
                for prefix, rest in STATIC_FN.findall(f.read()):
                    name = prefix + "_" + rest
                    if prefix in files and prefix != m and (m, name) not in KNOWN_BORROWERS:
                        bad.append("%s: static %s borrows %s's prefix" % (m, name, prefix))
    if "--graph" in sys.argv:
        for m in sorted(g):
            print("%-10s -> %s" % (m, " ".join(sorted(g[m])) or "-"))
    for b in bad:
        print("check_layout: " + b, file=sys.stderr)
    if not bad:
        print("check_layout: %d modules, no include cycle, arrows one way, no file over %d lines"
              % (len(g), MAX_LINES))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
