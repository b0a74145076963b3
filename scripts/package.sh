#!/usr/bin/env bash
# Packages one Cloud Function's source as .build/FUNCTION.zip for Google's Go buildpack
# (runtime go126), which builds only the package at the source root. The zip holds go.mod,
# go.sum, the module's packages the function imports (no tests, no testdata, no other
# function) and a generated root package registering the entry point. It is reproducible,
# so its hash changes only when its content does. Prints the zip's path and its sha256.
#
#	scripts/package.sh ExecuteQuery|RequestAccess|ApprovalCallback|SweepExpired
set -euo pipefail
cd "$(dirname "$0")/.."

# FUNCTION            package directory      entry point (package.Func)
FUNCTIONS='
ExecuteQuery          functions/query        query.ExecuteQuery
RequestAccess         functions/access       access.RequestAccess
ApprovalCallback      functions/approval     approval.ApprovalCallback
SweepExpired          functions/sweep        sweep.SweepExpired
'

usage() {
	echo "usage: scripts/package.sh FUNCTION" >&2
	echo "FUNCTION is one of:$(echo "$FUNCTIONS" | awk 'NF { printf " %s", $1 }')" >&2
	exit 2
}

[ $# -eq 1 ] || usage
fn=$1
row=$(echo "$FUNCTIONS" | awk -v fn="$fn" '$1 == fn { print $2, $3 }')
[ -n "$row" ] || { echo "airlock: unknown function \"$fn\"" >&2; usage; }
read -r pkg entry <<<"$row"

if ! compgen -G "$pkg/*.go" >/dev/null || [ -z "$(find "$pkg" -maxdepth 1 -name '*.go' ! -name '*_test.go' -print -quit)" ]; then
	echo "airlock: cannot package $fn: its package $pkg does not exist yet (no non-test .go files in $pkg/)" >&2
	exit 1
fi

go run ./scripts/cmd/pack -function "$fn" -package "$pkg" -entry "$entry" -out ".build/$fn.zip"
