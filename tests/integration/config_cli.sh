#!/bin/bash
# voxray --check-config: every mistake in the file or the environment is one
# line naming the place, the key, the value and what is allowed; exit 1.
. "$top_srcdir/tests/integration/lib.sh"

# check_bad DESCRIPTION EXPECTED_REGEX INI_TEXT [env...]
check_bad() {
    local d=$1 re=$2 ini=$3; shift 3
    printf '%s\n' "$ini" >"$WORK/bad.ini"
    env "$@" "$VOXRAY" --check-config -c "$WORK/bad.ini" >"$WORK/out" 2>&1
    local rc=$?
    local lines; lines=$(wc -l <"$WORK/out")
    if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -Eq "$re" "$WORK/out"; then
        ok "$d"
    else
        not_ok "$d" "exit $rc, $lines line(s), wanted /$re/:" "$(cat "$WORK/out")"
    fi
}

P="plugin_dir = $PLUGIN_DIR"

printf '[server]\n%s\n' "$P" >"$WORK/good.ini"
"$VOXRAY" --check-config -c "$WORK/good.ini" >"$WORK/out" 2>&1
check "a valid file passes --check-config with exit 0" [ $? -eq 0 ]
check "and says it is valid" grep -q "configuration $WORK/good.ini is valid" "$WORK/out"

VOXRAY_SERVER_PLUGIN_DIR="$PLUGIN_DIR" "$VOXRAY" --check-config -c "$top_srcdir/conf/voxray.ini" >"$WORK/out" 2>&1
check "the shipped conf/voxray.ini is valid" [ $? -eq 0 ]
# Every core key of [recording] and [auth] is documented there with its
# default (the schema in host/base/cfg.c is the list).
undocumented=""
for sec in recording auth; do
    for key in $(sed -n "s/^ *{\"$sec\", {\"\([a-z_]*\)\".*/\1/p" "$top_srcdir/host/base/cfg.c"); do
        awk -v s="[$sec]" -v k="$key" '$0 == s { in_s = 1; next } /^\[/ { in_s = 0 } in_s && $1 == k && $2 == "=" { f = 1 } END { exit !f }' \
            "$top_srcdir/conf/voxray.ini" || undocumented="$undocumented [$sec] $key"
    done
done
check "conf/voxray.ini documents every [recording] and [auth] key" [ -z "$undocumented" ]
[ -n "$undocumented" ] && diag "undocumented:$undocumented"

check_bad "unknown key names file, line, key and the allowed keys" \
  "ERROR .*bad.ini:3: \[server\] max_session: unknown key 'max_session' in \[server\] \(allowed: listen, plugin_dir, max_sessions" \
  "[server]
$P
max_session = 10"
check_bad "bad integer names value and range" \
  'bad.ini:3: \[server\] max_sessions = "lots": not an integer \(allowed: integer 1..1000000\)' \
  "[server]
$P
max_sessions = lots"
check_bad "out-of-range integer is refused" 'max_sessions = "0": out of range \(allowed: integer 1..1000000\)' \
  "[server]
$P
max_sessions = 0"
check_bad "bad enum lists the choices" 'bad.ini:2: \[log\] level = "loud": not an allowed value \(allowed: one of debug\|info\|warn\|error\)' \
  "[log]
level = loud"
check_bad "bad boolean is refused" '\[log\] json = "maybe": not a boolean' \
  "[log]
json = maybe"
check_bad "bad duration is refused" '\[server\] header_timeout = "soon": not a duration' \
  "[server]
header_timeout = soon"
check_bad "bad address is refused" '\[server\] listen = "8080": not an address' \
  "[server]
listen = 8080"
check_bad "unknown section is refused" "bad.ini:1: unknown section \[serverr\] \(allowed: server, log" \
  "[serverr]
listen = :1"
check_bad "an empty misspelled section is refused too" "bad.ini:3: unknown section \[sever\]" \
  "[log]
level = info
[sever]"
check_bad "a key set twice is refused" 'bad.ini:3: \[log\] level is set twice \(first at line 2\)' \
  "[log]
level = info
level = debug"
check_bad "a syntax error names the line" 'bad.ini:4: syntax error' \
  "[log]
; comment

this line has no equals sign"
check_bad "a key before any section is refused" "bad.ini:1: key 'level' is outside any \[section\]" \
  "level = info"
