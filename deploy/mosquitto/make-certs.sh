#!/bin/sh
# Makes the TLS material for the broker's agent listener:
#   ca.crt ca.key              a CA (kept, and reused when the script runs again)
#   server.crt server.key      the broker's certificate
#   <cn>.crt <cn>.key          one client certificate per argument, CN = agent id (or hub user)
#
# Usage: make-certs.sh OUT_DIR [CLIENT_CN ...]
#   SOVDEV_BROKER_SANS  names in the server certificate (default DNS:localhost,IP:127.0.0.1),
#                       e.g. "DNS:broker.example.com,IP:10.0.0.5"
#   SOVDEV_CERT_DAYS    validity of the server and client certificates (default 825)
#
# Run it again with new CNs to add agents: the CA and server certificate are kept.
# Keep ca.key offline once the fleet is enrolled; anything it signs can log in.
set -eu

if [ $# -lt 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_DIR [CLIENT_CN ...]" >&2
  exit 2
fi
out=$1
shift

# Keys never land in the source tree.
here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
out=$(realpath -m "$out")
case "$out/" in
  "$repo"/*)
    echo "make-certs.sh: refusing to write keys inside the repository ($out)" >&2
    exit 2
    ;;
esac

umask 077
mkdir -p "$out"
sans=${SOVDEV_BROKER_SANS:-DNS:localhost,IP:127.0.0.1}
days=${SOVDEV_CERT_DAYS:-825}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# sign NAME SUBJECT EXTENSIONS: NAME.key and a CSR, signed by the CA into NAME.crt.
sign() {
  new_key "$out/$1.key"
  openssl req -new -key "$out/$1.key" -subj "$2" -out "$tmp/$1.csr"
  printf '%s\n' "$3" >"$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile "$tmp/$1.ext" -out "$out/$1.crt" 2>/dev/null
}

if [ ! -f "$out/ca.crt" ]; then
  new_key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -subj "/CN=SovDev Edge Sync CA" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.crt"
fi

if [ ! -f "$out/server.crt" ]; then
  sign server "/CN=sovdev-broker" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans"
fi

for cn in "$@"; do
  case "$cn" in
    "" | *[!A-Za-z0-9._-]*)
      echo "make-certs.sh: '$cn' is not a valid agent id (letters, digits, . _ - only)" >&2
      exit 2
      ;;
  esac
  sign "$cn" "/CN=$cn" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done

chmod 644 "$out"/*.crt
echo "certificates in $out"
