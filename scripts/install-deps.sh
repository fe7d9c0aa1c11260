#!/usr/bin/env bash
# Installs everything the build and the tests need: Debian packages with apt-get, and the npm
# packages of the interop tests into .deps/npm (ignored by git). Idempotent: when everything is
# present it only checks, and it runs `apt-get update` only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ cmake ninja-build make           # toolchain
  ccache                               # compiler cache (CMake's compiler launcher when present)
  libgtest-dev libgmock-dev            # unit tests
  libbenchmark-dev                     # micro-benchmarks
  libsimdjson-dev                      # JSON codec (simdjson 3.0.1)
  clang-format                         # `make format` and the format check in `make test`
  libmimalloc-dev                      # allocator of the sabot programs and benchmarks
  clang libclang-rt-14-dev             # the fuzz preset: clang 14, libFuzzer and its sanitizers
  libgdal32                            # C Data Interface interop test (GDAL's Arrow exporter)
  librocksdb-dev                       # RocksDB state backend (7.8)
  librdkafka-dev                       # Kafka connector and the dev broker (librdkafka 2.0.2 mock cluster)
  libmsgpack-cxx-dev                   # MessagePack codec
  kcat                                 # Kafka interop test: an independent client against `sabot dev broker`
  libcpp-httplib-dev                   # metrics endpoint and dashboard HTTP server
  prometheus                           # the metrics test scrapes a running job with a real Prometheus
  chromium                             # the dashboard test loads the page in headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js runs the interop tests. A machine may already have a Node.js that bundles npm (not from
# Debian's packages, and conflicting with Debian's npm): check the commands, not the packages.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages for the interop tests, pinned.
APACHE_ARROW_VERSION=21.2.0
npm_dir=.deps/npm
if [[ ! -f "$npm_dir/node_modules/apache-arrow/package.json" ]] ||
   ! grep -q "\"version\": \"$APACHE_ARROW_VERSION\"" "$npm_dir/node_modules/apache-arrow/package.json"; then
  echo "install-deps: installing apache-arrow@$APACHE_ARROW_VERSION into $npm_dir"
  mkdir -p "$npm_dir"
  [[ -f "$npm_dir/package.json" ]] || echo '{"name":"sabot-interop-deps","private":true}' > "$npm_dir/package.json"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error "apache-arrow@$APACHE_ARROW_VERSION"
fi
