#!/bin/sh
# gen-certs.sh DIR - make the throw-away PKI the TLS tests use, in DIR:
#   ca.pem ca.key           a test CA
#   a.pem a.key             leaf for a.test and www.a.test (chain: leaf+CA)
#   wild.pem wild.key       leaf for *.w.test
#   b.pem b.key             leaf for b.test, a second "generation" of it
#                           (b2.pem b2.key) for reload tests
#   ip.pem ip.key           leaf for IP 127.0.0.1 (upstream verification)
#   a.ocsp                  a DER OCSP response from the CA about a.pem
#   other-ca.pem            an unrelated CA (verification must fail)
# Keys are generated here each time and never committed.
set -eu
dir=${1:?usage: gen-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1; }

q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout ca.key -out ca.pem -days 30 -subj "/CN=Shockwave Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout other-ca.key -out other-ca.pem -days 30 -subj "/CN=Other CA" \
    -addext "basicConstraints=critical,CA:TRUE"

# leaf NAME CN SAN: NAME.pem holds the leaf then the CA (a chain).
leaf() {
    q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" >"$1.ext"
    q openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
        -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.leaf"
    cat "$1.leaf" ca.pem >"$1.pem"
    rm -f "$1.csr" "$1.ext"
}
leaf a a.test "DNS:a.test,DNS:www.a.test"
leaf wild wild.w.test "DNS:*.w.test"
leaf b b.test "DNS:b.test"
leaf b2 b.test "DNS:b.test"
leaf ip 127.0.0.1 "IP:127.0.0.1,DNS:localhost"

: >index.txt
q openssl ocsp -issuer ca.pem -cert a.leaf -reqout a.ocspreq
q openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem \
    -reqin a.ocspreq -respout a.ocsp -ndays 7
test -s a.ocsp
