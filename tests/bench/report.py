#!/usr/bin/env python3
"""report.py - turns the bench_tool results of tests/bench/run.sh into the
table (stdout) and one JSON object (stdout and OUT.json).

    report.py RESULTS.jsonl OUT.json [key=value ...]   table + JSON
    report.py --best RESULTS.jsonl                     "RATE CONCURRENCY JOBDS"
                                                       of the fastest drain

Each RESULTS line is {"tag": {...}, "result": {...}} or {"tag": ..., "error":
"..."}. A figure repeated over runs is reported as the median with min and
max; a percentile figure is the median of the runs' percentiles. Standard
library only. Exit status 1 when a figure could not be measured."""
import json
import statistics
import sys
import textwrap


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def results(rows, phase, cmd, **tag):
    out = []
    for r in rows:
        t = r["tag"]
        if t.get("phase") != phase or any(t.get(k) != v for k, v in tag.items()):
            continue
        if "result" in r and r["result"].get("cmd") == cmd:
            out.append(r["result"])
    return out


def errors(rows, phase, **tag):
    return [r["error"] for r in rows
            if "error" in r and r["tag"].get("phase") == phase
            and all(r["tag"].get(k) == v for k, v in tag.items())]


def drain_configs(rows):
    keys = sorted({(r["tag"]["c"], r["tag"]["jobds"]) for r in rows
                   if r["tag"].get("phase") == "drain"})
    return keys


def best(rows):
    top = (0.0, 64, 1)
    for c, j in drain_configs(rows):
        rates = [x["rate"] for x in results(rows, "drain", "drain", c=c, jobds=j)]
        if rates and statistics.median(rates) > top[0]:
            top = (statistics.median(rates), c, j)
    return top


def num(v):
    return f"{v:,}" if isinstance(v, int) else str(v)


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


class Report:
    def __init__(self, rows, meta):
        self.rows = rows
        self.meta = meta
        self.figures = {}
        self.order = []

    def add(self, key, label, setting, unit, runs, measures, target=None, ok=None,
            error=None, extra=None):
        """runs: one value per run. target: text; ok(median) -> bool."""
        runs = [v for v in runs if v is not None]
        f = {"label": label, "setting": setting, "unit": unit, "measures": measures,
             "runs": [round(v, 6) for v in runs]}
        if runs:
            f.update(median=round(statistics.median(runs), 6), min=round(min(runs), 6),
                     max=round(max(runs), 6))
        else:
            f.update(median=None, min=None, max=None)
            f["error"] = error or "not measured"
        if error and runs:
            f["note"] = error
        if target:
            f["target"] = target
            f["meets_target"] = ok(f["median"]) if runs and ok else None
        if extra:
            f.update(extra)
        self.figures[key] = f
        self.order.append(key)

    def note(self, key, label, setting, text, target=None):
        self.figures[key] = {"label": label, "setting": setting, "median": None,
                             "not_measured": text, "target": target, "meets_target": None}
        self.order.append(key)

    def table(self):
        w = [38, 36, 27, 9, 10, 3]
        head = ["figure", "setting", "median [min .. max]", "unit", "target", "ok"]
        lines = ["  ".join(h.ljust(n) for h, n in zip(head, w)).rstrip(),
                 "  ".join("-" * n for n in w)]
        for k in self.order:
            f = self.figures[k]
            if f.get("median") is not None:
                val = f"{fmt(f['median'])} [{fmt(f['min'])} .. {fmt(f['max'])}]"
                if len(f["runs"]) == 1:
                    val = fmt(f["median"])
                ok = {True: "yes", False: "NO", None: ""}[f.get("meets_target")]
            else:
                val = "not measured" if "not_measured" in f else "FAILED"
                ok = "" if "not_measured" in f else "!"
            cells = [f["label"], f["setting"], val, f.get("unit", ""), f.get("target") or "", ok]
            lines.append("  ".join(str(c).ljust(n) for c, n in zip(cells, w)).rstrip())
            why = f.get("error") or f.get("not_measured") or f.get("note")
            if why:
                lines += textwrap.wrap(why, 124, initial_indent="      ^ ",
                                       subsequent_indent="        ")
        return "\n".join(lines)


