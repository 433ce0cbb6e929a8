#!/usr/bin/env bash
# Writes a throwaway test PKI for interop/librdkafka/run.sh's security broker, with
# Debian's openssl, into DIR (created):
#
#   interop/librdkafka/pki.sh DIR
#
#   ca.pem ca.der ca.key       a CA (P-256, 2 days) that signs the two below
#   broker.keystore.pem        the broker's certificate (CN=localhost, SAN localhost and
#                              127.0.0.1) and its unencrypted key, for ssl.keystore.location
#   client.pem client.der      the client's certificate, CN=admin (the super user once
#                              ssl.principal.mapping.rules takes the CN)
#   client.key                 its key, encrypted PKCS#8 (password in DIR/password)
#   client.key.der             the same key, unencrypted DER
#   client.p12                 key + certificate + CA as PKCS#12 (same password)
#
# The names match the SSL_* variables trivup gives librdkafka's 0097_ssl_verify.
set -euo pipefail

dir="${1:?usage: pki.sh DIR}"
mkdir -p "$dir"
cd "$dir"
password="medulla-test-keystore"
echo "$password" >password
days=2
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)

openssl req -x509 "${ec[@]}" -nodes -keyout ca.key -out ca.pem -days "$days" \
    -subj "/O=medulla-test/CN=medulla-test-ca" 2>/dev/null
openssl x509 -in ca.pem -outform der -out ca.der

# sign NAME SUBJECT EXTENSIONS: NAME.key (unencrypted PKCS#8) and NAME.pem.
sign() {
    openssl req "${ec[@]}" -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days "$days" -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

sign broker "/O=medulla-test/CN=localhost" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
cat broker.pem broker.key >broker.keystore.pem
rm -f broker.key

sign client "/O=medulla-test/CN=admin" "extendedKeyUsage=clientAuth"
openssl x509 -in client.pem -outform der -out client.der
openssl pkcs8 -topk8 -in client.key -outform der -nocrypt -out client.key.der
openssl pkcs12 -export -in client.pem -inkey client.key -certfile ca.pem \
    -passout "pass:$password" -out client.p12
openssl pkcs8 -topk8 -in client.key -v2 aes-256-cbc -passout "pass:$password" -out client.key.enc
mv client.key.enc client.key
chmod 600 ./*.key broker.keystore.pem
