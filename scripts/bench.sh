#!/usr/bin/env bash
# Measures Airlock against baselines taken in the same run, prints every figure of issue 15
# and writes them, with the command and the machine, to BENCHMARKS.md at the repository
# root:
#   - the read path: the query function end to end next to a direct pgx query of the same
#     SQL, at 1 and 16 callers, with the file audit sink and with the Cloud Logging sink
#     against the in-process fake Logging server (and each of its two audit writes);
#   - each function's cold start, from process start to its first answer;
#   - the sweep of 10,000 expired grants next to 10,000 bare UPDATEs;
#   - the SQL guard next to a bare pg_query.Parse of the same statements;
#   - the memory of a 1,000,000-row result.
# Profiles (the read path's CPU profile and its pprof top) and the cold-start binaries go
# to .dev/bench (not committed). Like scripts/test.sh, it starts a throwaway PostgreSQL 16
# (or uses the server whose superuser DATABASE_URL names), builds the Cloud SQL emulation
# on it once, and measures with no superuser. Takes three to five minutes. Extra arguments
# go to scripts/cmd/bench (e.g. -requests 500 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="scripts/bench.sh${*:+ $*}"

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

OUT=.dev/bench
mkdir -p "$OUT"
go build -o "$TMP/bench" ./scripts/cmd/bench
"$TMP/bench" -out "$OUT/read.md" -outdir "$OUT" "$@"
for n in 1 16; do
	go tool pprof -top -nodecount=40 "$TMP/bench" "$OUT/read-$n.cpu.pprof" >"$OUT/read-$n.top.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=40 "$TMP/bench" "$OUT/read-$n.cpu.pprof" >"$OUT/read-$n.cum.txt" 2>/dev/null || true
done

# metric NAME LINE prints the value go test reports before the unit NAME on LINE.
metric() { echo "$2" | awk -v u="$1" '{for (i = 1; i < NF; i++) if ($(i+1) == u) print $i}'; }

# The guard: Check next to a bare pg_query.Parse, statement by statement in one run.
echo "bench: guard against a bare parse (about 20 s)" >&2
line=$(go test -run '^$' -bench 'BenchmarkCheckVsParse$' -benchtime 5s -cpuprofile "$OUT/guard.cpu.pprof" -o "$TMP/sqlguard.test" ./shared/sqlguard | grep '^BenchmarkCheckVsParse')
go tool pprof -top -nodecount=30 "$TMP/sqlguard.test" "$OUT/guard.cpu.pprof" >"$OUT/guard.top.txt" 2>/dev/null || true
g_ratio=$(metric ratio "$line")
g_check=$(metric check-µs/op "$line")
g_parse=$(metric parse-µs/op "$line")

# The sweep: expiring 10,000 grants next to 10,000 bare UPDATEs, alternating in ten rounds.
echo "bench: sweep of 10,000 expired grants (about 30 s)" >&2
line=$(go test -run '^$' -bench BenchmarkSweep10k -benchtime 1x ./shared/grants | grep '^BenchmarkSweep10k')
s_sweep=$(metric sweep-ms/op "$line")
s_bare=$(metric bare-update-ms/op "$line")
s_ratio=$(metric ratio "$line")

met() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { ok = (op == "<=") ? (a <= b) : (a >= b); print (ok ? "yes" : "**no**") }'; }
pg_version=$(sed -n 's/.*PostgreSQL \([^;]*\);.*/\1/p' "$OUT/read.md" | head -1)
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -1)
{
	echo "# Benchmarks"
	echo
	echo "Written by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Every ratio is against a baseline measured in the same run."
	echo
	echo "- Machine: ${cpu:-unknown CPU}, $(nproc) cores, $(uname -sm)"
	echo "- Go: $(go env GOVERSION); PostgreSQL: ${pg_version:-unknown} under the Cloud SQL emulation (scripts/cmd/cloudsqlemu), on the same machine"
	echo "- Profiles of this run (not committed): .dev/bench/read-{1,16}.{top,cum}.txt, .dev/bench/guard.top.txt and their .pprof files"
	echo
	echo "## Read path, cold starts, memory"
	echo
	sed '1,2d' "$OUT/read.md"
	echo
	echo "## Sweep and guard"
	echo
	echo "| Measurement | Airlock | Baseline (same run) | Ratio | Target | Met |"
	echo "|---|---|---|---|---|---|"
	echo "| Sweep: expire 10,000 grants (100 to a transaction; sync, session check, a signed audit entry per grant to a file) | ${s_sweep} ms | 10,000 bare UPDATEs, 1,000 to a transaction, alternating with the sweep in ten rounds: ${s_bare} ms | **${s_ratio}×** (median of rounds) | ≤ 3× | $(met "$s_ratio" "<=" 3) |"
	echo "| SQL guard: \`Check\` over the legit corpus (one parse, its fingerprint, the walk), statement by statement | ${g_check} µs per pass | bare \`pg_query.Parse\` of the same statements: ${g_parse} µs per pass | **${g_ratio}×** (median of passes) | ≤ 1.25× | $(met "$g_ratio" "<=" 1.25) |"
	echo "| Lag from expires_at to the end of a statement under the grant | 0: its statement_timeout is capped at the grant's time left | — | — | — | — |"
	echo "| Lag from expires_at to a sweep with the one-minute schedule | at most 60 s plus one run | — | — | — | — |"
	echo
	echo "The guard parses once and takes pg_query's fingerprint from the tree it already has, computed in Go"
	echo "(shared/sqlguard/fingerprint.go, generated from pg_query's C by internal/fpgen; TestFingerprintMatchesPgQuery"
	echo "holds it equal to pg_query.Fingerprint over both corpora); .dev/bench/guard.top.txt shows what is left."
	echo "A read costs two round trips: the grant lookup, whose answer the attempt's audit entry names before the"
	echo "statement runs, then one batch (BEGIN READ ONLY, the person's statement slot, SET ROLE, the settings,"
	echo "DECLARE, FETCH, ROLLBACK). The profile below shows where the rest of the overhead goes."
	echo
	echo "## Where the 1-caller read's time goes (pprof, cumulative, of the bench process while it called the function; this run)"
	echo
	echo '```'
	sed -n '5,40p' "$OUT/read-1.cum.txt"
	echo '```'
	# Earlier runs, kept by hand for comparison, are carried over as they are.
	if [ -f BENCHMARKS.md ] && grep -q '^## Earlier runs' BENCHMARKS.md; then
		echo
		sed -n '/^## Earlier runs/,$p' BENCHMARKS.md
	fi
} >"$TMP/BENCHMARKS.md"
mv "$TMP/BENCHMARKS.md" BENCHMARKS.md
cat BENCHMARKS.md
echo "bench: written to BENCHMARKS.md; profiles in $OUT" >&2
