# The cases selftest.sh runs; sourced by it (uses its req/apply/control/expect helpers).
# shellcheck shell=bash
# shellcheck disable=SC2016  # backquotes in expected messages are literal
# shellcheck disable=SC2034  # AUTH is read by req() in selftest.sh

NS_PATH=/api/v1/namespaces
CM=$NS_PATH/demo/configmaps
DEPLOY=/apis/apps/v1/namespaces/demo/deployments

namespace() { printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"%s"}}' "$1"; }
configmap() { # configmap NAME LABELS-JSON DATA-JSON
    printf '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s","namespace":"demo","labels":%s},"data":%s}' "$1" "$2" "$3"
}
deployment() { # deployment NAME REPLICAS IMAGE [SELECTOR-APP [EXTRA-METADATA]]
    local app=${4:-$1}
    printf '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s","namespace":"demo"%s},"spec":{"replicas":%s,"selector":{"matchLabels":{"app":"%s"}},"template":{"metadata":{"labels":{"app":"%s"}},"spec":{"containers":[{"name":"main","image":"%s"}]}}}}' \
        "$1" "${5-}" "$2" "$app" "$1" "$3"
}

case_auth() {
    AUTH=()
    req GET /api
    expect "no credentials" 401 "d['kind']" Status "d['reason']" Unauthorized "d['status']" Failure "d['code']" 401 \
        "d['message']" Unauthorized
    AUTH=(-H "Authorization: Bearer wrong")
    req GET /api
    expect "unknown token" 401 "d['reason']" Unauthorized
    AUTH=(-H "Authorization: Bearer tok-a")
    req GET /api/v1/namespaces/default
    expect "known token" 200 "d['metadata']['name']" default
    AUTH=("${AUTH_CERT[@]}")
    control POST tokens '{"add":["tok-b"],"remove":["tok-a"]}'
    expect "rotate tokens" 200
    AUTH=(-H "Authorization: Bearer tok-a")
    req GET /api
    expect "removed token" 401
    AUTH=(-H "Authorization: Bearer tok-b")
    req GET /api
    expect "added token" 200 "d['kind']" APIVersions
    AUTH=(-H "Authorization: Bearer tok-b")
    control GET objects
    expect "control API accepts a token" 200
    AUTH=()
    control GET objects
    expect "control API refuses anonymous" 401
    # A certificate from another CA: the handshake fails (a real server would say 401).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=intruder -days 1 \
        -keyout "$WORK/rogue.key" -out "$WORK/rogue.crt" 2>/dev/null
    AUTH=(--cert "$WORK/rogue.crt" --key "$WORK/rogue.key")
    req GET /api
    CHECKS=$((CHECKS + 1))
    [[ $CODE == curl-exit-* ]] || fail "a certificate from another CA must be refused, got HTTP $CODE"
    AUTH=("${AUTH_CERT[@]}")
}

case_discovery() {
    req GET /api
    expect "/api" 200 "d['versions']" '["v1"]'
    req GET /api/v1
    expect "/api/v1" 200 "d['groupVersion']" v1 "'apiVersion' in d" false \
        "[r for r in d['resources'] if r['name'] == 'configmaps'][0]['namespaced']" true \
        "[r for r in d['resources'] if r['name'] == 'namespaces'][0]['namespaced']" false \
        "[r['kind'] for r in d['resources'] if r['name'] == 'services'][0]" Service \
        "'patch' in [r for r in d['resources'] if r['name'] == 'secrets'][0]['verbs']" true
    req GET /apis
    expect "/apis" 200 "d['kind']" APIGroupList \
        "sorted(g['name'] for g in d['groups'] if g['name'] in ('apps','batch','policy','autoscaling'))" \
        '["apps", "autoscaling", "batch", "policy"]' \
        "'monitoring.coreos.com' in [g['name'] for g in d['groups']]" false
    req GET /apis/apps/v1
    expect "/apis/apps/v1" 200 "d['groupVersion']" apps/v1 \
        "[(r['singularName'], r['kind'], r['namespaced']) for r in d['resources'] if r['name'] == 'deployments'][0]" \
        '["deployment", "Deployment", true]' \
        "'deployments/status' in [r['name'] for r in d['resources']]" true
    req GET /apis/rbac.authorization.k8s.io/v1
    expect "rbac" 200 "[r['namespaced'] for r in d['resources'] if r['name'] == 'clusterroles'][0]" false
    req GET /apis/autoscaling/v2
    expect "autoscaling/v2" 200 "[r['kind'] for r in d['resources'] if '/' not in r['name']]" '["HorizontalPodAutoscaler"]'
    req GET /apis/monitoring.coreos.com/v1
    expect "a group nobody serves" 404 "d['reason']" NotFound \
        "d['message']" "the server could not find the requested resource"
    req GET /apis -- -H "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    expect "aggregated discovery" 200 "d['kind']" APIGroupDiscoveryList \
        "[r['scope'] for i in d['items'] if i['metadata']['name'] == 'apps' for r in i['versions'][0]['resources'] if r['resource'] == 'deployments']" \
        '["Namespaced"]'
}

