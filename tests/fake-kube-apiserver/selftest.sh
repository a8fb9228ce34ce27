#!/usr/bin/env bash
# selftest.sh [realworld] — start the fake kube-apiserver and check its behaviour with curl.
# Exits non-zero (listing every mismatch) when the double misbehaves. Needs python3, curl, openssl.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVER=${FAKE_KUBE_APISERVER:-$HERE/fake_kube_apiserver.py}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fake-kube-selftest.XXXXXX")
CERTS=$WORK/certs
PID=
PORT=
FAILURES=0
CHECKS=0

cleanup() {
    [[ -n ${JV_PID-} ]] && kill "$JV_PID" 2>/dev/null
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill "$PID"; wait "$PID" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $*" >&2; }

start_server() {
    : >"$WORK/out"
    python3 "$SERVER" --port 0 --cert "$CERTS/server.crt" --key "$CERTS/server.key" \
        --client-ca "$CERTS/ca.crt" --token tok-a --state "$WORK/state.json" >"$WORK/out" 2>>"$WORK/err" &
    PID=$!
    local deadline=$((SECONDS + 10))
    until grep -q '^LISTENING ' "$WORK/out"; do
        if ! kill -0 "$PID" 2>/dev/null || ((SECONDS > deadline)); then
            echo "the server did not start:" >&2
            cat "$WORK/err" >&2
            exit 1
        fi
        sleep 0.05
    done
    PORT=$(awk '/^LISTENING /{print $2}' "$WORK/out")
    [[ $(wc -l <"$WORK/out") -eq 1 ]] || fail "stdout must hold exactly one line, got: $(cat "$WORK/out")"
}

stop_server() {
    kill -TERM "$PID"
    wait "$PID"
    local rc=$?
    PID=
    [[ $rc -eq 0 ]] || fail "the server exited with $rc on SIGTERM, want 0"
}

AUTH_CERT=(--cert "$CERTS/client.crt" --key "$CERTS/client.key")
AUTH=("${AUTH_CERT[@]}")

# req METHOD PATH [BODY [CONTENT-TYPE]] [-- extra curl args]: sets CODE and writes the body to $WORK/body
req() {
    local method=$1 path=$2 body='' ctype=application/apply-patch+yaml
    shift 2
    if (($# > 0)) && [[ $1 != -- ]]; then body=$1; shift; fi
    if (($# > 0)) && [[ $1 != -- ]]; then ctype=$1; shift; fi
    if (($# > 0)) && [[ $1 == -- ]]; then shift; fi
    local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method" --cacert "$CERTS/ca.crt" "${AUTH[@]}")
    [[ -n $body ]] && args+=(-H "Content-Type: $ctype" --data-binary "$body")
    : >"$WORK/body"
    CODE=$(curl "${args[@]}" "$@" "https://localhost:$PORT$path" 2>"$WORK/curl.err") || CODE="curl-exit-$?"
}

apply() { # apply PATH BODY [QUERY]: server-side apply as the agent does it
    req PATCH "$1?fieldManager=sovdev-agent&force=true${3:+&$3}" "$2"
}

control() { req "$1" "/_fake/$2" "${3-}" application/json; }

# One Python process evaluates every JSON check (a new interpreter per check is too slow).
EVALUATOR='
import json, sys
def events(d):  # a watch body: one JSON event per line
    return [d] if isinstance(d, dict) else [json.loads(l) for l in d.splitlines()]
for line in sys.stdin:
    path, expr = line.rstrip("\n").split("\t", 1)
    try:
        with open(path) as f:
            text = f.read()
        try:
            d = json.loads(text)
        except ValueError:
            d = text
        v = eval(expr)
        out = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    except Exception as e:
        out = f"<{type(e).__name__}: {e}>"
    print(out.replace("\n", "\\n"), flush=True)
'
coproc JV { python3 -u -c "$EVALUATOR"; }

# jv PYEXPR: sets JV_OUT to PYEXPR evaluated with d = the last response body (strings raw, the rest JSON)
jv() {
    printf '%s\t%s\n' "$WORK/body" "$1" >&"${JV[1]}"
    IFS= read -r JV_OUT <&"${JV[0]}"
}

# expect DESCRIPTION CODE [PYEXPR WANT]...: the last response had CODE and each PYEXPR gives WANT
expect() {
    local what=$1 want=$2
    shift 2
    CHECKS=$((CHECKS + 1))
    if [[ $CODE != "$want" ]]; then
        fail "$what: HTTP $CODE, want $want: $(head -c 600 "$WORK/body")"
        return
    fi
    while (($# >= 2)); do
        jv "$1"
        [[ $JV_OUT == "$2" ]] || fail "$what: $1 = $JV_OUT, want $2"
        shift 2
    done
}

# expect_in DESCRIPTION PYEXPR SUBSTRING: PYEXPR's value contains SUBSTRING
expect_in() {
    CHECKS=$((CHECKS + 1))
    jv "$2"
    [[ $JV_OUT == *"$3"* ]] || fail "$1: $2 = $JV_OUT, want it to contain: $3"
}

# --- the scenarios -------------------------------------------------------------------------

"$HERE/make-certs.sh" "$CERTS" || { echo "make-certs.sh failed" >&2; exit 1; }
start_server
source "$HERE/selftest_cases.sh"
source "$HERE/selftest_realworld.sh"
# `selftest.sh realworld`: only the kube-prometheus corpus case (a ctest test of its own, so that
# its absence shows as SKIPPED); otherwise every case, the in-repo edge-stack included.
if [[ ${1-} == realworld ]]; then
    case_realworld_corpus
else
    run_all_cases
fi

echo "selftest: $CHECKS checks, $FAILURES failures" >&2
((FAILURES == 0))
