#!/usr/bin/env bash
# Requests/s and p99 latency of `fhirshift serve` for read and create, per schema, with the server
# pinned to ONE core (taskset -c 0) and the embedded FerretDB plus the load driver on the other
# (taskset -c 1), so the figures are per server core. Closed loop, 4 connections, 5 s per run.
# Usage: bench/server/run.sh [build-dir]   (default: build; builds fhirshift and server_bench -j2)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
seconds=${BENCH_SECONDS:-5}
connections=${BENCH_CONNECTIONS:-4}
cmake --build "$build" -j2 --target fhirshift server_bench ferretdb_embedded >/dev/null
fhirshift=$build/apps/fhirshift/fhirshift
bench=$build/bench/server/server_bench
ferretdb=$build/tools/ferretdb-embedded
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }

dbport=$(free_port)
taskset -c 1 "$ferretdb" --listen "127.0.0.1:$dbport" --uri-file "$work/uri" --sqlite-dir "$work/data" \
  >"$work/ferretdb.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do [ -s "$work/uri" ] && break; sleep 0.05; done
db="mongodb://127.0.0.1:$dbport"

echo "fhirshift serve on one core (taskset -c 0); FerretDB + driver on core 1; $connections connections, ${seconds} s per run"
echo "each run on a fresh database (read: --resources Patients created first); 'server CPU' is the serve"
echo "process's own CPU time per request, i.e. what one core of the server alone could sustain"
for schema in legacy current; do
  for op in create read; do
    dbname="bench${schema}${op}"
    [ "$schema" = current ] && "$fhirshift" provision --mongoConnectionstring "$db/$dbname" >/dev/null 2>&1
    port=$(free_port)
    taskset -c 0 "$fhirshift" serve --schema "$schema" --mongoConnectionstring "$db/$dbname" \
      --port "$port" --host 127.0.0.1 >"$work/serve-$schema-$op.log" 2>&1 &
    spid=$!
    pids+=($spid)
    wait_http "http://127.0.0.1:$port/healthz"
    out=$(taskset -c 1 "$bench" --url "http://127.0.0.1:$port" --op "$op" --type Patient \
      --seconds "$seconds" --connections "$connections" --resources "${BENCH_RESOURCES:-100}" --cpu-pid "$spid")
    printf '%-8s %s\n' "$schema" "$out"
    kill "$spid"; wait "$spid" 2>/dev/null || true
  done
done
