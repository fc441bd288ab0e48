// validate.cjs - validates Kubernetes manifests offline, for tests/deploy/check.sh.
//
//   node validate.cjs MODULES_DIR WORK_DIR FILE.yaml...
//
// Every document of every file must be an object whose apiVersion/kind has
// a model in kubernetes-models (core API), @kubernetes-models/keda or
// @kubernetes-models/prometheus-operator, and must pass two checks:
//  1. the model's JSON schema validation (types, enums, required fields,
//     formats), as `new Model(obj).validate()`;
//  2. unknown-field detection: the models' schemas allow extra properties,
//     so each document is also written out as a TypeScript object literal
//     typed with the model's interface (IDeployment, IScaledObject, ...) and
//     type-checked; TypeScript's excess-property check rejects any field the
//     API does not define, at any depth, and any wrong type.
// Exit 0 when every document passes, 1 otherwise (each failure printed with
// its file, document and field).
"use strict";
const fs = require("fs");
const path = require("path");

const [modulesDir, workDir, ...files] = process.argv.slice(2);
if (!modulesDir || !workDir || files.length === 0) {
  console.error("usage: node validate.cjs MODULES_DIR WORK_DIR FILE.yaml...");
  process.exit(2);
}
const req = (m) => require(path.join(modulesDir, "node_modules", m));
const YAML = req("yaml");
const ts = req("typescript");

// apiVersion -> module directory holding one module per kind.
function modulePath(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "keda.sh") return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  if (group === "monitoring.coreos.com")
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`;
  return group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
}

let failures = 0;
const fail = (where, msg) => {
  failures++;
  console.error(`FAIL ${where}: ${msg}`);
};

const docs = [];
for (const file of files) {
  const text = fs.readFileSync(file, "utf8");
  const parsed = YAML.parseAllDocuments(text, { uniqueKeys: true });
  parsed.forEach((d, i) => {
    const where = `${file} document ${i + 1}`;
    if (d.errors.length) return fail(where, d.errors.map((e) => e.message).join("; "));
    const obj = d.toJSON();
    if (obj === null || obj === undefined) return; // an empty document
    if (typeof obj !== "object" || Array.isArray(obj)) return fail(where, "not a YAML mapping");
    const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
    docs.push({ where: `${where} (${name})`, obj });
  });
}

// 1. Schema validation.
for (const d of docs) {
  const mod = modulePath(d.obj.apiVersion, d.obj.kind);
  let Model;
  try {
    Model = mod && req(mod)[d.obj.kind];
  } catch (e) {
    Model = undefined;
  }
  if (!Model) {
    fail(d.where, `no schema known for apiVersion ${d.obj.apiVersion}, kind ${d.obj.kind}`);
    d.mod = null;
    continue;
  }
  d.mod = mod;
  try {
    new Model(d.obj).validate();
  } catch (e) {
    fail(d.where, `schema: ${e.message}`);
  }
}

// 2. Unknown fields (and types) through TypeScript's excess-property check.
fs.mkdirSync(workDir, { recursive: true });
const tsFile = path.join(workDir, "manifests.ts");
const lines = [];
const origin = []; // line number in tsFile -> document
docs.forEach((d, i) => {
  if (!d.mod) return;
  lines.push(`import type { I${d.obj.kind} as T${i} } from ${JSON.stringify(d.mod)};`);
});
docs.forEach((d, i) => {
  if (!d.mod) return;
  const body = `export const m${i}: T${i} = ${JSON.stringify(d.obj, null, 2)};`.split("\n");
  for (const l of body) {
    lines.push(l);
    origin[lines.length] = d;
  }
});
fs.writeFileSync(tsFile, lines.join("\n") + "\n");
const program = ts.createProgram([tsFile], {
  noEmit: true,
  strict: true,
  skipLibCheck: true,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  baseUrl: path.join(modulesDir, "node_modules"),
  typeRoots: [],
  types: [],
});
for (const diag of ts.getPreEmitDiagnostics(program)) {
  const msg = ts.flattenDiagnosticMessageText(diag.messageText, "\n");
  if (!diag.file) {
    fail("typescript", msg);
    continue;
  }
  const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
  const d = origin[line + 1];
  const src = lines[line] !== undefined ? lines[line].trim() : "";
  fail(d ? d.where : `${tsFile}:${line + 1}`, `${msg.split("\n")[0]} (at ${src})`);
}

const n = docs.length;
if (failures) {
  console.error(`validate: ${failures} problem(s) in ${n} documents`);
  process.exit(1);
}
console.log(`validate: ${n} documents valid (schemas and unknown fields)`);
