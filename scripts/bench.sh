#!/usr/bin/env bash
# Measures Airlock against baselines taken in the same run and prints one markdown table,
# also saved to .dev/bench.md: the SQL guard next to a bare pg_query.Parse, the query
# function end to end next to a direct pgx query, and the memory of a 1,000,000-row
# result. Like scripts/test.sh, it starts a throwaway PostgreSQL 16 (or uses the server
# whose superuser DATABASE_URL names), builds the Cloud SQL emulation on it once, and
# measures with no superuser. Takes one to two minutes. Extra arguments go to
# scripts/cmd/bench (e.g. -requests 500 -guard-rounds 200 for a quick run).
#
# The go test benchmarks of the guard alone still run as usual:
#	go test -run '^$' -bench 'Check|Parse' ./shared/sqlguard
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/pg.sh
. scripts/lib/pg.sh
TMP=$(mktemp -d /tmp/airlock-bench.XXXXXX)
chmod 755 "$TMP"
trap 'pg_stop; rm -rf "$TMP"' EXIT
pg_start "$TMP/pg" 55432
echo "airlock: benchmarking on PostgreSQL $(pg_major) at $(echo "$DATABASE_URL" | sed 's#://[^@]*@#://***@#'), under the Cloud SQL emulation" >&2
pg_emulate "$TMP/cloudsql.json" "$TMP/bin" >&2
export AIRLOCK_CLOUDSQL=$TMP/cloudsql.json
unset DATABASE_URL

mkdir -p .dev
go build -o "$TMP/bench" ./scripts/cmd/bench
"$TMP/bench" -out .dev/bench.md "$@"

# The sweep: expiring 10,000 grants (lock, revoke, terminate, audit, mark; one transaction
# each) next to 10,000 bare UPDATEs in one transaction, in the same database run.
echo "bench: sweep of 10,000 expired grants (about a minute)" >&2
line=$(go test -run '^$' -bench BenchmarkSweep10k -benchtime 1x ./shared/grants | grep '^BenchmarkSweep10k')
sweep=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "sweep-ms/op") print $i}')
bare=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "bare-update-ms/op") print $i}')
ratio=$(echo "$line" | awk '{for (i = 1; i < NF; i++) if ($(i+1) == "ratio") print $i}')
{
	echo
	echo "| Sweep | Airlock | Baseline (same run) | Ratio |"
	echo "|---|---|---|---|"
	echo "| expire 10,000 grants | ${sweep} ms | 10,000 bare UPDATEs in one transaction: ${bare} ms | ${ratio}× |"
	echo "| lag from expires_at to the end of a statement under the grant | 0: its statement_timeout is capped at the grant's time left | — | — |"
	echo "| lag from expires_at to a sweep with the one-minute schedule | at most 60 s plus one run | — | — |"
} | tee -a .dev/bench.md
