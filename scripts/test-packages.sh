#!/usr/bin/env bash
# The deployment checks of issue #6, asserting (exit 1 on any failure):
#   1. systemd units: `systemd-analyze verify` clean (no message at all), and the
#      `systemd-analyze security --offline=true` exposure of each unit at most 4.9 ("OK").
#   2. Debian packages sovdev-agent and sovdev-hub built by CPack for amd64 (and arm64 when
#      build/arm64 holds the cross-built programs: scripts/build-arm64.sh): the expected files
#      (dpkg -c), control fields, stripped binaries of the right architecture, lintian clean of
#      errors.
#   3. The packages installed with dpkg -i (amd64; arm64 too when built, its programs run under
#      qemu): binaries, units, conffiles, users in place, `sovdev-agent --version` runs, the
#      installed units verify; then purged: nothing left.
# Usage: scripts/test-packages.sh [AMD64_BUILD_DIR]
#   AMD64_BUILD_DIR: a configured build tree whose sovdev-agent and sovdev-hub are built (CI can
#   pass build/gcc after its gcc stage: CPack strips, so the packages are the same). Default
#   build/pkg, configured and built here (-O2, no tests).
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$PWD

failures=0
pass() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*" >&2; failures=$((failures + 1)); }
check() {  # description, command... (its output is shown when it fails)
  local what=$1 out; shift
  if out=$("$@" 2>&1); then pass "$what"; else fail "$what"; [ -z "$out" ] || echo "$out" >&2; fi
}

if [ "$(id -u)" -ne 0 ]; then
  echo "test-packages: needs root (installs and purges packages)" >&2
  exit 1
fi
need=()
for p in lintian systemd dpkg-dev adduser; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "test-packages: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/sovdev-pkg-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- build the packages -----------------------------------------------------------------
amd64_build=${1:-build/pkg}
if [ $# -eq 0 ]; then
  echo "== building sovdev-agent and sovdev-hub (amd64) in build/pkg"
  cmake -S . -B build/pkg -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DSOVDEV_TESTS=OFF -DSOVDEV_BENCH=OFF >/dev/null
  cmake --build build/pkg -j "${JOBS:-2}" --target sovdev-agent sovdev-hub
fi
[ -f "$amd64_build/CPackConfig.cmake" ] || cmake "$amd64_build" >/dev/null  # older configure

make_packages() {  # build dir, output dir
  rm -rf "$2"
  # CPack's own output is kept for a failure only.
  if ! cpack --config "$1/CPackConfig.cmake" -B "$2" >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log" >&2
    return 1
  fi
  rm -rf "$2/_CPack_Packages"
}
echo "== packages"
arches=(amd64)
make_packages "$amd64_build" build/packages/amd64
if [ -x build/arm64/agent/sovdev-agent ] && [ -x build/arm64/hub/sovdev-hub ]; then
  make_packages build/arm64 build/packages/arm64
  arches+=(arm64)
else
  echo "  (no arm64 packages: build/arm64 lacks the programs; run scripts/build-arm64.sh)"
fi
ls -l build/packages/*/*.deb

# ---- 1. systemd units -------------------------------------------------------------------
echo "== systemd units"
# Before installation the units point at the built binaries (verify checks ExecStart exists);
# after installation the installed units are verified as they are.
verify_units() {  # unit files...
  local out
  out=$(systemd-analyze verify "$@" 2>&1) && [ -z "$out" ] || { echo "$out" >&2; return 1; }
}
mkdir -p "$work/units"
for c in agent agent-images hub; do
  sed -E "s#/usr/bin/sovdev-(agent|hub)#$root_dir/$amd64_build/\1/sovdev-\1#" \
    "systemd/sovdev-$c.service" >"$work/units/sovdev-$c.service"
done
check "systemd-analyze verify: sovdev-agent.service, sovdev-agent-images.service, sovdev-hub.service (no message)" \
  verify_units "$work/units/sovdev-agent.service" "$work/units/sovdev-agent-images.service" \
  "$work/units/sovdev-hub.service"
for c in agent agent-images hub; do
  line=$(systemd-analyze security --offline=true "systemd/sovdev-$c.service" 2>&1 |
    grep -E 'Overall exposure level' || true)
  score=$(sed -E 's/.*: ([0-9]+\.[0-9]+) .*/\1/' <<<"$line")
  echo "  sovdev-$c.service: ${line#→ }"
  if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 4.9) }'; then
    pass "sovdev-$c.service exposure $score is OK or better (<= 4.9)"
  else
    fail "sovdev-$c.service exposure '${score:-?}' above 4.9 (or not reported)"
  fi
done

