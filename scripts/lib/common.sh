# shellcheck shell=bash
# Shared helpers for scripts/demo.sh (and anyone driving fhirshift from a shell): step banners,
# background processes that are always cleaned up (EXIT, Ctrl-C, failure), and wait-for loops.
#
# Usage: source scripts/lib/common.sh; fs_init_workdir [DIR]; fs_start NAME CMD...; ...
# Every process started with fs_start is stopped (SIGTERM, then SIGKILL after a grace period) by
# fs_cleanup, which fs_init_workdir installs as the EXIT/INT/TERM trap. Only those pids are
# signalled; nothing is killed by name.

if [ -t 1 ]; then
  FS_BOLD=$'\033[1m'; FS_CYAN=$'\033[1;36m'; FS_GREEN=$'\033[32m'; FS_YELLOW=$'\033[33m'
  FS_RED=$'\033[1;31m'; FS_DIM=$'\033[2m'; FS_RESET=$'\033[0m'
else
  FS_BOLD=""; FS_CYAN=""; FS_GREEN=""; FS_YELLOW=""; FS_RED=""; FS_DIM=""; FS_RESET=""
fi

FS_STEP=0
FS_NOT_AVAILABLE=()
FS_PROCS=()     # names, in start order
FS_WORK=""
FS_KEEP_WORK=${FS_KEEP_WORK:-0}
FS_CLEANED=0

fs_banner() {
  FS_STEP=$((FS_STEP + 1))
  printf '\n%s==> [%s] Step %d: %s%s\n' "$FS_CYAN" "$(date +%H:%M:%S)" "$FS_STEP" "$*" "$FS_RESET"
}
fs_info() { printf '    %s\n' "$*"; }
fs_ok() { printf '    %s✔%s %s\n' "$FS_GREEN" "$FS_RESET" "$*"; }
fs_warn() { printf '    %s!%s %s\n' "$FS_YELLOW" "$FS_RESET" "$*"; }
# A step whose command has not landed yet: say so, remember it for the final report.
fs_not_available() {
  printf '    %sNOT AVAILABLE YET:%s %s\n' "$FS_YELLOW" "$FS_RESET" "$*"
  FS_NOT_AVAILABLE+=("Step $FS_STEP: $*")
}
fs_die() {
  printf '\n%sFAILED at step %d:%s %s\n' "$FS_RED" "$FS_STEP" "$FS_RESET" "$*" >&2
  exit 1
}

# Runs a command, showing it first (passwords are not in our demo URIs).
fs_run() {
  printf '    %s$ %s%s\n' "$FS_DIM" "$*" "$FS_RESET"
  "$@"
}

fs_init_workdir() {
  FS_WORK=${1:-$(mktemp -d "${TMPDIR:-/tmp}/fhirshift-demo.XXXXXX")}
  mkdir -p "$FS_WORK/logs" "$FS_WORK/pids"
  trap 'fs_cleanup' EXIT
  trap 'printf "\n%sinterrupted%s\n" "$FS_YELLOW" "$FS_RESET"; exit 130' INT
  trap 'exit 143' TERM
}

# fs_start NAME CMD... : runs CMD in the background, output to $FS_WORK/logs/NAME.log.
fs_start() {
  local name=$1; shift
  printf '    %s$ %s &%s\n' "$FS_DIM" "$*" "$FS_RESET"
  "$@" >"$FS_WORK/logs/$name.log" 2>&1 &
  echo $! >"$FS_WORK/pids/$name.pid"
  FS_PROCS+=("$name")
}

fs_pid() { cat "$FS_WORK/pids/$1.pid" 2>/dev/null; }

fs_running() {
  local pid; pid=$(fs_pid "$1") || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# fs_stop NAME [GRACE_SECONDS] [SIGNAL]: SIGTERM (or SIGNAL), then SIGKILL after GRACE. Prints the
# exit status of the process (when it was our child) on stdout as FS_LAST_STATUS.
FS_LAST_STATUS=""
fs_stop() {
  local name=$1 grace=${2:-10} sig=${3:-TERM} pid i
  FS_LAST_STATUS=""
  pid=$(fs_pid "$name") || return 0
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      fs_warn "$name (pid $pid) did not stop within ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  set +e
  wait "$pid" 2>/dev/null
  FS_LAST_STATUS=$?
  set -e
  rm -f "$FS_WORK/pids/$name.pid"
}

fs_cleanup() {
  local rc=$?
  [ "$FS_CLEANED" = 1 ] && return
  FS_CLEANED=1
  trap - INT TERM
  if [ -n "$FS_WORK" ] && [ -d "$FS_WORK/pids" ]; then
    local i name any=0
    for ((i = ${#FS_PROCS[@]} - 1; i >= 0; i--)); do
      name=${FS_PROCS[$i]}
      if fs_running "$name"; then
        [ $any = 0 ] && printf '\n%s==> cleaning up%s\n' "$FS_CYAN" "$FS_RESET"
        any=1
        fs_info "stopping $name (pid $(fs_pid "$name"))"
        fs_stop "$name" 10
      fi
    done
    if [ "$rc" != 0 ]; then
      printf '    logs of this run: %s/logs (kept)\n' "$FS_WORK"
    elif [ "$FS_KEEP_WORK" = 1 ]; then
      printf '    work directory kept: %s\n' "$FS_WORK"
    else
      rm -rf "$FS_WORK"
    fi
  fi
  exit "$rc"
}

# fs_wait_for DESCRIPTION TIMEOUT_SECONDS CMD... : retries CMD every 0.2 s until it succeeds.
fs_wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      fs_die "timed out after ${timeout}s waiting for: $what"
    fi
    sleep 0.2
  done
}

# fs_wait_for_log NAME PATTERN TIMEOUT : waits until the process's log contains PATTERN (grep -E);
# fails early when the process exits.
fs_wait_for_log() {
  local name=$1 pattern=$2 timeout=$3
  local deadline=$((SECONDS + timeout))
  until grep -Eq -- "$pattern" "$FS_WORK/logs/$name.log" 2>/dev/null; do
    if ! fs_running "$name"; then
      fs_tail "$name"
      fs_die "$name exited before logging '$pattern'"
    fi
    if ((SECONDS >= deadline)); then
      fs_tail "$name"
      fs_die "timed out after ${timeout}s waiting for $name to log '$pattern'"
    fi
    sleep 0.2
  done
}

fs_tail() { tail -n "${2:-15}" "$FS_WORK/logs/$1.log" 2>/dev/null | sed 's/^/      | /'; }

# A TCP port on 127.0.0.1 that nothing listens on.
fs_free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

fs_http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# fs_have BIN SUBCOMMAND: true when the subcommand is implemented (not a placeholder).
fs_have() {
  ! "$1" --help 2>/dev/null | grep -Eq "^[[:space:]]+$2[[:space:]]+\(not implemented yet"
}

# JSON field from a file or stdin without jq: fs_json_field FIELD [FILE] (numbers, booleans, strings).
fs_json_field() {
  local field=$1 file=${2:-/dev/stdin}
  grep -o "\"$field\"[[:space:]]*:[[:space:]]*[^,}]*" "$file" 2>/dev/null | head -1 |
    sed -E 's/^"[^"]*"[[:space:]]*:[[:space:]]*//; s/^"//; s/"$//'
}
