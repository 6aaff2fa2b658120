#!/usr/bin/env bash
# The zero-downtime migration, end to end, on this machine:
#
#   two embedded FerretDB servers (source: legacy schema, target: current schema)
#   -> seed the legacy store -> old FHIR server + HAProxy in front -> client load through HAProxy
#   -> provision the target -> migrate (Continuous) -> new FHIR server -> verify
#   -> cut over under load (fence writes in HAProxy, drain, verify, switch, lift the fence)
#   -> stop the migrator
#   -> stop the load and prove every acknowledged write readable through HAProxy -> report
#
# Usage: bash scripts/demo.sh [--entries N] [--rate R] [--catch-up-timeout S] [--plain-old-server] [--skip-setup] [--keep] [--help]
#   --entries N    size of the seeded legacy store (default 3000, or $DEMO_ENTRIES; FerretDB updates scan, see docs/migrate.md)
#   --rate R       client requests per second through HAProxy (default 10, or $DEMO_RATE)
#   --catch-up-timeout S  give up when the migrator has not caught up after S seconds (default 300)
#   --plain-old-server  both FHIR servers are used for FHIR only, as an operator's own servers (say
#                  Firely Server) would be: `serve --no-admin`, and HAProxy checks health with GET /metadata
#   --skip-setup   do not run scripts/setup.sh first (or DEMO_SKIP_SETUP=1)
#   --keep         keep the work directory (logs, data, reports) after a successful run
# BUILD_DIR selects the build tree (default build). Everything started here is stopped on exit,
# failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

ENTRIES=${DEMO_ENTRIES:-3000}
RATE=${DEMO_RATE:-10}
CATCH_UP_TIMEOUT=300
SKIP_SETUP=${DEMO_SKIP_SETUP:-0}
PLAIN_OLD_SERVER=0
while (($#)); do
  case "$1" in
    --entries) ENTRIES=$2; shift 2 ;;
    --entries=*) ENTRIES=${1#*=}; shift ;;
    --rate) RATE=$2; shift 2 ;;
    --rate=*) RATE=${1#*=}; shift ;;
    --catch-up-timeout) CATCH_UP_TIMEOUT=$2; shift 2 ;;
    --catch-up-timeout=*) CATCH_UP_TIMEOUT=${1#*=}; shift ;;
    --plain-old-server) PLAIN_OLD_SERVER=1; shift ;;
    --skip-setup) SKIP_SETUP=1; shift ;;
    --keep) FS_KEEP_WORK=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$ENTRIES" =~ ^[0-9]+$ ]] || { echo "demo.sh: --entries needs a number" >&2; exit 2; }
[[ "$RATE" =~ ^[0-9]+$ ]] || { echo "demo.sh: --rate needs a number" >&2; exit 2; }
[[ "$CATCH_UP_TIMEOUT" =~ ^[0-9]+$ ]] || { echo "demo.sh: --catch-up-timeout needs a number of seconds" >&2; exit 2; }

# shellcheck source=lib/common.sh
source scripts/lib/common.sh
# shellcheck source=lib/ferretdb.sh
source scripts/lib/ferretdb.sh
# shellcheck source=lib/haproxy.sh
source scripts/lib/haproxy.sh
# shellcheck source=lib/servers.sh
source scripts/lib/servers.sh

BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export BUILD_DIR
FHIRSHIFT="$BUILD_DIR/apps/fhirshift/fhirshift"
FS_FERRETDB_BIN="$BUILD_DIR/tools/ferretdb-embedded"
DEMO_START=$SECONDS

printf '%sfhirshift demo: zero-downtime migration of a %s-entry FHIR store under %s req/s of client load%s\n' \
  "$FS_BOLD" "$ENTRIES" "$RATE" "$FS_RESET"

fs_banner "Install what is missing and build (scripts/setup.sh)"
if [ "$SKIP_SETUP" = 1 ]; then
  fs_info "skipped (--skip-setup)"
else
  bash scripts/setup.sh
fi
[ -x "$FHIRSHIFT" ] || fs_die "no fhirshift binary at $FHIRSHIFT: run scripts/setup.sh"
[ -x "$FS_FERRETDB_BIN" ] || fs_die "no FerretDB launcher at $FS_FERRETDB_BIN: run scripts/setup.sh"
command -v socat >/dev/null || fs_die "socat is missing: run scripts/setup.sh"

have() { fs_have "$FHIRSHIFT" "$1"; }
fs_init_workdir
fs_info "work directory: $FS_WORK (logs in $FS_WORK/logs)"
OLD_PORT=$(fs_free_port); NEW_PORT=$(fs_free_port); PROXY_PORT=$(fs_free_port); METRICS_PORT=$(fs_free_port)
REPORT_PORT=$(fs_free_port)
NEW_URL="http://127.0.0.1:$NEW_PORT"
METRICS_URL="http://127.0.0.1:$METRICS_PORT"
COLL=vonkentries