check_bad "bad CIDR in the allowlist is refused" 'allow = "10.0.0.0/33": .*prefix length out of range' \
  "[metrics]
allow = 10.0.0.0/33"
check_bad "bad histogram buckets are refused" 'buckets.http_request_duration_seconds = "1, 0.5"' \
  "[metrics]
buckets.http_request_duration_seconds = 1, 0.5"
check_bad "buckets for an unknown family are refused" "no histogram family named 'nope_seconds'" \
  "[metrics]
buckets.nope_seconds = 1"
check_bad "the environment is validated too and named" 'environment VOXRAY_SERVER_MAX_SESSIONS = "-5": out of range' \
  "[server]
$P" VOXRAY_SERVER_MAX_SESSIONS=-5
check_bad "a bad VOXRAY_LOG_LEVEL is named" 'environment VOXRAY_LOG_LEVEL = "loud"' \
  "[server]
$P" VOXRAY_LOG_LEVEL=loud
"$VOXRAY" --check-config -c "$WORK/missing.ini" >"$WORK/out" 2>&1
rc=$?
check "a missing config file exits 1 with one line naming it" bash -c "[ $rc -eq 1 ] && [ \$(wc -l <'$WORK/out') -eq 1 ] && grep -q 'missing.ini: cannot open: No such file or directory' '$WORK/out'"

# Long lines: inih splits lines over 199 bytes unless told otherwise.
long=""
for i in $(seq 1 40); do long="${long}10.$i.0.0/16, "; done
long="${long}127.0.0.1"
printf '[server]\n%s\n[metrics]\nallow = %s\n[log]\nlevel = nonsense\n' "$P" "$long" >"$WORK/long.ini"
"$VOXRAY" --check-config -c "$WORK/long.ini" >"$WORK/out" 2>&1
check "a ${#long}-byte line is read whole and later line numbers stay right" grep -q 'long.ini:6: \[log\] level = "nonsense"' "$WORK/out"
printf '[server]\n%s\n[metrics]\nallow = %s\n' "$P" "$long" >"$WORK/long2.ini"
check "a long allowlist is valid" bash -c "\"$VOXRAY\" --check-config -c \"$WORK/long2.ini\" >/dev/null"

# The environment wins over the file.
printf '[server]\n%s\nmax_sessions = 5\n' "$P" >"$WORK/env.ini"
VOXRAY_SERVER_MAX_SESSIONS=abc "$VOXRAY" --check-config -c "$WORK/env.ini" >"$WORK/out" 2>&1
check "an environment value replaces the file's" grep -q 'VOXRAY_SERVER_MAX_SESSIONS = "abc"' "$WORK/out"

# Plugin instance sections are validated against the plugin's schema.
check_bad "unknown key in a plugin section names the plugin and its keys" \
  "bad.ini:4: \[plugin.redis\] adress: unknown key 'adress' for plugin store_redis \(allowed: plugin, address" \
  "[server]
$P
[plugin.redis]
adress = 127.0.0.1:6379"
check_bad "bad value in a plugin section is refused" \
  'bad.ini:4: \[plugin.redis\] db = "99": out of range \(allowed: integer 0..15\)' \
  "[server]
$P
[plugin.redis]
db = 99"
check_bad "a secret value is never echoed in an error" \
  'bad.ini:4: \[plugin.redis\] password = "\*\*\*": too long' \
  "[server]
$P
[plugin.redis]
password = $(head -c 3000 /dev/zero | tr '\0' 'x')"
check_bad "plugin keys are overridable from the environment" \
  'environment VOXRAY_PLUGIN_REDIS_DB = "-1": out of range' \
  "[server]
$P
[plugin.redis]
db = 1" VOXRAY_PLUGIN_REDIS_DB=-1
check_bad "a store instance whose plugin is missing is one line" \
  "plugin for instance 'nosuch' not found in .* \(looked for store_nosuch.so, nosuch.so\); check \[server\] plugin_dir" \
  "[server]
$P
[session]
store = nosuch"
check_bad "an instance used in the wrong role is refused" \
  "instance 'memory' \(plugin store_memory, .*\) is used as stt but offers only store" \
  "[server]
$P
[stt]
providers = memory"
done_testing
