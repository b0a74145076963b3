// Command audit-verify checks an Airlock audit trail for tampering.
//
// Usage:
//
//	audit-verify [flags] TRAIL
//
// TRAIL is a JSON-lines trail written by the file sink (.dev/audit.jsonl), or the output
// of `gcloud logging read 'logName="projects/P/logs/airlock-audit"' --format=json`
// ("-" reads stdin). The format is detected.
//
// Heads (the last seq and hash of each chain, kept outside the log) are what reveal a
// cut-off tail. They come from --heads and --database-url; when --heads is not given,
// from TRAIL.heads.jsonl if it exists, or else from the local system's heads file
// (--local-heads, which scripts/audit-verify sets) if TRAIL shares a chain with it, so
// that a copy of the local trail is checked against the heads its chains left. A trail
// that shares no chain with the local heads, such as a gcloud export, is not judged by
// them. Which heads were used is said on stderr.
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

TRAIL is .dev/audit.jsonl (the file sink), a copy of it, or a gcloud export:
  gcloud logging read 'logName="projects/P/logs/airlock-audit"' --project P --freshness 3650d --format json > trail.json
Use - to read stdin.

Heads (each chain's last seq and hash, kept outside the log) reveal entries cut off the
end. Without --heads, they come from TRAIL.heads.jsonl if it exists, else from the local
system's heads file (--local-heads) if TRAIL shares a chain with it, so a copy of
.dev/audit.jsonl is checked like the original. stderr says which heads were used.

Exit status: 0 intact, 1 tampered (one FAIL line per finding), 2 usage or I/O error.

Flags:
`

// run is the whole command, minus os.Exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	headsFile := fs.String("heads", "", "heads file (JSON lines of {chain, seq, hash}); default TRAIL.heads.jsonl if it exists,\nelse the --local-heads file if TRAIL shares a chain with it")
	dbURL := fs.String("database-url", "", "PostgreSQL URL to read heads from airlock.audit_heads")
	noHeads := fs.Bool("no-default-heads", false, "use only the heads given with --heads or --database-url")
	localHeads := fs.String("local-heads", "", "the local system's heads file, for copies of its trail\n(scripts/audit-verify passes $AIRLOCK_STATE/audit.jsonl.heads.jsonl, default .dev/ at the repository root)")
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
	heads, err := loadHeads(ctx, trail, path, headsOptions{file: *headsFile, dbURL: *dbURL, noDefault: *noHeads, local: *localHeads}, stderr)
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

// headsOptions say where heads may come from.
type headsOptions struct {
	file      string // --heads
	dbURL     string // --database-url
	noDefault bool   // --no-default-heads
	local     string // --local-heads
}

func loadHeads(ctx context.Context, trail *audit.Trail, trailPath string, o headsOptions, stderr io.Writer) ([]audit.Head, error) {
	var heads []audit.Head
	switch {
	case o.file != "":
		hs, err := audit.ReadHeadsFile(o.file)
		if err != nil {
			return nil, err
		}
		heads = append([]audit.Head{}, hs...)
	case !o.noDefault:
		hs, err := defaultHeads(trail, trailPath, o.local, stderr)
		if err != nil {
			return nil, err
		}
		heads = hs
	}
	if o.dbURL != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, o.dbURL)
		if err != nil {
			return nil, fmt.Errorf("connecting to the database: %w", err)
		}
		defer conn.Close(context.Background())
		hs, err := audit.ReadPGHeads(ctx, conn)
		if err != nil {
			return nil, err
		}
		heads = append(heads, hs...)
		if heads == nil {
			heads = []audit.Head{} // a table with no rows is still a heads source
		}
	}
	return heads, nil
}

// defaultHeads returns the heads to use when --heads is not given: those of the trail's
// own heads file (TRAIL.heads.jsonl), or else those of the local system's heads file when
// the trail shares a chain with it. A copy of the local trail (cp .dev/audit.jsonl
// /tmp/x.jsonl) has no heads file of its own, and without heads its last entries could
// be cut off unseen; a chain id is random, so a shared one means the trail holds
// entries the local system wrote, and its heads apply (a local chain missing from the
// copy is then reported as cut off, as for the original). A trail with no chain in
// common, such as a gcloud export, is not judged by them. It returns nil when there are
// no heads to use, and says on stderr which file it used, or why it used none.
func defaultHeads(trail *audit.Trail, trailPath, local string, stderr io.Writer) ([]audit.Head, error) {
	if trailPath != "-" {
		own := trailPath + audit.HeadsFileSuffix
		if _, err := os.Stat(own); err == nil {
			fmt.Fprintf(stderr, "audit-verify: using heads from %s\n", own)
			hs, err := audit.ReadHeadsFile(own)
			if hs == nil && err == nil {
				hs = []audit.Head{}
			}
			return hs, err
		}
	}
	if local == "" {
		return nil, nil
	}
	if _, err := os.Stat(local); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	hs, err := audit.ReadHeadsFile(local)
	if err != nil {
		return nil, fmt.Errorf("local heads: %w (--no-default-heads verifies without them)", err)
	}
	inTrail := map[string]bool{}
	for _, se := range trail.Entries {
		inTrail[se.Entry.Chain] = true
	}
	name := trailPath
	if name == "-" {
		name = "stdin"
	}
	for _, h := range hs {
		if inTrail[h.Chain] {
			fmt.Fprintf(stderr, "audit-verify: using heads from %s, the local system's: %s has no heads file beside it and shares chain %s with them\n", local, name, h.Chain)
			return hs, nil
		}
	}
	fmt.Fprintf(stderr, "audit-verify: not using the local heads in %s: %s has none of their chains\n", local, name)
	return nil, nil
}
