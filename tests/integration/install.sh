#!/bin/bash
# make install DESTDIR=...: the daemon, its tools and plugins, the SDK, the
# man pages and the operator kit (Grafana, Prometheus, Kubernetes, nginx,
# systemd) land where the configured directories say; the installed daemon
# runs from that tree with the installed configuration and answers its
# probes.
. "$top_srcdir/tests/integration/lib.sh"

# A configured directory, as make expands it.
dir_of() {
    # (without the flags of a make check that runs this test: -w among them)
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$top_builddir" \
        -f Makefile -f - "print-$1" <<'MK' | tail -n 1
print-%:
	@echo '$($*)'
MK
}
inst="$WORK/inst"
if make -s -C "$top_builddir" install DESTDIR="$inst" >"$WORK/install.log" 2>&1; then
    ok "make install DESTDIR=... succeeds"
else
    not_ok "make install DESTDIR=... succeeds" "$(tail -5 "$WORK/install.log")"
    done_testing
fi
bindir=$(dir_of bindir)
sysconfdir=$(dir_of sysconfdir)
pkgdatadir=$(dir_of pkgdatadir)
pkglibdir=$(dir_of pkglibdir)
includedir=$(dir_of includedir)
mandir=$(dir_of mandir)
diag "bindir=$bindir sysconfdir=$sysconfdir pkgdatadir=$pkgdatadir pkglibdir=$pkglibdir mandir=$mandir"
check "the configured directories are known" test -n "$bindir" -a -n "$pkgdatadir" -a -n "$mandir"

for b in voxray voxray-client voxray-loadtest voxray-plugin-check; do
    check "$bindir/$b is installed and executable" [ -x "$inst$bindir/$b" ]
done

# Every plugin the build made, as a .so without its libtool .la.
missing=""
for so in "$top_builddir"/plugins/.built/*.so; do
    [ -f "$inst$pkglibdir/$(basename "$so")" ] || missing="$missing $(basename "$so")"
done
check "every built plugin is installed in $pkglibdir${missing:+ (missing:$missing)}" [ -z "$missing" ]
check "... without libtool .la files" bash -c '! ls "$1"/*.la >/dev/null 2>&1' _ "$inst$pkglibdir"

check "the SDK header is installed" cmp -s "$top_srcdir/sdk/voxray/plugin.h" "$inst$includedir/voxray/plugin.h"
check "... with the first-plugin guide" cmp -s "$top_srcdir/sdk/README.md" "$inst$includedir/voxray/README.md"

# Man pages: installed in their sections and rendered without a warning.
for m in voxray.8 voxray.ini.5 voxray-client.1; do
    f="$inst$mandir/man${m##*.}/$m"
    if [ -f "$f" ]; then
        warn=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$f" 2>&1 >/dev/null)
        lines=$(MANWIDTH=80 LC_ALL=C.UTF-8 man -l "$f" 2>/dev/null | wc -l)
        check "man -l renders the installed $m ($lines lines) without warnings" test -z "$warn" -a "$lines" -gt 20
        [ -n "$warn" ] && diag "$warn"
    else
        not_ok "$m is installed in $mandir/man${m##*.}"
    fi
done

# The operator kit, byte for byte as shipped.
kit_ok=1
for f in $(cd "$top_srcdir/conf" && find grafana prometheus k8s nginx -type f | sort); do
    if ! cmp -s "$top_srcdir/conf/$f" "$inst$pkgdatadir/$f"; then
        kit_ok=0
        diag "not installed as shipped: $pkgdatadir/$f"
    fi
done
check "conf/grafana, conf/prometheus, conf/k8s and conf/nginx are installed under $pkgdatadir" [ $kit_ok = 1 ]
check "the default configuration is installed in $sysconfdir/voxray" \
    cmp -s "$top_srcdir/conf/voxray.ini" "$inst$sysconfdir/voxray/voxray.ini"

unit="$inst$pkgdatadir/systemd/voxray.service"
check "the systemd unit is installed" [ -f "$unit" ]
check "... with the installed paths in ExecStart" \
    grep -qx "ExecStart=$bindir/voxray -c $sysconfdir/voxray/voxray.ini" "$unit"
check "... and in ExecStartPre" \
    grep -qx "ExecStartPre=$bindir/voxray --check-config -c $sysconfdir/voxray/voxray.ini" "$unit"
check "... and no placeholder left" bash -c '! grep -q "@[a-z]*@" "$1"' _ "$unit"

# The installed daemon from the DESTDIR tree, with the installed
# configuration: only the port and the folders it would find under the
# real prefix are changed.
VX_PORT=$(free_port)
conf="$WORK/voxray.ini"
sed -e "s|^listen = .*|listen = 127.0.0.1:$VX_PORT|" \
    -e "s|^; plugin_dir = .*|plugin_dir = $inst$pkglibdir|" \
    -e "s|^; web_root = .*|web_root = $inst$pkgdatadir/web|" \
    "$inst$sysconfdir/voxray/voxray.ini" >"$conf"
out=$("$inst$bindir/voxray" --check-config -c "$conf" 2>&1)
check "the installed voxray accepts the installed configuration (--check-config)" [ $? -eq 0 ]
[ -n "$out" ] && diag "$out"
"$inst$bindir/voxray" -c "$conf" >"$WORK/v.log" 2>&1 &
VX_PID=$!
track "$VX_PID"
check "the installed voxray answers /health" wait_status "http://127.0.0.1:$VX_PORT/health" 200 10
check "... and /ready once its plugins are loaded" wait_status "http://127.0.0.1:$VX_PORT/ready" 200 30
check "... and serves the installed demo page" [ "$(http_code "http://127.0.0.1:$VX_PORT/")" = 200 ]
stop_pid "$VX_PID"
check "it stops cleanly on SIGTERM" [ $? -eq 0 ]
grep -qi "error" "$WORK/v.log" && diag "$(grep -i error "$WORK/v.log" | head -5)"
done_testing