# Results for the final report.
R_MIGRATED="-"; R_THROUGHPUT="-"; R_LAG="-"; R_PAUSE="-"; R_FAILED="-"; R_LOST="-"
R_VERIFY_BEFORE="-"; R_VERIFY_AFTER="-"; R_SWITCHED="no"

# ---------------------------------------------------------------------------------------------
fs_banner "Start two MongoDB-compatible servers (embedded FerretDB): source and target"
fs_start_ferretdb source
fs_start_ferretdb target
SRC="${SOURCE_URI}vonkdata"
DST="${TARGET_URI}vonkdata"

# ---------------------------------------------------------------------------------------------
fs_banner "Seed the legacy store with $ENTRIES entries"
if have seed; then
  t0=$SECONDS
  fs_run "$FHIRSHIFT" seed --mongoConnectionstring "$SRC" --mongoCollection "$COLL" \
    --entries "$ENTRIES" --seed 42
  fs_ok "seeded in $((SECONDS - t0))s"
else
  fs_not_available "fhirshift seed (issue #5): the legacy store stays empty"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Start the old FHIR server (legacy schema) and HAProxy in front of it"
# The cut-over asks nothing of either server but FHIR (its write fence is in HAProxy); with
# --plain-old-server they are started without admin endpoints and HAProxy checks GET /metadata.
SERVE_OPTS=(); HEALTH_PATH=/healthz
if [ "$PLAIN_OLD_SERVER" = 1 ]; then SERVE_OPTS=(--no-admin); HEALTH_PATH=/metadata; fi
if have serve; then
  fs_start_fhir_server old legacy "$SRC" "$OLD_PORT" "${SERVE_OPTS[@]}"
else
  fs_not_available "fhirshift serve (issue #7): no old server; HAProxy starts with nothing behind it"
fi
fs_start_haproxy "$PROXY_PORT" "127.0.0.1:$OLD_PORT" "127.0.0.1:$NEW_PORT" "$HEALTH_PATH"
if have serve; then
  fs_wait_haproxy_up old 30
  fs_ok "clients use $HAPROXY_URL; HAProxy: $(fs_haproxy_where)"
  fs_info "answered by: $(curl -fsS -o /dev/null -D - "$HAPROXY_URL/metadata" 2>/dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="x-fhirshift-served-by"{print $2}')"
else
  fs_info "HAProxy: $(fs_haproxy_where)"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Client load through HAProxy: $RATE req/s, every acknowledged write in a ledger"
LOAD_RUNNING=0
if have load && have serve; then
  fs_start load "$FHIRSHIFT" load --url "$HAPROXY_URL" --rate "$RATE" --duration 2h \
    --mix 30:20:45:5 --ledger "$FS_WORK/ledger.jsonl"
  LOAD_RUNNING=1
  sleep 2
  fs_running load || { fs_tail load; fs_die "the load generator exited at start"; }
  fs_ok "load running (log: $FS_WORK/logs/load.log)"
else
  have load || fs_not_available "fhirshift load (issue #7): no client load during the migration"
  have load && ! have serve && fs_not_available "load needs a server behind HAProxy (issue #7)"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Provision the target for the current schema"
fs_run "$FHIRSHIFT" provision --mongoConnectionstring "$DST" --mongoCollection "$COLL" \
  --provisionTargetDatabase true --dbType MongoDb

