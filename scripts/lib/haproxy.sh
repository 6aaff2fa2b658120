# shellcheck shell=bash
# HAProxy in front of the old and the new server, from tools/haproxy/fhirshift.cfg.in. The running
# HAProxy is only ever driven through its runtime API socket (no config rewrite, no reload).

FS_HAPROXY_BIN=${FS_HAPROXY_BIN:-/usr/sbin/haproxy}

# fs_start_haproxy FRONTEND_PORT OLD_ADDR NEW_ADDR [HEALTH_PATH] : sets HAPROXY_SOCKET, HAPROXY_URL.
# HEALTH_PATH is what HAProxy's health check GETs (default /healthz; /metadata asks nothing of a
# FHIR server but FHIR). The write fence (tools/haproxy/fhirshift_fence.lua) is always loaded.
fs_start_haproxy() {
  local port=$1 old=$2 new=$3 health=${4:-/healthz}
  HAPROXY_SOCKET="$FS_WORK/haproxy.sock"
  HAPROXY_URL="http://127.0.0.1:$port"
  local cfg="$FS_WORK/haproxy.cfg"
  sed -e "s|@SOCKET@|$HAPROXY_SOCKET|g" -e "s|@FRONTEND@|127.0.0.1:$port|g" \
      -e "s|@OLD_SERVER@|$old|g" -e "s|@NEW_SERVER@|$new|g" \
      -e "s|@FENCE_LUA@|$(pwd)/tools/haproxy/fhirshift_fence.lua|g" -e "s|@HEALTH_PATH@|$health|g" \
      tools/haproxy/fhirshift.cfg.in >"$cfg"
  if grep -q '@[A-Z_]*@' "$cfg"; then fs_die "unrendered placeholder in $cfg"; fi
  "$FS_HAPROXY_BIN" -c -q -f "$cfg" || fs_die "HAProxy rejects $cfg"
  fs_start haproxy "$FS_HAPROXY_BIN" -db -f "$cfg"
  fs_wait_for "HAProxy runtime API at $HAPROXY_SOCKET" 20 fs_haproxy_cmd "show info"
  fs_ok "HAProxy on $HAPROXY_URL, runtime API at $HAPROXY_SOCKET"
}

# fs_haproxy_cmd "show servers state fhir"
fs_haproxy_cmd() {
  [ -S "$HAPROXY_SOCKET" ] || return 1
  echo "$1" | socat -t 5 stdio "UNIX-CONNECT:$HAPROXY_SOCKET"
}

# "old=UP new=MAINT" from `show servers state fhir`: op state 2 = running; admin bits 0x01, 0x02,
# 0x20, 0x40 = maintenance (0x04 alone only says `disabled` was in the configuration).
fs_haproxy_where() {
  fs_haproxy_cmd "show servers state fhir" | awk '
    $1 ~ /^[0-9]+$/ && NF > 7 {
      op = $6; adm = $7; w = $8
      maint = (adm % 2) || (int(adm / 2) % 2) || (int(adm / 32) % 2) || (int(adm / 64) % 2)
      s = maint ? "MAINT" : (op == 2 ? (w > 0 ? "UP" : "UP(weight 0)") : "DOWN")
      printf "%s%s=%s", sep, $4, s; sep = " "
    }
    END { print "" }'
}

fs_haproxy_is_up() { fs_haproxy_where | grep -qw "$1=UP"; }

# fs_wait_haproxy_up SERVER TIMEOUT
fs_wait_haproxy_up() { fs_wait_for "HAProxy to see $1 UP" "$2" fs_haproxy_is_up "$1"; }
