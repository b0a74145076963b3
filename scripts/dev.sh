#!/usr/bin/env bash
# Runs the whole of Airlock on this machine as it runs on Cloud SQL for PostgreSQL 16, with
# no superuser: a PostgreSQL 16 of its own under .dev/ (AIRLOCK_PG=15 for Debian's 15), on
# which it builds the Cloud SQL emulation once (scripts/cmd/cloudsqlemu: cloudsqlsuperuser,
# an admin login in it, the application owner, the functions' logins, terraform/sql.tf's
# server flags); then, exactly as an operator does in step 8 of terraform/README.md, the
# migrations as the admin and the owner's statements as the owner; and serves every
# function on 127.0.0.1:${PORT:-8080}. Ctrl-C stops everything it started.
#
# DATABASE_URL, when set, names a superuser of another PostgreSQL server: it is used only
# to build the emulation there (roles, database flags via ALTER SYSTEM, the database
# ${AIRLOCK_DATABASE:-airlock}); nothing of Airlock's connects as it. AIRLOCK_CLOUDSQL,
# when set, names an emulation already built (scripts/test.sh passes its own), and no
# superuser is used at all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${AIRLOCK_STATE:-$ROOT/.dev}
PORT=${PORT:-8080}
POLICY=${AIRLOCK_POLICY_FILE:-shared/demo/policy.yaml}
DB_NAME=${AIRLOCK_DATABASE:-airlock}
mkdir -p "$STATE/bin"

# shellcheck source=scripts/lib/pg.sh
. scripts/lib/pg.sh
trap pg_stop EXIT
EMU=$STATE/cloudsql.json
if [ -n "${AIRLOCK_CLOUDSQL:-}" ]; then
	echo "airlock: using the Cloud SQL emulation in $AIRLOCK_CLOUDSQL (no superuser involved)"
	go build -o "$STATE/bin/cloudsqlemu" ./scripts/cmd/cloudsqlemu
	cp "$AIRLOCK_CLOUDSQL" "$EMU" && chmod 600 "$EMU"
	eval "$("$STATE/bin/cloudsqlemu" --from "$EMU" --database "$DB_NAME" --env)"
else
	if [ -n "${DATABASE_URL:-}" ]; then
		echo "airlock: DATABASE_URL names a superuser of $(echo "$DATABASE_URL" | sed 's#://[^@]*@#://#; s#/[^/]*$##'): building the Cloud SQL emulation there" \
			"(roles cloudsqlsuperuser, admin@example.com, app_owner and the functions' logins; terraform/sql.tf's database flags with ALTER SYSTEM; database $DB_NAME)." \
			"Airlock itself never connects as that superuser."
	else
		pg_start "$STATE/pg$(pg_major)" 54329
		echo "airlock: PostgreSQL $(pg_major) in $STATE/pg$(pg_major); building the Cloud SQL emulation on it"
	fi
	eval "$(pg_emulate "$EMU" "$STATE/bin" --database "$DB_NAME" --logins "$PG_DEMO_LOGINS" --env)"
fi
in_db() { echo "${1%/postgres}/$DB_NAME"; }

echo "airlock: building (the first build compiles pg_query's C code, about a minute)"
go build -o "$STATE/bin/airlock-admin" ./scripts/cmd/airlock-admin
go build -o "$STATE/bin/devserver" ./scripts/cmd/devserver

# The application's own tables, created by the application's owner (the demo stands for
# the application's migrations).
"$STATE/bin/airlock-admin" demo --database-url "$(in_db "$EMU_OWNER_URL")"
# Step 8 of terraform/README.md, as an operator runs it: the migrations as the admin
# (acting as cloudsqlsuperuser), then what Airlock needs from the tables' owner, as the owner.
"$STATE/bin/airlock-admin" migrate --database-url "$(in_db "$EMU_ADMIN_URL")" --role "$EMU_ROLE" \
	--policy "$POLICY" --grant-logins "$EMU_GRANT_LOGINS"
"$STATE/bin/airlock-admin" owner-grants --owner-url "$(in_db "$EMU_OWNER_URL")" --policy "$POLICY"
"$STATE/bin/airlock-admin" keygen --dir "$STATE"

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
"$STATE/bin/devserver" --listen "127.0.0.1:$PORT" --state "$STATE" --policy "$POLICY" --cloudsql "$EMU" --database "$DB_NAME" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; pg_stop' EXIT
trap 'exit 130' INT TERM
wait $SERVER