case_apply_create_merge() {
    apply $NS_PATH/demo "$(namespace demo)"
    expect "create a namespace" 201 "d['metadata']['labels']['kubernetes.io/metadata.name']" demo \
        "d['status']['phase']" Active
    req GET $CM/kube-root-ca.crt
    expect "a new namespace gets the CA ConfigMap" 200
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1","b":"2"}')"
    expect "create a ConfigMap" 201 "d['data']" '{"a": "1", "b": "2"}' "'generation' in d['metadata']" false \
        "len(d['metadata']['uid'])" 36 "d['metadata']['namespace']" demo
    local rv uid
    jv "d['metadata']['resourceVersion']"; rv=$JV_OUT
    jv "d['metadata']['uid']"; uid=$JV_OUT
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1","b":"2"}')"
    expect "an unchanged re-apply" 200 "d['metadata']['resourceVersion']" "$rv" "d['metadata']['uid']" "$uid"
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1","c":"3"}')"
    expect "a re-apply drops what the manager no longer sends" 200 "d['data']" '{"a": "1", "c": "3"}'
    jv "int(d['metadata']['resourceVersion']) > $rv"
    [[ $JV_OUT == true ]] || fail "a change must bump resourceVersion"
    req PATCH "$CM/settings?fieldManager=other" '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"x":"9"}}'
    expect "another manager adds a field" 200 "d['data']" '{"a": "1", "c": "3", "x": "9"}'
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1"}')"
    expect "fields of other managers survive" 200 "d['data']" '{"a": "1", "x": "9"}'
    apply $CM/settings "$(configmap settings '{}' '{"a":"1"}')" dryRun=All
    expect "a dry run" 200 "d['metadata'].get('labels')" null
    req GET $CM/settings
    expect "a dry run changes nothing" 200 "d['metadata']['labels']" '{"app": "web"}'
    apply $CM/yaml 'apiVersion: v1
kind: ConfigMap
metadata:
  name: yaml
data:
  plain: text
  on: "x"'
    expect "a YAML body (YAML 1.1: the key on is true, as on a real server)" 201 "d['data']" '{"plain": "text", "true": "x"}'
    apply /api/v1/namespaces/demo/secrets/s '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"k":"v"}}'
    expect "stringData is folded into data" 201 "d['data']" '{"k": "dg=="}' "'stringData' in d" false "d['type']" Opaque
}

