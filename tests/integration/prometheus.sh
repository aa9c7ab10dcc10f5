#!/bin/bash
# A real Prometheus scrapes voxray and loads the shipped alerting rules;
# promtool checks and unit-tests those rules.
. "$top_srcdir/tests/integration/lib.sh"

RULES="$top_srcdir/conf/prometheus/voxray-alerts.yml"
check "promtool accepts the shipped alerting rules" quiet promtool check rules "$RULES"
check "the alerting rules pass their unit tests" quiet promtool test rules "$top_srcdir/conf/prometheus/voxray-alerts_test.yml"

base_conf "$WORK/v.ini"
start_voxray "$WORK/v.ini" "$WORK/v.log" || not_ok "voxray starts"
curl -s -o /dev/null "http://127.0.0.1:$VX_PORT/health"

PPORT=$(free_port)
cat >"$WORK/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
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

# A fresh server needs a few seconds before the first sample is queryable.
query() { curl -s --max-time 2 "$P/api/v1/query" --data-urlencode "query=$1"; }
up=""
for i in $(seq 1 60); do
    up=$(query 'up{job="voxray"}' | jq -r '.data.result[0].value[1] // empty' 2>/dev/null)
    [ "$up" = 1 ] && break
    sleep 0.5
done
check "Prometheus scrapes voxray (up == 1)" [ "$up" = 1 ]
n=$(query 'http_requests_total{job="voxray",route="/health",status_code="200"}' | jq -r '.data.result[0].value[1] // 0')
check "the scraped series are queryable (http_requests_total for /health)" [ "${n:-0}" -ge 1 ]
h=$(query 'sum(voxray_plugin_calls_total{kind="store",op="ping"})' | jq -r '.data.result[0].value[1] // 0')
check "the call-gate series are queryable" [ "${h%.*}" -ge 1 ]
targets=$(curl -s "$P/api/v1/targets")
check "the scrape target is healthy with no scrape error" \
    quiet jq -e '.data.activeTargets | any(.labels.job == "voxray" and .health == "up" and .lastError == "")' <<<"$targets"
rules=$(curl -s "$P/api/v1/rules")
check "Prometheus loaded the voxray alert group (17 alerts)" quiet jq -e '.data.groups | any(.name == "voxray" and (.rules | length) == 17)' <<<"$rules"
check "Prometheus loaded the voxray recording rules" quiet jq -e '.data.groups | any(.name == "voxray-records" and (.rules | length) == 3)' <<<"$rules"
check "every rule evaluates without error" quiet jq -e '[.data.groups[].rules[] | .health] | all(. != "err")' <<<"$rules"
kill "$PROM_PID"; wait "$PROM_PID" 2>/dev/null
stop_pid "$VX_PID"
done_testing
