#!/usr/bin/env bash
# A self-signed certificate for trying the compose gateway on localhost (use a real one in
# production: put tls.crt and tls.key in deploy/compose/tls/).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p tls
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout tls/tls.key -out tls/tls.crt
chmod 600 tls/tls.key
