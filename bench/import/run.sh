#!/usr/bin/env bash
# The import benchmark of issue #15, on a generated Synthea-shaped bulk export (one ndjson file per
# type; record sizes like Synthea's: Encounter/Procedure/MedicationRequest/Condition 0.5-1.5 KB,
# DocumentReference ~3.3 KB with a base64 note; src/corpus/bulk_export.h):
#  (b) `fhirshift migrate --sourceType Filesystem` end to end into an empty embedded FerretDB
#      (its report: entries/s, peak RSS; its -v log: time in lookups and in writes per chunk);
#  (a) the target's ceiling: unordered insertMany (batches of 1,000, the importer's default number
#      of batches in flight) of the very documents the import wrote, read back into memory before
#      the clock starts, into another empty, provisioned target;
#  the ratio (b)/(a) (target >= 0.8) and the peak RSS (target < 300 MB: the reader streams).
# Each run (--runs) uses fresh databases; the last lines give the median and the worst ratio.
# Usage: bench/import/run.sh [--resources N] [--runs K] [--gzip] [--backend sqlite|postgresql]
#          [--build DIR] [--no-build] [--no-ceiling]
#   defaults: 50000 resources, 1 run, plain ndjson, sqlite. On a shared machine: nice -n 10 ...
# --no-ceiling skips (a) (for a large export, whose documents (a) would hold in memory).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
resources=50000
runs=1
gzip=false
backend=sqlite
ceiling=true
pg_url=postgres://postgres@127.0.0.1:5432
rebuild=true
while [ $# -gt 0 ]; do
  case "$1" in
    --resources) resources=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --gzip) gzip=true; shift ;;
    --backend) backend=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) rebuild=false; shift ;;
    --no-ceiling) ceiling=false; shift ;;
    --pg-url) pg_url=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
case "$backend" in sqlite|postgresql) ;; *) echo "--backend sqlite or postgresql, not $backend" >&2; exit 2 ;; esac

$rebuild && cmake --build "$build" -j2 --target fhirshift import_bench ferretdb_embedded >/dev/null
cli=$build/apps/fhirshift/fhirshift
bench=$build/bench/import/import_bench
ferret=$build/tools/ferretdb-embedded
work=$(mktemp -d)
tag=bench_import_$$
pg_dbs=()
cleanup() {
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for d in "${pg_dbs[@]}"; do psql "$pg_url/postgres" -qc "drop database if exists $d" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_ferret() {  # name -> prints the URI (runs in $(...): the pid goes through a file)
  if [ "$backend" = postgresql ]; then
    psql "$pg_url/postgres" -qc "create database ${tag}_$1" >/dev/null
    "$ferret" --listen 127.0.0.1:0 --uri-file "$work/$1.uri" --postgresql-url "$pg_url/${tag}_$1" \
      >"$work/$1.log" 2>&1 &
  else
    mkdir -p "$work/$1"
    "$ferret" --listen 127.0.0.1:0 --uri-file "$work/$1.uri" --sqlite-dir "$work/$1" >"$work/$1.log" 2>&1 &
  fi
  echo $! >"$work/$1.pid"
  for _ in $(seq 100); do [ -s "$work/$1.uri" ] && break; sleep 0.1; done
  [ -s "$work/$1.uri" ] || { echo "FerretDB '$1' did not start:" >&2; cat "$work/$1.log" >&2; exit 1; }
  cat "$work/$1.uri"
}
[ "$backend" = postgresql ] && pg_dbs=("${tag}_target")
dst_base=$(start_ferret target)

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
json() { node -e "const j=JSON.parse(process.argv[1]); console.log($2)" "$1"; }

echo "== fhirshift import benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD)"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); nice $(nice)"
echo "target: FerretDB (embedded, $(basename "$ferret")) with the $backend backend"