case_apply_refusals() {
    req PATCH $CM/settings "$(configmap settings '{}' '{}')"
    expect "apply without fieldManager" 422 "d['reason']" Invalid \
        "d['message']" 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    req PATCH "$CM/settings?fieldManager=m" '{"data":{}}' application/json
    expect "an unknown patch type" 415 "d['reason']" UnsupportedMediaType
    apply $CM/settings '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"settings"}}'
    expect "a kind that does not match the URL" 400 "d['reason']" BadRequest \
        "d['message']" "invalid object type: /v1, Kind=Secret"
    apply $CM/settings "$(configmap other '{}' '{}')"
    expect "a name that does not match the URL" 400 \
        "d['message']" "the name of the object (other) does not match the name on the URL (settings)"
    apply $CM/Bad_Name "$(configmap Bad_Name '{}' '{}')"
    expect "an invalid name" 422 "d['reason']" Invalid "d['details']['causes'][0]['field']" metadata.name
    expect_in "an invalid name's message" "d['message']" \
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of'
    apply $NS_PATH/a.b "$(namespace a.b)"
    expect "a namespace name must be a DNS label" 422
    apply /api/v1/namespaces/demo/services/1svc '{"apiVersion":"v1","kind":"Service","metadata":{"name":"1svc"},"spec":{"ports":[{"port":80}]}}'
    expect "a Service name must be a DNS-1035 label" 422
    expect_in "DNS-1035 message" "d['message']" "a DNS-1035 label must consist of"
    apply /api/v1/namespaces/nope/configmaps/x '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'
    expect "a namespace that does not exist" 404 "d['reason']" NotFound "d['message']" 'namespaces "nope" not found'
    apply /api/v1/namespaces/demo/widgets/x '{"apiVersion":"v1","kind":"Widget","metadata":{"name":"x"}}'
    expect "an unknown resource" 404 "d['message']" "the server could not find the requested resource"
    apply /api/v1/configmaps/x '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'
    expect "a namespaced kind without a namespace" 404
    apply $CM/num '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"num"},"data":{"n":1}}'
    expect "a non-string ConfigMap value (the typed conversion fails: 500, like the real server)" 500
    expect_in "typed conversion message" "d['message']" ".data.n: expected string"
    apply $CM/labels '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"labels","labels":{"a":"b c"}}}'
    expect "an invalid label value" 422 "d['details']['causes'][0]['field']" metadata.labels
    apply $DEPLOY/bad "$(deployment bad 1 nginx:1 other)"
    expect "a selector that does not match the template" 422
    expect_in "selector message" "d['message']" \
        'Deployment.apps "bad" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"bad"}: `selector` does not match template `labels`'
    apply $DEPLOY/nosel '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nosel"},"spec":{}}'
    expect "a Deployment without selector and template" 422
    expect_in "required fields" "d['message']" "spec.selector: Required value"
    expect_in "required fields" "d['message']" "spec.template.spec.containers: Required value"
    apply /api/v1/namespaces/demo/services/noport '{"apiVersion":"v1","kind":"Service","metadata":{"name":"noport"},"spec":{"ports":[{"port":0}]}}'
    expect "a Service port out of range" 422 "d['details']['causes'][0]['field']" "spec.ports[0].port"
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1"}' | sed 's/"namespace":"demo"/"namespace":"other"/')"
    expect "a body namespace that differs from the URL" 400
}

case_deployments_and_generation() {
    apply $DEPLOY/web "$(deployment web 2 nginx:1.25)"
    expect "create a Deployment" 201 "d['metadata']['generation']" 1 "d['status']['observedGeneration']" 1 \
        "d['status']['readyReplicas']" 2 "d['status']['availableReplicas']" 2 \
        "[(c['type'], c['status'], c['reason']) for c in d['status']['conditions']]" \
        '[["Available", "True", "MinimumReplicasAvailable"], ["Progressing", "True", "NewReplicaSetAvailable"]]' \
        "d['spec']['strategy']['type']" RollingUpdate \
        "d['spec']['template']['spec']['containers'][0]['imagePullPolicy']" IfNotPresent
    apply $DEPLOY/web "$(deployment web 3 nginx:1.25)"
    expect "a spec change bumps the generation" 200 "d['metadata']['generation']" 2 \
        "d['status']['observedGeneration']" 2 "d['status']['readyReplicas']" 3
    apply $DEPLOY/web "$(deployment web 3 nginx:1.25 web ',"labels":{"team":"a"}')"
    expect "a label change keeps the generation" 200 "d['metadata']['generation']" 2
    apply $DEPLOY/web "$(deployment web 3 nginx:1.25 web ',"annotations":{"note":"x"}')"
    expect "an annotation change bumps a Deployment's generation (as the real one does)" 200 \
        "d['metadata']['generation']" 3
    apply $DEPLOY/web "$(deployment web 3 nginx:1.25 other-app)"
    expect "the selector is immutable" 422
    expect_in "immutable selector" "d['message']" "spec.selector: Invalid value"
    req GET $DEPLOY/web/status
    expect "the status subresource" 200 "d['kind']" Deployment
    req GET $DEPLOY/web/scale
    expect "the scale subresource" 200 "d['kind']" Scale "d['spec']['replicas']" 3
}

