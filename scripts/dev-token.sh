#!/usr/bin/env bash
# Prints a bearer token the local system (scripts/dev.sh) accepts for EMAIL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
	echo "usage: scripts/dev-token.sh EMAIL" >&2
	exit 2
fi
if [ ! -x .dev/bin/airlock-admin ]; then
	mkdir -p .dev/bin
	go build -o .dev/bin/airlock-admin ./scripts/cmd/airlock-admin
fi
exec .dev/bin/airlock-admin token --key .dev/auth-key.pem "$1"
