#!/bin/bash
# The Containerfile builds an image on a Debian 12 base made by debootstrap
# (no image registry is needed), and the container runs as a non-root user,
# answers its probes from inside and drains on SIGTERM (exit 0).
# Building takes many minutes (debootstrap, packages, a full compile), so it
# runs only with VOXRAY_TEST_CONTAINER=1; it needs podman and debootstrap
# (Debian packages) and root.
. "$top_srcdir/tests/integration/lib.sh"

skip_all() { echo "1..0 # SKIP $1"; exit 0; }
[ "${VOXRAY_TEST_CONTAINER:-}" = 1 ] || skip_all "set VOXRAY_TEST_CONTAINER=1 to build the image (slow)"
command -v podman >/dev/null || skip_all "podman is not installed"
command -v debootstrap >/dev/null || skip_all "debootstrap is not installed"
[ "$(id -u)" = 0 ] || skip_all "debootstrap needs root"

TAG="voxray-test-$$"
BASE="localhost/voxray-debian12-base:test"
cleanup_images() {
    podman rm -f "$TAG" >/dev/null 2>&1
    podman rmi -f "localhost/$TAG:latest" >/dev/null 2>&1
}
trap 'cleanup_images; _cleanup' EXIT

# The base image: a minimal Debian 12 rootfs, imported once and kept.
if ! podman image exists "$BASE"; then
    debootstrap --variant=minbase bookworm "$WORK/rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
        >"$WORK/debootstrap.log" 2>&1 || { not_ok "debootstrap makes a Debian 12 rootfs" "$(tail -5 "$WORK/debootstrap.log")"; done_testing; }
    tar -C "$WORK/rootfs" -c . | podman import - "$BASE" >/dev/null
fi
check "a Debian 12 base image is available" podman image exists "$BASE"

# The build context: the files git knows, as they are in the work tree.
mkdir -p "$WORK/ctx"
(cd "$top_srcdir" && git ls-files -z | xargs -0 tar -c 2>/dev/null) | tar -C "$WORK/ctx" -x
podman build --network host --build-arg BASE="$BASE" -t "$TAG" -f "$WORK/ctx/Containerfile" "$WORK/ctx" \
    >"$WORK/build.log" 2>&1
check "podman builds the Containerfile" [ $? -eq 0 ] || diag "$(tail -20 "$WORK/build.log")"

PORT=$(free_port)
podman run -d --name "$TAG" -p "127.0.0.1:$PORT:8080" "$TAG" >/dev/null 2>"$WORK/run.err"
check "the container starts" [ $? -eq 0 ]
check "/health answers 200 from inside the container" bash -c \
    "for i in \$(seq 1 100); do podman exec '$TAG' curl -fsS -o /dev/null http://127.0.0.1:8080/health && exit 0; sleep 0.2; done; exit 1"
check "/ready answers 200 from inside the container" quiet podman exec "$TAG" curl -fsS http://127.0.0.1:8080/ready
check "/metrics answers from the host through the published port" \
    [ "$(http_code "http://127.0.0.1:$PORT/metrics")" = 200 ]
check "voxray runs as uid 10001, not root" [ "$(podman exec "$TAG" id -u)" = 10001 ]
check "the offline default config is in /etc/voxray" quiet podman exec "$TAG" test -s /etc/voxray/voxray.ini
podman stop -t 30 "$TAG" >/dev/null
check "SIGTERM drains and voxray exits 0" [ "$(podman inspect -f '{{.State.ExitCode}}' "$TAG")" = 0 ]
done_testing
