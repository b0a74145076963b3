#!/usr/bin/env bash
# Shows, and with --apply runs, the statements that undo a committed write. It asks
# ExecuteQuery ({"mode": "revert"}), so the same rules hold as for any write: applying needs
# an active write grant on the table, the statements run as your own database role, and
# the attempt and the outcome go to the audit trail. Approvers without a write grant may
# see the statements (sensitive values masked); nothing changes without --apply.
#
#   scripts/revert.sh [--as EMAIL] [--reason TEXT] [--apply] REQUEST_ID
#
# REQUEST_ID is the request_id the write answered with (also in the trail's query.result).
# Where and as whom:
#   AIRLOCK_URL    ExecuteQuery's URL; default http://127.0.0.1:${PORT:-8080}/ExecuteQuery/
#                  (scripts/dev.sh)
#   --as EMAIL     locally: act as EMAIL, with a token from scripts/dev-token.sh
#   AIRLOCK_TOKEN  a bearer token; when neither is given and AIRLOCK_URL is not local, the
#                  token of `gcloud auth print-identity-token`
# Exit status: 0 when the function answered 200, 1 when it refused (its error is printed),
# 2 for usage errors.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

as="" reason="" apply=false rid=""
while [ $# -gt 0 ]; do
	case "$1" in
	--as) as=${2:?--as needs an e-mail address}; shift 2 ;;
	--reason) reason=${2:?--reason needs a text}; shift 2 ;;
	--apply) apply=true; shift ;;
	-h | --help) usage ;;
	-*) echo "revert.sh: unknown flag $1" >&2; usage ;;
	*)
		[ -z "$rid" ] || { echo "revert.sh: want exactly one REQUEST_ID" >&2; usage; }
		rid=$1; shift ;;
	esac
done
[ -n "$rid" ] || { echo "revert.sh: want a REQUEST_ID (the request_id of the write to undo)" >&2; usage; }
case "$rid" in
*[!0-9a-f]* | "") echo "revert.sh: $rid is not a request id (16 hex digits)" >&2; exit 2 ;;
esac
if $apply && [ -z "$reason" ]; then
	echo "revert.sh: --apply needs --reason \"why\" (at least 10 characters, kept in the audit trail)" >&2
	exit 2
fi
reason=${reason:-"checking what reverting $rid would do"}

url=${AIRLOCK_URL:-http://127.0.0.1:${PORT:-8080}/ExecuteQuery/}
token=${AIRLOCK_TOKEN:-}
if [ -z "$token" ] && [ -n "$as" ]; then
	token=$(scripts/dev-token.sh "$as")
elif [ -z "$token" ]; then
	case "$url" in
	http://127.0.0.1* | http://localhost*)
		echo "revert.sh: say who you are locally with --as EMAIL (or set AIRLOCK_TOKEN)" >&2
		exit 2 ;;
	*) token=$(gcloud auth print-identity-token) ;;
	esac
fi

dry=true
$apply && dry=false
# The request body, built without jq: the reason is escaped for JSON by hand.
esc=$(printf '%s' "$reason" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037')
body=$(printf '{"mode": "revert", "revert": "%s", "dry_run": %s, "reason": "%s", "format": "table"}' "$rid" "$dry" "$esc")

out=$(mktemp)
trap 'rm -f "$out"' EXIT
code=$(curl -sS -o "$out" -w '%{http_code}' -X POST "$url" \
	-H "Authorization: Bearer $token" -H "Content-Type: application/json" --data-binary "$body")
cat "$out"
[ "$(tail -c 1 "$out" | od -An -c | tr -d ' ')" = '\n' ] || echo
if [ "$code" != 200 ]; then
	echo "revert.sh: ExecuteQuery answered $code" >&2
	exit 1
fi