# ---------------------------------------------------------------------------------------------
fs_banner "Migrate: copy and re-index every entry, then keep catching up (Continuous)"
MIGRATING=0
if have migrate; then
  t0=$SECONDS
  fs_start migrate "$FHIRSHIFT" migrate --srcMongoConnectionString "$SRC" --srcMongoCollection "$COLL" \
    --srcMongoRunningMode Continuous --mongoConnectionstring "$DST" --mongoCollection "$COLL" \
    --useRecoveryJournal "$FS_WORK/journal" --provisionTargetDatabase true --pollInterval 200ms \
    --metrics-port "$METRICS_PORT"
  fs_pid migrate >"$FS_WORK/migrate.pid"
  MIGRATING=1
  fs_info "live dashboard of the migration: $METRICS_URL/ (open it in a browser while the demo runs)"
  # Progress every few seconds until the initial copy is done and the migrator follows the source
  # (/progress caughtUp; under client load a 200 ms poll is rarely empty, so the "No new items
  # found" line may come later).
  last=0
  until curl -fsS --max-time 2 "$METRICS_URL/progress" 2>/dev/null | grep -q '"caughtUp":true'; do
    fs_running migrate || { fs_tail migrate; fs_die "the migrator exited"; }
    if ((SECONDS - t0 >= CATCH_UP_TIMEOUT)); then
      fs_die "the migrator has not caught up after ${CATCH_UP_TIMEOUT}s ($(curl -fsS --max-time 2 \
"$METRICS_URL/progress" 2>/dev/null | fs_json_field lagSeconds)s behind): on the embedded FerretDB every poll and \
every update by _id is a pass over the store, so a store of $ENTRIES entries under $RATE req/s can outrun \
two cores (README, 'Two commands'). Try a smaller --entries or --rate, or a longer --catch-up-timeout"
    fi
    if ((SECONDS - last >= 3)); then
      last=$SECONDS
      p=$(curl -fsS --max-time 2 "$METRICS_URL/progress" 2>/dev/null || true)
      [ -n "$p" ] && fs_info "progress: written $(echo "$p" | fs_json_field entriesWritten) / read $(echo "$p" | fs_json_field entriesRead), lag $(echo "$p" | fs_json_field lagSeconds)s, phase $(echo "$p" | fs_json_field phase)"
    fi
    sleep 0.5
  done
  copy_secs=$((SECONDS - t0))
  p=$(curl -fsS --max-time 2 "$METRICS_URL/progress" 2>/dev/null || true)
  R_MIGRATED=$(echo "$p" | fs_json_field entriesWritten)
  R_MIGRATED=${R_MIGRATED:-?}
  ((copy_secs > 0)) && [[ "$R_MIGRATED" =~ ^[0-9]+$ ]] && R_THROUGHPUT="$((R_MIGRATED / copy_secs)) entries/s"
  fs_ok "initial copy done in ${copy_secs}s ($R_MIGRATED entries); the migrator now tails new writes"
  line=$(grep -m1 "No new items found in the database" "$FS_WORK/logs/migrate.log" || true)
  [ -n "$line" ] && fs_info "$line"
else
  fs_not_available "fhirshift migrate (issue #5): the target stays empty"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Start the new FHIR server (current schema); HAProxy keeps it in maintenance"
if have serve; then
  fs_start_fhir_server new current "$DST" "$NEW_PORT" "${SERVE_OPTS[@]}"
  fs_info "HAProxy: $(fs_haproxy_where)"
else
  fs_not_available "fhirshift serve (issue #7): no new server"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Verify: the target equals the source"
if have verify && [ "$MIGRATING" = 1 ]; then
  # Starting the new server took a while: verify once the migrator follows the source again (its
  # /progress caughtUp, as the cut-over waits for), so only the last seconds' writes are in flight.
  t0=$SECONDS
  lag=$(curl -fsS --max-time 2 "$METRICS_URL/progress" 2>/dev/null | fs_json_field lagSeconds)
  until curl -fsS --max-time 2 "$METRICS_URL/progress" 2>/dev/null | grep -q '"caughtUp":true'; do
    fs_running migrate || { fs_tail migrate; fs_die "the migrator exited"; }
    ((SECONDS - t0 < CATCH_UP_TIMEOUT)) || fs_die "the migrator has not caught up again after ${CATCH_UP_TIMEOUT}s"
    sleep 0.5
  done
  fs_info "migrator caught up: lag ${lag:-?}s when verify was due, $(curl -fsS --max-time 2 "$METRICS_URL/progress" \
2>/dev/null | fs_json_field lagSeconds)s after waiting $((SECONDS - t0))s"
  set +e
  fs_run "$FHIRSHIFT" verify --srcMongoConnectionString "$SRC" --srcMongoCollection "$COLL" \
    --mongoConnectionstring "$DST" --mongoCollection "$COLL" --mode full \
    --report "$FS_WORK/verify-before.json"
  rc=$?
  set -e
  if [ $rc = 0 ]; then R_VERIFY_BEFORE=EQUAL; fs_ok "EQUAL"; else R_VERIFY_BEFORE="DIFFERENT (exit $rc)"; fs_die "verify found differences (report: $FS_WORK/verify-before.json)"; fi
else
  have verify || fs_not_available "fhirshift verify (issue #6)"
  have verify && fs_not_available "verify needs a migrated target (issue #5)"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Cut over under load: fence writes in HAProxy, drain, verify, switch, lift the fence"
