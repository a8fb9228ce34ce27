#!/usr/bin/env bash
# make-certs.sh DIR — test certificates for the fake kube-apiserver (EC P-256, 10 years):
#   ca.crt/ca.key          the CA that signs both of the others
#   server.crt/server.key  SAN DNS:localhost, IP:127.0.0.1
#   client.crt/client.key  CN=sovdev-agent, O=sovdev (the user the server sees)
#   named.crt/named.key    SAN DNS:kube.sovdev.test only: a server reached by an address its
#                          certificate does not name (kubeconfig tls-server-name)
# Idempotent: when all eight files exist it leaves them alone.
set -euo pipefail

dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

files=(ca.crt ca.key server.crt server.key client.crt client.key named.crt named.key)
all_there=1
for f in "${files[@]}"; do [[ -s $f ]] || all_there=0; done
if (( all_there )); then
    exit 0
fi

umask 077
tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
serial() { echo "0x$(openssl rand -hex 16)"; }

# sign NAME SUBJECT EXTENSIONS: NAME.key + CSR, signed by the CA into NAME.crt
sign() {
    local name=$1 subject=$2 ext=$3
    key "$tmp/$name.key"
    openssl req -new -key "$tmp/$name.key" -subj "$subject" -out "$tmp/$name.csr"
    printf '%s\n' "$ext" >"$tmp/$name.ext"
    openssl x509 -req -in "$tmp/$name.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -set_serial "$(serial)" \
        -days 3650 -sha256 -extfile "$tmp/$name.ext" -out "$tmp/$name.crt" 2>/dev/null
}

key "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -subj "/CN=sovdev-fake-kube-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -set_serial "$(serial)" -out "$tmp/ca.crt"

sign server "/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"

sign named "/CN=kube.sovdev.test" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:kube.sovdev.test"

sign client "/O=sovdev/CN=sovdev-agent" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

# Move into place last, certificates after keys, so an interrupted run leaves no half set.
for f in ca.key server.key client.key named.key ca.crt server.crt client.crt named.crt; do
    mv -f "$tmp/$f" "./$f"
done
chmod 644 ca.crt server.crt client.crt named.crt
