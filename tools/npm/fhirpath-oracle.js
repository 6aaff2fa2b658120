// The reference side of fhirshift's FHIRPath differential test and benchmark: HL7's fhirpath.js
// (pinned in package.json) with its R4 model.
//
//   node fhirpath-oracle.js eval  <job.jsonl> <out.jsonl>   results of every expression
//   node fhirpath-oracle.js bench <job.jsonl> [seconds]      resources/s (JSON.parse + evaluation)
//
// Job file: line 1 {"params": {"<Type>": ["<expression>", ...]}}; then one line per resource
// {"type": "<Type>", "json": "<resource JSON text>"}. Output: one line per resource
// {"results": [[...values of expression 0...], ...], "errors": {"<index>": "<message>"}}.
//
// resolve() is replaced by the search-indexing semantics fhirshift's engine implements (see
// src/fhirpath/expression.h): "#id" -> the contained resource, "[base/]Type/id[/_history/v]" ->
// a stand-in {resourceType: Type}, anything else -> nothing. fhirpath.js's own resolve() fetches
// over HTTP.
'use strict';
const fs = require('fs');
const path = require('path');
const fhirpath = require(path.join(__dirname, 'node_modules/fhirpath'));
const r4 = require(path.join(__dirname, 'node_modules/fhirpath/fhir-context/r4'));
const { ResourceNode } = require(path.join(__dirname, 'node_modules/fhirpath/src/types.js'));

const resourceTypes = new Set();
for (const type of Object.keys(r4.type2Parent)) {
  let t = type;
  while (t && t !== 'Resource') t = r4.type2Parent[t];
  if (t === 'Resource' && type !== 'Resource' && type !== 'DomainResource') resourceTypes.add(type);
}

let current = null;  // the resource being evaluated (for "#id")
function resolve(inputs) {
  const out = [];
  for (const item of inputs) {
    const d = item instanceof ResourceNode ? item.data : item;
    const ref = d && typeof d === 'object' ? d.reference : undefined;
    if (typeof ref !== 'string') continue;
    if (ref.startsWith('#')) {
      const c = (Array.isArray(current.contained) ? current.contained : [])
        .find((x) => x && x.id === ref.slice(1));
      if (c) out.push(ResourceNode.makeResNode(this, c, null, null, null, null));
      continue;
    }
    let r = ref;
    const h = r.indexOf('/_history/');
    if (h >= 0) r = r.slice(0, h);
    const slash = r.lastIndexOf('/');
    if (slash <= 0 || slash + 1 === r.length) continue;
    let type = r.slice(0, slash);
    const s = type.lastIndexOf('/');
    if (s >= 0) type = type.slice(s + 1);
    if (!resourceTypes.has(type)) continue;
    out.push(ResourceNode.makeResNode(this, { resourceType: type }, null, null, null, null));
  }
  return out;
}
const options = { userInvocationTable: { resolve: { fn: resolve } } };

function readJob(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  const params = JSON.parse(lines[0]).params;
  const compiled = {};
  for (const [type, exprs] of Object.entries(params))
    compiled[type] = exprs.map((e) => fhirpath.compile(e, r4, options));
  const resources = lines.slice(1).map((l) => JSON.parse(l));
  return { compiled, resources };
}

function evaluateAll(fns, resource, errors) {
  current = resource;
  return fns.map((f, i) => {
    try {
      return f(resource);
    } catch (e) {
      if (errors) errors[i] = String(e.message || e);
      return [];
    }
  });
}

const [mode, jobFile, arg] = process.argv.slice(2);
const { compiled, resources } = readJob(jobFile);
if (mode === 'eval') {
  const out = [];
  for (const r of resources) {
    const errors = {};
    const results = evaluateAll(compiled[r.type] || [], JSON.parse(r.json), errors);
    out.push(JSON.stringify({ results, errors }));
  }
  fs.writeFileSync(arg, out.join('\n') + '\n');
} else if (mode === 'bench') {
  const minSeconds = Number(arg || 3);
  let count = 0;
  let values = 0;
  let elapsed = 0;
  // Warm-up pass, then whole passes over the resources until minSeconds have passed.
  for (const r of resources) evaluateAll(compiled[r.type] || [], JSON.parse(r.json));
  const t0 = process.hrtime.bigint();
  do {
    for (const r of resources) {
      const res = evaluateAll(compiled[r.type] || [], JSON.parse(r.json));
      for (const v of res) values += v.length;
      ++count;
    }
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  } while (elapsed < minSeconds);
  console.log(JSON.stringify({ resources: count, seconds: elapsed, values,
                               resources_per_second: count / elapsed }));
} else {
  console.error('usage: fhirpath-oracle.js eval <job.jsonl> <out.jsonl> | bench <job.jsonl> [seconds]');
  process.exit(2);
}
