#!/usr/bin/env bash
# A walk-through of the offline path from hub to agent (the main job is scripts/demo.sh).
#   keys and trust root -> build a signed bundle -> inspect -> verify -> import into the
#   agent's cache -> an upgrade -> the attacks the agent refuses.
# Installs what it needs and builds first. Leaves nothing running; its files go to a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== building"
bash scripts/build.sh gcc sovdev-hub sovdev-agent >/dev/null
hub=$PWD/build/gcc/hub/sovdev-hub
agent=$PWD/build/gcc/agent/sovdev-agent

# A real-world-shaped stack and an upgrade of it, in the repository: the walk-through is the same
# on every machine (tests/fixtures/edge-stack/README.md says what is in it).
v1=$PWD/tests/fixtures/edge-stack/v1/manifests; v2=$PWD/tests/fixtures/edge-stack/v2/manifests
stack=edge-stack

work=$(mktemp -d /tmp/sovdev-demo-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*" | sed "s#$hub#sovdev-hub#; s#$agent#sovdev-agent#"; "$@"; }

step "hub: a root and a targets key (kept offline), the serving hub's online key, the trust root"
show "$hub" keygen --out keys --name root-1
show "$hub" keygen --out keys --name targets-1
show "$hub" keygen --out keys --name online-1
show "$hub" trust init --root keys/root-1.pub --targets keys/targets-1.pub \
  --online keys/online-1.pub --sign keys/root-1.key --out trust.root

step "hub: build $stack version 1 for the edge channel into one signed file"
show "$hub" build "$v1" --stack "$stack" --channel edge --version 1 --arch amd64,arm64 \
  --key keys/targets-1.key --trust trust.root --env edge --out "$stack-1.sdb"
show "$hub" inspect "$stack-1.sdb" --trust trust.root

step "the file travels (USB stick); the agent verifies it completely, then imports it"
show "$agent" verify --trust trust.root "$stack-1.sdb"
show "$agent" import --state agent-state --trust trust.root --channel edge "$stack-1.sdb"

step "an upgrade: version 2 from the next upstream commit"
show "$hub" build "$v2" --stack "$stack" --channel edge --version 2 --arch amd64,arm64 \
  --key keys/targets-1.key --env edge --out "$stack-2.sdb"
show "$agent" import --state agent-state --channel edge "$stack-2.sdb"
show "$agent" status --state agent-state

step "what the agent refuses (each with its own exit code)"
refuse() {
  local label=$1; shift
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  [ $rc -ne 0 ] || { echo "demo: expected a refusal for: $label" >&2; exit 1; }
  printf '%-34s exit %-2d %s\n' "$label" "$rc" "$(head -c 150 <<<"$out")"
}
refuse "rollback to version 1" "$agent" import --state agent-state --channel edge "$stack-1.sdb"
cp "$stack-2.sdb" tampered.sdb
printf '\x00' | dd of=tampered.sdb bs=1 seek=$(( $(stat -c %s tampered.sdb) - 10 )) conv=notrunc status=none
refuse "one byte changed in the payload" "$agent" verify --trust trust.root tampered.sdb
head -c 20000 "$stack-2.sdb" > truncated.sdb
refuse "truncated copy" "$agent" verify --trust trust.root truncated.sdb
"$hub" keygen --out keys --name intruder >/dev/null
"$hub" build "$v2" --stack "$stack" --channel edge --version 3 --arch amd64,arm64 \
  --key keys/intruder.key --out forged.sdb --quiet >/dev/null
refuse "signed by an unknown key" "$agent" import --state agent-state --channel edge forged.sdb
"$hub" build "$v2" --stack "$stack" --channel edge --version 3 --arch amd64,arm64 \
  --key keys/online-1.key --out by-hub.sdb --quiet >/dev/null
refuse "signed by the hub's online key" "$agent" import --state agent-state --channel edge by-hub.sdb
refuse "bundle for another channel" "$agent" import --state agent-state --channel prod "$stack-2.sdb"

step "over MQTT: a broker on loopback, the hub serving, a second agent pulling into a folder"
for try in 1 2 3 4 5; do
  port=$(( 20000 + RANDOM % 40000 ))
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nlog_dest stderr\n' "$port" > mosquitto.conf
  mosquitto -c mosquitto.conf 2> mosquitto.log & pids+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
done
show "$hub" publish "$stack-1.sdb" --db hub.db --key keys/online-1.key --trust trust.root
"$hub" serve --db hub.db --key keys/online-1.key --trust trust.root --broker "tcp://127.0.0.1:$port" \
  --group "demo-$RANDOM$RANDOM" 2> hub.log & pids+=($!)
mkdir -p applied
cat > agent.toml <<TOML
agent_id = "edge-01"
channels = ["edge"]
state_dir = "$work/edge-01-state"
trust_root = "$work/trust.root"
[broker]
urls = ["tcp://127.0.0.1:$port"]
[apply]
target = "dir"
dir = "$work/applied"
TOML
show "$agent" check-config agent.toml >/dev/null && echo "agent.toml is valid"
show "$agent" sync --once --config agent.toml --timeout 60
echo "$(ls applied | wc -l) object files written to the dir target"
step "the hub publishes version 2: the agent catches up with a delta"
show "$hub" publish "$stack-2.sdb" --db hub.db --key keys/online-1.key --trust trust.root \
  --broker "tcp://127.0.0.1:$port" --username hub
show "$agent" sync --once --config agent.toml --timeout 60
grep -h "delta" hub.log | tail -1 | sed 's/^/hub: /'
show "$hub" status --db hub.db

step "done: nothing is left running"