def build(rows, meta):
    rp = Report(rows, meta)
    n = meta.get("drain_jobs", "?")
    cap = meta.get("drain_cap_s", "?")

    # Throughput and the per-job costs of each drain setting.
    per_cfg = {}
    for c, j in drain_configs(rows):
        rs = results(rows, "drain", "drain", c=c, jobds=j)
        capped = sum(1 for x in rs if x["capped"])
        per_cfg[(c, j)] = rs

        def per_job(field, scale, rs=rs):
            v = [x[field] / x["jobs_counted"] * scale for x in rs if x["jobs_counted"]]
            return round(statistics.median(v), 4) if v else None
        extra = {"capped_runs": capped,
                 "jobd_cpu_us_per_job": per_job("jobd_cpu_s", 1e6),
                 "redis_cpu_us_per_job": per_job("redis_cpu_s", 1e6),
                 "evalsha_per_job": per_job("evalsha", 1),
                 "redis_commands_per_job": per_job("commands", 1),
                 "jobd_peak_rss_kb": max((x["jobd_maxrss_kb"] for x in rs), default=None)}
        note = (f"{capped} of {len(rs)} runs did not drain {num(n)} jobs within {cap} s: "
                f"measured over the first {cap} s" if capped else None)
        err = "; ".join(errors(rows, "drain", c=c, jobds=j)) or None
        rp.add(f"throughput_c{c}_jobds{j}", f"noop throughput, {j} jobd", f"concurrency {c}, "
               f"{num(n)} pre-filled", "jobs/s", [x["rate"] for x in rs],
               f"noop jobs drained from a pre-filled queue of {n}: jobs / seconds from the "
               f"start of {j} jobd --once until ZCARD succeeded reached {n}",
               target=">= 50,000" if (c, j) == (64, 1) else None,
               ok=lambda m: m >= 50000, error=note or err, extra=extra)

    for c in (8, 10):
        rs = results(rows, "exec", "drain", c=c)
        err = "; ".join(errors(rows, "exec", c=c)) or None
        rp.add(f"exec_throughput_c{c}", "exec handler throughput (/bin/true)",
               f"concurrency {c}, {num(meta.get('exec_jobs', '?'))} jobs", "jobs/s",
               [x["rate"] for x in rs],
               "jobs whose exec handler does nothing: spawn, stdin line, exit 0, ack",
               target=">= 1,100" if c == 10 else None,
               ok=(lambda m: m >= 1100) if c == 10 else None, error=err)

    # The spawn ceiling, and jobd's exec throughput as a fraction of it.
    ceil = {}
    for mode, label in (("fork", "fork+exec"), ("spawn", "posix_spawn")):
        rs = [r["result"] for r in rows if r["tag"].get("phase") == "spawn"
              and r["tag"].get("mode") == mode and "result" in r]
        ceil[mode] = [x["rate"] for x in rs]
        rp.add(f"spawn_ceiling_{mode}", f"spawn ceiling, {label}",
               "/bin/true, 3 pipes, setsid, 8 in flight", "spawns/s", ceil[mode],
               "tests/bench/spawn_probe: a plain C loop spawning and reaping "
               f"{meta.get('spawn_jobs', '?')} children, wall time",
               error="; ".join(errors(rows, "spawn", mode=mode)) or None)
    # Per round: jobd and its ceiling ran one right after the other, so the
    # machine's speed, which drifts over a run here, weighs on both alike.
    def by_rep(phase, cmd, **tag):
        return {r["tag"].get("rep"): r["result"]["rate"] for r in rows
                if r["tag"].get("phase") == phase and r.get("result", {}).get("cmd") == cmd
                and all(r["tag"].get(k) == v for k, v in tag.items())}
    ex8, sp = by_rep("exec", "drain", c=8), by_rep("spawn", "spawn", mode="spawn")
    frac = [100 * ex8[k] / sp[k] for k in sorted(set(ex8) & set(sp), key=str) if sp[k]]
    rp.add("exec_vs_spawn_ceiling", "  exec throughput / posix_spawn ceiling",
           "concurrency 8, per round", "%", frac,
           "jobd's exec /bin/true throughput at concurrency 8 over the posix_spawn ceiling "
           "measured right after it, in the same round; median of the rounds",
           target=">= 80", ok=lambda m: m >= 80)

    # Persistent handlers (protocol v2).
    def pool_rates(t):
        return [x["rate"] for x in results(rows, "pool", "drain", type=t)]
    noop8 = pool_rates("noop")
    rp.add("pool_noop_c8", "built-in noop throughput", "concurrency 8, "
           f"{num(meta.get('pool_jobs', '?'))} jobs", "jobs/s", noop8,
           "the reference for the persistent C handler, same run",
           error="; ".join(errors(rows, "pool", type="noop")) or None)
    c8 = pool_rates("bench.pool")
    rp.add("pool_c_c8", "persistent C handler throughput", "concurrency 8, "
           f"{num(meta.get('pool_jobs', '?'))} jobs", "jobs/s", c8,
           "tests/bench/pool_bench_handler: answers done at once, 8 warm processes",
           error="; ".join(errors(rows, "pool", type="bench.pool")) or None)
    rp.add("pool_c_vs_noop", "  persistent C / built-in noop", "concurrency 8, medians", "%",
           [100 * statistics.median(c8) / statistics.median(noop8)] if c8 and noop8 else [],
           "the price of a process boundary per job", target=">= 50", ok=lambda m: m >= 50)
    rp.add("pool_py_c8", "persistent Python handler throughput",
           f"concurrency 8, {num(meta.get('py_jobs', '?'))} jobs", "jobs/s",
           pool_rates("bench.py"),
           "tests/bench/py_noop.py on jobd.handler (the package's helper), 8 processes",
           target=">= 3,000", ok=lambda m: m >= 3000,
           error="; ".join(errors(rows, "pool", type="bench.py")) or None)
    slow = [x["seconds"] for x in results(rows, "pool", "drain", type="bench.slow")]
    rp.add("pool_slow_start", "handler with a 2 s start-up, 64 jobs",
           "8 processes, concurrency 8", "s", slow,
           "wall time from jobd's start to the 64th success: the 2 s start-up is paid once "
           "per process (about 2 s in all), not per job (64 x 2 s / 8 = 16 s)",
           target="< 4", ok=lambda m: m < 4,
           error="; ".join(errors(rows, "pool", type="bench.slow")) or None)

    rs = results(rows, "batch", "fill")
    rp.add("batch_submit", "batch submit (libjobd)",
           f"{num(meta.get('batch_jobs', '?'))} noop jobs in 1 call", "jobs/s",
           [x["rate"] for x in rs],
           "one jobd_submit_batch call (pipelined enqueue scripts, 500 jobs each), wall time",
           target=">= 150,000", ok=lambda m: m >= 150000,
           error="; ".join(errors(rows, "batch")) or None)

    # The Python package beside libjobd: the same batch, and one submit().
    rs = results(rows, "py_batch", "py_batch")
    rp.add("py_batch_submit", "  batch submit (Python submit_many)",
           f"{num(meta.get('batch_jobs', '?'))} noop jobs in 1 call", "jobs/s",
           [x["rate"] for x in rs],
           "one jobd.Client.submit_many call (client/python: the same enqueue script, 500 "
           "jobs a call, 8 in flight), wall time, payload dicts made before",
           error="; ".join(errors(rows, "py_batch")) or None)
    rs = results(rows, "py_single", "py_single")
    ss = f"{num(meta.get('py_single', '?'))} calls, one by one"
    what = ("one jobd.Client.submit() call: checks, envelope, SADD + EVALSHA enqueue in one "
            "round trip, reply (time.perf_counter around the call)")
    for p in ("p50", "p99"):
        rp.add(f"py_submit_{p}", f"  Python submit() round trip {p}", ss, "ms",
               [x["ms"][p] for x in rs], what,
               error=("; ".join(errors(rows, "py_single")) or None) if p == "p50" else None)

    rs = per_cfg.get((64, 1), [])
    cost_setting = f"noop, 1 jobd, concurrency 64"
    measures = "divided by every job run while counted; CPU from wait4() (jobd) and " \
               "/proc/PID/stat utime+stime, 10 ms ticks (redis-server)"
    rp.add("jobd_cpu_per_job", "jobd CPU per job", cost_setting, "µs/job",
           [x["jobd_cpu_s"] / x["jobs_counted"] * 1e6 for x in rs if x["jobs_counted"]],
           "jobd user+system CPU over its whole life (start-up included) / jobs; "
           "x 0.01 = CPU seconds per 10,000 jobs; " + measures,
           target="<= 10", ok=lambda m: m <= 10)
    rp.add("redis_cpu_per_job", "redis-server CPU per job", cost_setting, "µs/job",
           [x["redis_cpu_s"] / x["jobs_counted"] * 1e6 for x in rs if x["jobs_counted"]],
           "redis-server CPU from jobd start to exit / jobs; x 0.01 = seconds per 10,000 "
           "jobs; " + measures, target="<= 10", ok=lambda m: m <= 10)
    rp.add("redis_evalsha_per_job", "Redis EVALSHA calls per job", cost_setting, "calls/job",
           [x["evalsha"] / x["jobs_counted"] for x in rs if x["jobs_counted"]],
           "INFO commandstats cmdstat_evalsha after - before, / jobs")
    rp.add("redis_commands_per_job", "Redis commands per job", cost_setting + ", all",
           "calls/job", [x["commands"] / x["jobs_counted"] for x in rs if x["jobs_counted"]],
           "INFO commandstats, every command including those run inside scripts (Redis 7 "
           "counts them), minus the driver's own ZCARD/INFO; per-command split in raw results")
    rp.add("jobd_peak_rss", "jobd peak RSS", cost_setting, "MB",
           [x["jobd_maxrss_kb"] / 1024 for x in rs],
           "ru_maxrss of the jobd process from wait4() (the kernel's VmHWM at exit)",
           target="<= 8", ok=lambda m: m <= 8)

    # Pickup latency.
    rs = results(rows, "pickup", "pickup")
    err = "; ".join(errors(rows, "pickup")) or None
    ps = f"idle jobd, conc. 64, {meta.get('pickup_samples', '?')} jobs, 1 by 1"
    claim_what = ("from just before jobd_submit() to the moment a keyspace-notification "
                  "subscriber sees claim.lua's ZADD to the active set (µs clock); the "
                  "built-in noop starts as soon as jobd reads that claim reply")
    for p in ("p50", "p95", "p99"):
        rp.add(f"pickup_{p}", f"pickup latency {p} (submit -> claim)", ps, "ms",
               [x["claim_ms"][p] for x in rs], claim_what,
               target="<= 0.5" if p == "p99" else None, ok=lambda m: m <= 0.5, error=err)
    rp.add("pickup_submit_call_p50", "  of which jobd_submit() call p50", ps, "ms",
           [x["submit_call_ms"]["p50"] for x in rs], "the enqueue round trip alone")
    for p in ("p50", "p99"):
        rp.add(f"pickup_started_at_{p}", f"pickup {p} via started_at (whole ms)", ps, "ms",
               [x["started_at_ms"][p] for x in rs],
               "job hash started_at (Redis TIME, whole ms) minus the submit time (client "
               "CLOCK_REALTIME, same host), both truncated to whole ms: 0 means under 1 ms")
    rp.add("pickup_succeeded_p99", "submit -> succeeded p99 (upper bound)", ps, "ms",
           [x["succeeded_ms"]["p99"] for x in rs],
           "to ack.lua's ZADD to the succeeded set: pickup + run + ack, an upper bound")

    # Pickup under a paced load.
    rs = results(rows, "pacedpickup", "pacedpickup")
    err = "; ".join(errors(rows, "pacedpickup")) or None
    ps = f"{meta.get('paced_pickup_rate', '?')}/s, 1 submitter, conc. 10"
    for p in ("p50", "p99"):
        rp.add(f"paced_pickup_{p}", f"paced pickup {p} (submit -> claim)", ps, "ms",
               [x["claim_ms"][p] for x in rs],
               "from just before each jobd_submit() to a keyspace-notification subscriber "
               "(its own thread) seeing claim.lua's HSET of the job's hash (µs clock); the "
               "submit call itself included", target="<= 1" if p == "p99" else None,
               ok=lambda m: m <= 1, error=err)
    rp.add("paced_pickup_submit_p99", "  of which jobd_submit() call p99", ps, "ms",
           [x["submit_call_ms"]["p99"] for x in rs], "the enqueue round trip alone")
    rp.add("paced_pickup_after_p99", "  claim after the submit call returned, p99", ps, "ms",
           [x["after_call_ms"]["p99"] for x in rs if "after_call_ms" in x],
           "per job: pickup - its submit call; what the wake-up, jobd and the claim add once "
           "the enqueue has answered (the wake-up is published inside the enqueue)")

    # End-to-end latency at half the best throughput.
    rs = results(rows, "paced", "paced")
    good = [x for x in rs if "error" not in x]
    bad = [x["error"] for x in rs if "error" in x] + errors(rows, "paced")
    es = (f"{meta.get('paced_rate', '?')}/s for {meta.get('paced_seconds', '?')} s, "
          f"{meta.get('paced_jobds', '?')} jobd x conc. {meta.get('paced_concurrency', '?')}")
    what = ("paced submitter (jobd_submit_batch every ~1 ms) at half the best median noop "
            "throughput; latency = job finished_at (Redis ms) - its scheduled submit time "
            "(so a submitter falling behind counts); 1 ms resolution")
    berr = (f"{len(bad)} of {len(bad) + len(good)} runs failed: " + "; ".join(bad)) if bad else None
    for p in ("p50", "p99"):
        rp.add(f"e2e_{p}", f"end-to-end latency {p}", es, "ms",
               [x["e2e_ms"][p] for x in good], what, error=berr if p == "p50" else
               ("see above" if berr else None))

    # Checkpoints.
    rs = results(rows, "ckpt", "ckpt")
    cs = f"{meta.get('ckpt_jobs', '?')} exec jobs x {meta.get('ckpt_per_job', '?')} ckpts"
    err = "; ".join(errors(rows, "ckpt")) or None
    rp.add("checkpoints_per_s", "checkpoints/s", cs, "ckpt/s", [x["rate"] for x in rs],
           "jobd_checkpoints_total (GET /metrics every 10 ms) over the time from jobd's "
           "start to the first scrape with all of them (spawning the 64 handlers included); "
           "each checkpoint is one write(2) line from tests/bench/ckpt_handler", error=err)
    rp.add("journal_commits_per_s", "journal commits/s", cs, "commits/s",
           [x["commit_rate"] for x in rs], "jobd_journal_commits_total over the same window")
    rp.add("checkpoints_per_commit", "checkpoints per journal commit", cs, "ckpt",
           [x["checkpoints_per_commit"] for x in rs], "group-commit batching")
    rp.add("journal_commit_interval", "mean time between journal commits", cs, "ms",
           [1000 / x["commit_rate"] for x in rs if x["commit_rate"] > 0],
           "window / commits: a checkpoint written just after a commit waits about this "
           "long (plus the next commit's fsync) before it is durable")
    for njobs in (1, 64):
        prs = [r["result"] for r in rows if r.get("tag", {}).get("phase") == "probe"
               and r["tag"].get("jobs") == njobs and "result" in r]
        perr = "; ".join(r["error"] for r in rows if r.get("tag", {}).get("phase") == "probe"
                         and r["tag"].get("jobs") == njobs and "error" in r) or None
        ps = f"built-in checkpoint.probe, {njobs} job{'s' if njobs > 1 else ''} at once"
        what = ("each jobd_job_checkpoint() call timed inside the handler: it returns once "
                "the SQLite journal committed it (WAL, synchronous=FULL, group commit)")
        rp.add(f"ckpt_durable_p50_{njobs}", "checkpoint durable latency p50", ps, "ms",
               [x["p50_us"] / 1000 for x in prs], what, error=perr)
        rp.add(f"ckpt_durable_p99_{njobs}", "checkpoint durable latency p99", ps, "ms",
               [x["p99_us"] / 1000 for x in prs], what, target="<= 2",
               ok=lambda v: v <= 2)
        rp.add(f"ckpt_durable_rate_{njobs}", "durable checkpoints/s", ps, "ckpt/s",
               [x["per_s"] for x in prs], "sum over the jobs of count / elapsed",
               target=">= 20,000" if njobs == 64 else None,
               ok=(lambda v: v >= 20000) if njobs == 64 else None)
    rs = results(rows, "fsync", "fsync")
    for p in ("p50", "p99"):
        rp.add(f"fsync_{p}", f"fsync floor {p} (state dir)", "4 KiB write + fdatasync, x200",
               "ms", [x["ms"][p] for x in rs],
               "one durable SQLite WAL commit costs at least one such fsync: a lower bound "
               "for checkpoint latency on this file system")

    # Three queues: one Redis against a three-primary Redis Cluster.
    sj = meta.get("shard_jobs", "?")
    for topo, label in (("single", "one Redis (unix socket)"),
                        ("cluster", "Redis Cluster, 3 primaries, 1 queue each")):
        rs = results(rows, "shards", "shards", topology=topo)
        rp.add(f"shards_{topo}", "noop throughput, 3 queues", f"{label}, {sj} jobs/queue, c64",
               "jobs/s", [x["rate"] for x in rs],
               "jobs / the whole life of one jobd --once serving the three queues",
               error="; ".join(errors(rows, "shards", topology=topo)) or None)

    # SIGTERM to exit.
    rs = results(rows, "sigterm", "sigterm")
    dt = float(meta.get("drain_timeout_s", 1))
    rp.add("sigterm_to_exit", "SIGTERM to exit", f"{meta.get('sigterm_jobs', '?')} sleeping, drain "
           f"{meta.get('drain_timeout_s', '?')} s, grace {meta.get('kill_grace_s', '?')} s", "s",
           [x["exit_seconds"] for x in rs],
           "from kill(SIGTERM), once ZCARD active reached 64, to the exit seen by wait4(); "
           "every job must be back in the ready set", target=f"<= {dt + 0.1:g}",
           ok=lambda m: m <= dt + 0.1,
           error="; ".join(errors(rows, "sigterm")
                           + [f"only {x['released_to_ready']} jobs released"
                              for x in rs if x["released_to_ready"] != x["jobs"]]) or None)
    rp.add("sigterm_overhead", "  beyond the drain timeout", "same", "ms",
           [(x["exit_seconds"] - dt) * 1000 for x in rs], "exit time - drain timeout",
           target="<= 100", ok=lambda m: m <= 100)
    return rp


