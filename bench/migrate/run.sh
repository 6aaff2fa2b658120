#!/usr/bin/env bash
# The migration benchmark of issue #5, in one run on a generated legacy source:
#  (a) the target's ceiling: unordered insertMany (batches of 1,000, the migrator's default number
#      of batches in flight) of the already-transformed current-schema documents into an empty,
#      provisioned target; the transform (migrator's own code) happens in memory before the clock;
#  (b) `fhirshift migrate --srcMongoRunningMode AdHoc` end to end into another empty target (its
#      report: entries/s, peak RSS) and the ratio (b)/(a) — targets: ratio >= 0.8, RSS < 300 MB;
#  (c) Continuous mode with --pollInterval 200ms on separate, smaller sources (--lag-entries, a
#      comma-separated list of sizes, each run --runs times on fresh servers): a writer adds legacy
#      entries (new resources, updates, deletes, contained) at 200 writes/s and probes the target by
#      `_id` for one entry in four; prints p50/p99/max of insert-acknowledged -> visible, the
#      source's size before and after, the floor (a plain sorted find of the whole source at its
#      final size, timed by migrate_bench, not the migrator) and p99 / (floor + poll interval),
#      target <= 2.0; with several runs, each size's runs with their median and worst.
#      Smaller sources because FerretDB decodes the whole source for every poll (it serves only
#      `{_id: value}` from an index), so the floor and the lag grow with the source's size.
# Source and targets are embedded FerretDB servers (SQLite or PostgreSQL backend).
# Usage: bench/migrate/run.sh [--entries N] [--backend sqlite|postgresql] [--lag-entries M[,M2...]]
#          [--lag-seconds S] [--rate R] [--runs K] [--shape seed|synthea] [--build DIR] [--no-build]
# --shape synthea fills the (a)/(b) source with the records of a Synthea-shaped export (version 1
# of each; bench/import's generator, 0.5-3.3 KB records) instead of `fhirshift seed`'s history.
#   defaults: 1000000 entries, postgresql, lag on a 10000-entry source for 30 s at 200 writes/s, 1 run.
#   The lag spread of docs/migrate.md: --entries 0 --lag-entries 1000,10000 --lag-seconds 15 --runs 5
#   On a shared machine: nice -n 10 bench/migrate/run.sh ...
# --no-build uses the binaries already in --build DIR (a copy, say, while the tree is rebuilt).
# --lag-entries 0 skips (c); --entries 0 skips (a) and (b). --pg-url names the PostgreSQL server
# (default postgres://postgres@127.0.0.1:5432); the script creates and drops its own databases.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
entries=1000000
backend=postgresql
lag_entries=10000
lag_seconds=30
rate=200
runs=1
poll_ms=200
pg_url=postgres://postgres@127.0.0.1:5432
rebuild=true
shape=seed
while [ $# -gt 0 ]; do
  case "$1" in
    --entries) entries=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --lag-entries) lag_entries=$2; shift 2 ;;
    --lag-seconds) lag_seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-build) rebuild=false; shift ;;
    --pg-url) pg_url=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
case "$backend" in sqlite|postgresql) ;; *) echo "--backend sqlite or postgresql, not $backend" >&2; exit 2 ;; esac
case "$shape" in seed|synthea) ;; *) echo "--shape seed or synthea, not $shape" >&2; exit 2 ;; esac

$rebuild && cmake --build "$build" -j2 --target fhirshift migrate_bench import_bench ferretdb_embedded >/dev/null
cli=$build/apps/fhirshift/fhirshift
bench=$build/bench/migrate/migrate_bench
ferret=$build/tools/ferretdb-embedded
work=$(mktemp -d)
tag=bench_migrate_$$
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
stop_ferret() {  # name: stops the server and drops its data
  local pid; pid=$(cat "$work/$1.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$work/$1.pid" "$work/$1.uri"
  if [ "$backend" = postgresql ]; then
    psql "$pg_url/postgres" -qc "drop database if exists ${tag}_$1 with (force)" >/dev/null 2>&1 || true
  else
    rm -rf "${work:?}/$1"
  fi
}
if [ "$entries" -gt 0 ]; then
  [ "$backend" = postgresql ] && pg_dbs+=("${tag}_source" "${tag}_target")
  src_base=$(start_ferret source)
  dst_base=$(start_ferret target)
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rate_of() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
json() { node -e "const j=JSON.parse(process.argv[1]); console.log(j$2)" "$1"; }
seed() {  # uri entries seed
  local t0; t0=$(now)
  "$cli" seed --mongoConnectionstring "$1" --entries "$2" --seed "$3" >"$work/seed.out" 2>&1 || {
    echo "seed of $2 entries failed:"; tail -5 "$work/seed.out"; exit 1; }
  echo "seeded $2 entries in $(secs "$t0" "$(now)") s"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== fhirshift migrate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD)"
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo) RAM; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); nice $(nice)"
echo "FerretDB (embedded, $(basename "$ferret")) with the $backend backend; source and target are separate servers"

