#!/bin/bash
# Plugins seen from the command line: --list-plugins, --plugin-help, and the
# loader's refusals at start-up, each one line with a non-zero exit.
. "$top_srcdir/tests/integration/lib.sh"

DIRS="$PLUGIN_DIR:$TEST_PLUGIN_DIR"

"$VOXRAY" --list-plugins --plugin-dir "$DIRS" >"$WORK/list" 2>&1
rc=$?
check "--list-plugins exits 2 when it lists a file as REFUSED" [ $rc -eq 2 ]
"$VOXRAY" --list-plugins --plugin-dir "$PLUGIN_DIR" >"$WORK/list0" 2>&1
rc=$?
check "--list-plugins exits 0 when every file loads" [ $rc -eq 0 ]
[ $rc -eq 0 ] || diag "$(grep REFUSED "$WORK/list0")"
"$VOXRAY" --list-plugins --plugin-dir "$WORK/no-such-dir" >"$WORK/list1" 2>&1
check "--list-plugins exits 1 when no plugin directory can be read" [ $? -eq 1 ]
check "--list-plugins quotes the reason an entry logged when it refused to load" \
    grep -Eq '^entry_logs +REFUSED +plugin .*entry_logs.so: vx_plugin_entry returned NULL: the plugin refused to load: entry_logs: needs the frobnicator device, none found' "$WORK/list"
check "--list-plugins shows store_memory with kind, version and ABI" grep -Eq '^store_memory +store +[0-9.]+ +ABI 1\.[0-9]+ ' "$WORK/list"
check "--list-plugins shows store_redis" grep -q '^store_redis ' "$WORK/list"
check "--list-plugins shows a multi-kind plugin's kinds" grep -Eq '^multi_kind +stt,llm,tts ' "$WORK/list"
check "--list-plugins accepts an older minor" grep -Eq '^old_minor +tts +[0-9.]+ +ABI 1\.0 ' "$WORK/list"
check "--list-plugins marks a refused plugin with the reason" grep -Eq '^bad_magic +REFUSED +plugin .*bad_magic.so: not a voxray plugin' "$WORK/list"

# The config file supplies plugin_dir when --plugin-dir is not given.
printf '[server]\nplugin_dir = %s\n' "$PLUGIN_DIR" >"$WORK/p.ini"
"$VOXRAY" --list-plugins -c "$WORK/p.ini" >"$WORK/list2" 2>&1
check "--list-plugins reads plugin_dir from the config" grep -q '^store_redis ' "$WORK/list2"

"$VOXRAY" --plugin-help multi_kind --plugin-dir "$DIRS" >"$WORK/help" 2>&1
check "--plugin-help exits 0" [ $? -eq 0 ]
check "--plugin-help names the plugin, version and kinds" grep -q '^multi_kind 2.3.4 (stt,llm,tts)' "$WORK/help"
check "--plugin-help prints every key with type and default" grep -Eq '^  max_tokens +integer +default: 256' "$WORK/help"
check "--plugin-help prints the allowed range" grep -q 'allowed: integer 1..4096' "$WORK/help"
check "--plugin-help marks required and secret keys" grep -Eq '^  api_key +string +default: \(none\), required, secret' "$WORK/help"
check "--plugin-help prints enum choices" grep -q 'allowed: one of alice|bob' "$WORK/help"
"$VOXRAY" --plugin-help redis --plugin-dir "$DIRS" >"$WORK/help2" 2>&1
check "--plugin-help accepts the short name (redis -> store_redis)" grep -q '^store_redis ' "$WORK/help2"
"$VOXRAY" --plugin-help nosuch --plugin-dir "$DIRS" >"$WORK/help3" 2>&1
check "--plugin-help of a missing plugin exits 1" [ $? -eq 1 ]

# start_refused DESCRIPTION REGEX INI_EXTRA: voxray must refuse to start.
start_refused() {
    local d=$1 re=$2
    VX_PORT=$(free_port)
    printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n%s\n' "$VX_PORT" "$DIRS" "$3" >"$WORK/s.ini"
    timeout 10 "$VOXRAY" -c "$WORK/s.ini" >"$WORK/s.log" 2>&1
    local rc=$?
    local n; n=$(grep -c ' ERROR ' "$WORK/s.log")
    if [ $rc -eq 1 ] && [ "$n" -eq 1 ] && grep -Eq "$re" "$WORK/s.log"; then ok "$d"
    else not_ok "$d" "exit $rc, $n error line(s), wanted /$re/:" "$(cat "$WORK/s.log")"; fi
}
start_refused "a plugin with a wrong magic is refused at start" \
    'ERROR plugin .*/bad_magic.so: not a voxray plugin \(bad magic 0x12345678, expected 0x31505856\)' \
    $'[session]\nstore = bad_magic'