def main(argv):
    if len(argv) >= 3 and argv[1] == "--best":
        rate, c, j = best(load(argv[2]))
        print(f"{rate:.0f} {c} {j}")
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 64
    rows = load(argv[1])
    meta = {}
    for kv in argv[3:]:
        k, _, v = kv.partition("=")
        try:
            meta[k] = json.loads(v)
        except ValueError:
            meta[k] = v
    rp = build(rows, meta)
    doc = {"bench": "jobd", "settings": meta,
           "figures": {k: rp.figures[k] for k in rp.order},
           "raw": rows}
    with open(argv[2], "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"jobd bench ({meta.get('jobd', '?')}, {meta.get('cores', '?')} cores, load average "
          f"{meta.get('load_start', '?')} at start, {meta.get('load_end', '?')} at end, "
          f"{meta.get('seconds', '?')} s); median [min .. max] of {meta.get('repeats', '?')} "
          f"runs ({meta.get('exec_repeats', '?')} for exec and its spawn ceiling)")
    print(rp.table())
    print()
    print(json.dumps({"bench": "jobd", "settings": meta,
                      "figures": {k: rp.figures[k] for k in rp.order}}))
    failed = [k for k in rp.order if rp.figures[k].get("error")] + \
        [r for r in rows if "error" in r or "error" in r.get("result", {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
