#!/bin/sh
# gen.sh - regenerate the test certificates and keys of check_tls.c with the
# openssl command; it writes into its own directory.  The output is
# committed, so the tests need no openssl at run time.
#
#   ca.pem, ca.key               the test CA ("libsmtpx test CA")
#   server.pem, server.key       mx.test: SAN DNS:mx.test, DNS:localhost,
#                                IP:127.0.0.1; signed by the test CA
#   server.der, server-key.der   the same in DER, for the *_mem calls
#   server-enc.key               server.key encrypted with the password
#                                "secret" in the traditional PEM format
#                                (Proc-Type/DEK-Info, AES-128-CBC) that
#                                mbedTLS 2.28 reads
#   other.pem, other.key         other.test: SAN DNS:other.test and
#                                DNS:*.wild.test (SNI and wildcard tests)
#   untrusted-ca.pem             a second CA that the tests do not trust
#   untrusted.pem, untrusted.key mx.test, signed by the untrusted CA
#   expired.pem, expired.key     mx.test, signed by the test CA, valid only
#                                in 2000
#   cn-only.pem, cn-only.key     cn.test in the common name and no
#                                subjectAltName, signed by the test CA
#   client.pem, client.key       client.test, a client certificate
#                                (extendedKeyUsage clientAuth)
#
# Keys are EC P-256 in the SEC 1 format ("EC PRIVATE KEY"); certificates
# are valid for 100 years.  The *.key files are throw-away test keys.
set -eu
cd "$(dirname "$0")"
DAYS=36500
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

key() {
    openssl ecparam -name prime256v1 -genkey -noout -out "$1"
}

# ext NAME SECTION-TEXT - write an extensions file
ext() {
    printf '%s\n' "$2" >"$TMP/$1.ext"
}

# ca NAME CN - a self-signed CA
ca() {
    key "$1.key"
    openssl req -new -x509 -sha256 -days $DAYS -key "$1.key" -out "$1.pem" \
        -subj "/O=libsmtpx tests/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
}

# leaf NAME CN EXT CA - a certificate signed by CA with the extensions EXT
leaf() {
    key "$1.key"
    openssl req -new -sha256 -key "$1.key" -subj "/O=libsmtpx tests/CN=$2" \
        -out "$TMP/$1.csr"
    openssl x509 -req -sha256 -days $DAYS -in "$TMP/$1.csr" \
        -CA "$4.pem" -CAkey "$4.key" -set_serial "0x$(openssl rand -hex 8)" \
        -extfile "$TMP/$3.ext" -out "$1.pem"
}

# Key identifiers too: strict verifiers (Python 3.13's default) want them.
ids="subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
ext server "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:mx.test,DNS:localhost,IP:127.0.0.1
$ids"
ext other "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:other.test,DNS:*.wild.test
$ids"
ext cn-only "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
$ids"
ext client "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
$ids"

ca ca "libsmtpx test CA"
ca untrusted-ca "libsmtpx untrusted CA"
leaf server mx.test server ca
leaf other other.test other ca
leaf untrusted mx.test server untrusted-ca
leaf cn-only cn.test cn-only ca
leaf client client.test client ca

# The expired certificate needs dates in the past, which only "openssl ca"
# sets in OpenSSL 3.0.
key expired.key
openssl req -new -sha256 -key expired.key -subj "/O=libsmtpx tests/CN=mx.test" \
    -out "$TMP/expired.csr"
mkdir "$TMP/ca"
: >"$TMP/ca/index.txt"
cat >"$TMP/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $TMP/ca
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
default_md = sha256
policy = any
unique_subject = no
[any]
organizationName = optional
commonName = supplied
CNF
openssl rand -hex 8 >"$TMP/ca/serial"
openssl ca -batch -config "$TMP/ca.cnf" -cert ca.pem -keyfile ca.key \
    -startdate 20000101000000Z -enddate 20001231235959Z \
    -extfile "$TMP/server.ext" -in "$TMP/expired.csr" -out "$TMP/expired.pem" \
    -notext 2>/dev/null
openssl x509 -in "$TMP/expired.pem" -out expired.pem

openssl x509 -in server.pem -outform DER -out server.der
openssl ec -in server.key -outform DER -out server-key.der 2>/dev/null
openssl ec -in server.key -aes128 -passout pass:secret -out server-enc.key \
    2>/dev/null

# The CA keys are not needed by the tests; they are kept so that the set
# can be extended without a new CA.
chmod 644 ./*.pem ./*.key ./*.der
