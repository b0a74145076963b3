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
// It trusts only what it is told to: the public keys that sign chain certificates
// (--key, --kms-key; scripts/audit-verify adds the local system's key when none is
// given), and the heads kept outside the log (--heads, --database-url). Without heads
// it refuses to say a trail is intact, since a cut tail could not be seen, unless
// --no-heads accepts that.
//
// It prints one line per finding, starting with FAIL, then a summary naming the first
// entry it cannot trust, and exits 0 for an intact trail, 1 for a tampered one and 2
// for usage or I/O errors, or when nothing to trust was given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"google.golang.org/api/option"

	"airlock.dev/airlock/shared/audit/trust"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: audit-verify [flags] TRAIL

TRAIL is .dev/audit.jsonl (the file sink), a copy of it, or a gcloud export:
  gcloud logging read 'logName="projects/P/logs/airlock-audit"' --project P --freshness 3650d --format json > trail.json
Use - to read stdin.

Locally:   audit-verify --heads .dev/audit.jsonl.heads.jsonl .dev/audit.jsonl
Deployed:  audit-verify --kms-key projects/P/locations/L/keyRings/R/cryptoKeys/K --database-url URL trail.json

Every entry must be signed by its chain's key, certified by a trusted key (--key,
--kms-key). Heads (each chain's last seq and hash, signed, kept outside the log) reveal
entries cut off the end: give --heads or --database-url, or --no-heads to go without.

Exit status: 0 intact, 1 tampered (one FAIL line per finding), 2 usage or I/O error, or
nothing to trust given.

Flags:
`

// run is the whole command, minus os.Exit, so tests can call it; kmsOpts reach a fake
// Cloud KMS in tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, kmsOpts ...option.ClientOption) int {
	fs := flag.NewFlagSet("audit-verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tf := trust.Register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	pos, err := trust.ParseInterspersed(fs, args)
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
	res, err := tf.Verify(ctx, pos[0], stderr, kmsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "audit-verify: %v\n", err)
		return 2
	}
	res.Print(stdout)
	if !res.Report.OK() {
		return 1
	}
	return 0
}
