// policy.cjs - what the schemas cannot say about deploy/, for check.sh.
//
//   node policy.cjs MODULES_DIR SOURCE_DIR FILE.yaml...   (kustomize output)
//   node policy.cjs MODULES_DIR SOURCE_DIR --resources DIR...   (prints the
//        resource files the kustomizations in DIR name, components included)
//
// Checks, on every object of the files:
// - every pod template meets the restricted Pod Security profile (non-root
//   user, RuntimeDefault seccomp, no privilege escalation, ALL capabilities
//   dropped, read-only root filesystem) and mounts no service account token;
// - every jobd pod's terminationGracePeriodSeconds covers the drain budget
//   of deploy/k8s/base/config.json (drain_timeout + kill_grace) plus 5 s;
// - the worker has startup, readiness (/health/ready) and liveness
//   (/health/live) probes;
// - the KEDA and HPA targets per replica equal the per-pod concurrency;
// - a PrometheusRule named jobd holds exactly deploy/monitoring/jobd-rules.yml;
// - no Secret carries data (no password in the repository);
// - every PodDisruptionBudget sets unhealthyPodEvictionPolicy.
"use strict";
const fs = require("fs");
const path = require("path");
const [modulesDir, srcDir, ...rest] = process.argv.slice(2);
const YAML = require(path.join(modulesDir, "node_modules", "yaml"));
const util = require("util");

if (rest[0] === "--resources") {
  // Resource files (not directories) named by kustomizations, recursively.
  const out = new Set();
  const walk = (dir) => {
    const k = YAML.parse(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"));
    for (const r of [...(k.resources || []), ...(k.components || [])]) {
      const p = path.resolve(dir, r);
      if (fs.statSync(p).isDirectory()) walk(p);
      else out.add(p);
    }
  };
  rest.slice(1).forEach(walk);
  console.log([...out].sort().join("\n"));
  process.exit(0);
}

let failures = 0;
const fail = (where, msg) => {
  failures++;
  console.error(`FAIL ${where}: ${msg}`);
};
const seconds = (v) => {
  if (typeof v === "number") return v;
  const m = /^([0-9.]+)(ms|s|m|h)?$/.exec(String(v));
  if (!m) throw new Error(`bad duration ${v}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] || "s"];
};
const config = JSON.parse(fs.readFileSync(path.join(srcDir, "deploy/k8s/base/config.json"), "utf8"));
const budget = seconds(config.drain_timeout ?? 25) + seconds(config.kill_grace ?? 5);
const concurrency = config.concurrency ?? 4;
const rulesFile = YAML.parse(fs.readFileSync(path.join(srcDir, "deploy/monitoring/jobd-rules.yml"), "utf8"));

const objs = [];
for (const f of rest)
  for (const d of YAML.parseAllDocuments(fs.readFileSync(f, "utf8"))) {
    const o = d.toJSON();
    if (o) objs.push({ o, where: `${f}: ${o.kind}/${o.metadata && o.metadata.name}` });
  }

const podSpecOf = (o) =>
  o.kind === "CronJob" ? o.spec.jobTemplate.spec.template.spec
  : ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(o.kind) ? o.spec.template.spec
  : null;
const isJobd = (ps) => ps.containers.some((c) => /(^|\/)jobd(:|@|$)/.test(c.image));

let sawRule = false, sawWorker = false;
for (const { o, where } of objs) {
  const ps = podSpecOf(o);
  if (ps) {
    const sc = ps.securityContext || {};
    if (sc.runAsNonRoot !== true) fail(where, "pod securityContext.runAsNonRoot is not true");
    if (!(sc.runAsUser > 0)) fail(where, "pod securityContext.runAsUser is not a non-root uid");
    if (!sc.seccompProfile || sc.seccompProfile.type !== "RuntimeDefault")
      fail(where, "pod seccompProfile is not RuntimeDefault");
    if (ps.automountServiceAccountToken !== false) fail(where, "automountServiceAccountToken is not false");
    for (const c of [...(ps.initContainers || []), ...ps.containers]) {
      const cs = c.securityContext || {};
      const cw = `${where} container ${c.name}`;
      if (cs.allowPrivilegeEscalation !== false) fail(cw, "allowPrivilegeEscalation is not false");
      if (cs.readOnlyRootFilesystem !== true) fail(cw, "readOnlyRootFilesystem is not true");
      if (cs.privileged) fail(cw, "privileged");
      const caps = cs.capabilities || {};
      if (!(caps.drop || []).includes("ALL")) fail(cw, "capabilities do not drop ALL");
      if ((caps.add || []).length) fail(cw, `capabilities added: ${caps.add}`);
      if (!c.resources || !c.resources.requests || !c.resources.limits || !c.resources.limits.memory)
        fail(cw, "no resource requests and memory limit");
    }
    if (isJobd(ps) && o.kind !== "CronJob") {
      const g = ps.terminationGracePeriodSeconds ?? 30;
      if (g < budget + 5)
        fail(where, `terminationGracePeriodSeconds ${g} < drain_timeout + kill_grace + 5 = ${budget + 5}`);
    }
    if (o.kind === "Deployment" && isJobd(ps)) {
      sawWorker = true;
      const c = ps.containers[0];
      const path_ = (p) => p && p.httpGet && p.httpGet.path;
      if (!c.startupProbe) fail(where, "no startupProbe");
      if (path_(c.readinessProbe) !== "/health/ready") fail(where, "readinessProbe is not GET /health/ready");
      if (path_(c.livenessProbe) !== "/health/live") fail(where, "livenessProbe is not GET /health/live");
      if (c.lifecycle && c.lifecycle.preStop) fail(where, "a preStop hook eats into the drain budget");
    }
  }
  if (o.kind === "ScaledObject") {
    const t = o.spec.triggers.find((x) => x.name === "backlog");
    if (!t) fail(where, 'no trigger named "backlog"');
    else if (Number(t.metadata.threshold) !== concurrency)
      fail(where, `backlog threshold ${t.metadata.threshold} != concurrency ${concurrency}`);
    if (!/ready\|active|active\|ready/.test(t ? t.metadata.query : ""))
      fail(where, "backlog query does not count queued (ready) and active jobs");
  }
  if (o.kind === "HorizontalPodAutoscaler") {
    const m = o.spec.metrics[0];
    const v = m.external ? m.external.target.averageValue : m.pods && m.pods.target.averageValue;
    if (Number(v) !== concurrency) fail(where, `target averageValue ${v} != concurrency ${concurrency}`);
  }
  if (o.kind === "PrometheusRule" && o.metadata.name === "jobd") {
    sawRule = true;
    if (!util.isDeepStrictEqual(o.spec, rulesFile))
      fail(where, "spec differs from deploy/monitoring/jobd-rules.yml (regenerate it from the file)");
  }
  if (o.kind === "Secret" && (o.data || o.stringData)) fail(where, "a Secret with data: keep secrets out of the repository");
  if (o.kind === "PodDisruptionBudget" && !o.spec.unhealthyPodEvictionPolicy)
    fail(where, "no unhealthyPodEvictionPolicy");
}
if (process.env.POLICY_EXPECT_FULL === "1") {
  if (!sawRule) fail("output", "no PrometheusRule named jobd");
  if (!sawWorker) fail("output", "no jobd worker Deployment");
}
if (failures) {
  console.error(`policy: ${failures} problem(s) in ${objs.length} objects`);
  process.exit(1);
}
console.log(`policy: ${objs.length} objects pass (restricted profile, drain budget ${budget} s, concurrency ${concurrency})`);
