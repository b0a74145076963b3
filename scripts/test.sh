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
set +e
# The walk-through test leaves the evidence report of its trail here, for the browser test.
AIRLOCK_REPORT_OUT=$TMP/report go test -count=1 -timeout 30m ./... 2>&1 | tee "$TMP/go-test.log"
status=${PIPESTATUS[0]}
passed=$(grep -c '^ok ' "$TMP/go-test.log")
failed=$(grep -c '^FAIL' "$TMP/go-test.log")

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