if have serve && [ "$MIGRATING" = 1 ]; then
  VERIFY_ARGS=(--srcMongoConnectionString "$SRC" --srcMongoCollection "$COLL"
               --mongoConnectionstring "$DST" --mongoCollection "$COLL")
  have verify || VERIFY_ARGS=(--no-verify)
  fs_info "live page of the cut-over's steps: http://127.0.0.1:$REPORT_PORT/ (the migration's: $METRICS_URL/)"
  set +e
  fs_run "$FHIRSHIFT" cutover --proxy-socket "$HAPROXY_SOCKET" --backend fhir --from old --to new \
    --new-url "$NEW_URL" --metrics "$METRICS_URL" --max-lag 5s \
    "${VERIFY_ARGS[@]}" --report "$FS_WORK/cutover.json" --report-port "$REPORT_PORT"
  rc=$?
  set -e
  [ $rc = 0 ] || fs_die "the cut-over did not complete (exit $rc): see the summary above"
  R_SWITCHED=yes
  R_PAUSE="$(fs_json_field writePauseMs "$FS_WORK/cutover.json") ms"
  R_LAG="$(fs_json_field lagSeconds "$FS_WORK/cutover.json") s"
  fs_ok "HAProxy: $(fs_haproxy_where)"
  fs_info "answered by: $(curl -fsS -o /dev/null -D - "$HAPROXY_URL/metadata" 2>/dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="x-fhirshift-served-by"{print $2}')"
else
  fs_not_available "fhirshift cutover needs the old and new servers (issue #7) and a running migrator (issue #5); it is ready: see 'fhirshift cutover --help'"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "After the cut-over: the source is frozen, the migrator stops"
if [ "$R_SWITCHED" = yes ]; then
  # The old server is in maintenance in HAProxy now, so nothing new reaches the source.
  # The proof that the target held all of it is the cut-over's final verify, run while writes
  # were fenced (a verify now would list what clients wrote to the new server since the switch).
  R_VERIFY_AFTER=$(grep -B2 '"name": "final verify"' "$FS_WORK/cutover.json" | grep '"detail"' |
    sed -E 's/^[^:]*:[[:space:]]*"//; s/",?[[:space:]]*$//')
  fs_info "final verify of the cut-over (writes fenced): $R_VERIFY_AFTER"
  fs_stop migrate 30
  fs_info "migrator stopped (exit $FS_LAST_STATUS)"
else
  fs_not_available "needs the cut-over (issues #5-#7)"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Stop the load and prove every acknowledged write readable through HAProxy"
if [ "$LOAD_RUNNING" = 1 ]; then
  fs_stop load 60 INT
  load_rc=$FS_LAST_STATUS
  fs_tail load 12
  R_FAILED=$(grep -Eio 'failed( requests)?[^0-9]*[0-9]+' "$FS_WORK/logs/load.log" | tail -1 | grep -Eo '[0-9]+$' || true)
  R_FAILED=${R_FAILED:-"? (load exit $load_rc)"}
  set +e
  fs_run "$FHIRSHIFT" load check --ledger "$FS_WORK/ledger.jsonl" --url "$HAPROXY_URL" \
    >"$FS_WORK/logs/load-check.log" 2>&1
  rc=$?
  set -e
  sed 's/^/      | /' "$FS_WORK/logs/load-check.log" | tail -8
  R_LOST=$(grep -Eio 'lost[^0-9]*[0-9]+' "$FS_WORK/logs/load-check.log" | tail -1 | grep -Eo '[0-9]+$' || true)
  [ $rc = 0 ] && R_LOST=${R_LOST:-0}
  [ $rc = 0 ] || { R_LOST=${R_LOST:-"? (exit $rc)"}; fs_die "load check: acknowledged writes are missing"; }
  [ "$load_rc" = 0 ] || fs_warn "the load generator exited $load_rc (it exits non-zero when a request failed)"
else
  fs_not_available "fhirshift load / load check (issue #7)"
fi

# ---------------------------------------------------------------------------------------------
fs_banner "Report"
printf '    %-34s %s\n' "entries migrated" "$R_MIGRATED" \
  "initial copy throughput" "$R_THROUGHPUT" \
  "migrator lag at the cut-over" "$R_LAG" \
  "verify before the cut-over" "$R_VERIFY_BEFORE" \
  "traffic switched to the new server" "$R_SWITCHED" \
  "write pause (fence -> release)" "$R_PAUSE" \
  "final verify, writes fenced" "$R_VERIFY_AFTER" \
  "failed client requests" "$R_FAILED" \
  "lost acknowledged writes" "$R_LOST" \
  "demo time" "$((SECONDS - DEMO_START))s"
if ((${#FS_NOT_AVAILABLE[@]})); then
  printf '\n    %sNot available yet in this build (the demo ran everything else):%s\n' "$FS_YELLOW" "$FS_RESET"
  for s in "${FS_NOT_AVAILABLE[@]}"; do printf '      - %s\n' "$s"; done
fi
