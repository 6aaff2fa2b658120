# shellcheck shell=bash
# Embedded FerretDB instances (the demo's MongoDB): fs_start_ferretdb NAME sets NAME_URI
# ("mongodb://127.0.0.1:PORT/") once the server answers. Data lives in $FS_WORK/NAME-data.

FS_FERRETDB_BIN=${FS_FERRETDB_BIN:-${BUILD_DIR:-build}/tools/ferretdb-embedded}

fs_start_ferretdb() {
  local name=$1
  local uri_file="$FS_WORK/$name.uri"
  rm -f "$uri_file"
  fs_start "ferretdb-$name" "$FS_FERRETDB_BIN" --listen 127.0.0.1:0 \
    --sqlite-dir "$FS_WORK/$name-data" --uri-file "$uri_file"
  local deadline=$((SECONDS + 60))
  until [ -s "$uri_file" ]; do
    fs_running "ferretdb-$name" || { fs_tail "ferretdb-$name"; fs_die "FerretDB ($name) exited at start"; }
    ((SECONDS < deadline)) || fs_die "FerretDB ($name) did not start within 60s"
    sleep 0.1
  done
  local uri; uri=$(head -1 "$uri_file")
  printf -v "${name^^}_URI" '%s' "$uri"
  fs_ok "FerretDB $name listening at $uri (data: $FS_WORK/$name-data)"
}
