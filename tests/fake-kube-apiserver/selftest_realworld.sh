# The real-world-shaped cases of selftest.sh, sourced by it: a whole stack applied, re-applied
# and upgraded as the agent would.
#  - case_realworld: the in-repo edge-stack fixture (tests/fixtures/edge-stack), always.
#  - case_realworld_corpus: the kube-prometheus corpus beside the repository
#    (../../../shared/realworld, or $SOVDEV_REALWORLD_DIR), run by `selftest.sh realworld`; without
#    the corpus it prints the SOVDEV-SKIP line ctest reports as SKIPPED.
# shellcheck shell=bash

EDGE_STACK=$HERE/../fixtures/edge-stack
REALWORLD=${SOVDEV_REALWORLD_DIR:-$HERE/../../../shared/realworld}/kube-prometheus

# apply_manifests DIR OUT: applies every object of DIR's YAML (Lists split, Namespaces and
# CRDs first) the way the agent does, in one curl run over one connection, writing
# "<code> <url>" lines to OUT.
apply_manifests() {
    local dir=$1 out=$2
    python3 - "$dir" "$WORK" "https://localhost:$PORT" "$CERTS" >"$WORK/apply.curlrc" <<'PY' || fail "planning $dir"
import glob, json, os, ssl, sys, urllib.request
sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["FAKE_KUBE_DIR"])
from fakekube.bodies import _Loader
import yaml
folder, work, url, certs = sys.argv[1:]
ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
ctx.load_cert_chain(f"{certs}/client.crt", f"{certs}/client.key")
get = lambda path: json.load(urllib.request.urlopen(url + path, context=ctx))
scopes = {}   # (apiVersion, kind) -> (plural, namespaced), from discovery as the agent reads it
for gv in ["v1"] + [v["groupVersion"] for g in get("/apis")["groups"] for v in g["versions"]]:
    for r in get(("/api/" if gv == "v1" else "/apis/") + gv)["resources"]:
        if "/" not in r["name"]:      # deployments/status and such are subresources
            scopes[(gv, r["kind"])] = (r["name"], r["namespaced"])
docs = []
for f in sorted(glob.glob(folder + "/**/*.yaml", recursive=True)):
    for d in yaml.load_all(open(f), Loader=_Loader):
        if d:
            docs.extend(d["items"] if d["kind"].endswith("List") else [d])
for d in docs:   # custom kinds: their CRD is in the same set, not in discovery yet
    if d["kind"] == "CustomResourceDefinition":
        s = d["spec"]
        for v in s["versions"]:
            scopes[(f"{s['group']}/{v['name']}", s["names"]["kind"])] = (s["names"]["plural"], s["scope"] == "Namespaced")
docs.sort(key=lambda d: d["kind"] not in ("Namespace", "CustomResourceDefinition"))
for i, d in enumerate(docs):
    plural, namespaced = scopes[(d["apiVersion"], d["kind"])]
    base = ("/apis/" if "/" in d["apiVersion"] else "/api/") + d["apiVersion"]
    ns = f"/namespaces/{d['metadata'].get('namespace', 'default')}" if namespaced else ""
    with open(f"{work}/doc-{i}.json", "w") as out:
        json.dump(d, out)
    if i:
        print("next")
    print(f'url = "{url}{base}{ns}/{plural}/{d["metadata"]["name"]}?fieldManager=sovdev-agent&force=true"')
    print(f'request = PATCH\ncacert = "{certs}/ca.crt"\ncert = "{certs}/client.crt"\nkey = "{certs}/client.key"')
    print(f'header = "Content-Type: application/apply-patch+yaml"\ndata-binary = "@{work}/doc-{i}.json"')
    print(f'output = "{work}/doc-{i}.out"\nwrite-out = "%{{http_code}} %{{url_effective}} {work}/doc-{i}.out\\n"')
