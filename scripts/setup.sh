#!/usr/bin/env bash
# Installs everything fhirshift needs to build, test and run its demo on a fresh Debian 12 machine,
# then configures and builds it. Idempotent: a second run installs nothing and rebuilds only what
# changed. Needs root (or sudo) for apt-get; Go and Node.js come from the machine or from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libmongoc-dev libbson-dev libssl-dev
  libsimdjson-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libcpp-httplib-dev libxxhash-dev libsqlite3-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  haproxy lua5.3 socat nodejs npm curl procps stress-ng
  chromium
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The machine may ship its own Node.js/npm outside Debian's packages; they serve as well.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "Debian packages: all present"
fi

# Go builds the embedded FerretDB launcher. FerretDB v1.24 needs Go >= 1.24; with an older Go the
# toolchain directive in tools/ferretdb/go.mod makes `go` fetch the right toolchain from the module proxy.
export PATH="/usr/local/go/bin:$PATH"
if ! command -v go >/dev/null; then
  say "installing Go from Debian (it fetches the newer toolchain it needs through the module proxy)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
fi
say "$(go version)"
(cd tools/ferretdb && GOFLAGS=-mod=readonly go mod download)

# npm: the pinned FHIR definitions and HL7's FHIRPath engine (the test oracle).
if [ ! -f tools/npm/node_modules/.package-lock.json ] ||
   ! cmp -s tools/npm/package-lock.json tools/npm/node_modules/.fhirshift-lock; then
  say "installing npm packages (tools/npm)"
  (cd tools/npm && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.fhirshift-lock)
else
  say "npm packages: present"
fi

BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  say "configuring $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_EXTRA_ARGS:-}
fi
say "building (this takes a few minutes the first time)"
cmake --build "$BUILD_DIR" -j "$(nproc)"
say "ready: $BUILD_DIR/apps/fhirshift/fhirshift"