# ---- 2. package contents ----------------------------------------------------------------
expected_files() {  # component
  case $1 in
    agent) printf '%s\n' ./usr/bin/sovdev-agent ./lib/systemd/system/sovdev-agent.service \
      ./lib/systemd/system/sovdev-agent-images.service \
      ./etc/sovdev/agent.toml ./usr/share/doc/sovdev-agent/copyright \
      ./usr/share/doc/sovdev-agent/changelog.Debian.gz ./usr/share/doc/sovdev-agent/README \
      ./usr/share/lintian/overrides/sovdev-agent ;;
    hub) printf '%s\n' ./usr/bin/sovdev-hub ./lib/systemd/system/sovdev-hub.service \
      ./etc/sovdev/hub.env ./usr/share/doc/sovdev-hub/copyright \
      ./usr/share/doc/sovdev-hub/changelog.Debian.gz ./usr/share/doc/sovdev-hub/README \
      ./usr/share/lintian/overrides/sovdev-hub ;;
  esac
}
for arch in "${arches[@]}"; do
  for c in agent hub; do
    deb=$(ls build/packages/$arch/sovdev-${c}_*_"$arch".deb 2>/dev/null | head -1)
    echo "== ${deb:-sovdev-$c ($arch): no package}"
    [ -n "$deb" ] || { fail "sovdev-$c ($arch) package was not built"; continue; }
    dpkg -c "$deb" >"$work/listing"
    awk '$1 !~ /^d/ { print $6 }' "$work/listing" | sort >"$work/files"
    expected_files $c | sort >"$work/expected"
    if diff -u "$work/expected" "$work/files" >"$work/diff"; then
      pass "dpkg -c: exactly the expected files ($(wc -l <"$work/files"))"
    else
      fail "dpkg -c differs from the expected files:"; cat "$work/diff" >&2
    fi
    grep -q "^-rwxr-xr-x root/root .* ./usr/bin/sovdev-$c$" "$work/listing" &&
      pass "binary mode 0755 root:root" || fail "binary mode or owner"
    check "Package: sovdev-$c" test "$(dpkg-deb -f "$deb" Package)" = "sovdev-$c"
    check "Architecture: $arch" test "$(dpkg-deb -f "$deb" Architecture)" = "$arch"
    dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/^ +//; s/[ (].*//' >"$work/depends"
    for d in adduser libc6 libstdc++6 libpaho-mqttpp3-1 libsqlite3-0 libzstd1 libsodium23 \
      libprotobuf-lite32; do
      grep -qxF "$d" "$work/depends" && pass "Depends on $d" || fail "Depends lacks $d"
    done
    dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work" -O ./conffiles >"$work/conffiles"
    check "conffiles: /etc/sovdev/$([ $c = agent ] && echo agent.toml || echo hub.env)" \
      grep -qx "/etc/sovdev/$([ $c = agent ] && echo agent.toml || echo hub.env)" "$work/conffiles"
    for s in postinst prerm postrm; do
      check "maintainer script $s" sh -c "dpkg-deb --ctrl-tarfile '$deb' | tar -t | grep -qx './$s'"
    done
    rm -rf "$work/x" && mkdir "$work/x" && dpkg-deb -x "$deb" "$work/x"
    machine=$([ $arch = arm64 ] && echo AArch64 || echo X86-64)
    check "ELF machine $machine" sh -c "readelf -h '$work/x/usr/bin/sovdev-$c' | grep -q 'Machine:.*$machine'"
    check "binary is stripped" sh -c "! readelf -S '$work/x/usr/bin/sovdev-$c' | grep -q '\\.symtab'"
    if lintian --fail-on error "$deb" >"$work/lintian" 2>&1; then
      pass "lintian: no errors"
    else
      fail "lintian reports errors:"
    fi
    grep -E '^[EW]:' "$work/lintian" >&2 || true
  done
done

