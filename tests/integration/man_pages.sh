#!/bin/bash
# The man pages render without a groff warning, document every option of
# voxray and voxray-client, and voxray.ini(5) names every key the
# configuration checker accepts.
. "$top_srcdir/tests/integration/lib.sh"

M="$top_srcdir/man"
for p in voxray.8 voxray.ini.5 voxray-client.1; do
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$M/$p" 2>&1 >/dev/null)
    check "$p renders without warnings" [ -z "$w" ]
    [ -n "$w" ] && diag "$w"
done
render() { LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$1" 2>/dev/null | col -b; }
render "$M/voxray.8" >"$WORK/voxray.txt"
render "$M/voxray.ini.5" >"$WORK/ini.txt"
render "$M/voxray-client.1" >"$WORK/client.txt"

# Options: every long option the programs' --help prints is in the page.
missing=""
for o in $("$VOXRAY" --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qF -- "$o" "$WORK/voxray.txt" || missing="$missing $o"
done
check "voxray(8) documents every option of voxray --help" [ -z "$missing" ]
[ -n "$missing" ] && diag "missing:$missing"
missing=""
for o in $("$top_builddir/tools/voxray-client" --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
    grep -qF -- "$o" "$WORK/client.txt" || missing="$missing $o"
done
check "voxray-client(1) documents every option of voxray-client --help" [ -z "$missing" ]
[ -n "$missing" ] && diag "missing:$missing"

# Keys: the checker's own schema (host/base/cfg.c), section by section.
grep -oE '\{"[a-z]+", \{"[a-z_.]+", VX_CFG_' "$top_srcdir/host/base/cfg.c" \
    | sed -E 's/\{"([a-z]+)", \{"([a-z_.]+)".*/\1 \2/' >"$WORK/keys"
n=$(wc -l <"$WORK/keys")
check "the schema lists the core keys ($n)" [ "$n" -gt 50 ]
missing=""
while read -r sec key; do
    # the key must appear under its own [section] heading
    awk -v s="[$sec]" -v k="$key" '
        /^   \[[a-z.A-Z]+\]/ { in_s = ($1 == s) }
        in_s && $1 == k { found = 1 }
        END { exit !found }' "$WORK/ini.txt" || missing="$missing [$sec]$key"
done <"$WORK/keys"
check "voxray.ini(5) documents every key the configuration accepts, in its section" [ -z "$missing" ]
[ -n "$missing" ] && diag "missing:$missing"
check "voxray.ini(5) documents [metrics] buckets.FAMILY" grep -q 'buckets.FAMILY' "$WORK/ini.txt"
check "voxray.ini(5) documents [plugin.NAME]" grep -q 'plugin.NAME' "$WORK/ini.txt"

# A key added to the checker but not to the page is caught: drop one key.
sed '/^       drain_timeout /d' "$WORK/ini.txt" >"$WORK/ini-less.txt"
check "... and the check notices a key missing from the page" bash -c \
    "! awk '/^   \\[server\\]/{s=1} /^   \\[log\\]/{s=0} s && \$1==\"drain_timeout\"{f=1} END{exit !f}' '$WORK/ini-less.txt'"
done_testing