case_crd_before_cr() {
    local crd='{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"servicemonitors.monitoring.coreos.com"},"spec":{"group":"monitoring.coreos.com","scope":"Namespaced","names":{"plural":"servicemonitors","singular":"servicemonitor","kind":"ServiceMonitor","listKind":"ServiceMonitorList"},"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","x-kubernetes-preserve-unknown-fields":true}},"subresources":{"status":{}}}]}}'
    local cr='{"apiVersion":"monitoring.coreos.com/v1","kind":"ServiceMonitor","metadata":{"name":"web"},"spec":{"endpoints":[{"port":"http"}]}}'
    local crd_path=/apis/apiextensions.k8s.io/v1/customresourcedefinitions/servicemonitors.monitoring.coreos.com
    local cr_path=/apis/monitoring.coreos.com/v1/namespaces/demo/servicemonitors/web
    apply $cr_path "$cr"
    expect "a custom resource before its CRD" 404 "d['message']" "the server could not find the requested resource"
    control POST status '{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","name":"servicemonitors.monitoring.coreos.com","mode":"progressing"}'
    expect "hold the CRD back before it exists" 200
    control POST status '{"apiVersion":"monitoring.coreos.com/v1","kind":"ServiceMonitor","namespace":"demo","name":"web","mode":"failed"}'
    expect "pin the health of a custom resource whose kind does not exist yet" 200 "d['object']" null
    apply $crd_path "$crd"
    expect "create the CRD" 201 \
        "[c['status'] for c in d['status']['conditions'] if c['type'] == 'Established']" '["False"]'
    apply $cr_path "$cr"
    expect "a custom resource whose CRD is not Established" 404
    req GET /apis/monitoring.coreos.com/v1
    expect "discovery without the CRD" 404
    control POST status '{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","name":"servicemonitors.monitoring.coreos.com","mode":"ready"}'
    expect "let the CRD become Established" 200 \
        "[c['status'] for c in d['object']['status']['conditions'] if c['type'] in ('Established', 'NamesAccepted')]" \
        '["True", "True"]'
    req GET /apis/monitoring.coreos.com/v1
    expect "discovery with the CRD" 200 \
        "[(r['name'], r['kind'], r['namespaced']) for r in d['resources'] if '/' not in r['name']]" \
        '[["servicemonitors", "ServiceMonitor", true]]'
    req GET /apis
    expect "the CRD's group is listed" 200 "'monitoring.coreos.com' in [g['name'] for g in d['groups']]" true
    apply $cr_path "$cr"
    expect "the custom resource once Established" 201 "d['metadata']['generation']" 1 "d['kind']" ServiceMonitor \
        "[(c['type'], c['status']) for c in d['status']['conditions']]" '[["Stalled", "True"], ["Ready", "False"]]'
    req GET /apis/monitoring.coreos.com/v1/servicemonitors
    expect "custom resource list items keep kind" 200 "d['kind']" ServiceMonitorList "d['items'][0]['kind']" ServiceMonitor
    apply /apis/apiextensions.k8s.io/v1/customresourcedefinitions/bad.example.com \
        '{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"bad.example.com"},"spec":{"group":"example.com","scope":"Namespaced","names":{"plural":"things","kind":"Thing"},"versions":[{"name":"v1","served":true,"storage":true}]}}'
    expect "a CRD whose name is not plural.group" 422
    req DELETE $crd_path
    expect "delete the CRD" 200 "'deletionTimestamp' in d['metadata']" true
    req GET $cr_path
    expect "its custom resources go with it" 404
    req GET /apis/monitoring.coreos.com/v1
    expect "and its discovery" 404
}

