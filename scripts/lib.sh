# scripts/lib.sh - shared by scripts/run, scripts/test and scripts/bench.
# Sourced, not run. Knows which Debian packages shoal needs and builds it.

SHOAL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Build and run-time libraries.
BUILD_PACKAGES="cmake make gcc pkg-config libluajit2-5.1-dev libcurl4-openssl-dev
  libmicrohttpd-dev lua-cjson-dev libprotobuf-c-dev protobuf-c-compiler libgoogle-perftools-dev zlib1g-dev
  libunwind-dev libdw-dev libedit-dev libidn2-dev libxml2-dev libsqlite3-dev libhiredis-dev"
# What the tests drive: real servers and tools, no fakes.
TEST_PACKAGES="nginx-light curl jq luajit2 procps python3 python3-yaml openssl prometheus golang-go"
# test_manpage renders the generated shoal.1 with man and groff.
TEST_PACKAGES="$TEST_PACKAGES man-db groff-base"
# test_html_lxml checks shoal.html's selectors against lxml + cssselect.
TEST_PACKAGES="$TEST_PACKAGES python3-lxml python3-cssselect"
# the shared queue's tests, and test_compose's two replicas, run a real redis-server.
TEST_PACKAGES="$TEST_PACKAGES redis-server"
# What the benchmark compares against (its crawl section runs Debian's Scrapy
# with /usr/bin/python3; Crawlee comes from npm, see npm_ci).
BENCH_PACKAGES="wrk nginx-light nodejs python3-scrapy redis-server"

# need_packages PKG... : installs what is missing (as root) or says how.
need_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "shoal: installing ${missing[*]}" >&2
    if [ ! -f /var/lib/apt/lists/.shoal-updated ] || [ -n "$(find /var/lib/apt/lists -maxdepth 0 -mmin +1440)" ]; then
      apt-get update -qq >&2 && touch /var/lib/apt/lists/.shoal-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || { echo "shoal: apt-get install failed for: ${missing[*]}" >&2; return 1; }
  else
    echo "shoal: missing Debian packages. Run, as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

# build DIR [cmake args...] : configures once, builds with every core.
build() {
  local dir=$1; shift
  cmake -S "$SHOAL_ROOT" -B "$dir" "$@" >/dev/null || return 1
  cmake --build "$dir" -j"$(nproc)" -- --no-print-directory >/dev/null || {
    # show the errors on failure, quietly otherwise
    cmake --build "$dir" -j1 2>&1 | grep -E "error|warning" | head -40 >&2
    return 1
  }
}

# npm_ci DIR : installs DIR's Node packages from its package-lock.json when
# node_modules is missing or older than the lockfile; Node and npm come from
# Debian when absent. Returns 1, having said why, when they cannot be had.
npm_ci() {
  local dir=$1
  if [ -f "$dir/node_modules/.package-lock.json" ] &&
    [ ! "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    return 0
  fi
  command -v node >/dev/null || need_packages nodejs || return 1
  command -v npm >/dev/null || need_packages npm || return 1
  echo "shoal: installing the Node packages of $dir (npm ci)" >&2
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2 || {
    echo "shoal: npm ci failed in $dir (it needs the npm registry)" >&2
    return 1
  }
}

# npm_deps : the Node packages of the tests (spec/integration/otlp: OTLP
# traces and logs; spec/integration/pyroscope: Pyroscope /ingest;
# spec/integration/compose: the Compose schema and its validator).
npm_deps() {
  local dir
  for dir in "$SHOAL_ROOT/spec/integration/otlp" "$SHOAL_ROOT/spec/integration/pyroscope" \
    "$SHOAL_ROOT/spec/integration/compose"; do
    npm_ci "$dir" || return 1
  done
}
