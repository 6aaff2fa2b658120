#!/usr/bin/env bash
# Indexing speed of fhirshift against HL7's fhirpath.js on the same resources and parameters.
# Prints resources/s/core (mixed corpus, Patient, Observation; and the FHIRPath engine alone on
# every expression), the memory of the compiled plans, fhirpath.js's resources per CPU-second on the
# mixed corpus (JSON.parse + every applicable expression) and the ratios. Usage: bench/index/run.sh [build-dir]   (default: build; builds index_bench with -j2)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
cmake --build "$build" -j2 --target index_bench >/dev/null
bench=$build/bench/index/index_bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bench" --benchmark_format=json --benchmark_min_time=2 >"$work/cpp.json"
"$bench" --plan-memory >"$work/mem.json"
"$bench" --write-job="$work/job.jsonl"
node "$root/tools/npm/fhirpath-oracle.js" bench "$work/job.jsonl" 5 >"$work/js.json"

node - "$work/cpp.json" "$work/js.json" "$work/mem.json" <<'JS'
const fs = require('fs');
const cpp = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const js = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const mem = JSON.parse(fs.readFileSync(process.argv[4], 'utf8'));
const b = (name) => cpp.benchmarks.find((x) => x.name.startsWith(name));
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mixed = b('BM_IndexMixed').items_per_second;
console.log(`fhirshift indexer, mixed corpus:  ${fmt(mixed)} resources/s/core`);
console.log(`fhirshift indexer, Patient:       ${fmt(b('BM_IndexPatient').items_per_second)} resources/s/core`);
console.log(`fhirshift indexer, Observation:   ${fmt(b('BM_IndexObservation').items_per_second)} resources/s/core`);
const mib = (n) => (n / 1048576).toFixed(2);
console.log(`compiled plans (all types):       ${mib(mem.plan_bytes)} MiB heap held, peak RSS +${mib(mem.load_peak_rss_growth_bytes)} MiB while loading, ${b('BM_LoadPlans').real_time.toFixed(0)} ms to load`);
console.log(`fhirpath.js, mixed corpus:        ${fmt(js.resources_per_second)} resources/s/core (same resources and expressions; per CPU-second)`);
const engine = b('BM_EvaluateAllExpressions').items_per_second;
console.log(`fhirshift FHIRPath engine alone:  ${fmt(engine)} resources/s/core (every expression, no skipping, no conversion)`);
console.log(`ratio fhirshift / fhirpath.js:    ${(mixed / js.resources_per_second).toFixed(1)}x (indexer), ${(engine / js.resources_per_second).toFixed(1)}x (engine alone)`);
JS
