#!/bin/bash
# The Kubernetes manifests: valid YAML of known kinds, probes exactly as the
# observability reference gives them, a grace period that covers the drain
# and the upload deadline of the shipped config, selectors that match, an
# HPA on a metric voxray exports, a PrometheusRule equal to the shipped
# rules, a config voxray --check-config accepts, and a kustomization that
# builds offline. (No API server here: kubectl's --dry-run needs one, so
# the field-level schema is not checked.)
. "$top_srcdir/tests/integration/lib.sh"

K="$top_srcdir/conf/k8s"
cat >"$WORK/check.py" <<'PY'
import sys, yaml, glob, os, re
k = sys.argv[1]
docs = {}
for f in sorted(glob.glob(os.path.join(k, '*.yaml'))):
    for d in yaml.safe_load_all(open(f)):
        if d: docs.setdefault(d['kind'], []).append(d)
def ok(name, cond):
    print(('ok' if cond else 'FAIL') + '\t' + name)
dep = [d for d in docs['Deployment'] if d['metadata']['name'] == 'voxray'][0]
pod = dep['spec']['template']
c = pod['spec']['containers'][0]
ok('the Deployment, Service, PDB, HPA, ServiceMonitor, PodMonitor, PrometheusRule, ConfigMap, Secret are there',
   all(x in docs for x in ['Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler',
                           'ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap', 'Secret']))
ok('liveness probe: GET /health :8080, delay 5, period 10, threshold 3',
   c['livenessProbe'] == {'httpGet': {'path': '/health', 'port': 8080}, 'initialDelaySeconds': 5, 'periodSeconds': 10, 'failureThreshold': 3})
ok('readiness probe: GET /ready :8080, delay 2, period 5, threshold 2',
   c['readinessProbe'] == {'httpGet': {'path': '/ready', 'port': 8080}, 'initialDelaySeconds': 2, 'periodSeconds': 5, 'failureThreshold': 2})
ini = docs['ConfigMap'][0]['data']['voxray.ini']
open(sys.argv[2], 'w').write(ini)
def dur(key, default):
    m = re.search(r'^\s*' + key + r'\s*=\s*(\d+)s\s*$', ini, re.M)
    return int(m.group(1)) if m else default
need = dur('drain_timeout', 10) + dur('shutdown_upload_timeout', 30)
ok('terminationGracePeriodSeconds (%d) covers drain_timeout + shutdown_upload_timeout (%d)'
   % (pod['spec']['terminationGracePeriodSeconds'], need), pod['spec']['terminationGracePeriodSeconds'] > need)
ok('the pod runs as non-root with a read-only root filesystem',
   pod['spec']['securityContext']['runAsNonRoot'] and c['securityContext']['readOnlyRootFilesystem'])
ok('the pod carries the prometheus.io scrape annotations on port 8080',
   pod['metadata']['annotations'].get('prometheus.io/scrape') == 'true' and pod['metadata']['annotations'].get('prometheus.io/port') == '8080')
labels = pod['metadata']['labels']
def sel_ok(s): return all(labels.get(a) == b for a, b in s.items())
svc = [d for d in docs['Service'] if d['metadata']['name'] == 'voxray'][0]
ok('the Deployment selector matches its pods', sel_ok(dep['spec']['selector']['matchLabels']))
ok('the Service selects the voxray pods on the named port http',
   sel_ok(svc['spec']['selector']) and svc['spec']['ports'][0]['targetPort'] == 'http'
   and any(p['name'] == 'http' for p in c['ports']))
ok('the ServiceMonitor selects the Service and scrapes port http /metrics',
   all(svc['metadata']['labels'].get(a) == b for a, b in docs['ServiceMonitor'][0]['spec']['selector']['matchLabels'].items())
   and docs['ServiceMonitor'][0]['spec']['endpoints'][0]['port'] == 'http')
ok('the PodMonitor selects the pods', sel_ok(docs['PodMonitor'][0]['spec']['selector']['matchLabels']))
ok('the PDB selects the pods', sel_ok(docs['PodDisruptionBudget'][0]['spec']['selector']['matchLabels']))
hpa = docs['HorizontalPodAutoscaler'][0]
ok('the HPA scales the Deployment on voxray_active_sessions per pod',
   hpa['spec']['scaleTargetRef']['name'] == 'voxray' and hpa['spec']['metrics'][0]['pods']['metric']['name'] == 'voxray_active_sessions')
rules = yaml.safe_load(open(os.path.join(k, '..', 'prometheus', 'voxray-alerts.yml')))
ok('the PrometheusRule holds exactly the shipped alert rules', docs['PrometheusRule'][0]['spec'] == rules)
ok('the redis address of the config names the Redis Service',
   re.search(r'^address = voxray-redis:6379$', ini, re.M) is not None and any(d['metadata']['name'] == 'voxray-redis' for d in docs['Service']))
PY
python3 "$WORK/check.py" "$K" "$WORK/k8s.ini" >"$WORK/check.out" 2>&1 || diag "$(tail -5 "$WORK/check.out")"
while IFS=$'\t' read -r res name; do
    if [ "$res" = ok ]; then ok "$name"; else not_ok "$name"; fi
done <"$WORK/check.out"

# The ConfigMap's config passes voxray's own checker (plugins from the build
# tree; Redis and S3 are not reached by --check-config).
out=$(VOXRAY_SERVER_PLUGIN_DIR="$PLUGIN_DIR" "$VOXRAY" --check-config -c "$WORK/k8s.ini" 2>&1)
rc=$?
check "voxray --check-config accepts the ConfigMap's voxray.ini" [ $rc -eq 0 ]
[ $rc -eq 0 ] || diag "$out"

if command -v kubectl >/dev/null; then
    kubectl kustomize "$K" >"$WORK/all.yaml" 2>"$WORK/kustomize.err"
    check "kubectl kustomize builds the kustomization offline" [ $? -eq 0 ]
    check "... into 12 objects in namespace voxray" \
        python3 -c 'import sys,yaml; d=[x for x in yaml.safe_load_all(open(sys.argv[1])) if x]; assert len(d)==12, len(d); assert all(x["metadata"].get("namespace")=="voxray" for x in d if x["kind"]!="Namespace")' "$WORK/all.yaml"
else
    ok "# SKIP kubectl is not installed"
fi
done_testing