start_refused "a plugin of another ABI major is refused, naming versions and fix" \
    'ERROR plugin .*/bad_major.so: built for plugin ABI 2.0, this voxray speaks 1\.[0-9]+; rebuild it' \
    $'[session]\nstore = bad_major'
start_refused "a plugin of a newer minor is refused" \
    'ERROR plugin .*/newer_minor.so: built for plugin ABI 1.7, newer than this voxray.s 1\.[0-9]+' \
    $'[session]\nstore = newer_minor'
start_refused "a too-small descriptor is refused" \
    'ERROR plugin .*/small_struct.so: descriptor is 16 bytes, ABI 1.0 needs at least' \
    $'[session]\nstore = small_struct'
start_refused "a plugin missing a mandatory method is refused" \
    "ERROR plugin .*/missing_method.so: stt vtable lacks mandatory method 'feed'" \
    $'[stt]\nproviders = missing_method'
start_refused "a plugin whose init fails stops start-up with its reason" \
    "ERROR plugin .*/init_fails.so \(instance 'init_fails'\): init failed: api key rejected \(auth\)" \
    $'[session]\nstore = init_fails'
start_refused "a file that is not a plugin is refused" \
    'ERROR plugin .*/no_entry.so: not a voxray plugin \(it exports no vx_plugin_entry symbol\)' \
    $'[session]\nstore = no_entry'
start_refused "an entry that refuses to load says why in the refusal line" \
    'ERROR plugin .*/entry_logs.so: vx_plugin_entry returned NULL: the plugin refused to load: entry_logs: needs the frobnicator' \
    $'[session]\nstore = entry_logs'
start_refused "a required plugin key that is missing is refused before init" \
    "ERROR \[plugin.mk\]: plugin multi_kind requires key 'api_key'" \
    $'[plugin.mk]\nplugin = multi_kind\n[stt]\nproviders = mk'

# Metric names: the host refuses what the rule in <voxray/plugin.h> refuses,
# logs why, and serves the names it accepts.
VX_PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[session]\nstore = bad_metric\n[tts]\nproviders = slow_cancel\n[plugin.slow_cancel]\ndelay = 1.5s\nbad_error = on\n' "$VX_PORT" "$DIRS" >"$WORK/m.ini"
if start_voxray "$WORK/m.ini" "$WORK/m.log"; then
    check "the typed config getters hand a plugin parsed values (1.5s -> 1500 ms, on -> 1)" \
        grep -q '\[tts:slow_cancel\] delay 1500 ms, bad_error 1' "$WORK/m.log"
    check "a plugin metric named like a host family is refused with the reason logged" \
        grep -q "WARN \[store:bad_metric\] metric refused: metric name 'calls_total' is the host's own voxray_plugin_calls_total family" "$WORK/m.log"
    check "a gauge ending in _total is refused with the reason logged" \
        grep -q "metric refused: gauge 'bad_metric_level_total' must not end in _total" "$WORK/m.log"
    body=$(curl -s "http://127.0.0.1:$VX_PORT/metrics")
    check "the accepted name is served with the voxray_plugin_ prefix and the instance label" \
        grep -q '^voxray_plugin_bad_metric_puts_total{plugin="bad_metric",provider="bad_metric"} 1' <<<"$body"
    stop_pid "$VX_PID"
else
    not_ok "voxray starts with a plugin that registers refused metric names" "$(cat "$WORK/m.log")"
fi

# An older minor is accepted and serves.
VX_PORT=$(free_port)
printf '[server]\nlisten = 127.0.0.1:%s\nplugin_dir = %s\n[plugin.mk]\nplugin = multi_kind\napi_key = k-123456789\n[tts]\nproviders = old_minor, mk\n' "$VX_PORT" "$DIRS" >"$WORK/o.ini"
if start_voxray "$WORK/o.ini" "$WORK/o.log" VOXRAY_LOG_LEVEL=debug; then
    ok "a plugin built for an older minor is accepted"
    body=$(curl -s "http://127.0.0.1:$VX_PORT/v1/health")
    check "/v1/health lists the tts providers in order" grep -q '"tts":\[{"name":"old_minor","plugin":"old_minor","status":"available","detail":"available"},{"name":"mk","plugin":"multi_kind"' <<<"$body"
    check "the plugin's secret config value never reaches the log" bash -c "! grep -q k-123456789 '$WORK/o.log'"
    stop_pid "$VX_PID"
else
    not_ok "a plugin built for an older minor is accepted" "$(cat "$WORK/o.log")"
fi
done_testing