if [ "$entries" -gt 0 ]; then
  src="${src_base}migsrc"
  if [ "$shape" = synthea ]; then
    t0=$(now)
    "$build/bench/import/import_bench" export --dir "$work/export" --resources "$entries" >/dev/null
    legacy=$("$build/bench/import/import_bench" legacy --dir "$work/export" --target "$src")
    echo "source: $entries Synthea-shaped resources ($(du -sm "$work/export" | cut -f1) MB of ndjson, version 1 each, $(json "$legacy" '.entries') entries with the contained ones) written in $(secs "$t0" "$(now)") s"
    entries=$(json "$legacy" '.entries')
    rm -rf "$work/export"
  else
    seed "$src" "$entries" 3
  fi
  # (a) the ceiling, into a target provisioned the way --provisionTargetDatabase true does it.
  "$cli" provision --mongoConnectionstring "${dst_base}ceiling" >"$work/provision.out" 2>&1 || {
    echo "provision failed:"; cat "$work/provision.out"; exit 1; }
  ceiling=$("$bench" ceiling --source "$src" --target "${dst_base}ceiling")
  c_rate=$(json "$ceiling" '.entriesPerSecond.toFixed(0)')
  echo "(a) ceiling: $(json "$ceiling" '.entries') transformed documents ($(json "$ceiling" '.bsonMB.toFixed(0)') MB BSON, transformed in $(json "$ceiling" '.transformSeconds.toFixed(1)') s) inserted in $(json "$ceiling" '.insertSeconds.toFixed(1)') s = $c_rate entries/s (unordered insertMany, batch $(json "$ceiling" '.batch'), $(json "$ceiling" '.par') in flight); load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  # (b) the migrator end to end.
  t0=$(now)
  "$cli" migrate --srcMongoConnectionString "$src" --srcMongoRunningMode AdHoc \
    --mongoConnectionstring "${dst_base}migrated" --provisionTargetDatabase true -v >"$work/migrate.out" 2>&1 || {
    echo "migrate AdHoc failed:"; tail -20 "$work/migrate.out"; exit 1; }
  wall=$(secs "$t0" "$(now)")
  report=$(grep -E '^  (written|duration) ' "$work/migrate.out")
  written=$(echo "$report" | awk '$1 == "written" && $2 ~ /^[0-9,]+$/ {gsub(",", "", $2); print $2}')
  m_rate=$(echo "$report" | sed -nE 's/.*\), ([0-9]+) entries\/s.*/\1/p')
  rss=$(echo "$report" | sed -nE 's/.*peak RSS ([0-9]+) MB.*/\1/p')
  [ "$written" = "$entries" ] || { echo "migrate wrote $written of $entries entries:"; cat "$work/migrate.out"; exit 1; }
  echo "(b) migrate AdHoc: $written entries written, report: $m_rate entries/s, peak RSS $rss MB; wall time with process start $wall s ($(rate_of "$entries" "$wall") entries/s); load average now $(cut -d' ' -f1-3 /proc/loadavg)"
  # Where its time went (-v log): until the first chunk reached the writers (the source's first
  # answer to the sorted read), and writing chunks (journal commits included).
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const at = l => Date.parse(l.match(/ts=(\S+)/)[1]);
    const start = lines.find(l => l.includes("starting run"));
    const chunks = lines.filter(l => /chunk of \d+ entries applied in/.test(l));
    if (!start || !chunks.length) process.exit(0);
    const ms = l => Number(l.match(/applied in (\d+) ms, journal commit (\d+) ms/).slice(1).reduce((a, b) => +a + +b));
    const first = at(chunks[0]) - ms(chunks[0]) - at(start);
    const writing = chunks.reduce((a, l) => a + ms(l), 0);
    console.log(`    of which: first chunk handed to the writers ${(first / 1000).toFixed(1)} s after the run started, ` +
                `${chunks.length} chunks written in ${(writing / 1000).toFixed(1)} s`);' "$work/migrate.out"
  awk -v m="$m_rate" -v c="$c_rate" -v r="$rss" 'BEGIN {
    printf "    ratio migrate/ceiling %.2f (target >= 0.8: %s), peak RSS %d MB (target < 300 MB: %s)\n",
      m / c, (m / c >= 0.8 ? "met" : "NOT met"), r, (r < 300 ? "met" : "NOT met") }'
fi

