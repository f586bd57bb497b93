#!/usr/bin/env bash
# Generates a throw-away test PKI for Midge's TLS listeners (deploy/sandbox.toml and the tests):
#
#   ca.crt / ca.key          a self-signed CA ("Midge Test CA")
#   server.crt / server.key  a server certificate for localhost and 127.0.0.1 (and ::1)
#   client.crt / client.key  a client certificate with CN = the given name (for mTLS and
#                            use_identity_as_username)
#
# Usage: deploy/gen-certs.sh [OUT_DIR] [CLIENT_CN] [EXTRA_SERVER_NAME...]
#   OUT_DIR defaults to ./certs, CLIENT_CN to "midge-client". Extra server names are added to
#   the server certificate's subjectAltName (DNS names, or IP addresses if they parse as one).
# Run it again with the same OUT_DIR to renew the server and client certificates: the CA is
# kept when ca.crt and ca.key exist, so clients that trust it keep working.
#
# Keys are ECDSA P-256; certificates are X.509 v3 valid for 825 days. Not for production.
set -euo pipefail

out=${1:-certs}
client_cn=${2:-midge-client}
shift $(( $# > 2 ? 2 : $# ))

mkdir -p "$out"
cd "$out"
umask 077

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san="$san,IP:$name"
  else
    san="$san,DNS:$name"
  fi
done

if [[ ! -s ca.key || ! -s ca.crt ]]; then
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/O=Midge/CN=Midge Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out ca.crt
fi

# sign NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt signed by the CA.
sign() {
  local name=$1 subject=$2 ext=$3
  openssl ecparam -name prime256v1 -genkey -noout -out "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  printf '%b' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
    -days 825 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

sign server "/O=Midge/CN=localhost" \
  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=$san\n"
sign client "/O=Midge/CN=$client_cn" \
  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"

# The certificates are public; the keys stay private (umask 077 above).
chmod 644 ca.crt server.crt client.crt
echo "Wrote $(pwd)/{ca,server,client}.{crt,key} (client CN: $client_cn)."