PY
    curl -sS -K "$WORK/apply.curlrc" >"$out" || fail "curl failed applying $dir"
    local code url body
    while read -r code url body; do
        [[ $code == 20[01] ]] || echo "  $code $url: $(head -c 300 "$body")" >&2
    done <"$out"
}

# every_line_is CODE OUT [OTHER COUNT]: every response in OUT had CODE, except exactly COUNT that
# had OTHER.
every_line_is() {
    local code=$1 out=$2 other=${3-} count=${4-0} others=0
    CHECKS=$((CHECKS + 1))
    [[ -n $other ]] && others=$(grep -c "^$other " "$out")
    [[ $others -eq $count && $(grep -v "^${other:-x} " "$out" | grep -vc "^$code ") -eq 0 ]] ||
        fail "$out: want every response $code${other:+ but $count $other}, got: $(cut -d' ' -f1 "$out" | sort | uniq -c | tr '\n' ' ')"
}

case_realworld() {
    export FAKE_KUBE_DIR=$HERE
    apply_manifests "$EDGE_STACK/v1/manifests" "$WORK/applied-1"
    every_line_is 201 "$WORK/applied-1"
    CHECKS=$((CHECKS + 1))
    [[ $(wc -l <"$WORK/applied-1") -eq 271 ]] || fail "edge-stack v1: $(wc -l <"$WORK/applied-1") objects applied, want 271"
    control GET objects
    jv "d['resourceVersion']"
    local rv=$JV_OUT
    apply_manifests "$EDGE_STACK/v1/manifests" "$WORK/applied-2"
    control GET objects
    expect "re-applying edge-stack changes nothing" 200 "d['resourceVersion']" "$rv"
    every_line_is 200 "$WORK/applied-2"
    # The upgrade adds one SiteProbe (created) and changes the rest in place or not at all.
    apply_manifests "$EDGE_STACK/v2/manifests" "$WORK/applied-3"
    every_line_is 200 "$WORK/applied-3" 201 1
    req GET "/apis/apps/v1/namespaces/edge-observe/daemonsets/node-collector"
    expect "the upgrade rolled node-collector" 200 "d['metadata']['generation']" 2 \
        "d['spec']['template']['spec']['containers'][0]['image']" registry.edgestack.example/edge/node-collector:v1.8.3
    req GET /apis/observe.edgestack.example/v1/namespaces/edge-observe/siteprobes/uplink-backup
    expect "the custom resource the upgrade adds" 200 "d['kind']" SiteProbe
    req GET /apis/observe.edgestack.example/v1/retentionpolicies/audit
    expect "a cluster-scoped custom resource" 200 "d['spec']['keep']" 90d
}

case_realworld_corpus() {
    if [[ ! -d $REALWORLD/81570cb1/manifests || ! -d $REALWORLD/f214874c/manifests ]]; then
        echo "SOVDEV-SKIP: $REALWORLD not found (set SOVDEV_REALWORLD_DIR to the corpus)"
        return
    fi
    export FAKE_KUBE_DIR=$HERE
    apply_manifests "$REALWORLD/81570cb1/manifests" "$WORK/applied-1"
    every_line_is 201 "$WORK/applied-1"
    control GET objects
    jv "d['resourceVersion']"
    local rv=$JV_OUT
    apply_manifests "$REALWORLD/81570cb1/manifests" "$WORK/applied-2"
    control GET objects
    expect "re-applying kube-prometheus changes nothing" 200 "d['resourceVersion']" "$rv"
    every_line_is 200 "$WORK/applied-2"
    apply_manifests "$REALWORLD/f214874c/manifests" "$WORK/applied-3"
    every_line_is 200 "$WORK/applied-3"
    req GET "/apis/apps/v1/namespaces/monitoring/deployments/grafana"
    expect "the upgrade rolled grafana" 200 "d['metadata']['generation']" 2 "d['status']['observedGeneration']" 2
    req GET /apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses/k8s
    expect "a custom resource of the stack" 200 "d['kind']" Prometheus
}
