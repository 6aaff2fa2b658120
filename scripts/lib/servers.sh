# shellcheck shell=bash
# The FHIR servers (`fhirshift serve`) the demo runs: the old one over the legacy store, the new one
# over the current-schema target.

# fs_start_fhir_server NAME SCHEMA URI PORT [SERVE_OPTION...] : starts and waits for /healthz.
fs_start_fhir_server() {
  local name=$1 schema=$2 uri=$3 port=$4
  shift 4
  fs_start "server-$name" "$FHIRSHIFT" serve --schema "$schema" --mongoConnectionstring "$uri" \
    --mongoCollection vonkentries --port "$port" "$@"
  local deadline=$((SECONDS + 60))
  until fs_http_ok "http://127.0.0.1:$port/healthz"; do
    fs_running "server-$name" || { fs_tail "server-$name"; fs_die "the $name server exited at start"; }
    ((SECONDS < deadline)) || { fs_tail "server-$name"; fs_die "the $name server did not answer /healthz within 60s"; }
    sleep 0.2
  done
  fs_ok "$name server ($schema schema) on http://127.0.0.1:$port"
}