# (c) Continuous: one run = fresh source and target servers, a seeded source of SIZE entries, the
# migrator's initial copy, then the live writer and the probes; after it, with the migrator
# stopped, the floor: a plain sorted find of the source at its final size (migrate_bench floor).
lag_run() {  # size run
  local size=$1 run=$2 name="lag${size}_$3"
  [ "$backend" = postgresql ] && pg_dbs+=("${tag}_${name}_src" "${tag}_${name}_dst")
  local src_uri dst_uri
  src_uri="$(start_ferret "${name}_src")lagsrc"
  dst_uri="$(start_ferret "${name}_dst")lagdst"
  seed "$src_uri" "$size" 5
  local port; port=$(free_port)
  local log="$work/$name.continuous.out"
  "$cli" migrate --srcMongoConnectionString "$src_uri" --srcMongoRunningMode Continuous --pollInterval "${poll_ms}ms" \
    --mongoConnectionstring "$dst_uri" --provisionTargetDatabase true --metrics-port "$port" -v >"$log" 2>&1 &
  echo $! >"$work/continuous.pid"
  local t0; t0=$(now)
  until curl -fsS "http://127.0.0.1:$port/progress" 2>/dev/null | grep -q '"caughtUp":true'; do
    kill -0 "$(cat "$work/continuous.pid")" 2>/dev/null || { echo "migrate Continuous exited:"; tail -20 "$log"; exit 1; }
    sleep 0.2
  done
  local caught_up; caught_up=$(secs "$t0" "$(now)")
  local lag
  lag=$("$bench" writer --source "$src_uri" --target "$dst_uri" --rate "$rate" --seconds "$lag_seconds") || {
    echo "writer/probe failed: $lag"; tail -20 "$log"; exit 1; }
  kill -TERM "$(cat "$work/continuous.pid")"
  wait "$(cat "$work/continuous.pid")" || { echo "migrate Continuous did not stop cleanly:"; tail -20 "$log"; exit 1; }
  rm "$work/continuous.pid"
  local floor; floor=$("$bench" floor --source "$src_uri" --reads 3)
  local final=$((size + $(json "$lag" '.written')))
  local p99; p99=$(json "$lag" '.p99ms.toFixed(0)')
  local floor_ms; floor_ms=$(json "$floor" '.medianMs.toFixed(0)')
  local ratio; ratio=$(awk -v p="$p99" -v f="$floor_ms" -v i="$poll_ms" 'BEGIN { printf "%.2f", p / (f + i) }')
  echo "(c) $size entries, run $run: initial copy caught up after $caught_up s; $(json "$lag" '.writes') writes ($(json "$lag" '.written') entries) at $rate/s for $lag_seconds s, $(json "$lag" '.writesStartedOver100msLate') started > 100 ms late, source $size -> $final entries; $(json "$lag" '.sampled') sampled, $(json "$lag" '.notSeenWithinSettle') not seen within 30 s"
  echo "    insert -> visible p50 $(json "$lag" '.p50ms.toFixed(0)') ms, p99 $p99 ms, max $(json "$lag" '.maxms.toFixed(0)') ms; floor (sorted find of all $(json "$floor" '.entries') entries, median of 3) $floor_ms ms; p99 / (floor + ${poll_ms} ms poll interval) = $ratio (load average now $(cut -d' ' -f1 /proc/loadavg))"
  # Where the migrator's cycle went (its -v log): the poll's source read, applying a chunk.
  for step in "poll read:poll: [0-9]+ entries read in" "chunk apply:entries applied in"; do
    grep -oE "${step#*:} [0-9]+ ms" "$log" | awk -v label="${step%%:*}" '{ v[NR] = $(NF-1) } END {
      if (NR == 0) exit; n = asort(v);
      printf "    migrator %s: %d times, median %d ms, max %d ms\n", label, n, v[int((n + 1) / 2)], v[n] }'
  done
  echo "$size $final $p99 $floor_ms $ratio $(json "$lag" '.notSeenWithinSettle')" >>"$work/lag.tsv"
  stop_ferret "${name}_src"
  stop_ferret "${name}_dst"
}

if [ -n "$lag_entries" ] && [ "$lag_entries" != 0 ]; then
  echo "(c) migrate Continuous --pollInterval ${poll_ms}ms, $rate writes/s for $lag_seconds s, $runs run(s) per source size; target: p99 / (floor + poll interval) <= 2.0"
  IFS=, read -ra lag_sizes <<<"$lag_entries"
  n=0
  for size in "${lag_sizes[@]}"; do
    for run in $(seq "$runs"); do n=$((n + 1)); lag_run "$size" "$run/$runs" "$n"; done
  done
  # The spread: every run's figures, their median and the worst.
  for size in "${lag_sizes[@]}"; do
    awk -v size="$size" '$1 == size { final[++n] = $2; p99[n] = $3; floor[n] = $4; ratio[n] = $5; lost += $6 }
      function median(a, n,   b, i) { for (i = 1; i <= n; i++) b[i] = a[i]; asort(b); return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2 }
      function worst(a, n,   i, w) { w = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > w + 0) w = a[i]; return w }
      function list(a, n,   i, s) { s = a[1]; for (i = 2; i <= n; i++) s = s ", " a[i]; return s }
      END {
        if (!n) exit
        met = 0; for (i = 1; i <= n; i++) if (ratio[i] <= 2.0) met++
        printf "(c) summary, %d -> ~%d entries, %d runs: p99 ms [%s] median %d worst %d; floor ms [%s] median %d; ratio [%s] median %.2f worst %.2f; ratio <= 2.0 in %d of %d runs%s\n",
          size, median(final, n), n, list(p99, n), median(p99, n), worst(p99, n), list(floor, n), median(floor, n),
          list(ratio, n), median(ratio, n), worst(ratio, n), met, n, (lost ? sprintf("; %d sampled entries not seen within 30 s", lost) : "") }' "$work/lag.tsv"
  done
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
