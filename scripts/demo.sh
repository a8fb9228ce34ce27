#!/usr/bin/env bash
# The main job: one SovDev stack kept identical in shape across dev, staging, prod and edge.
#
# With nothing but loopback: mosquitto with TLS (client certificates) and the topic ACLs, a hub,
# and four agents (dev, staging, prod, edge), each with its own state and X25519 key, enrolled on
# the hub. Every credential of the stack is generated or set on the hub, kept encrypted in
# hub.db and sealed into the bundles for the environment's agents: no Secret is made by hand.
# The hub builds, signs and publishes stacks/sovdev for each environment; every agent pulls,
# verifies, caches, opens its secrets and applies its own; the service availability matrix is printed from what the agents report. Then the
# edge agent goes offline, a new edge version is published, and the agent catches up with a
# delta when it comes back.
#
# Agents apply into folders (the `dir` target) under a temporary directory; with KUBECONFIG set,
# the dev agent applies to that cluster instead. Leaves nothing running.
#
#   bash scripts/demo.sh            installs what is missing, builds, runs
#   bash scripts/demo.sh --short    uses the programs in $SOVDEV_BUILD_DIR (default build/gcc)
#                                   as they are, prints less; SOVDEV_DEMO_REPORT=FILE keeps the
#                                   final `sovdev-hub status --json` (the test suite checks it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
short=false
[ "${1:-}" = "--short" ] && short=true
build=${SOVDEV_BUILD_DIR:-$repo/build/gcc}
if ! $short; then
  bash scripts/setup.sh
  echo "== building"
  bash scripts/build.sh gcc sovdev-hub sovdev-agent >/dev/null
fi
hub=$build/hub/sovdev-hub
agent=$build/agent/sovdev-agent
[ -x "$hub" ] && [ -x "$agent" ] || { echo "demo: $hub or $agent is missing: build first" >&2; exit 1; }

