#!/usr/bin/env bash
# The fault campaign of issue #17: crashes, bad input and hostile clients, with the figures an
# operator decides on. Each scenario runs on its own embedded FerretDB pair (SQLite backend, fresh
# data directories) and prints one result line; the last line is
#   chaos: N scenarios, K faults injected, L lost, D duplicated, W wrong
# and the exit code is 0 only when nothing was lost, duplicated or wrong (and every check passed).
#
# Usage: bash bench/chaos/run.sh [--quick] [--seed S] [--only LIST] [--build DIR] [--no-build] [--keep]
#                                [--fuzz-seconds N]
#   --quick      20 kills per migration mode, a smaller store, 15 s outages, one cut-over per kill
#                of the cut-over scenarios and 30 s per fuzz target; the default is the full campaign
#                (50 kills per mode, 30 s outages, three cut-overs per kill, 300 s per fuzz target)
#   --seed S     seeds the kill moments, the stores and the generated input (default 1): the same
#                seed injects the same faults (the moments are the same; what a process had done by
#                then depends on the machine's speed)
#   --only LIST  comma-separated scenarios to run: kill-adhoc, kill-continuous, kill-import,
#                outage, kill-cutover-5 ... kill-cutover-9 (kill-cutover: all five),
#                kill-old-server, kill-new-server (kill-server: both), bad-legacy, bad-files,
#                hostile, fuzz (default: all)
#   --build DIR  the build tree (default build; the fuzz scenario's clang tree is DIR-fuzz);
#                --no-build uses them as they are
#   --fuzz-seconds N  how long each libFuzzer target runs in the fuzz scenario (bench/chaos/fuzz.sh)
#   --keep       keep the work directory (logs, data, reports)
# What each scenario injects and checks: docs/reliability.md. Everything started here is stopped on
# exit, failure and Ctrl-C; nothing is killed by name.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
QUICK=0
SEED=1
ONLY=all
REBUILD=1
KEEP=0
FUZZ_SECONDS=""
while (($#)); do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --seed) SEED=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --no-build) REBUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    --fuzz-seconds) FUZZ_SECONDS=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "run.sh: --seed needs a number" >&2; exit 2; }
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

if ((QUICK)); then
  KILLS=20; STORE=3000; IMPORT_RESOURCES=3000; LIVE_STORE=1500; OUTAGE=15; FUZZ_SECONDS=${FUZZ_SECONDS:-30}
  CUT_STORE=500; CUT_ROUNDS=1; CUT_RATE=5
else
  KILLS=50; STORE=10000; IMPORT_RESOURCES=10000; LIVE_STORE=3000; OUTAGE=30; FUZZ_SECONDS=${FUZZ_SECONDS:-300}
  CUT_STORE=1000; CUT_ROUNDS=3; CUT_RATE=5
fi
BAD_LEGACY=1000; BAD_FILES=1000; GOOD_FILES=2000; HOSTILE=10000

CLI=$BUILD/apps/fhirshift/fhirshift
TOOL=$BUILD/bench/chaos/chaos_tool
FERRET=$BUILD/tools/ferretdb-embedded
# The fuzz scenario builds its own clang tree; every other one needs the CLI, the tool and FerretDB.
if [ "$ONLY" != fuzz ]; then
  if ((REBUILD)); then
    nice -n 5 cmake --build "$BUILD" -j2 --target fhirshift chaos_tool ferretdb_embedded >/dev/null ||
      { echo "run.sh: the build failed (cmake --build $BUILD)" >&2; exit 1; }
  fi
  for b in "$CLI" "$TOOL" "$FERRET" "${FS_HAPROXY_BIN:-/usr/sbin/haproxy}"; do
    [ -x "$b" ] || { echo "run.sh: $b is missing: build with scripts/setup.sh (or drop --no-build)" >&2; exit 1; }
  done
fi
command -v node >/dev/null || { echo "run.sh: node is missing (it reads the JSON reports): run scripts/setup.sh" >&2; exit 1; }
command -v socat >/dev/null || { echo "run.sh: socat is missing (the cut-over scenarios read HAProxy's runtime API): run scripts/setup.sh" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fhirshift-chaos.XXXXXX")
mkdir -p "$WORK/logs"
LOG=$WORK/campaign.log
declare -A PIDS=()
RANDOM=$SEED

# ------------------------------------------------------------------------------------------------
# Processes: each started one has a name, a log ($WORK/logs/NAME.log, appended) and its pid in PIDS.

start() {  # NAME CMD...
  local name=$1; shift
  echo "[$(date +%T)] start $name: $*" >>"$LOG"
  "$@" >>"$WORK/logs/$name.log" 2>&1 &
  PIDS[$name]=$!
}
running() { local p=${PIDS[$1]:-}; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
# stop NAME [SIGNAL] [GRACE]: signal, wait (SIGKILL after GRACE s); sets STATUS to the exit status.
STATUS=0
stop() {
  local name=$1 sig=${2:-TERM} grace=${3:-20} pid=${PIDS[$1]:-} i
  STATUS=0
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "[$(date +%T)] $name did not stop within ${grace}s: SIGKILL" >>"$LOG"; kill -KILL "$pid" 2>/dev/null; }
  wait "$pid" 2>/dev/null
  STATUS=$?
  unset "PIDS[$name]"
}
# finish NAME: waits for a process to end by itself; sets STATUS.
finish() { local pid=${PIDS[$1]}; wait "$pid" 2>/dev/null; STATUS=$?; unset "PIDS[$1]"; }
cleanup() {
  local name
  for name in "${!PIDS[@]}"; do kill -KILL "${PIDS[$name]}" 2>/dev/null; done
  wait 2>/dev/null
  if ((KEEP)) || [ "${FAILED_RUN:-0}" = 1 ]; then echo "work directory (logs, data, reports): $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ms_sleep() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
json() { node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); const v=process.argv[2].split(".").reduce((o,k)=>o==null?o:o[k],j); console.log(v===undefined?"":v)' "$1" "$2"; }
progress() { curl -fsS --max-time 2 "http://127.0.0.1:$1/progress" 2>/dev/null; }

# FerretDB NAME: a fresh server; sets NAME_URI (mongodb://127.0.0.1:PORT/vonkdata).
ferret() {
  local name=$1 dir=$WORK/$1-data
  rm -rf "$dir"; mkdir -p "$dir"
  rm -f "$WORK/$name.uri"
  start "ferret-$name" "$FERRET" --listen 127.0.0.1:0 --sqlite-dir "$dir" --uri-file "$WORK/$name.uri"
  local i
  for ((i = 0; i < 300; i++)); do [ -s "$WORK/$name.uri" ] && break; sleep 0.1; done
  [ -s "$WORK/$name.uri" ] || { echo "FerretDB $name did not start (log: $WORK/logs/ferret-$name.log)" >&2; return 1; }
  printf -v "${name//-/_}_URI" '%svonkdata' "$(head -1 "$WORK/$name.uri")"
}
ferret_down() { stop "ferret-$1"; rm -rf "$WORK/$1-data"; }

# A FHIR server on a free port (or PORT); sets SERVER_URL. serve NAME SCHEMA URI [PORT]
serve() {  # NAME SCHEMA URI [PORT]
  local name=$1 schema=$2 uri=$3 port=${4:-} i
  [ -n "$port" ] || port=$(free_port)
  start "$name" "$CLI" serve --schema "$schema" --mongoConnectionstring "$uri" --port "$port" --host 127.0.0.1
  SERVER_URL=http://127.0.0.1:$port
  for ((i = 0; i < 600; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$SERVER_URL/healthz" 2>/dev/null && return 0
    running "$name" || break
    sleep 0.1
  done
  echo "the $name server did not start (log: $WORK/logs/$name.log)" >&2
  return 1
}

# ------------------------------------------------------------------------------------------------
# Results

RESULTS=()
SCENARIOS=0; FAULTS=0; LOST=0; DUPLICATED=0; WRONG=0; FAILED_CHECKS=0
# result NAME FAULTS LOST DUPLICATED WRONG OK(0/1) TEXT
result() {
  local name=$1 faults=$2 lost=$3 dup=$4 wrong=$5 ok=$6 text=$7
  SCENARIOS=$((SCENARIOS + 1)); FAULTS=$((FAULTS + faults))
  LOST=$((LOST + lost)); DUPLICATED=$((DUPLICATED + dup)); WRONG=$((WRONG + wrong))
  ((ok)) || FAILED_CHECKS=$((FAILED_CHECKS + 1))
  local line
  line=$(printf '%-16s %s %s' "$name" "$( ((ok)) && echo PASS || echo FAIL)" "$text")
  RESULTS+=("$line")
  echo "$line"
}
wanted() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }
note() { echo "[$(date +%T)] $*" >>"$LOG"; }

# Verify, its report read into V_LOST (missing), V_DUP (extra), V_WRONG (changed + bad state).
verify_full() {  # SRC DST REPORT [extra verify options]
  local src=$1 dst=$2 report=$3; shift 3
  "$CLI" verify --srcMongoConnectionString "$src" --mongoConnectionstring "$dst" --mode full \
    --report "$report" "$@" >>"$LOG" 2>&1
  V_RC=$?
  if [ -s "$report" ]; then
    V_LOST=$(json "$report" missing); V_DUP=$(json "$report" extra)
    V_WRONG=$(($(json "$report" changed) + $(json "$report" badState)))
    V_VERDICT=$(json "$report" verdict)
  else
    V_LOST=0; V_DUP=0; V_WRONG=1; V_VERDICT="no report (exit $V_RC)"
  fi
}

# The figure of a migrate report line ("  written   1,234") in a log.
report_figure() { grep -E "^  $2 +[0-9,]+" "$1" | tail -1 | awk '{ gsub(",", "", $2); print $2 }'; }

# ------------------------------------------------------------------------------------------------
# Scenario 1: kill -9 of migrate at random moments.

# kill_cycles NAME MIN_MS SPAN_MS CMD... : runs CMD, kills it with SIGKILL after a random delay,
# restarts it, until KILLS kills hit a running process or the command finishes by itself. Sets
# CYCLE_KILLS (kills in this call) and CYCLE_DONE (1 when it finished, with CYCLE_RC).
kill_cycles() {
  local name=$1 min=$2 span=$3 target=$4; shift 4
  CYCLE_KILLS=0; CYCLE_DONE=0; CYCLE_RC=0
  while ((CYCLE_KILLS < target)); do
    start "$name" "$@"
    local delay=$((min + (RANDOM * 32768 + RANDOM) % span))
    ms_sleep "$delay"
    if running "$name"; then
      kill -KILL "${PIDS[$name]}" 2>/dev/null
      finish "$name"
      CYCLE_KILLS=$((CYCLE_KILLS + 1))
      note "$name: kill -9 after ${delay} ms (kill $CYCLE_KILLS)"
    else
      finish "$name"
      CYCLE_DONE=1; CYCLE_RC=$STATUS
      note "$name: finished by itself (exit $STATUS) before the kill at ${delay} ms"
      return 0
    fi
  done
}

scenario_kill_adhoc() {
  ferret s1a-source || return 1
  "$CLI" seed --mongoConnectionstring "$s1a_source_URI" --entries "$STORE" --seed "$SEED" >>"$LOG" 2>&1 ||
    { result kill-adhoc 0 0 0 0 0 "seeding failed (log: $LOG)"; ferret_down s1a-source; return; }
  local kills=0 rounds=0 lost=0 dup=0 wrong=0 ok=1 problems=""
  while ((kills < KILLS)); do
    rounds=$((rounds + 1))
    ferret s1a-target || return 1
    local journal=$WORK/s1a-journal-$rounds
    local cmd=("$CLI" migrate --srcMongoConnectionString "$s1a_source_URI" --srcMongoRunningMode AdHoc
               --mongoConnectionstring "$s1a_target_URI" --provisionTargetDatabase true
               --useRecoveryJournal "$journal" --mongoBatch 100 --mongoPar 2)
    local round_kills=0
    while :; do
      kill_cycles s1a-migrate 200 2500 $((KILLS - kills)) "${cmd[@]}"
      kills=$((kills + CYCLE_KILLS)); round_kills=$((round_kills + CYCLE_KILLS))
      ((CYCLE_DONE)) && break
      # Enough kills: the last restart runs to the end.
      start s1a-migrate "${cmd[@]}"; finish s1a-migrate; CYCLE_RC=$STATUS; break
    done
    ((CYCLE_RC == 0)) || { ok=0; problems+=" round $rounds: the last run exited $CYCLE_RC;"; }
    verify_full "$s1a_source_URI" "$s1a_target_URI" "$WORK/s1a-verify-$rounds.json" --settle 0
    lost=$((lost + V_LOST)); dup=$((dup + V_DUP)); wrong=$((wrong + V_WRONG))
    ((V_RC == 0)) || { ok=0; problems+=" round $rounds verify: $V_VERDICT;"; }
    # The journal agrees with the target: a rerun finds nothing left to do.
    "$CLI" migrate --srcMongoConnectionString "$s1a_source_URI" --srcMongoRunningMode AdHoc \
      --mongoConnectionstring "$s1a_target_URI" --useRecoveryJournal "$journal" >"$WORK/s1a-rerun-$rounds.log" 2>&1
    local rerun_rc=$? written
    written=$(report_figure "$WORK/s1a-rerun-$rounds.log" written)
    if ((rerun_rc != 0)) || [ "${written:-x}" != 0 ]; then
      ok=0; problems+=" round $rounds: the rerun with the journal exited $rerun_rc and wrote ${written:-?};"
    fi
    note "kill-adhoc round $rounds: $round_kills kills, verify $V_VERDICT, rerun wrote ${written:-?}"
    ferret_down s1a-target
  done
  ferret_down s1a-source
  result kill-adhoc "$kills" "$lost" "$dup" "$wrong" "$ok" \
    "$kills x kill -9 of migrate AdHoc ($STORE-entry store, $rounds copies); verify full EQUAL after each copy: $([ "$lost$dup$wrong" = 000 ] && echo yes || echo no); rerun with the journal wrote 0${problems:+;$problems}"
}

scenario_kill_continuous() {
  ferret s1c-source || return 1
  ferret s1c-target || return 1
  "$CLI" seed --mongoConnectionstring "$s1c_source_URI" --entries "$LIVE_STORE" --seed "$SEED" >>"$LOG" 2>&1
  serve s1c-old legacy "$s1c_source_URI" || return 1
  local old_url=$SERVER_URL ledger=$WORK/s1c-ledger.jsonl metrics journal=$WORK/s1c-journal
  start s1c-load "$CLI" load --url "$old_url" --rate 10 --duration 0 --mix 35:30:25:10 --ledger "$ledger" --seed "$SEED"
  metrics=$(free_port)
  local cmd=("$CLI" migrate --srcMongoConnectionString "$s1c_source_URI" --srcMongoRunningMode Continuous
             --mongoConnectionstring "$s1c_target_URI" --provisionTargetDatabase true
             --useRecoveryJournal "$journal" --mongoBatch 200 --mongoPar 2 --pollInterval 200ms
             --metrics-port "$metrics")
  kill_cycles s1c-migrate 500 4000 "$KILLS" "${cmd[@]}"
  local kills=$CYCLE_KILLS ok=1 problems=""
  ((CYCLE_DONE)) && { ok=0; problems+=" the Continuous migrator exited by itself ($CYCLE_RC);"; }
  start s1c-migrate "${cmd[@]}"
  # The writer goes on for a few seconds while the last run catches up, then stops.
  sleep 5
  stop s1c-load INT 60
  local load_rc=$STATUS i caught=0
  for ((i = 0; i < 600; i++)); do
    if progress "$metrics" | grep -q '"caughtUp":true'; then caught=1; break; fi
    running s1c-migrate || break
    sleep 0.5
  done
  ((caught)) || { ok=0; problems+=" the last run did not catch up within 300 s;"; }
  sleep 2  # a few more polls after the writer's last write
  verify_full "$s1c_source_URI" "$s1c_target_URI" "$WORK/s1c-verify.json" --settle 10
  ((V_RC == 0)) || { ok=0; problems+=" verify: $V_VERDICT;"; }
  stop s1c-migrate TERM 60
  ((STATUS == 0)) || { ok=0; problems+=" the migrator exited $STATUS on SIGTERM;"; }
  # Every write the writer was acknowledged is in the target, read through a server over it.
  serve s1c-new current "$s1c_target_URI" || return 1
  "$CLI" load check --ledger "$ledger" --url "$SERVER_URL" >"$WORK/s1c-check.log" 2>&1
  local check_rc=$? writes
  writes=$(wc -l <"$ledger")
  ((check_rc == 0)) || { ok=0; problems+=" load check: $(tail -1 "$WORK/s1c-check.log");"; }
  ((load_rc == 0)) || problems+=" (the writer had failed requests: exit $load_rc, $(grep -ci 'fail' "$WORK/logs/s1c-load.log") lines)"
  stop s1c-new; stop s1c-old
  "$CLI" migrate --srcMongoConnectionString "$s1c_source_URI" --srcMongoRunningMode AdHoc \
    --mongoConnectionstring "$s1c_target_URI" --useRecoveryJournal "$journal" >"$WORK/s1c-rerun.log" 2>&1
  local rerun_rc=$? written
  written=$(report_figure "$WORK/s1c-rerun.log" written)
  if ((rerun_rc != 0)) || [ "${written:-x}" != 0 ]; then
    ok=0; problems+=" the AdHoc rerun with the journal exited $rerun_rc and wrote ${written:-?};"
  fi
  ferret_down s1c-source; ferret_down s1c-target
  result kill-continuous "$kills" "$V_LOST" "$V_DUP" "$V_WRONG" "$ok" \
    "$kills x kill -9 of migrate Continuous under a live writer through serve ($writes acknowledged writes); verify full: $V_VERDICT; load check on the target: $( ((check_rc == 0)) && echo '0 lost' || echo FAILED)${problems:+;$problems}"
}

scenario_kill_import() {
  local dir=$WORK/s1i-files
  "$TOOL" good-files --dir "$dir" --resources "$IMPORT_RESOURCES" --seed "$SEED" >>"$LOG" 2>&1
  local kills=0 rounds=0 lost=0 dup=0 wrong=0 ok=1 problems=""
  while ((kills < KILLS)); do
    rounds=$((rounds + 1))
    ferret s1i-target || return 1
    local journal=$WORK/s1i-journal-$rounds
    local cmd=("$CLI" migrate --sourceType Filesystem -s "$dir" --mongoConnectionstring "$s1i_target_URI"
               --provisionTargetDatabase true --useRecoveryJournal "$journal" --mongoBatch 50 --mongoPar 2)
    kill_cycles s1i-migrate 200 2500 $((KILLS - kills)) "${cmd[@]}"
    kills=$((kills + CYCLE_KILLS))
    if ((!CYCLE_DONE)); then start s1i-migrate "${cmd[@]}"; finish s1i-migrate; CYCLE_RC=$STATUS; fi
    ((CYCLE_RC == 0)) || { ok=0; problems+=" round $rounds: the last run exited $CYCLE_RC;"; }
    local out
    out=$("$TOOL" check-import --uri "$s1i_target_URI" --resources "$IMPORT_RESOURCES" 2>&1)
    (($? == 0)) || { ok=0; problems+=" round $rounds: $(echo "$out" | tail -1);"; }
    echo "$out" >>"$LOG"
    local l d w
    read -r l d w < <(echo "$out" | sed -nE 's/.*; ([0-9]+) lost, ([0-9]+) duplicated, ([0-9]+) wrong$/\1 \2 \3/p')
    lost=$((lost + ${l:-1})); dup=$((dup + ${d:-0})); wrong=$((wrong + ${w:-0}))
    "${cmd[@]}" >"$WORK/s1i-rerun-$rounds.log" 2>&1
    local rerun_rc=$? written
    written=$(report_figure "$WORK/s1i-rerun-$rounds.log" written)
    if ((rerun_rc != 0)) || [ "${written:-x}" != 0 ]; then
      ok=0; problems+=" round $rounds: the rerun with the journal exited $rerun_rc and wrote ${written:-?};"
    fi
    ferret_down s1i-target
  done
  result kill-import "$kills" "$lost" "$dup" "$wrong" "$ok" \
    "$kills x kill -9 of migrate --sourceType Filesystem ($IMPORT_RESOURCES resources, $rounds imports); each resource once, version 1, contained beside it: $([ "$lost$dup$wrong" = 000 ] && echo yes || echo no); rerun wrote 0${problems:+;$problems}"
}

# ------------------------------------------------------------------------------------------------
# Scenario 2: the source or the target down (SIGKILL of its FerretDB, restart on the same port and
# data) while migrate copies or follows.

# ferret_restart NAME: the same port and data directory as before.
ferret_restart() {
  local name=$1 port
  port=$(sed -E 's|.*:([0-9]+)/.*|\1|' "$WORK/$name.uri")
  rm -f "$WORK/$name.uri.new"
  start "ferret-$name" "$FERRET" --listen "127.0.0.1:$port" --sqlite-dir "$WORK/$name-data" --uri-file "$WORK/$name.uri.new"
  local i
  for ((i = 0; i < 300; i++)); do [ -s "$WORK/$name.uri.new" ] && return 0; sleep 0.1; done
  echo "FerretDB $name did not restart on port $port (log: $WORK/logs/ferret-$name.log)" >&2
  return 1
}

# wait_written PORT: until the migrator's /progress shows written entries (or 120 s).
wait_written() {
  local i n
  for ((i = 0; i < 1200; i++)); do
    n=$(progress "$1" | sed -nE 's/.*"entriesWritten":([0-9]+).*/\1/p')
    [ -n "$n" ] && ((n > 0)) && return 0
    sleep 0.1
  done
  return 1
}

scenario_outage() {
  local outages=0 lost=0 dup=0 wrong=0 ok=1 problems="" retries=0 side mode
  for mode in AdHoc Continuous; do
    for side in source target; do
      ferret s2-source || return 1
      ferret s2-target || return 1
      "$CLI" seed --mongoConnectionstring "$s2_source_URI" --entries "$STORE" --seed "$SEED" >>"$LOG" 2>&1
      local metrics; metrics=$(free_port)
      local name=s2-migrate-$mode-$side
      # Small batches: the reader runs at most two chunks (4 x batch x par entries each) ahead of
      # the writers, so with them it is still reading the source when the outage starts.
      start "$name" "$CLI" migrate --srcMongoConnectionString "$s2_source_URI" --srcMongoRunningMode "$mode" \
        --mongoConnectionstring "$s2_target_URI" --provisionTargetDatabase true --useRecoveryJournal "$WORK/$name-journal" \
        --mongoBatch 25 --mongoPar 2 --pollInterval 200ms --retryTimeout 5m --metrics-port "$metrics"
      wait_written "$metrics" || { ok=0; problems+=" $mode/$side: nothing written before the outage;"; }
      stop "ferret-s2-$side" KILL
      note "outage of the $side during $mode: FerretDB killed, down for ${OUTAGE}s"
      outages=$((outages + 1))
      sleep "$OUTAGE"
      ferret_restart "s2-$side" || return 1
      if [ "$mode" = AdHoc ]; then
        finish "$name"
        ((STATUS == 0)) || { ok=0; problems+=" AdHoc/$side: migrate exited $STATUS after the outage;"; }
      else
        local i caught=0
        for ((i = 0; i < 1200; i++)); do
          progress "$metrics" | grep -q '"caughtUp":true' && { caught=1; break; }
          running "$name" || break
          sleep 0.25
        done
        ((caught)) || { ok=0; problems+=" Continuous/$side: not caught up within 300 s after the outage;"; }
        stop "$name" TERM 60
        ((STATUS == 0)) || { ok=0; problems+=" Continuous/$side: migrate exited $STATUS on SIGTERM;"; }
      fi
      local n; n=$(grep -c 'retrying in' "$WORK/logs/$name.log")
      retries=$((retries + n))
      ((n > 0)) || { ok=0; problems+=" $mode/$side: no retry logged;"; }
      verify_full "$s2_source_URI" "$s2_target_URI" "$WORK/$name-verify.json" --settle 0
      lost=$((lost + V_LOST)); dup=$((dup + V_DUP)); wrong=$((wrong + V_WRONG))
      ((V_RC == 0)) || { ok=0; problems+=" $mode/$side verify: $V_VERDICT;"; }
      ferret_down s2-source; ferret_down s2-target
    done
  done
  # Longer than --retryTimeout: the run ends with a message naming the host, then resumes cleanly.
  ferret s2-source || return 1
  ferret s2-target || return 1
  "$CLI" seed --mongoConnectionstring "$s2_source_URI" --entries "$STORE" --seed "$SEED" >>"$LOG" 2>&1
  local metrics; metrics=$(free_port)
  local cmd=("$CLI" migrate --srcMongoConnectionString "$s2_source_URI" --srcMongoRunningMode AdHoc
             --mongoConnectionstring "$s2_target_URI" --provisionTargetDatabase true --useRecoveryJournal "$WORK/s2-long-journal"
             --mongoBatch 25 --mongoPar 2 --retryTimeout 5s)
  start s2-long "${cmd[@]}" --metrics-port "$metrics"
  wait_written "$metrics"
  stop ferret-s2-source KILL
  outages=$((outages + 1))
  local t0=$SECONDS
  finish s2-long
  local long_rc=$STATUS gave_up=$((SECONDS - t0))
  local host; host=$(sed -E 's|mongodb://([^/]+)/.*|\1|' <<<"$s2_source_URI")
  local message; message=$(grep -E 'error|fail' "$WORK/logs/s2-long.log" | grep -F "$host" | tail -1 | cut -c1-200)
  ((long_rc == 1)) || { ok=0; problems+=" the run past --retryTimeout exited $long_rc, not 1;"; }
  [ -n "$message" ] || { ok=0; problems+=" no error line names the source $host;"; }
  ferret_restart s2-source || return 1
  start s2-long "${cmd[@]}"
  finish s2-long
  ((STATUS == 0)) || { ok=0; problems+=" the resume after the long outage exited $STATUS;"; }
  verify_full "$s2_source_URI" "$s2_target_URI" "$WORK/s2-long-verify.json" --settle 0
  lost=$((lost + V_LOST)); dup=$((dup + V_DUP)); wrong=$((wrong + V_WRONG))
  ((V_RC == 0)) || { ok=0; problems+=" verify after the long outage: $V_VERDICT;"; }
  note "long outage: exit $long_rc after ${gave_up}s: $message"
  ferret_down s2-source; ferret_down s2-target
  result outage "$outages" "$lost" "$dup" "$wrong" "$ok" \
    "4 outages of ${OUTAGE}s (source, target x AdHoc, Continuous; $retries retries logged), each followed by verify full EQUAL: $([ "$lost$dup$wrong" = 000 ] && echo yes || echo no); an outage past --retryTimeout 5s: exit $long_rc after ${gave_up}s, then a clean resume${problems:+;$problems}"
}

# ------------------------------------------------------------------------------------------------
# Scenario 3: kill -9 during the cut-over: of `cutover` itself at the entry of each of its steps
# 5-9, and of the old or the new FHIR server (restarted on the same port and store at once). The
# recovery is what docs/runbook.md prescribes after a killed cut-over: run `cutover` again. Then
# HAProxy must route to exactly one server with the fence down, and `load check` of the writer's
# ledger (through HAProxy, so against the store that serves) must find every acknowledged write.

HAPROXY_BIN=${FS_HAPROXY_BIN:-/usr/sbin/haproxy}

hap() { echo "$2" | socat -t 5 stdio "UNIX-CONNECT:$1" 2>/dev/null; }  # SOCKET COMMAND
# "old=UP new=MAINT" from `show servers state fhir` (as scripts/lib/haproxy.sh reads it).
hap_where() {
  hap "$1" "show servers state fhir" | awk '
    $1 ~ /^[0-9]+$/ && NF > 7 {
      op = $6; adm = $7; w = $8
      maint = (adm % 2) || (int(adm / 2) % 2) || (int(adm / 32) % 2) || (int(adm / 64) % 2)
      s = maint ? "MAINT" : (op == 2 ? (w > 0 ? "UP" : "UP(weight-0)") : "DOWN")
      printf "%s%s=%s", sep, $4, s; sep = " "
    }
    END { print "" }'
}
hap_fence() { hap "$1" "fhirshift fence show fhir" | tr -d '\n'; }  # name=fhir fenced=0 held=0 ...

# cut_stage P: a fresh stage for one cut-over: FerretDB source and target, a seeded legacy store,
# the old server, HAProxy (tools/haproxy/fhirshift.cfg.in with its write fence) in front of old and
# new, the writer through HAProxy with a ledger, the Continuous migrator caught up, the new server.
# Sets C_SOCK, C_PROXY, C_NEW_PORT, C_OLD_PORT, C_CUT (the cutover command).
cut_stage() {
  local p=$1 src dst i
  ferret "$p-src" || return 1
  ferret "$p-dst" || return 1
  src=${p//-/_}_src_URI; src=${!src}
  dst=${p//-/_}_dst_URI; dst=${!dst}
  "$CLI" seed --mongoConnectionstring "$src" --entries "$CUT_STORE" --seed "$SEED" >>"$LOG" 2>&1 || return 1
  C_OLD_PORT=$(free_port); C_NEW_PORT=$(free_port)
  serve "$p-old" legacy "$src" "$C_OLD_PORT" || return 1
  C_SOCK=$WORK/$p-haproxy.sock
  local port; port=$(free_port)
  C_PROXY=http://127.0.0.1:$port
  sed -e "s|@SOCKET@|$C_SOCK|g" -e "s|@FRONTEND@|127.0.0.1:$port|g" \
      -e "s|@OLD_SERVER@|127.0.0.1:$C_OLD_PORT|g" -e "s|@NEW_SERVER@|127.0.0.1:$C_NEW_PORT|g" \
      -e "s|@FENCE_LUA@|$ROOT/tools/haproxy/fhirshift_fence.lua|g" -e "s|@HEALTH_PATH@|/metadata|g" \
      "$ROOT/tools/haproxy/fhirshift.cfg.in" >"$WORK/$p-haproxy.cfg"
  start "$p-haproxy" "$HAPROXY_BIN" -db -f "$WORK/$p-haproxy.cfg"
  for ((i = 0; i < 300; i++)); do hap_where "$C_SOCK" | grep -qw 'old=UP' && break; sleep 0.1; done
  hap_where "$C_SOCK" | grep -qw 'old=UP' || { echo "HAProxy $p does not see old UP (log: $WORK/logs/$p-haproxy.log)" >&2; return 1; }
  start "$p-load" "$CLI" load --url "$C_PROXY" --rate "$CUT_RATE" --duration 0 --mix 35:30:25:10 \
    --ledger "$WORK/$p-ledger.jsonl" --seed "$SEED"
  local metrics; metrics=$(free_port)
  start "$p-migrate" "$CLI" migrate --srcMongoConnectionString "$src" --srcMongoRunningMode Continuous \
    --mongoConnectionstring "$dst" --provisionTargetDatabase true --useRecoveryJournal "$WORK/$p-journal" \
    --mongoBatch 200 --mongoPar 2 --pollInterval 200ms --metrics-port "$metrics"
  for ((i = 0; i < 1200; i++)); do
    progress "$metrics" | grep -q '"caughtUp":true' && break
    running "$p-migrate" || break
    sleep 0.25
  done
  progress "$metrics" | grep -q '"caughtUp":true' || { echo "the $p migrator did not catch up within 300 s" >&2; return 1; }
  serve "$p-new" current "$dst" "$C_NEW_PORT" || return 1
  C_CUT=("$CLI" cutover --proxy-socket "$C_SOCK" --backend fhir --from old --to new
         --new-url "http://127.0.0.1:$C_NEW_PORT" --metrics "http://127.0.0.1:$metrics"
         --srcMongoConnectionString "$src" --mongoConnectionstring "$dst" --catch-up-wait 300s)
}

cut_unstage() {
  local p=$1 n
  for n in load migrate new old haproxy; do stop "$p-$n" TERM 30; done
  ferret_down "$p-src"; ferret_down "$p-dst"
}

# cut_run P RUN STEP ACTION: runs the cutover; at the entry of STEP (its line `cutover step
# STEP/9 [t+…] … ...`, read from its stderr through a FIFO as it is written) runs ACTION once with
# the cutover's pid in CUT_PID. Sets CUT_RC, CUT_ENTERED (1 when the step was entered) and
# CUT_OUTCOME (from --report).
cut_run() {
  local p=$1 run=$2 step=$3 action=$4 fifo=$WORK/$p-cutover.fifo line
  local log=$WORK/logs/$p-cutover-$run.log report=$WORK/$p-cutover-$run.json
  rm -f "$fifo"; mkfifo "$fifo"
  note "$p: cutover run $run$( [ "$step" != 0 ] && echo ", $action at the entry of step $step")"
  "${C_CUT[@]}" --report "$report" >"$WORK/$p-cutover-$run.out" 2>"$fifo" &
  CUT_PID=$!
  PIDS[$p-cutover]=$CUT_PID
  CUT_ENTERED=0
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$log"
    if ((!CUT_ENTERED)) && [[ "$line" == *"cutover step $step/9 ["* ]]; then
      CUT_ENTERED=1
      "$action"
    fi
  done <"$fifo"
  { wait "$CUT_PID"; CUT_RC=$?; } 2>/dev/null  # no "Killed" notice from bash
  unset "PIDS[$p-cutover]"
  rm -f "$fifo"
  CUT_OUTCOME=$( [ -s "$report" ] && json "$report" outcome || echo "no report (exit $CUT_RC)")
}
kill_cutover() { kill -KILL "$CUT_PID" 2>/dev/null; }
# The server's process is killed and started again on the same port and store (HAProxy's health
# checks see it go DOWN and come back).
kill_server() {
  local which=$KILL_SERVER
  kill -KILL "${PIDS[$CUT_P-$which]}" 2>/dev/null
  finish "$CUT_P-$which"
  note "$CUT_P: the $which server killed (kill -9) at the entry of step $KILL_STEP; HAProxy: $(hap_where "$C_SOCK")"
  if [ "$which" = old ]; then serve "$CUT_P-old" legacy "$CUT_SRC" "$C_OLD_PORT"
  else serve "$CUT_P-new" current "$CUT_DST" "$C_NEW_PORT"; fi
}

# cut_round P KIND STEP: one stage, one fault, the recovery, the checks. KIND: cutover, old, new.
# Adds to the scenario's tallies (R_*) and appends to R_TEXT.
cut_round() {
  local p=$1 kind=$2 step=$3 problems="" landed="" recovery=""
  CUT_P=$p
  if ! cut_stage "$p"; then
    R_OK=0; R_TEXT+=" $p: the stage did not start (log: $LOG);"; cut_unstage "$p"; return
  fi
  CUT_SRC=${p//-/_}_src_URI; CUT_SRC=${!CUT_SRC}
  CUT_DST=${p//-/_}_dst_URI; CUT_DST=${!CUT_DST}
  if [ "$kind" = cutover ]; then
    cut_run "$p" 1 "$step" kill_cutover
    # 137: SIGKILL; any other exit means the run ended before the kill reached it.
    if ((CUT_RC == 137)); then
      R_FAULTS=$((R_FAULTS + 1))
      landed="$(hap_where "$C_SOCK"), $(hap_fence "$C_SOCK" | grep -oE 'fenced=[01] held=[0-9]+')"
    else
      problems+=" the kill at step $step did not find cutover running (exit $CUT_RC, $CUT_OUTCOME);"
      R_OK=0
    fi
  else
    KILL_SERVER=$kind KILL_STEP=$step
    cut_run "$p" 1 "$step" kill_server
    if ((CUT_ENTERED)); then R_FAULTS=$((R_FAULTS + 1)); else problems+=" step $step was never entered ($CUT_OUTCOME);"; R_OK=0; fi
    landed="first run $CUT_OUTCOME"
  fi
  # The recovery: cutover again (docs/runbook.md, step 5, "If `cutover` itself is killed").
  if ! hap_where "$C_SOCK" | grep -q 'old=MAINT new=UP' || ! hap_fence "$C_SOCK" | grep -q 'fenced=0'; then
    cut_run "$p" 2 0 true
    recovery="rerun $CUT_OUTCOME"
    ((CUT_RC == 0)) || { R_OK=0; problems+=" the rerun exited $CUT_RC ($CUT_OUTCOME, log: $WORK/logs/$p-cutover-2.log);"; }
  else
    recovery="no rerun needed"
  fi
  # Exactly one server, and it is the new one; the fence is down.
  local where fence
  where=$(hap_where "$C_SOCK"); fence=$(hap_fence "$C_SOCK")
  [ "$where" = "old=MAINT new=UP" ] || { R_OK=0; problems+=" HAProxy after the recovery: $where;"; }
  [[ "$fence" == *"fenced=0"* ]] || { R_OK=0; problems+=" the fence after the recovery: $fence;"; }
  # A few more writes on the server that serves now, then every acknowledged write is checked.
  sleep 3
  stop "$p-load" INT 60
  local failed
  failed=$(sed -nE 's/.* ([0-9]+) failed, .*/\1/p' "$WORK/logs/$p-load.log" | tail -1)
  "$CLI" load check --ledger "$WORK/$p-ledger.jsonl" --url "$C_PROXY" >"$WORK/$p-check.log" 2>&1
  local check_rc=$? lost wrong writes
  lost=$(sed -nE 's/^load check: .*: ([0-9]+) lost, ([0-9]+) wrong, .*/\1/p' "$WORK/$p-check.log")
  wrong=$(sed -nE 's/^load check: .*: ([0-9]+) lost, ([0-9]+) wrong, .*/\2/p' "$WORK/$p-check.log")
  writes=$(wc -l <"$WORK/$p-ledger.jsonl")
  ((check_rc == 0)) || { R_OK=0; problems+=" load check: $(tail -1 "$WORK/$p-check.log");"; }
  R_LOST=$((R_LOST + ${lost:-1})); R_WRONG=$((R_WRONG + ${wrong:-0})); R_WRITES=$((R_WRITES + writes))
  R_FAILED=$((R_FAILED + ${failed:-0}))
  R_TEXT+=" [${landed:-?}; $recovery; $where, fence $(grep -oE 'fenced=[01]' <<<"$fence"); $writes acknowledged writes, load check ${lost:-?} lost${problems:+;$problems}]"
  note "$p: kill at step $step ($kind): landed: $landed; recovery: $recovery; $where; load check: $(tail -1 "$WORK/$p-check.log"); failed requests $failed"
  cut_unstage "$p"
}

# scenario_kill_cutover STEP | old STEP | new STEP: CUT_ROUNDS rounds, one result line.
scenario_cut() {
  local name=$1 kind=$2 step=$3 round
  R_OK=1; R_FAULTS=0; R_LOST=0; R_WRONG=0; R_WRITES=0; R_FAILED=0; R_TEXT=""
  for ((round = 1; round <= CUT_ROUNDS; round++)); do cut_round "s3-$kind-$step-$round" "$kind" "$step"; done
  local what
  if [ "$kind" = cutover ]; then what="kill -9 of cutover at the entry of step $step/9"
  else what="kill -9 of the $kind server at the entry of step $step/9, restarted"; fi
  result "$name" "$R_FAULTS" "$R_LOST" 0 "$R_WRONG" "$R_OK" \
    "$R_FAULTS x $what ($CUT_STORE-entry store, writer at $CUT_RATE/s through HAProxy, $R_WRITES acknowledged writes, $R_FAILED failed requests); after the recovery traffic on new only, fence down, load check: $R_LOST lost, $R_WRONG wrong;$R_TEXT"
}

# ------------------------------------------------------------------------------------------------
# Scenario 4: malformed input.

scenario_bad_legacy() {
  ferret s4-source || return 1
  ferret s4-target || return 1
  local ok=1 problems="" expected=$WORK/s4-expected.tsv
  "$CLI" seed --mongoConnectionstring "$s4_source_URI" --entries "$STORE" --seed "$SEED" >>"$LOG" 2>&1
  local made
  made=$("$TOOL" bad-legacy --uri "$s4_source_URI" --count "$BAD_LEGACY" --expected "$expected" --seed "$SEED" 2>>"$LOG")
  note "$made"
  local bad; bad=$(wc -l <"$expected")
  "$CLI" migrate --srcMongoConnectionString "$s4_source_URI" --srcMongoRunningMode AdHoc \
    --mongoConnectionstring "$s4_target_URI" --provisionTargetDatabase true \
    --useRecoveryJournal "$WORK/s4-journal" >"$WORK/s4-migrate.log" 2>&1
  local rc=$?
  # Exit 1 is the answer for a run that quarantined something; anything else is a crash or a failure.
  ((rc == 1)) || { ok=0; problems+=" migrate exited $rc (expected 1: entries quarantined);"; }
  grep -q 'check: read = .*: OK' "$WORK/s4-migrate.log" || { ok=0; problems+=" the report's balance check is not OK;"; }
  local quarantined; quarantined=$(report_figure "$WORK/s4-migrate.log" quarantined)
  local q; q=$("$TOOL" check-quarantine --legacy --uri "$s4_target_URI" --expected "$expected" 2>&1)
  (($? == 0)) || { ok=0; problems+=" $(echo "$q" | head -4 | tr '\n' ' ');"; }
  echo "$q" >>"$LOG"
  # Every good entry migrated: once the quarantined ones are accepted, verify says EQUAL.
  "$CLI" quarantine accept --all --reason "chaos campaign: generated bad input" \
    --mongoConnectionstring "$s4_target_URI" >>"$LOG" 2>&1 || { ok=0; problems+=" quarantine accept failed;"; }
  verify_full "$s4_source_URI" "$s4_target_URI" "$WORK/s4-verify.json" --settle 0
  ((V_RC == 0)) || { ok=0; problems+=" verify: $V_VERDICT;"; }
  ferret_down s4-source; ferret_down s4-target
  result bad-legacy "$bad" "$V_LOST" "$V_DUP" "$V_WRONG" "$ok" \
    "$bad bad legacy entries in a $STORE-entry store: $(echo "$q" | head -1 | sed 's/^quarantine: //'); report: quarantined ${quarantined:-?}, balance $(grep -q 'check: read = .*: OK' "$WORK/s4-migrate.log" && echo OK || echo MISMATCH); verify after accepting them: $V_VERDICT${problems:+;$problems}"
}

scenario_bad_files() {
  ferret s4f-target || return 1
  local ok=1 problems="" dir=$WORK/s4f-files expected=$WORK/s4f-expected.tsv
  "$TOOL" bad-files --dir "$dir" --bad "$BAD_FILES" --good "$GOOD_FILES" --expected "$expected" --seed "$SEED" >>"$LOG" 2>&1
  local bad good; bad=$(wc -l <"$expected"); good=$(cat "$dir/good.count")
  "$CLI" migrate --sourceType Filesystem -s "$dir" --mongoConnectionstring "$s4f_target_URI" \
    --provisionTargetDatabase true --useRecoveryJournal "$WORK/s4f-journal" >"$WORK/s4f-migrate.log" 2>&1
  local rc=$?
  ((rc == 1)) || { ok=0; problems+=" migrate exited $rc (expected 1: entries quarantined);"; }
  grep -q 'check: read = .*: OK' "$WORK/s4f-migrate.log" || { ok=0; problems+=" the report's balance check is not OK;"; }
  local q; q=$("$TOOL" check-quarantine --files --uri "$s4f_target_URI" --expected "$expected" 2>&1)
  (($? == 0)) || { ok=0; problems+=" $(echo "$q" | head -4 | tr '\n' ' ');"; }
  echo "$q" >>"$LOG"
  local imported; imported=$("$TOOL" check-import --uri "$s4f_target_URI" --resources "$good" 2>&1)
  (($? == 0)) || { ok=0; problems+=" $(echo "$imported" | tail -1);"; }
  echo "$imported" >>"$LOG"
  local l d w
  read -r l d w < <(echo "$imported" | sed -nE 's/.*; ([0-9]+) lost, ([0-9]+) duplicated, ([0-9]+) wrong$/\1 \2 \3/p')
  ferret_down s4f-target
  result bad-files "$bad" "${l:-0}" "${d:-0}" "${w:-1}" "$ok" \
    "$bad bad ndjson lines, Bundle entries and Bundle files among $good good resources: $(echo "$q" | head -1 | sed 's/^quarantine: //'); $good good imported once each: $([ "${l:-1}${d:-1}${w:-1}" = 000 ] && echo yes || echo no)${problems:+;$problems}"
}

# ------------------------------------------------------------------------------------------------
# Scenario 5: hostile requests.

scenario_hostile() {
  ferret s5-db || return 1
  local ok=1 problems=""
  "$CLI" provision --mongoConnectionstring "$s5_db_URI" --provisionTargetDatabase true --dbType MongoDb >>"$LOG" 2>&1
  serve s5-server current "$s5_db_URI" || return 1
  # A few real resources, so that reads, updates and searches have something to find.
  local i
  for i in 1 2 3; do
    curl -fsS -o /dev/null -X PUT -H 'Content-Type: application/fhir+json' \
      -d "{\"resourceType\":\"Patient\",\"id\":\"p$i\",\"active\":true}" "$SERVER_URL/Patient/p$i" >>"$LOG" 2>&1
  done
  local out; out=$("$TOOL" hostile --url "$SERVER_URL" --uri "$s5_db_URI" --count "$HOSTILE" --seed "$SEED" 2>&1)
  (($? == 0)) || ok=0
  echo "$out" >>"$LOG"
  running s5-server || { ok=0; problems+=" the server is gone (log: $WORK/logs/s5-server.log);"; }
  curl -fsS -o /dev/null --max-time 5 "$SERVER_URL/Patient/p1" || { ok=0; problems+=" the server does not serve Patient/p1 any more;"; }
  stop s5-server
  ferret_down s5-db
  local not; not=$(echo "$out" | sed -nE 's/.* ([0-9]+) not;.*/\1/p')
  result hostile 0 0 0 "${not:-1}" "$ok" \
    "$(echo "$out" | head -1 | sed 's/^hostile: //')${problems:+;$problems}$( ((ok)) || echo "; $(echo "$out" | sed -n '2,6p' | tr '\n' ';')")"
}

# ------------------------------------------------------------------------------------------------
# Scenario 6: libFuzzer targets (bench/chaos/fuzz.sh; clang, ASan + UBSan), two at a time. A crash
# counts as wrong: an input the decoder or parser could not take.

scenario_fuzz() {
  local out rc ok=1
  out=$(bash "$ROOT/bench/chaos/fuzz.sh" --seconds "$FUZZ_SECONDS" --jobs 2 --build "$BUILD-fuzz" \
    $( ((REBUILD)) || echo --no-build) 2>&1)
  rc=$?
  echo "$out" >>"$LOG"
  local runs crashes targets
  read -r targets runs crashes < <(echo "$out" | sed -nE 's/^fuzz: ([0-9]+) targets, ([0-9]+) runs, ([0-9]+) crashes$/\1 \2 \3/p')
  if [ -z "$runs" ]; then
    ok=0; crashes=0
  fi
  ((rc == 0)) || ok=0
  result fuzz 0 0 0 "${crashes:-0}" "$ok" \
    "${targets:-?} libFuzzer targets, ${FUZZ_SECONDS}s each: ${runs:-?} runs, ${crashes:-?} crashes$( ((ok)) || echo "; $(echo "$out" | grep -E 'FAIL|fuzz.sh:' | head -4 | tr '\n' ';')")"
}

# ------------------------------------------------------------------------------------------------

echo "== fhirshift fault campaign ($( ((QUICK)) && echo quick || echo full)), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), seed $SEED"
echo "machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
T0=$SECONDS
wanted kill-adhoc && scenario_kill_adhoc
wanted kill-continuous && scenario_kill_continuous
wanted kill-import && scenario_kill_import
wanted outage && scenario_outage
for step in 5 6 7 8 9; do
  { wanted kill-cutover || wanted "kill-cutover-$step"; } && scenario_cut "kill-cutover-$step" cutover "$step"
done
{ wanted kill-server || wanted kill-old-server; } && scenario_cut kill-old-server old 5
{ wanted kill-server || wanted kill-new-server; } && scenario_cut kill-new-server new 6
wanted bad-legacy && scenario_bad_legacy
wanted bad-files && scenario_bad_files
wanted hostile && scenario_hostile
wanted fuzz && scenario_fuzz
echo "took $((SECONDS - T0)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
((FAILED_CHECKS)) && echo "$FAILED_CHECKS scenario(s) failed a check (see the lines above; log: $LOG)"
echo "chaos: $SCENARIOS scenarios, $FAULTS faults injected, $LOST lost, $DUPLICATED duplicated, $WRONG wrong"
if ((LOST + DUPLICATED + WRONG + FAILED_CHECKS)); then FAILED_RUN=1; exit 1; fi
exit 0
