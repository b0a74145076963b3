// Command audit-verify checks an Airlock audit trail for tampering.
//
// Usage:
//
//	audit-verify [flags] TRAIL
//
// TRAIL is a JSON-lines trail written by the file sink (.dev/audit.jsonl), or the output
// of `gcloud logging read 'logName="projects/P/logs/airlock-audit"' --format=json`
// ("-" reads stdin). The format is detected. Heads (the last seq and hash of each chain,
// kept outside the log) come from --heads, from --database-url, or by default from
// TRAIL.heads.jsonl when it exists; without heads a cut-off tail cannot be detected.
//
// It prints one line per finding, starting with FAIL, then a summary, and exits 0 for an
// intact trail, 1 for a tampered one and 2 for usage or I/O errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: audit-verify [flags] TRAIL

TRAIL is .dev/audit.jsonl (the file sink) or a gcloud export:
  gcloud logging read 'logName="projects/P/logs/airlock-audit"' --project P --freshness 3650d --format json > trail.json
Use - to read stdin.

Exit status: 0 intact, 1 tampered (one FAIL line per finding), 2 usage or I/O error.

Flags:
`

// run is the whole command, minus os.Exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	headsFile := fs.String("heads", "", "heads file (JSON lines of {chain, seq, hash}); default TRAIL.heads.jsonl if it exists")
	dbURL := fs.String("database-url", "", "PostgreSQL URL to read heads from airlock.audit_heads")
	noHeads := fs.Bool("no-default-heads", false, "do not read TRAIL.heads.jsonl by default")
	missingStart := fs.Bool("allow-missing-start", false, "accept chains that do not start at seq 1 and ignore heads of chains absent from TRAIL\n(for exports of a time window; the tail is still checked)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "audit-verify: want exactly one TRAIL argument")
		fs.Usage()
		return 2
	}
	path := pos[0]

	trail, err := audit.ReadTrailFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "audit-verify: %v\n", err)
		return 2
	}
	heads, err := loadHeads(ctx, path, *headsFile, *dbURL, *noHeads, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "audit-verify: %v\n", err)
		return 2
	}

	var opts []audit.VerifyOption
	if *missingStart {
		opts = append(opts, audit.AllowMissingStart())
	}
	rep := audit.Verify(trail, heads, opts...)
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, f)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, n)
	}
	if trail.Skipped > 0 {
		fmt.Fprintf(stdout, "NOTE skipped %d entries of other logs\n", trail.Skipped)
	}
	if heads == nil {
		fmt.Fprintln(stdout, "NOTE no heads given: entries cut off the end of a chain cannot be detected")
	}
	fmt.Fprintln(stdout, rep.Summary())
	if !rep.OK() {
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may come before or after the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func loadHeads(ctx context.Context, trailPath, headsFile, dbURL string, noDefault bool, stderr io.Writer) ([]audit.Head, error) {
	var heads []audit.Head
	if headsFile == "" && !noDefault && trailPath != "-" {
		if _, err := os.Stat(trailPath + audit.HeadsFileSuffix); err == nil {
			headsFile = trailPath + audit.HeadsFileSuffix
			fmt.Fprintf(stderr, "audit-verify: using heads from %s\n", headsFile)
		}
	}
	if headsFile != "" {
		hs, err := audit.ReadHeadsFile(headsFile)
		if err != nil {
			return nil, err
		}
		heads = append(heads, hs...)
	}
	if dbURL != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return nil, fmt.Errorf("connecting to the database: %w", err)
		}
		defer conn.Close(context.Background())
		hs, err := audit.ReadPGHeads(ctx, conn)
		if err != nil {
			return nil, err
		}
		if hs == nil {
			hs = []audit.Head{} // a table with no rows is still a heads source
		}
		heads = append(heads, hs...)
	}
	if heads == nil && (headsFile != "" || dbURL != "") {
		heads = []audit.Head{}
	}
	return heads, nil
}
