#!/bin/bash
# Every PromQL expression of the shipped Grafana dashboards runs against a
# real Prometheus that scraped a voxray under simulated traffic (flaky
# providers with fallbacks, recording on): no query error, and data in every
# panel. The provisioning files are valid YAML naming the folder they load.
. "$top_srcdir/tests/integration/lib.sh"

DASH="$top_srcdir/conf/grafana/dashboards"
LOADTEST="$top_builddir/tools/voxray-loadtest"
for f in "$DASH"/*.json; do
    check "$(basename "$f") is a dashboard with a uid, a title and panels" \
        quiet jq -e '(.uid | length > 0) and (.title | length > 0) and (.panels | length > 0)' "$f"
done
check "the six dashboards are shipped" [ "$(ls "$DASH"/*.json | wc -l)" = 6 ]
check "dashboard uids are unique" [ "$(jq -r .uid "$DASH"/*.json | sort -u | wc -l)" = 6 ]
check "every panel has at least one query" quiet jq -e '[.panels[] | (.targets | length) > 0] | all' "$DASH"/*.json
check "the datasource provisioning is YAML with a prometheus datasource" \
    python3 -c 'import sys,yaml; d=yaml.safe_load(open(sys.argv[1])); assert d["datasources"][0]["type"]=="prometheus"' \
    "$top_srcdir/conf/grafana/provisioning/datasources/voxray.yaml"
check "the dashboard provisioning is YAML with a file provider" \
    python3 -c 'import sys,yaml; d=yaml.safe_load(open(sys.argv[1])); assert d["providers"][0]["type"]=="file"' \
    "$top_srcdir/conf/grafana/provisioning/dashboards/voxray.yaml"

mkdir -p "$WORK/rec" "$WORK/spool" "$WORK/dead"
base_conf "$WORK/v.ini" "
[plugin.flaky]
plugin = sim
failure_rate = 0.5
error = unavailable
seed = 7
latency = 20ms
[plugin.steady]
plugin = sim
latency = 20ms
[stt]
providers = flaky, steady
[llm]
providers = flaky, steady
retries = 1
[tts]
providers = flaky, steady
[recording]
enabled = true
sink = recs
spool_dir = $WORK/spool
dead_letter_dir = $WORK/dead
[plugin.recs]
plugin = rec_file
dir = $WORK/rec
fsync = false"
start_voxray "$WORK/v.ini" "$WORK/v.log" || { not_ok "voxray starts" "$(cat "$WORK/v.log")"; done_testing; }

PPORT=$(free_port)
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $top_srcdir/conf/prometheus/voxray-alerts.yml
scrape_configs:
  - job_name: voxray
    static_configs:
      - targets: ["127.0.0.1:$VX_PORT"]
YML
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" >"$WORK/prom.log" 2>&1 &
PROM_PID=$!
track "$PROM_PID"
P="http://127.0.0.1:$PPORT"

sox -n -r 16000 -c 1 -b 16 -e signed-integer "$WORK/turn.wav" synth 0.6 sine 220 vol 0.4 pad 0.2 0 2>/dev/null
"$LOADTEST" -u "ws://127.0.0.1:$VX_PORT/v1/realtime" -n 4 -t 3 --think 100 "$WORK/turn.wav" >"$WORK/lt.out" 2>&1
check "the simulated traffic ran" grep -q 'errors: none' "$WORK/lt.out"
# A few more scrapes after the traffic, so every rate has two samples.
sleep 4

# Grafana's variables: every instance, and a rate window of one minute.
jq -r '.panels[] | .title as $t | .targets[] | [$t, .expr] | @tsv' "$DASH"/*.json >"$WORK/exprs.tsv"
n=0; bad=0
while IFS=$'\t' read -r title expr; do
    q=${expr//'$__rate_interval'/1m}
    q=${q//'$instance'/.+}
    out=$(curl -s --max-time 5 "$P/api/v1/query" --data-urlencode "query=$q")
    n=$((n + 1))
    if ! jq -e '.status == "success"' <<<"$out" >/dev/null 2>&1; then
        bad=$((bad + 1)); diag "query error in \"$title\": $q" "$(jq -r '.error // .' <<<"$out" | head -3)"
    elif ! jq -e '.data.result | length > 0' <<<"$out" >/dev/null; then
        bad=$((bad + 1)); diag "no data in \"$title\": $q"
    fi
done <"$WORK/exprs.tsv"
check "all $n dashboard queries run without error and return data" [ "$bad" = 0 ]
check "the dashboards hold more than 60 queries" [ "$n" -gt 60 ]
kill "$PROM_PID"; wait "$PROM_PID" 2>/dev/null
stop_pid "$VX_PID"
done_testing