work=$(mktemp -d /tmp/sovdev-demo-XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "demo failed (exit $rc); the last lines of each log:" >&2
    for f in "$work"/logs/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/logs"
cd "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
quiet() { if $short; then "$@" >/dev/null; else "$@"; fi; }

free_port() {
  local port
  for _ in $(seq 50); do
    port=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  echo "demo: no free port found" >&2
  return 1
}
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: nothing listens on port $1" >&2
  return 1
}
# wait_for SECONDS WHAT PYTHON-CONDITION: polls `sovdev-hub status --json` (as `s`) until the
# condition holds.
wait_for() {
  local deadline=$(( $(date +%s) + $1 )) what=$2 cond=$3
  until "$hub" status --db hub.db --json 2>/dev/null | python3 -c "
import json, sys
s = json.load(sys.stdin)
agents = {a['agent']: a for a in s['agents']}
sys.exit(0 if ($cond) else 1)"; do
    for env in "${!agent_pids[@]}"; do
      if ! kill -0 "${agent_pids[$env]}" 2>/dev/null; then
        echo "demo: the $env agent exited: $(tail -n 3 "logs/agent-$env-1.log")" >&2
        return 1
      fi
    done
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "demo: timed out after $1 s waiting until $what" >&2
      "$hub" status --db hub.db >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

envs=(dev staging prod edge)
declare -A agent_pids=()
step "keys: root and targets keys (kept offline), the hub's online key; the trust root agents pin"
quiet "$hub" keygen --out keys --name root-1
quiet "$hub" keygen --out keys --name targets-1
quiet "$hub" keygen --out keys --name online-1
quiet "$hub" trust init --root keys/root-1.pub --targets keys/targets-1.pub \
  --online keys/online-1.pub --sign keys/root-1.key --out trust.root

step "broker: mosquitto with TLS client certificates (CN = agent id) and the topic ACLs"
mkdir -p broker
sh "$repo/deploy/mosquitto/make-certs.sh" broker/certs dev-1 staging-1 prod-1 edge-1 >/dev/null 2>&1
head -c 18 /dev/urandom | base64 > hub.password
touch broker/passwd
mosquitto_passwd -b broker/passwd sovdev-hub "$(cat hub.password)" 2>/dev/null
cp "$repo/deploy/mosquitto/acl" broker/acl
port=$(free_port)
tls_port=$(free_port)
sed -e "s#/etc/mosquitto/sovdev#$work/broker#g" \
    -e "s#^persistence_location .*#persistence_location $work/broker/#" \
    -e "s#^log_dest .*#log_dest file $work/logs/mosquitto.log#" \
    -e "s#^listener 1883 .*#listener $port 127.0.0.1#" \
    -e "s#^listener 8883.*#listener $tls_port 127.0.0.1#" \
    "$repo/deploy/mosquitto/mosquitto.conf" > broker/mosquitto.conf
echo "user $(id -un)" >> broker/mosquitto.conf
MALLOC_TRIM_THRESHOLD_=8388608 MALLOC_TOP_PAD_=4194304 \
  mosquitto -c broker/mosquitto.conf 2>>logs/mosquitto.log & pids+=($!)
wait_port "$port"
wait_port "$tls_port"
echo "mosquitto: hub on 127.0.0.1:$port (password), agents on 127.0.0.1:$tls_port (TLS, client certificates)"

step "hub: serving fetch requests and recording what agents report"
group="hubs-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
broker_opts=(--broker "tcp://127.0.0.1:$port" --username sovdev-hub --password-file hub.password)
"$hub" serve --db hub.db --key keys/online-1.key --trust trust.root --group "$group" "${broker_opts[@]}" \
  --metrics-listen 127.0.0.1:0 2> logs/hub.log & pids+=($!)
for _ in $(seq 100); do
  metrics=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' logs/hub.log | head -1) && break
  sleep 0.1
done
[ -n "$metrics" ] || { echo "demo: the hub did not start its metrics endpoint" >&2; exit 1; }
echo "hub: Prometheus metrics on $metrics"

step "one stack, four environments: what differs is stated once, in stacks/sovdev/env/<env>.toml"
python3 - "$repo/stacks/sovdev/env" <<'PY'
import re, sys, tomllib
envs = ["dev", "staging", "prod", "edge"]
v = {e: tomllib.load(open(f"{sys.argv[1]}/{e}.toml", "rb")) for e in envs}
def val(e, k, d="-"):  # values may name values: AUTHENTIK_HOST = "auth.${BASE_DOMAIN}"
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: val(e, m.group(1)), str(v[e]["values"].get(k, d)))
def excluded(e, path): return path in v[e]["build"].get("exclude", [])
rows = [
    ("arch", lambda e: ",".join(v[e]["build"]["arch"])),
    ("auth host", lambda e: val(e, "AUTHENTIK_HOST")),
    ("PostgreSQL", lambda e: "external" if excluded(e, "postgresql/in-cluster")
        else f'{val(e, "PG_STORAGE")} x{val(e, "PG_REPLICAS")}'),
    ("Redis", lambda e: "external" if excluded(e, "redis/memory") and excluded(e, "redis/persistent")
        else ("persistent" if excluded(e, "redis/memory") else "in memory") + f' {val(e, "REDIS_MAXMEMORY", "")}'),
    ("OpenWebUI", lambda e: f'{val(e, "OPENWEBUI_MIN_REPLICAS", "1")}-{val(e, "OPENWEBUI_MAX_REPLICAS", "1")} replicas, {val(e, "OPENWEBUI_MEMORY_LIMIT")}'),
]
print(f'{"":13}' + "".join(f"{e:<34}" for e in envs))
for name, f in rows:
    print(f"{name:13}" + "".join(f"{f(e):<34}" for e in envs))
PY

configure_agent() {
  local env=$1 id="$1-1" arch=amd64 target
  [ "$env" = edge ] && arch=arm64  # the edge boxes are ARM64: they refuse amd64-only bundles
  mkdir -p "agents/$id" "clusters/$env"
  target="target = \"dir\"
dir = \"$work/clusters/$env\""
  if [ "$env" = dev ] && [ -n "${KUBECONFIG:-}" ]; then
    target="target = \"kube\"
kubeconfig = \"$KUBECONFIG\""
  fi
  cat > "agents/$id/agent.toml" <<EOF
agent_id = "$id"
channels = ["$env"]
state_dir = "$work/agents/$id/state"
trust_root = "$work/trust.root"
arch = "$arch"
[broker]
urls = ["ssl://127.0.0.1:$tls_port"]
ca_file = "$work/broker/certs/ca.crt"
cert_file = "$work/broker/certs/$id.crt"
key_file = "$work/broker/certs/$id.key"
[sync]
backoff_min_seconds = 1
backoff_max_seconds = 5
[apply]
$target
EOF
}
start_agent() {
  "$agent" run --config "agents/$1-1/agent.toml" >> "logs/agent-$1-1.log" 2>&1 & pids+=($!)
  agent_pids[$1]=$!
}

