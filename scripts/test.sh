#!/usr/bin/env bash
# Runs go vet and every test against a real PostgreSQL 16 set up as Cloud SQL sets it up:
# a throwaway cluster this script starts and removes (or DATABASE_URL's server, whose
# superuser it names), on which it builds the Cloud SQL emulation once
# (scripts/cmd/cloudsqlemu). The tests then get the emulation (AIRLOCK_CLOUDSQL) and,
# as DATABASE_URL, the admin login: no test connects as a superuser. AIRLOCK_PG=15 runs
# the same on Debian's PostgreSQL 15. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/pg.sh
. scripts/lib/pg.sh
TMP=$(mktemp -d /tmp/airlock-test.XXXXXX)
chmod 755 "$TMP"
trap 'pg_stop; rm -rf "$TMP"' EXIT
pg_start "$TMP/pg" 55432
echo "airlock: building the Cloud SQL emulation on PostgreSQL $(pg_major) at $(echo "$DATABASE_URL" | sed 's#://[^@]*@#://***@#')"
eval "$(pg_emulate "$TMP/cloudsql.json" "$TMP/bin" --database airlock_test --logins "$PG_DEMO_LOGINS" --env)"
export AIRLOCK_CLOUDSQL=$TMP/cloudsql.json
# From here on the superuser is gone from the environment.
export DATABASE_URL=${EMU_ADMIN_URL%/postgres}/airlock_test

echo "airlock: go vet"
go vet ./...

if command -v terraform >/dev/null 2>&1; then
	echo "airlock: terraform fmt -check -recursive terraform/"
	terraform fmt -check -recursive terraform/
else
	echo "airlock: terraform not on PATH; skipped terraform fmt -check (the HCL policy tests still run)"
fi

# The CLI's shell is tested in tmux, driven as a person would (scripts/airlock_shell_test.go).
if ! command -v tmux >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "airlock: installing Debian's tmux for the CLI shell test"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
	else
		echo "airlock: the CLI shell test needs tmux: sudo apt-get install tmux" >&2
	fi
fi

echo "airlock: go test (the first build compiles pg_query's C code, about a minute)"
set +e
# The walk-through test leaves the evidence report of its trail here, for the browser test.
AIRLOCK_REPORT_OUT=$TMP/report go test -count=1 -timeout 30m ./... 2>&1 | tee "$TMP/go-test.log"
status=${PIPESTATUS[0]}
# One line per package: "ok  <pkg>" or "FAIL	<pkg>" (a bare "FAIL" line, printed by a
# failing test binary before its package line, is not a package).
passed=$(grep -cE '^ok[[:space:]]+[^[:space:]]+' "$TMP/go-test.log")
failed=$(grep -cE '^FAIL[[:space:]]+[^[:space:]]+' "$TMP/go-test.log")

echo "airlock: the web form in a real browser (scripts/browser-test.sh)"
AIRLOCK_STATE=$TMP/browser AIRLOCK_REPORT_DIR=$TMP/report bash scripts/browser-test.sh 2>&1 | tee "$TMP/browser.log"
browser=${PIPESTATUS[0]}
mkdir -p .dev/screenshots && cp "$TMP"/browser/screenshots/*.png .dev/screenshots/ 2>/dev/null &&
	echo "airlock: browser screenshots in .dev/screenshots"
if [ "$browser" = 0 ]; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi
set -e
echo "test: $passed passed, $failed failed"
[ "$status" = 0 ] && [ "$browser" = 0 ]
