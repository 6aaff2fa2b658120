// The reference side of fhirshift's FHIRPath differential test and benchmark: HL7's fhirpath.js
// (pinned in package.json) with its R4 model.
//
//   node fhirpath-oracle.js eval  <job.jsonl> <out.jsonl>   results of every expression
//   node fhirpath-oracle.js bench <job.jsonl> [seconds]      resources per CPU-second (JSON.parse + evaluation)
//   node fhirpath-oracle.js normalize <in.json> <out.json>    string and date normalisations
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

// An independent rendition of fhirshift's value normalisations (src/index/normalize.h), built on
// the platform's Unicode decomposition and Date arithmetic, for the differential test.
const kUndecomposed = { 'ø': 'o', 'Ø': 'o', 'ł': 'l', 'Ł': 'l', 'đ': 'd', 'Đ': 'd', 'æ': 'ae',
  'Æ': 'ae', 'œ': 'oe', 'Œ': 'oe', 'ß': 'ss', 'þ': 'th', 'Þ': 'th', 'ð': 'd', 'Ð': 'd', 'ħ': 'h',
  'Ħ': 'h', 'ı': 'i', 'ĸ': 'k', 'ŀ': 'l', 'Ŀ': 'l', 'ŉ': 'n', 'ŋ': 'n', 'Ŋ': 'n', 'ŧ': 't',
  'Ŧ': 't', 'ſ': 's', 'ĳ': 'ij', 'Ĳ': 'ij' };
function normalizeString(s) {
  return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[\u00c0-\u017f]/g, (c) => kUndecomposed[c] || c)
    .toLowerCase().replace(/\u03c2/g, '\u03c3').replace(/[\s\u00a0]+/g, ' ').trim();
}
function dateRange(s) {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(s);
  if (!m) return null;
  const [y, mo, d, hh, mi, ss, frac, zone] = [+m[1], m[2] && +m[2], m[3] && +m[3], m[4] && +m[4],
    m[5] && +m[5], m[6] && +m[6], m[7], m[8]];
  const check = (v, lo, hi) => v === undefined || (v >= lo && v <= hi);
  if (!check(mo, 1, 12) || !check(hh, 0, 23) || !check(mi, 0, 59) || !check(ss, 0, 60)) return null;
  if (d !== undefined && (d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate())) return null;
  const utc = (...a) => { const t = new Date(0); t.setUTCFullYear(a[0], a[1] || 0, a[2] || 1);
    t.setUTCHours(a[3] || 0, a[4] || 0, a[5] || 0, a[6] || 0); return t.getTime(); };
  if (mo === undefined) return [utc(y, 0, 1), utc(y + 1, 0, 1) - 1];
  if (d === undefined) return [utc(y, mo - 1, 1), utc(y, mo, 1) - 1];
  if (hh === undefined) return [utc(y, mo - 1, d), utc(y, mo - 1, d + 1) - 1];
  let offset = 0;
  if (zone && zone !== 'Z') {
    const oh = +zone.slice(1, 3), om = +zone.slice(4, 6);
    if (oh > 14 || om > 59) return null;
    offset = (oh * 60 + om) * 60000 * (zone[0] === '-' ? -1 : 1);
  }
  const ms = frac ? Math.floor(+('0.' + frac) * 1000 + 1e-9) : 0;
  const lo = utc(y, mo - 1, d, hh, mi, ss || 0, ms) - offset;
  const span = ss === undefined ? 60000 : !frac ? 1000 : frac.length === 1 ? 100 : frac.length === 2 ? 10 : 1;
  return [lo, lo + span - 1];
}

const [mode, jobFile, arg] = process.argv.slice(2);
if (mode === 'normalize') {
  // in: {"strings": [...], "dates": [...]}; out: {"strings": [...], "lower": [...], "dates": [[lo, hi] | null]}
  const job = JSON.parse(fs.readFileSync(jobFile, 'utf8'));
  fs.writeFileSync(arg, JSON.stringify({
    strings: job.strings.map(normalizeString),
    lower: job.strings.map((s) => s.toLowerCase()),
    dates: job.dates.map(dateRange),
  }));
  process.exit(0);
}
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
  // Throughput per CPU-second (process CPU time, all of node's threads), as Google Benchmark
  // reports fhirshift's: wall time would charge other processes' load to fhirpath.js.
  const minSeconds = Number(arg || 3);
  let count = 0;
  let values = 0;
  for (const r of resources) evaluateAll(compiled[r.type] || [], JSON.parse(r.json));  // warm-up
  const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
  const c0 = cpu();
  const t0 = process.hrtime.bigint();
  let seconds = 0;
  do {
    for (const r of resources) {
      const res = evaluateAll(compiled[r.type] || [], JSON.parse(r.json));
      for (const v of res) values += v.length;
      ++count;
    }
    seconds = cpu() - c0;
  } while (seconds < minSeconds);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ resources: count, cpu_seconds: seconds, wall_seconds: wall, values,
                               resources_per_second: count / seconds }));
} else {
  console.error('usage: fhirpath-oracle.js eval <job.jsonl> <out.jsonl> | bench <job.jsonl> [seconds]');
  process.exit(2);
}