step "secrets: the hub's encrypted store, each environment's values, the agents' keys enrolled"
sk=(--db hub.db --store-key keys/secret-store.key)
quiet "$hub" secret init --store-key keys/secret-store.key
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=*.company.com" \
  -keyout tls.key -out tls.crt >/dev/null 2>&1
for env in "${envs[@]}"; do
  set_value() { printf '%s' "$3" | quiet "$hub" secret set "${sk[@]}" --env "$env" "$1" "$2"; }
  gen() { "$hub" secret generate "${sk[@]}" --env "$env" "$@" >/dev/null; }
  set_value postgresql-credentials username sovdev
  gen postgresql-credentials password --charset hex
  [ "$env" = prod ] || gen postgresql-credentials replication-password --charset hex
  gen redis-credentials password --charset hex
  gen authentik-secrets secret-key --length 50
  gen authentik-secrets bootstrap-password --length 24
  set_value litellm-secrets master-key "sk-$(hex 24)"
  [ "$env" = edge ] || set_value litellm-provider api-key "demo-provider-key-$(hex 8)"
  gen open-webui-secrets secret-key --charset hex
  set_value grafana-secrets admin-user admin
  gen grafana-secrets admin-password --length 24
  if [ "$env" = prod ]; then
    quiet "$hub" secret set "${sk[@]}" --env prod sovdev-tls tls.crt --from-file tls.crt
    quiet "$hub" secret set "${sk[@]}" --env prod sovdev-tls tls.key --from-file tls.key
  fi
  configure_agent "$env"
  quiet "$agent" keygen --config "agents/$env-1/agent.toml"
  quiet "$hub" agents add "$env-1" --pub "agents/$env-1/state/agent.pub" --channel "$env" "${sk[@]}"
done
rm -f tls.key
$short || "$hub" secret list --db hub.db --env edge

step "hub: render, build, sign and publish stacks/sovdev for each environment"
for env in "${envs[@]}"; do
  quiet "$hub" build "$repo/stacks/sovdev" --env "$env" --version 1 --key keys/targets-1.key \
    --trust trust.root "${sk[@]}" --out "sovdev-$env-1.sdb" --quiet
  quiet "$hub" publish "sovdev-$env-1.sdb" --db hub.db --key keys/online-1.key \
    --trust trust.root "${broker_opts[@]}"
done
$short || ls -l sovdev-*-1.sdb | awk '{print "  " $9 ": " $5 " bytes"}'

step "agents: one per environment, each with its own state, certificate and target"
for env in "${envs[@]}"; do start_agent "$env"; done
dev_target="dir target"; [ -n "${KUBECONFIG:-}" ] && dev_target="kube target, $KUBECONFIG"
echo "started dev-1 ($dev_target), staging-1, prod-1, edge-1 (arm64)"

step "waiting until every agent reports its environment healthy"
wait_for 120 "all four agents are healthy at version 1" \
  "all(agents.get(e + '-1', {}).get('state') == 'healthy' and agents[e + '-1']['applied_version'] == 1 for e in ['dev', 'staging', 'prod', 'edge'])"
"$hub" status --db hub.db
for env in "${envs[@]}"; do
  [ "$env" = dev ] && [ -n "${KUBECONFIG:-}" ] && continue
  printf '  %-8s %3d objects in %s\n' "$env" "$(find "clusters/$env" -name '*.json' | wc -l)" "clusters/$env"
