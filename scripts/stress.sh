#!/usr/bin/env bash
# The demo on a busy machine: runs scripts/demo.sh N times while a bounded CPU load (stress-ng)
# keeps the cores busy, and prints each run's write pause, failed requests and lost writes.
#
# Usage: bash scripts/stress.sh [--runs N] [--cpu-workers W] [--cpu-load P] [--skip-setup] [-- DEMO OPTIONS...]
#   --runs N         demo runs (default 5)
#   --cpu-workers W  stress-ng CPU workers (default: one per core, from nproc)
#   --cpu-load P     percent of a core each worker keeps busy (default 60; 100 = a full build's load)
#   --skip-setup     do not run scripts/setup.sh first (it runs once, before the load starts)
#   DEMO OPTIONS     passed to every demo run, e.g. -- --entries 2000 --rate 10
# Exit code 0 only when every run passed. Logs: one file per run in the directory it prints.
# The load is stopped on exit, failure and Ctrl-C; nothing is killed by name.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5
WORKERS=$(nproc)
LOAD=60
SKIP_SETUP=0
DEMO_ARGS=()
while (($#)); do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --cpu-workers) WORKERS=$2; shift 2 ;;
    --cpu-workers=*) WORKERS=${1#*=}; shift ;;
    --cpu-load) LOAD=$2; shift 2 ;;
    --cpu-load=*) LOAD=${1#*=}; shift ;;
    --skip-setup) SKIP_SETUP=1; shift ;;
    --) shift; DEMO_ARGS=("$@"); break ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "stress.sh: unknown option $1 (see --help; demo options go after --)" >&2; exit 2 ;;
  esac
done
for n in "$RUNS" "$WORKERS" "$LOAD"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "stress.sh: --runs, --cpu-workers and --cpu-load need numbers" >&2; exit 2; }
done
((RUNS >= 1 && LOAD >= 1 && LOAD <= 100)) || { echo "stress.sh: --runs >= 1, 1 <= --cpu-load <= 100" >&2; exit 2; }

say() { printf '\033[1m[stress]\033[0m %s\n' "$*"; }

[ "$SKIP_SETUP" = 1 ] || bash scripts/setup.sh
command -v stress-ng >/dev/null || { echo "stress.sh: stress-ng is missing: run scripts/setup.sh" >&2; exit 1; }

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/fhirshift-stress.XXXXXX")
STRESS_PID=""
stop_load() {
  if [ -n "$STRESS_PID" ] && kill -0 "$STRESS_PID" 2>/dev/null; then
    kill -TERM "$STRESS_PID" 2>/dev/null || true
    wait "$STRESS_PID" 2>/dev/null || true
  fi
  STRESS_PID=""
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT
trap 'stop_load; exit 143' TERM

# No --timeout: it runs until stop_load, which every way out of this script calls.
stress-ng --cpu "$WORKERS" --cpu-load "$LOAD" --quiet >"$LOGS/stress-ng.log" 2>&1 &
STRESS_PID=$!
sleep 1
kill -0 "$STRESS_PID" 2>/dev/null || { cat "$LOGS/stress-ng.log" >&2; echo "stress.sh: stress-ng did not start" >&2; exit 1; }
say "CPU load: stress-ng --cpu $WORKERS --cpu-load $LOAD (pid $STRESS_PID); logs in $LOGS"

# A figure from the demo's report ("    write pause (fence -> release)     9100 ms").
report_field() { sed -n "s/^    $2 *//p" "$1" | tail -1; }

passed=0
results=()
for ((i = 1; i <= RUNS; i++)); do
  log="$LOGS/demo-$i.log"
  say "run $i/$RUNS: bash scripts/demo.sh --skip-setup ${DEMO_ARGS[*]} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  t0=$SECONDS
  set +e
  bash scripts/demo.sh --skip-setup "${DEMO_ARGS[@]}" >"$log" 2>&1
  rc=$?
  set -e
  pause=$(report_field "$log" 'write pause (fence -> release)')
  failed=$(report_field "$log" 'failed client requests')
  lost=$(report_field "$log" 'lost acknowledged writes')
  if [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$lost" = 0 ]; then
    verdict=passed
    passed=$((passed + 1))
  else
    verdict="FAILED (exit $rc)"
  fi
  line="run $i: $verdict, write pause ${pause:--}, failed requests ${failed:--}, lost writes ${lost:--}, $((SECONDS - t0))s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  results+=("$line")
  say "$line"
  if [ "$rc" != 0 ]; then
    grep -E 'FAILED at step|DIFFERENT|bad state' "$log" | head -5 | sed 's/^/    /' || true
    say "log: $log"
  fi
done
stop_load

echo
for line in "${results[@]}"; do echo "  $line"; done
echo "$passed/$RUNS demo runs passed (stress-ng --cpu $WORKERS --cpu-load $LOAD; logs in $LOGS)"
[ "$passed" = "$RUNS" ]
