#!/usr/bin/env bash
# Prints a bearer token the local system (scripts/dev.sh) accepts for EMAIL. Like dev.sh,
# it uses the state in $AIRLOCK_STATE (default .dev at the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
	echo "usage: scripts/dev-token.sh EMAIL" >&2
	exit 2
fi
STATE=${AIRLOCK_STATE:-.dev}
if [ ! -x "$STATE/bin/airlock-admin" ]; then
	mkdir -p "$STATE/bin"
	go build -o "$STATE/bin/airlock-admin" ./scripts/cmd/airlock-admin
fi
exec "$STATE/bin/airlock-admin" token --key "$STATE/auth-key.pem" "$1"