done
# Every Secret the clusters hold came sealed in its bundle and was opened by its agent: each has
# every key filled, and no bundle holds a value in the clear.
python3 - "$work" "${envs[@]}" <<'PY'
import base64, glob, json, os, sys
work, envs = sys.argv[1], sys.argv[2:]
for env in envs:
    root = f"{work}/clusters/{env}"
    if not os.path.isdir(root):
        continue
    secrets = [json.load(open(f)) for f in glob.glob(f"{root}/**/*.json", recursive=True)]
    secrets = [o for o in secrets if isinstance(o, dict) and o.get("kind") == "Secret"]
    keys = sum(len(o.get("data", {})) for o in secrets)
    empty = [o["metadata"]["name"] for o in secrets if not all(o.get("data", {}).values())]
    bundle = open(f"{work}/sovdev-{env}-1.sdb", "rb").read()
    leaked = [o["metadata"]["name"] for o in secrets for v in o.get("data", {}).values()
              if len(v) > 8 and (v.encode() in bundle or base64.b64decode(v) in bundle)]
    if empty or leaked:
        sys.exit(f"demo: {env}: Secrets with empty keys {empty}, readable in the bundle {leaked}")
    print(f"  {env:8} {len(secrets)} Secrets, {keys} keys, every one sealed in the bundle and opened by {env}-1")
PY

step "edge goes offline (the LTE link drops: the agent is killed, the broker sends its last will)"
kill -9 "${agent_pids[edge]}"
wait "${agent_pids[edge]}" 2>/dev/null || true
unset 'agent_pids[edge]'
wait_for 30 "the hub sees edge-1 offline" "agents['edge-1']['state'] == 'offline'"
"$hub" status --db hub.db | sed -n '1,9p'

step "meanwhile: a new edge version (Grafana upgraded, PostgreSQL tuned) is built and published"
cp -r "$repo/stacks/sovdev" stack
sed -i 's/^PG_WORK_MEM = .*/PG_WORK_MEM = "4MB"/' stack/env/edge.toml
printf '\n# the demo: a Grafana upgrade for edge only\nGRAFANA_TAG = "11.3.2"\n' >> stack/env/edge.toml
quiet "$hub" build stack --stack sovdev --env edge --version 2 --key keys/targets-1.key \
  --trust trust.root "${sk[@]}" --out sovdev-edge-2.sdb --quiet
quiet "$hub" publish sovdev-edge-2.sdb --db hub.db --key keys/online-1.key \
    --trust trust.root "${broker_opts[@]}"
full=$(stat -c %s sovdev-edge-2.sdb)

step "edge comes back: it resyncs from the retained catalog and fetches only what changed"
start_agent edge
wait_for 120 "edge-1 is healthy at version 2" \
  "agents['edge-1']['state'] == 'healthy' and agents['edge-1']['applied_version'] == 2"
"$hub" status --db hub.db --json | python3 -c "
import json, sys
a = {x['agent']: x for x in json.load(sys.stdin)['agents']}['edge-1']
full = $full
kind = 'a delta' if a['last_fetch_delta'] else 'the full bundle'
print(f\"edge-1 caught up to version 2 with {kind}: {a['last_fetch_bytes']:,} bytes on the wire \"
      f\"vs {full:,} bytes for the full bundle ({100.0 * a['last_fetch_bytes'] / full:.1f} %), \"
      f\"in {a['last_fetch_ms']} ms\")"
grep -q "grafana/grafana:11.3.2" -r clusters/edge || { echo "demo: edge's Grafana was not upgraded" >&2; exit 1; }
echo "clusters/edge now holds Grafana 11.3.2 and work_mem 4MB; dev, staging and prod are unchanged"

step "the fleet now"
"$hub" status --db hub.db
echo
echo "the same from the hub's Prometheus endpoint ($metrics), what the Grafana dashboard shows:"
curl -sf "$metrics" | grep -E '^sovdev_(agents\{state="(healthy|offline)"\}|service_healthy\{agent="edge-1"|agent_last_fetch_(bytes|delta)\{agent="edge-1"|hub_bytes_served_total)' |
  sed 's/^/  /'

[ -n "${SOVDEV_DEMO_REPORT:-}" ] && "$hub" status --db hub.db --json > "$SOVDEV_DEMO_REPORT"

step "done: stopping the agents, the hub and the broker"
