#!/usr/bin/env bash
# Runs the whole of Airlock on this machine: a PostgreSQL (DATABASE_URL's, or a cluster of
# its own under .dev/), the demo schema, rows and policy, and every function on
# 127.0.0.1:${PORT:-8080}. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${AIRLOCK_STATE:-$ROOT/.dev}
PORT=${PORT:-8080}
POLICY=${AIRLOCK_POLICY_FILE:-shared/demo/policy.yaml}
mkdir -p "$STATE/bin"

# shellcheck source=scripts/lib/pg.sh
. scripts/lib/pg.sh
trap pg_stop EXIT
if [ -n "${DATABASE_URL:-}" ]; then
	ADMIN_URL=$DATABASE_URL
	DB_NAME=$(basename "${DATABASE_URL%%\?*}")
else
	pg_start "$STATE/pg" 54329
	ADMIN_URL=$DATABASE_URL
	DB_NAME=airlock
fi

echo "airlock: building (the first build compiles pg_query's C code, about a minute)"
go build -o "$STATE/bin/airlock-admin" ./scripts/cmd/airlock-admin
go build -o "$STATE/bin/devserver" ./scripts/cmd/devserver

"$STATE/bin/airlock-admin" dev-setup --database-url "$ADMIN_URL" --database "$DB_NAME" --state "$STATE" --policy "$POLICY"

export AUDIT_SINK=file AUDIT_FILE=$STATE/audit.jsonl NOTIFY_FILE=$STATE/notifications.jsonl
export AUDIT_SIGNING_KEY_FILE=$STATE/audit-key.pem # certifies each chain's key, as Cloud KMS does deployed
cat <<MSG

Try it (tokens come from scripts/dev-token.sh):
  TOKEN=\$(scripts/dev-token.sh dev1@example.com)
  curl -s http://127.0.0.1:$PORT/ExecuteQuery/ -H "Authorization: Bearer \$TOKEN" \\
       -d '{"sql": "SELECT id, email, country FROM users ORDER BY id LIMIT 3", "format": "table"}'
The audit trail is $STATE/audit.jsonl; check it with
  scripts/audit-verify --heads $STATE/audit.jsonl.heads.jsonl $STATE/audit.jsonl

MSG
"$STATE/bin/devserver" --listen "127.0.0.1:$PORT" --state "$STATE" --policy "$POLICY" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; pg_stop' EXIT
trap 'exit 130' INT TERM
wait $SERVER
