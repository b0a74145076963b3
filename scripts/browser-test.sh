#!/usr/bin/env bash
# The web form in a real browser: installs Debian's chromium and playwright-core when
# missing, runs the whole system with scripts/dev.sh on its own state directory, port and
# database, and drives it; with AIRLOCK_REPORT_DIR set, also opens the evidence report
# there. Screenshots land in $AIRLOCK_STATE/screenshots. Needs AIRLOCK_CLOUDSQL, a built
# Cloud SQL emulation (scripts/test.sh builds one): no superuser is involved.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${AIRLOCK_CLOUDSQL:?set AIRLOCK_CLOUDSQL to a built Cloud SQL emulation (scripts/test.sh does)}"
STATE=${AIRLOCK_STATE:-$(mktemp -d /tmp/airlock-browser.XXXXXX)}
mkdir -p "$STATE/screenshots"

if [ ! -x /usr/bin/chromium ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "airlock: installing Debian's chromium for the browser test"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		echo "airlock: the browser test needs chromium: sudo apt-get install chromium" >&2
		exit 1
	fi
fi
if ! command -v node >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
	fi
fi
(cd scripts/browser && [ -d node_modules/playwright-core ] || npm install --no-audit --no-fund --silent)

PORT=$( (. scripts/lib/pg.sh; pg_free_port 18080) )
BROWSER_DB=airlock_browser_$$
AIRLOCK_STATE=$STATE PORT=$PORT AIRLOCK_DATABASE=$BROWSER_DB DATABASE_URL='' scripts/dev.sh >"$STATE/dev.log" 2>&1 &
DEV=$!
cleanup() {
	kill $DEV 2>/dev/null || true
	wait $DEV 2>/dev/null || true
	if command -v psql >/dev/null && [ -x "$STATE/bin/cloudsqlemu" ]; then
		eval "$("$STATE/bin/cloudsqlemu" --from "$AIRLOCK_CLOUDSQL" --env)"
		# As the admin, who owns the database (through cloudsqlsuperuser).
		psql -q "$EMU_ADMIN_URL" -c "DROP DATABASE IF EXISTS $BROWSER_DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT
# Waits for dev.sh to serve (the first build links three binaries beside go test's), or
# to die; the ten minutes only stop a run that would hang.
ready=
for _ in $(seq 1 1200); do
	if grep -qs "ready on" "$STATE/dev.log"; then
		ready=1
		break
	fi
	kill -0 $DEV 2>/dev/null || { cat "$STATE/dev.log" >&2; exit 1; }
	sleep 0.5
done
if [ -z "$ready" ]; then
	echo "airlock: scripts/dev.sh was not ready within 10 minutes:" >&2
	cat "$STATE/dev.log" >&2
	exit 1
fi
token() { "$STATE/bin/airlock-admin" token --key "$STATE/auth-key.pem" "$1"; }
status=0
DEV1_TOKEN=$(token dev1@example.com) LEAD1_TOKEN=$(token lead1@example.com) LEAD2_TOKEN=$(token lead2@example.com) \
	node scripts/browser/form.test.mjs "http://127.0.0.1:$PORT" "$STATE/screenshots" || status=1
# The evidence report of the walk-through's trail (AIRLOCK_REPORT_DIR, which
# scripts/test.sh fills from scripts/walkthrough_test.go), in the same browser.
if [ -n "${AIRLOCK_REPORT_DIR:-}" ]; then
	node scripts/browser/report.test.mjs "$AIRLOCK_REPORT_DIR" "$STATE/screenshots" || status=1
fi
echo "airlock: screenshots in $STATE/screenshots"
exit $status
