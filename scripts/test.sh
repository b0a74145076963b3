#!/usr/bin/env bash
# Runs go vet and every test against a real PostgreSQL: DATABASE_URL's (a superuser URL),
# or a throwaway cluster this script starts and removes. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/pg.sh
. scripts/lib/pg.sh
TMP=$(mktemp -d /tmp/airlock-test.XXXXXX)
chmod 755 "$TMP"
trap 'pg_stop; rm -rf "$TMP"' EXIT
pg_start "$TMP/pg" 55432
echo "airlock: testing against $(echo "$DATABASE_URL" | sed 's#://[^@]*@#://***@#')"

echo "airlock: go vet"
go vet ./...

if command -v terraform >/dev/null 2>&1; then
	echo "airlock: terraform fmt -check -recursive terraform/"
	terraform fmt -check -recursive terraform/
else
	echo "airlock: terraform not on PATH; skipped terraform fmt -check (the HCL policy tests still run)"
fi

echo "airlock: go test (the first build compiles pg_query's C code, about a minute)"
go test -count=1 -timeout 30m ./... 2>&1 | tee "$TMP/go-test.log"
status=${PIPESTATUS[0]}
passed=$(grep -c '^ok ' "$TMP/go-test.log" || true)
failed=$(grep -c '^FAIL' "$TMP/go-test.log" || true)
echo "go test packages: $passed passed, $failed failed"
exit "$status"
