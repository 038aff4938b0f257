#!/bin/sh
# Throwaway certificates for docker-compose.tls.yml, FOR LOCAL USE ONLY:
#
#   sh deploy/make-dev-certs.sh [dir]      (default ./certs)
#
# writes, with the openssl CLI:
#   ca.crt    a new private CA (its key is deleted at the end: to re-issue, run this again)
#   tls.crt   the certificate every engine node serves, signed by that CA, for the names the
#             nodes and clients use: engine-1..3 (each node's III_ADVERTISE_HOST: other nodes
#             relay data channels to it), lb (the example worker, inside the compose network),
#             localhost and 127.0.0.1 (clients on this machine, through the published ports)
#   tls.key   its unencrypted key, mode 0644: the engine runs as uid 1000 in its container
#             and must read the bind-mounted file whoever you are here. Never use it elsewhere.
# Valid for DAYS days (default 30). EC P-256: quick to make, and every client supports it.
set -eu

dir=${1:-./certs}
days=${DAYS:-30}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '[req]\ndistinguished_name=dn\nx509_extensions=ca\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$work/ca.cnf"
printf 'subjectAltName=DNS:engine-1,DNS:engine-2,DNS:engine-3,DNS:lb,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$work/server.ext"

ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
# shellcheck disable=SC2086 # $ec is several arguments
openssl req -x509 $ec -keyout "$work/ca.key" -out "$dir/ca.crt" -days "$days" \
  -subj "/CN=iii-cluster compose dev CA" -config "$work/ca.cnf" 2>/dev/null
# shellcheck disable=SC2086
openssl req $ec -keyout "$work/tls.key" -out "$work/tls.csr" -subj "/CN=iii-cluster" -config "$work/ca.cnf" 2>/dev/null
openssl x509 -req -in "$work/tls.csr" -CA "$dir/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -CAserial "$work/ca.srl" -out "$dir/tls.crt" -days "$days" -extfile "$work/server.ext" 2>/dev/null
mv "$work/tls.key" "$dir/tls.key"
chmod 0644 "$dir/ca.crt" "$dir/tls.crt" "$dir/tls.key"
echo "wrote $dir/ca.crt, $dir/tls.crt and $dir/tls.key (valid $days days; names: engine-1..3, lb, localhost, 127.0.0.1)"