# ---- 3. install, use, purge ------------------------------------------------------------
# amd64 natively; arm64 too where built (dpkg's foreign architecture arm64, the programs run
# under qemu-aarch64-static), which checks its Depends resolve against the arm64 libraries.
leftovers() {  # everything of ours outside dpkg's own bookkeeping
  find /etc /usr /lib /var /run -xdev \( -path /var/lib/dpkg -o -path /var/cache -o -path /var/log \
    -o -path /var/lib/apt -o -path /proc \) -prune -o -name '*sovdev*' -print 2>/dev/null | sort
}
install_cycle() {  # arch
  local arch=$1 run=() p u uid version
  [ "$arch" = amd64 ] || run=(qemu-aarch64-static)
  echo "== dpkg -i, then purge ($arch)"
  for p in sovdev-agent sovdev-hub; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed'; then
      echo "  (purging a $p left installed by an earlier run)"
      dpkg --purge "$p" >/dev/null
    fi
  done
  leftovers >"$work/before"
  if ! dpkg -i build/packages/$arch/sovdev-agent_*_"$arch".deb \
    build/packages/$arch/sovdev-hub_*_"$arch".deb >"$work/dpkg.log" 2>&1; then
    echo "  (dpkg -i left dependencies to resolve: apt-get install -f)"
    DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq >/dev/null
  fi
  for p in sovdev-agent sovdev-hub; do
    check "$p:$arch installed" \
      sh -c "dpkg-query -W -f='\${Status} \${Architecture}' $p | grep -qx 'install ok installed $arch'"
  done
  check "/usr/bin/sovdev-agent executable" test -x /usr/bin/sovdev-agent
  check "/usr/bin/sovdev-hub executable" test -x /usr/bin/sovdev-hub
  version=$("${run[@]}" /usr/bin/sovdev-agent --version 2>&1 || true)
  echo "  ${run[*]:+${run[*]} }sovdev-agent --version: $version"
  grep -q "^sovdev-agent [0-9].* ($arch)" <<<"$version" && pass "sovdev-agent --version runs" ||
    fail "sovdev-agent --version: '$version'"
  check "sovdev-hub --version runs" "${run[@]}" /usr/bin/sovdev-hub --version
  check "unit /lib/systemd/system/sovdev-agent.service as shipped" \
    cmp /lib/systemd/system/sovdev-agent.service systemd/sovdev-agent.service
  check "unit /lib/systemd/system/sovdev-hub.service as shipped" \
    cmp /lib/systemd/system/sovdev-hub.service systemd/sovdev-hub.service
  check "systemd-analyze verify on the installed units (no message)" \
    verify_units /lib/systemd/system/sovdev-agent.service /lib/systemd/system/sovdev-hub.service
  check "conffile /etc/sovdev/agent.toml is the example config" \
    cmp /etc/sovdev/agent.toml config/agent.example.toml
  check "dpkg knows /etc/sovdev/agent.toml as a conffile" \
    sh -c "dpkg-query -W -f='\${Conffiles}' sovdev-agent | grep -q ' /etc/sovdev/agent.toml '"
  check "dpkg knows /etc/sovdev/hub.env as a conffile" \
    sh -c "dpkg-query -W -f='\${Conffiles}' sovdev-hub | grep -q ' /etc/sovdev/hub.env '"
  for u in sovdev sovdev-hub; do
    uid=$(getent passwd "$u" | cut -d: -f3 || true)
    if [ -n "$uid" ] && [ "$uid" -lt 1000 ]; then pass "system user $u (uid $uid)"; else
      fail "system user $u missing or not a system user ('$uid')"; fi
  done
  check "/etc/sovdev/keys is root-only (0700)" \
    test "$(stat -c '%a %U' /etc/sovdev/keys 2>/dev/null)" = "700 root"
  check "the units are not enabled on install" \
    sh -c "! deb-systemd-helper --quiet was-enabled sovdev-agent.service"
  # What a running agent and an admin leave: the cache, the trust root, an edited conffile.
  install -d -o sovdev -g sovdev -m 0700 /var/lib/sovdev-agent
  install -o sovdev -g sovdev -m 0600 /dev/null /var/lib/sovdev-agent/agent.db
  install -m 0644 /dev/null /etc/sovdev/trust.root
  echo '# edited by the admin' >>/etc/sovdev/agent.toml
  install -d -o sovdev-hub -g sovdev-hub -m 0700 /var/lib/sovdev-hub
  install -o sovdev-hub -g sovdev-hub -m 0600 /dev/null /var/lib/sovdev-hub/hub.db

  dpkg --purge sovdev-agent sovdev-hub >"$work/purge.log" 2>&1 || {
    cat "$work/purge.log" >&2; fail "dpkg --purge"; }
  for p in sovdev-agent sovdev-hub; do
    check "$p purged" sh -c "! dpkg-query -W -f='\${Status}' $p 2>/dev/null | grep -q installed"
  done
  leftovers >"$work/after"
  if diff -u "$work/before" "$work/after" >"$work/diff"; then
    pass "nothing of sovdev left in /etc /usr /lib /var /run after purge"
  else
    fail "left after purge:"; cat "$work/diff" >&2
  fi
  check "user sovdev removed" sh -c "! getent passwd sovdev"
  check "user sovdev-hub removed" sh -c "! getent passwd sovdev-hub"
  check "/etc/sovdev removed" test ! -e /etc/sovdev
}
for arch in "${arches[@]}"; do install_cycle "$arch"; done

echo
if [ "$failures" -eq 0 ]; then
  echo "test-packages: all checks passed (${arches[*]})"
else
  echo "test-packages: $failures check(s) failed" >&2
  exit 1
fi
