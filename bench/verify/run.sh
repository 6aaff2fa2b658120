#!/usr/bin/env bash
# Speed and memory of `fhirshift verify --mode full` against the migrator's own copy of the same
# store. For each size: a seeded legacy store on an embedded FerretDB, `migrate --srcMongoRunningMode
# AdHoc` into a second FerretDB (timed), then `verify` full, counts and sample (timed, peak RSS).
# Prints one line per size with entries/s of both; flat memory shows as the same peak RSS at every
# size. Usage: bench/verify/run.sh [build-dir] [entries ...]   (default: build 2000 10000)
# FHIRSHIFT_CLI=<path> runs another fhirshift binary (e.g. a copy, while the build changes).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shift || true
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(2000 10000)
cmake --build "$build" -j2 --target fhirshift ferretdb_embedded >/dev/null
cli=${FHIRSHIFT_CLI:-$build/apps/fhirshift/fhirshift}
ferret=$build/tools/ferretdb-embedded
work=$(mktemp -d)
cleanup() {
  for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_ferret() {  # name -> prints the URI
  mkdir -p "$work/$1"
  "$ferret" --listen 127.0.0.1:0 --uri-file "$work/$1.uri" --sqlite-dir "$work/$1" \
    >"$work/$1.log" 2>&1 &
  echo $! >"$work/$1.pid"  # (this runs in $(...): the pid is handed over through a file)
  for _ in $(seq 100); do [ -s "$work/$1.uri" ] && break; sleep 0.1; done
  cat "$work/$1.uri"
}
src_base=$(start_ferret source)
dst_base=$(start_ferret target)

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
json() { node -e "const j=require(process.argv[1]); console.log(j$2)" "$1"; }

printf "%9s | %-22s | %-34s | %-12s | %-12s\n" entries "migrate AdHoc" "verify full" "counts" "sample 1000"
for n in "${sizes[@]}"; do
  src="${src_base}bench$n"
  dst="${dst_base}bench$n"
  "$cli" seed --mongoConnectionstring "$src" --entries "$n" --seed 3 >"$work/seed-$n.out" 2>&1 || {
    echo "seed of $n entries failed:"; tail -5 "$work/seed-$n.out"; exit 1; }
  t0=$(now)
  "$cli" migrate --srcMongoConnectionString "$src" --srcMongoRunningMode AdHoc \
    --mongoConnectionstring "$dst" --provisionTargetDatabase true >"$work/migrate-$n.out" 2>&1 || {
    echo "migrate of $n entries failed:"; tail -5 "$work/migrate-$n.out"; exit 1; }
  t1=$(now)
  "$cli" verify --srcMongoConnectionString "$src" --mongoConnectionstring "$dst" --mode full \
    --report "$work/full-$n.json" >"$work/full-$n.out" 2>&1 || {
    echo "verify full of $n entries did not say EQUAL:"; tail -5 "$work/full-$n.out"; exit 1; }
  t2=$(now)
  "$cli" verify --srcMongoConnectionString "$src" --mongoConnectionstring "$dst" --mode counts \
    >/dev/null 2>&1
  t3=$(now)
  "$cli" verify --srcMongoConnectionString "$src" --mongoConnectionstring "$dst" --mode sample \
    --sample 1000 >/dev/null 2>&1
  t4=$(now)
  m=$(secs "$t0" "$t1"); f=$(secs "$t1" "$t2")
  rss=$(json "$work/full-$n.json" '.peakRssKb')
  printf "%9d | %7ss %7s entries/s | %7ss %7s entries/s, %4d MB | %10ss | %10ss\n" "$n" \
    "$m" "$(rate "$n" "$m")" "$f" "$(rate "$n" "$f")" $((rss / 1024)) "$(secs "$t2" "$t3")" \
    "$(secs "$t3" "$t4")"
done
echo "(wall time of each command, process start included; FerretDB $(basename "$ferret") SQLite backend, -j2 machine)"