case_list_and_selectors() {
    local n
    for n in l1:'{"app":"a","tier":"fe"}' l2:'{"app":"b"}' l3:'{"app":"c","tier":"be"}'; do
        apply "$CM/${n%%:*}" "$(configmap "${n%%:*}" "${n#*:}" '{}')"
        expect "create ${n%%:*}" 201
    done
    sel() { # sel SELECTOR WANT: names of the l* ConfigMaps the selector matches
        req GET "$CM" -- -G --data-urlencode "labelSelector=$1"
        expect "labelSelector $1" 200 "[i['metadata']['name'] for i in d['items'] if i['metadata']['name'].startswith('l')]" "$2"
    }
    sel 'app=a' '["l1"]'
    sel 'app==b' '["l2"]'
    sel 'app!=a' '["l2", "l3"]'
    sel 'tier' '["l1", "l3"]'
    sel '!tier' '["l2"]'
    sel 'app in (a, c)' '["l1", "l3"]'
    sel 'app notin (a)' '["l2", "l3"]'
    sel 'app in (a,b,c),tier!=fe' '["l2", "l3"]'
    req GET "$CM?labelSelector=app%3Da"
    expect "a typed list" 200 "d['kind']" ConfigMapList "d['apiVersion']" v1 "'kind' in d['items'][0]" false \
        "d['metadata']['resourceVersion'].isdigit()" true
    req GET "$CM" -- -G --data-urlencode "labelSelector=app=(x"
    expect "a malformed selector" 400 "d['reason']" BadRequest
    req GET "$CM?fieldSelector=metadata.name%3Dl2"
    expect "fieldSelector" 200 "[i['metadata']['name'] for i in d['items']]" '["l2"]'
    req GET "$CM?limit=2"
    expect "pagination" 200 "len(d['items'])" 2 "'continue' in d['metadata']" true
    jv "d['metadata']['continue']"
    req GET "$CM?limit=2&continue=$JV_OUT"
    expect "the next page" 200 "d['items'][0]['metadata']['name']" l2
    req GET /apis/apps/v1/deployments
    expect "a cluster-wide list of a namespaced kind" 200 "d['kind']" DeploymentList \
        "[i['metadata']['namespace'] + '/' + i['metadata']['name'] for i in d['items']]" '["demo/web"]'
    req GET /api/v1/namespaces
    expect "list namespaces" 200 "sorted(i['metadata']['name'] for i in d['items'])" \
        '["default", "demo", "kube-node-lease", "kube-public", "kube-system"]'
}

case_delete() {
    req DELETE $CM/l3 '{"propagationPolicy":"Foreground"}' application/json
    expect "delete an object" 200 "d['kind']" Status "d['status']" Success "d['details']['name']" l3 \
        "d['details']['kind']" configmaps
    req DELETE "$CM/l3?propagationPolicy=Background"
    expect "delete it again" 404 "d['message']" 'configmaps "l3" not found' \
        "d['details']" '{"kind": "configmaps", "name": "l3"}'
    req GET $DEPLOY/gone
    expect "get a missing object" 404 "d['message']" 'deployments.apps "gone" not found' "d['details']['group']" apps
    req DELETE $NS_PATH/default
    expect "the default namespace cannot be deleted" 403
    apply $NS_PATH/scratch "$(namespace scratch)"
    apply $NS_PATH/scratch/configmaps/c '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}'
    expect "a ConfigMap in scratch" 201
    req DELETE $NS_PATH/scratch
    expect "delete a namespace" 200 "d['status']['phase']" Terminating
    req GET $NS_PATH/scratch/configmaps/c
    expect "its content goes with it" 404
}

case_health_modes() {
    control POST health-default '{"kind":"Deployment","mode":"progressing"}'
    expect "Deployments progress forever" 200
    apply $DEPLOY/slow "$(deployment slow 2 app:1)"
    expect "a progressing Deployment" 201 "d['status'].get('readyReplicas')" null \
        "[c['status'] for c in d['status']['conditions'] if c['type'] == 'Available']" '["False"]'
    control POST status '{"apiVersion":"apps/v1","kind":"Deployment","namespace":"demo","name":"slow","mode":"failed"}'
    expect "a failed Deployment" 200 \
        "[(c['status'], c['reason']) for c in d['object']['status']['conditions'] if c['type'] == 'Progressing']" \
        '[["False", "ProgressDeadlineExceeded"]]'
    control POST health-default '{"kind":"Deployment","mode":"stale"}'
    apply $DEPLOY/web "$(deployment web 4 nginx:1.25 web ',"annotations":{"note":"x"}')"
    expect "a stale controller" 200 "d['metadata']['generation']" 4 "d['status']['observedGeneration']" 3
    control POST health-default '{"kind":"Deployment","mode":"ready","refresh":true}'
    req GET $DEPLOY/web
    expect "refresh re-synthesizes the existing ones" 200 "d['status']['observedGeneration']" 4
    req GET $DEPLOY/slow
    expect "but a pinned object keeps its mode" 200 \
        "[c['reason'] for c in d['status']['conditions'] if c['type'] == 'Progressing']" '["ProgressDeadlineExceeded"]'
    control POST status '{"apiVersion":"apps/v1","kind":"Deployment","namespace":"demo","name":"slow","status":{"observedGeneration":1,"replicas":2}}'
    req GET $DEPLOY/slow
    expect "a raw status" 200 "d['status']" '{"observedGeneration": 1, "replicas": 2}'
    local job='{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"%s"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"m","image":"busybox"}]}}}}'
    # shellcheck disable=SC2059
    apply /apis/batch/v1/namespaces/demo/jobs/done "$(printf "$job" "done")"
    jv "d['metadata']['uid']"
    expect "a Job completes" 201 "[c['type'] for c in d['status']['conditions'] if c['status'] == 'True']" \
        '["SuccessCriteriaMet", "Complete"]' "d['spec']['selector']['matchLabels']['batch.kubernetes.io/controller-uid']" \
        "$JV_OUT"
    control POST status '{"apiVersion":"batch/v1","kind":"Job","namespace":"demo","name":"broken","mode":"failed"}'
    # shellcheck disable=SC2059
    apply /apis/batch/v1/namespaces/demo/jobs/broken "$(printf "$job" broken)"
    expect "a Job fails" 201 "[c['reason'] for c in d['status']['conditions'] if c['type'] == 'Failed']" \
        '["BackoffLimitExceeded"]'
    apply /api/v1/namespaces/demo/persistentvolumeclaims/data '{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}'
    expect "a PVC binds" 201 "d['status']['phase']" Bound
}

case_drift_and_conflicts() {
    control POST mutate '{"apiVersion":"apps/v1","kind":"Deployment","namespace":"demo","name":"web","patch":{"spec":{"replicas":7}}}'
    expect "a human edit" 200 "d['object']['spec']['replicas']" 7 "d['object']['metadata']['generation']" 5
    req PATCH "$DEPLOY/web?fieldManager=sovdev-agent" "$(deployment web 4 nginx:1.25 web ',"annotations":{"note":"x"}')"
    expect "apply without force over a human edit" 409 "d['reason']" Conflict
    expect_in "conflict message" "d['message']" 'Apply failed with 1 conflict: conflict with "kubectl-edit"'
    expect_in "conflict field" "d['message']" ".spec.replicas"
    apply $DEPLOY/web "$(deployment web 4 nginx:1.25 web ',"annotations":{"note":"x"}')"
    expect "a forced apply takes the field back" 200 "d['spec']['replicas']" 4 "d['metadata']['generation']" 6
    local rv
    jv "d['metadata']['resourceVersion']"; rv=$JV_OUT
    apply $DEPLOY/web "$(deployment web 4 nginx:1.25 web ',"annotations":{"note":"x"},"resourceVersion":"1"')"
    expect "an apply with a stale resourceVersion" 409 "d['reason']" Conflict
    control GET "objects?kind=Deployment&name=web"
    expect "the control API lists objects" 200 "d['items'][0]['metadata']['resourceVersion']" "$rv" \
        "d['managers']['apps/v1/Deployment/demo/web']" '["sovdev-agent"]'
    apply /apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/rb \
        '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rb"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"a"},"subjects":[]}'
    expect "a RoleBinding" 201
    apply /apis/rbac.authorization.k8s.io/v1/namespaces/demo/rolebindings/rb \
        '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rb"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"b"},"subjects":[]}'
    expect "roleRef is immutable" 422
    apply /apis/rbac.authorization.k8s.io/v1/clusterroles/system:sovdev:reader \
        '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"system:sovdev:reader"},"rules":[]}'
    expect "RBAC names may hold colons" 201
}

case_failure_injection() {
    control POST inject '{"method":"PATCH","path_regex":"/configmaps/settings$","action":"status","code":500,"count":1}'
    expect "inject a 500" 200
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1"}')"
    expect "the injected 500" 500 "d['reason']" InternalError
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1"}')"
    expect "only once" 200
    control POST inject '{"method":"PATCH","path_regex":"/deployments/","code":403,"count":1}'
    apply $DEPLOY/web "$(deployment web 4 nginx:1.25)"
    expect "an injected 403" 403 "d['reason']" Forbidden "d['message']" \
        'deployments.apps "web" is forbidden: User "sovdev-agent" cannot patch resource "deployments" in API group "apps" in the namespace "demo"'
    control POST inject '{"path_regex":"/configmaps/settings$","code":409,"count":1}'
    req GET $CM/settings
    expect "an injected 409" 409 "d['reason']" Conflict
    control POST inject '{"path_regex":"/configmaps/settings$","code":422,"message":"no you don'"'"'t","count":1}'
    apply $CM/settings "$(configmap settings '{"app":"web"}' '{"a":"1"}')"
    expect "an injected 422" 422 "d['reason']" Invalid
    expect_in "custom message" "d['message']" "no you don't"
    control POST inject '{"path_regex":"/configmaps/settings$","action":"delay","delay_ms":300,"count":1}'
    local t0=$EPOCHREALTIME
    req GET $CM/settings
    expect "a delayed answer" 200
    CHECKS=$((CHECKS + 1))
    [[ $(python3 -c "print($EPOCHREALTIME - $t0 >= 0.3)") == True ]] || fail "the delay was shorter than 300 ms"
    control POST inject '{"path_regex":"/configmaps/settings$","action":"drop","count":1}'
    req GET $CM/settings
    CHECKS=$((CHECKS + 1))
    [[ $CODE == curl-exit-* ]] || fail "a dropped connection must fail the request, got HTTP $CODE"
    control POST inject '{"method":"PATCH","path_regex":"/configmaps/late$","action":"drop_after","count":1}'
    apply $CM/late "$(configmap late '{}' '{}')"
    CHECKS=$((CHECKS + 1))
    [[ $CODE == curl-exit-* ]] || fail "drop_after must fail the request, got HTTP $CODE"
    req GET $CM/late
    expect "drop_after did the work" 200
    control POST inject '{"path_regex":"/configmaps/l1$","code":503,"skip":1,"count":null}'
    req GET $CM/l1
    expect "skip lets the first one through" 200
    req GET $CM/l1
    expect "then it fails" 503
    req GET $CM/l1
    expect "forever" 503
    control GET injections
    expect "rules report how often they fired" 200 "[r['fired'] for r in d['items'] if r['code'] == 503]" '[2]'
    control POST clear-injections
    req GET $CM/l1
    expect "after clear-injections" 200
    control POST inject '{"path_regex":"/configmaps/l1$","code":503,"for_ms":1000}'
    req GET $CM/l1
    expect "for_ms: fails during the outage" 503
    req GET $CM/l1
    expect "for_ms: as often as asked" 503
    sleep 1.2
    req GET $CM/l1
    expect "for_ms: answers once the outage is over" 200
    control POST clear-injections
}

case_request_log_and_keepalive() {
    control POST requests/clear
    req GET $CM/l1
    req GET "$CM?labelSelector=app%3Da"
    control GET requests
    expect "the request log" 200 "[(e['method'], e['path'], e['code'], e['user']) for e in d['items']]" \
        '[["GET", "/api/v1/namespaces/demo/configmaps/l1", 200, "sovdev-agent"], ["GET", "/api/v1/namespaces/demo/configmaps", 200, "sovdev-agent"]]' \
        "d['items'][1]['query']" "labelSelector=app%3Da"
    local reused
    reused=$(curl -sv --cacert "$CERTS/ca.crt" "${AUTH_CERT[@]}" -o /dev/null -o /dev/null \
        "https://localhost:$PORT/api" "https://localhost:$PORT/apis" 2>&1 | grep -c -i 're-using existing connection')
    CHECKS=$((CHECKS + 1))
    ((reused >= 1)) || fail "curl could not reuse the connection (keep-alive)"
}

case_persistence() {
    req GET $DEPLOY/web
    local uid rv
    jv "d['metadata']['uid']"; uid=$JV_OUT
    jv "d['metadata']['resourceVersion']"; rv=$JV_OUT
    stop_server
    start_server
    req GET $DEPLOY/web
    expect "the store survives a restart" 200 "d['metadata']['uid']" "$uid" "d['metadata']['resourceVersion']" "$rv"
    apply $CM/after "$(configmap after '{}' '{}')"
    expect "resourceVersion keeps counting" 201 "int(d['metadata']['resourceVersion']) > $rv" true
}

case_watch_and_other_verbs() {
    req GET $CM
    jv "d['metadata']['resourceVersion']"
    local rv=$JV_OUT
    apply $CM/l1 "$(configmap l1 '{"app":"a","tier":"fe"}' '{"changed":"yes"}')"
    req DELETE $CM/l2
    req GET "$CM?watch=true&resourceVersion=$rv&timeoutSeconds=1"
    expect "a watch from a resourceVersion" 200 \
        "[(e['type'], e['object']['metadata']['name'], e['object']['kind']) for e in events(d)]" \
        '[["MODIFIED", "l1", "ConfigMap"], ["DELETED", "l2", "ConfigMap"]]'
    req GET "$CM?watch=1&timeoutSeconds=1&labelSelector=app%3Da"
    expect "a watch without resourceVersion starts with ADDED" 200 \
        "[(e['type'], e['object']['metadata']['name']) for e in events(d)]" '[["ADDED", "l1"]]'
    req GET "$CM?watch=true&resourceVersion=1&timeoutSeconds=1"
    expect "a watch from a compacted resourceVersion" 200 \
        "[(e['type'], e['object']['code'], e['object']['reason']) for e in events(d)]" \
        '[["ERROR", 410, "Expired"]]'
    req POST $CM '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"posted"},"data":{"a":"1"}}' application/json
    expect "POST creates" 201 "d['metadata']['name']" posted
    jv "d['metadata']['resourceVersion']"
    rv=$JV_OUT
    req POST $CM '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"posted"}}' application/json
    expect "POST of an existing name" 409 "d['reason']" AlreadyExists "d['message']" 'configmaps "posted" already exists'
    req PUT $CM/posted '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"posted","resourceVersion":"2"},"data":{}}' application/json
    expect "PUT with a stale resourceVersion" 409 "d['reason']" Conflict
    req PUT $CM/posted '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"posted","resourceVersion":"'"$rv"'"},"data":{"b":"2"}}' application/json
    expect "PUT replaces" 200 "d['data']" '{"b": "2"}'
    req PATCH $CM/posted '{"data":{"c":"3","b":null}}' application/merge-patch+json
    expect "a merge patch" 200 "d['data']" '{"c": "3"}'
    req PATCH $CM/posted '[{"op":"add","path":"/data/d","value":"4"},{"op":"remove","path":"/data/c"}]' application/json-patch+json
    expect "a JSON patch" 200 "d['data']" '{"d": "4"}'
    req PATCH "$CM/posted?force=true" '{"data":{}}' application/merge-patch+json
    expect "force on a merge patch" 422 "d['message']" \
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch'
    req PATCH $CM/missing '{"data":{}}' application/merge-patch+json
    expect "a merge patch of a missing object" 404
}

case_concurrency() {
    local i pids=()
    for i in $(seq 1 24); do
        curl -sS -o /dev/null -w '%{http_code}\n' --cacert "$CERTS/ca.crt" "${AUTH_CERT[@]}" -X PATCH \
            -H "Content-Type: application/apply-patch+yaml" --data-binary "$(configmap "par-$i" '{"batch":"par"}' '{}')" \
            "https://localhost:$PORT$CM/par-$i?fieldManager=sovdev-agent&force=true" >>"$WORK/parallel" 2>&1 &
        pids+=($!)
    done
    wait "${pids[@]}"
    CHECKS=$((CHECKS + 1))
    [[ $(grep -c '^201$' "$WORK/parallel") -eq 24 ]] || fail "parallel applies: $(sort "$WORK/parallel" | uniq -c)"
    req GET "$CM?labelSelector=batch%3Dpar"
    expect "parallel applies all landed with distinct resourceVersions" 200 "len(d['items'])" 24 \
        "len({i['metadata']['resourceVersion'] for i in d['items']})" 24
}

run_all_cases() {
    case_auth
    case_discovery
    case_apply_create_merge
    case_apply_refusals
    case_deployments_and_generation
    case_crd_before_cr
    case_list_and_selectors
    case_delete
    case_health_modes
    case_drift_and_conflicts
    case_failure_injection
    case_request_log_and_keepalive
    case_watch_and_other_verbs
    case_concurrency
    case_realworld
    case_persistence
}