export_dir=$work/export
exp=$("$bench" export --dir "$export_dir" --resources "$resources" $($gzip && echo --gzip))
echo "export: $(json "$exp" 'j.resources') resources in $(ls "$export_dir" | wc -l) files, $(json "$exp" '(j.bytes / 1048576).toFixed(1)') MB of ndjson ($(json "$exp" '(j.bytesOnDisk / 1048576).toFixed(1)') MB on disk), written in $(json "$exp" 'j.seconds.toFixed(1)') s"
echo "  mean record bytes: $(json "$exp" 'Object.entries(j.types).map(([t, v]) => t + " " + v.meanBytes).join(", ")')"

ratios=()
for run in $(seq "$runs"); do
  db=imported$run
  t0=$(now)
  "$cli" migrate --sourceType Filesystem -s "$export_dir" --useRecoveryJournal "$work/journal$run" \
    --provisionTargetDatabase true --dbType MongoDb --mongoConnectionstring "${dst_base}$db" \
    --mongoCollection vonkentries -v >"$work/import$run.out" 2>&1 || {
    echo "the import failed:"; tail -20 "$work/import$run.out"; exit 1; }
  wall=$(secs "$t0" "$(now)")
  report=$(grep -E '^  (written|duration) ' "$work/import$run.out")
  written=$(echo "$report" | awk '$1 == "written" && $2 ~ /^[0-9,]+$/ {gsub(",", "", $2); print $2}')
  i_rate=$(echo "$report" | sed -nE 's/.*\), ([0-9]+) entries\/s.*/\1/p')
  rss=$(echo "$report" | sed -nE 's/.*peak RSS ([0-9]+) MB.*/\1/p')
  [ "$written" -ge "$resources" ] || { echo "the import wrote $written entries for $resources resources:"; cat "$work/import$run.out"; exit 1; }
  echo "run $run (load $(cut -d' ' -f1-3 /proc/loadavg)):"
  echo "  (b) import: $written entries written (resources and their contained ones), report: $i_rate entries/s, peak RSS $rss MB; wall time with process start $wall s"
  # Where its time went (-v log): the per-chunk lookup of current versions, and the writes.
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const chunks = lines.map(l => l.match(/chunk of (\d+) file entries .* lookup (\d+) ms, write (\d+) ms/)).filter(Boolean);
    if (!chunks.length) process.exit(0);
    const sum = i => chunks.reduce((a, m) => a + Number(m[i]), 0);
    const last = chunks[chunks.length - 1];
    console.log(`      ${chunks.length} chunks: lookups ${(sum(2) / 1000).toFixed(1)} s (last ${last[2]} ms), writes ${(sum(3) / 1000).toFixed(1)} s`);' \
    "$work/import$run.out"
  if $ceiling; then
    "$cli" provision --mongoConnectionstring "${dst_base}ceiling$run" >"$work/provision.out" 2>&1 || {
      echo "provision failed:"; cat "$work/provision.out"; exit 1; }
    c=$("$bench" ceiling --source "${dst_base}$db" --target "${dst_base}ceiling$run")
    c_rate=$(json "$c" 'j.entriesPerSecond.toFixed(0)')
    echo "  (a) ceiling: the same $(json "$c" 'j.entries') documents ($(json "$c" 'j.bsonMB.toFixed(0)') MB BSON) inserted in $(json "$c" 'j.insertSeconds.toFixed(1)') s = $c_rate entries/s (unordered insertMany, batch $(json "$c" 'j.batch'), $(json "$c" 'j.par') in flight)"
    ratio=$(awk -v m="$i_rate" -v c="$c_rate" 'BEGIN { printf "%.2f", m / c }')
    ratios+=("$ratio")
    awk -v q="$ratio" -v r="$rss" 'BEGIN {
      printf "  ratio import/ceiling %.2f (target >= 0.8: %s), peak RSS %d MB (target < 300 MB: %s)\n",
        q, (q >= 0.8 ? "met" : "NOT met"), r, (r < 300 ? "met" : "NOT met") }'
  fi
done
if [ "${#ratios[@]}" -gt 1 ]; then
  printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END {
    printf "ratio over %d runs: median %.2f, worst %.2f\n", NR, v[int((NR + 1) / 2)], v[1] }'
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
