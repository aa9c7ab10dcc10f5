#!/bin/bash
# The Containerfile builds an image on a Debian 12 base made by debootstrap
# (no image registry is needed), and the container runs as a non-root user,
# answers its probes from inside and from the host, and drains on SIGTERM
# (exit 0).
#
# Needs root, podman and debootstrap (Debian packages); skipped with the
# reason when one is missing or when podman cannot run a container on this
# machine. VOXRAY_TEST_CONTAINER=0 skips it on purpose.
#
# Time: the first run debootstraps the base (a few minutes; the rootfs
# tarball is kept in tests/.cache/, git-ignored, and the imported image in
# podman's storage), and every run compiles voxray inside the build stage
# (the package layers are cached by podman between runs).
#
# Where the OCI runtime cannot manage cgroups (crun refuses a cgroup v1
# host with controllers on the v2 hierarchy, "hybrid mode"), the RUN steps
# of the build use chroot isolation, and the container is run by runc when
# crun cannot run it. Limits are set explicitly (nofile, nproc) within the
# caller's own hard limits: podman's defaults may exceed them in a
# sandbox.
. "$top_srcdir/tests/integration/lib.sh"

skip_all() { echo "1..0 # SKIP $1"; exit 0; }
[ "${VOXRAY_TEST_CONTAINER:-1}" = 0 ] && skip_all "VOXRAY_TEST_CONTAINER=0"
# The image is built from the sources, whatever this build is: once is
# enough, in the plain build rather than the sanitizer one.
grep -q '^SAN_CFLAGS = -fsanitize' "$top_builddir/Makefile" 2>/dev/null &&
    skip_all "sanitizer build: the image does not use it (the plain build's run covers the Containerfile)"
command -v podman >/dev/null || skip_all "podman is not installed (quickstart.sh TEST_PACKAGES)"
command -v debootstrap >/dev/null || skip_all "debootstrap is not installed (quickstart.sh TEST_PACKAGES)"
[ "$(id -u)" = 0 ] || skip_all "debootstrap and rootful podman need root"

TAG="voxray-test-$$"
BASE="localhost/voxray-debian12-base:test"
CACHE="$top_builddir/tests/.cache"
ROOTFS_TAR="$CACHE/debian12-minbase.tar"
cleanup_images() {
    podman rm -f "$TAG" >/dev/null 2>&1
    podman rmi -f "localhost/$TAG:latest" >/dev/null 2>&1
}
trap 'cleanup_images; _cleanup' EXIT

# The base image: a minimal Debian 12 rootfs, debootstrapped once, its
# tarball cached, imported once and kept.
if ! podman image exists "$BASE"; then
    if [ ! -s "$ROOTFS_TAR" ]; then
        mkdir -p "$CACHE"
        timeout 1200 debootstrap --variant=minbase bookworm "$WORK/rootfs" \
            "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 ||
            { not_ok "debootstrap makes a Debian 12 rootfs" "$(tail -5 "$WORK/debootstrap.log")"; done_testing; }
        tar -C "$WORK/rootfs" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    fi
    podman import "$ROOTFS_TAR" "$BASE" >/dev/null 2>"$WORK/import.err"
fi
check "a Debian 12 base image is available" podman image exists "$BASE"

# Explicit limits, within ours.
hn=$(ulimit -Hn); [ "$hn" = unlimited ] || [ "$hn" -gt 65536 ] && hn=65536
hu=$(ulimit -Hu); [ "$hu" = unlimited ] || [ "$hu" -gt 4096 ] && hu=4096
RUN_OPTS=(--ulimit "nofile=$hn:$hn" --ulimit "nproc=$hu:$hu")
# The runtime: podman's default, else runc.
if ! timeout 120 podman run --rm "${RUN_OPTS[@]}" "$BASE" true >/dev/null 2>"$WORK/probe.err"; then
    if command -v runc >/dev/null &&
        timeout 120 podman --runtime runc run --rm "${RUN_OPTS[@]}" "$BASE" true >/dev/null 2>>"$WORK/probe.err"; then
        PODMAN=(podman --runtime runc)
        diag "the default OCI runtime cannot run a container here ($(head -1 "$WORK/probe.err")); using runc"
    else
        skip_all "podman cannot run a container on this machine: $(tr '\n' ' ' <"$WORK/probe.err" | cut -c1-300)"
    fi
else
    PODMAN=(podman)
fi

# The build context: the files git knows, as they are in the work tree.
mkdir -p "$WORK/ctx"
(cd "$top_srcdir" && git ls-files -z | xargs -0 tar -c 2>/dev/null) | tar -C "$WORK/ctx" -x
start=$(date +%s)
timeout 2400 podman build --isolation chroot --network host --format docker --build-arg BASE="$BASE" \
    -t "$TAG" -f "$WORK/ctx/Containerfile" "$WORK/ctx" >"$WORK/build.log" 2>&1
rc=$?
check "podman builds the Containerfile ($(($(date +%s) - start)) s)" [ $rc -eq 0 ]
[ $rc -eq 0 ] || { diag "$(tail -20 "$WORK/build.log")"; done_testing; }

PORT=$(free_port)
"${PODMAN[@]}" run -d --name "$TAG" "${RUN_OPTS[@]}" -p "127.0.0.1:$PORT:8080" "$TAG" >/dev/null 2>"$WORK/run.err"
check "the container starts" [ $? -eq 0 ] || diag "$(cat "$WORK/run.err")"
check "/health answers 200 from inside the container" bash -c \
    "for i in \$(seq 1 150); do ${PODMAN[*]} exec '$TAG' curl -fsS -o /dev/null http://127.0.0.1:8080/health && exit 0; sleep 0.2; done; exit 1"
check "/ready answers 200 from inside the container" bash -c \
    "for i in \$(seq 1 150); do ${PODMAN[*]} exec '$TAG' curl -fsS -o /dev/null http://127.0.0.1:8080/ready && exit 0; sleep 0.2; done; exit 1"
check "the image's HEALTHCHECK passes" quiet "${PODMAN[@]}" healthcheck run "$TAG"
check "/health answers 200 from the host through the published port" wait_status "http://127.0.0.1:$PORT/health" 200 10
check "/ready answers 200 from the host" [ "$(http_code "http://127.0.0.1:$PORT/ready")" = 200 ]
check "/metrics answers from the host" [ "$(http_code "http://127.0.0.1:$PORT/metrics")" = 200 ]
check "voxray runs as uid 10001, not root" [ "$("${PODMAN[@]}" exec "$TAG" id -u)" = 10001 ]
check "the offline default config is in /etc/voxray" quiet "${PODMAN[@]}" exec "$TAG" test -s /etc/voxray/voxray.ini
"${PODMAN[@]}" stop -t 30 "$TAG" >/dev/null
check "SIGTERM drains and voxray exits 0" [ "$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$TAG")" = 0 ]
done_testing
