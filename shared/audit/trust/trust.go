// Package trust gathers what a verifier of an audit trail trusts, from command-line
// flags, for scripts/cmd/audit-verify and scripts/cmd/audit-report: the public keys that
// may sign chain certificates, and the heads kept outside the log. Nothing is taken
// from where it merely happens to be: keys and heads come from the flags named, and a
// trail whose tail cannot be checked is refused unless --no-heads says so.
package trust

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"

	"airlock.dev/airlock/shared/audit"
)

// ErrNoHeads is returned by [Flags.Verify] when no heads were named and --no-heads was
// not given: entries cut off the end of a chain could then not be seen.
var ErrNoHeads = errors.New("no heads given: entries cut off the end of a chain could not be seen; give --heads FILE (locally .dev/audit.jsonl.heads.jsonl) or --database-url URL (airlock.audit_heads), or --no-heads to verify without them")

// ErrNoKey is returned by [Flags.Verify] when no key is trusted.
var ErrNoKey = errors.New("no key is trusted: give --key FILE (a PEM public key: .dev/audit-key.pub.pem, or `gcloud kms keys versions get-public-key`) or --kms-key projects/…/cryptoKeys/K")

// Flags are the verifier's trust flags; use [Register] to add them to a FlagSet.
type Flags struct {
	heads        string
	dbURL        string
	noHeads      bool
	keys         list
	kmsKeys      list
	localKey     string
	missingStart bool
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

// Register adds the flags to fs and returns where they are stored.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.heads, "heads", "", "heads file (the file sink's TRAIL.heads.jsonl, or a copy of it)")
	fs.StringVar(&f.dbURL, "database-url", "", "PostgreSQL URL to read the heads from airlock.audit_heads")
	fs.BoolVar(&f.noHeads, "no-heads", false, "verify without heads: entries cut off the end of a chain cannot then be seen")
	fs.Var(&f.keys, "key", "trusted PEM public key that signs chain certificates (repeatable)")
	fs.Var(&f.kmsKeys, "kms-key", "trusted Cloud KMS key, projects/P/locations/L/keyRings/R/cryptoKeys/K (every enabled\nversion) or …/cryptoKeyVersions/N; needs roles/cloudkms.publicKeyViewer (repeatable)")
	fs.StringVar(&f.localKey, "local-key", "", "the local system's public key, trusted when no --key or --kms-key is given\n(scripts/audit-verify passes $AIRLOCK_STATE/audit-key.pub.pem)")
	fs.BoolVar(&f.missingStart, "allow-missing-start", false, "accept chains that do not start at seq 1 and ignore heads of chains absent from TRAIL\n(for exports of a time window; the tail is still checked)")
	return f
}

// A Result is a verified trail.
type Result struct {
	Trail  *audit.Trail
	Report audit.Report
	Keys   *audit.Keyring
	Heads  []audit.Head // nil with --no-heads
}

// Verify reads the trail at path ("-" for stdin) and verifies it against the keys and
// heads the flags name, saying on stderr which it used. kmsOpts go to the Cloud KMS
// client that reads --kms-key's public keys. It returns an error (and no Result) when the
// trail, a key or the heads cannot be read, or when nothing to trust was given.
func (f *Flags) Verify(ctx context.Context, path string, stderr io.Writer, kmsOpts ...option.ClientOption) (*Result, error) {
	if f.noHeads && (f.heads != "" || f.dbURL != "") {
		return nil, errors.New("--no-heads contradicts --heads and --database-url")
	}
	keys, err := f.keyring(ctx, stderr, kmsOpts)
	if err != nil {
		return nil, err
	}
	trail, err := audit.ReadTrailFile(path)
	if err != nil {
		return nil, err
	}
	heads, err := f.loadHeads(ctx, stderr)
	if err != nil {
		return nil, err
	}
	var opts []audit.VerifyOption
	if f.missingStart {
		opts = append(opts, audit.AllowMissingStart())
	}
	return &Result{Trail: trail, Report: audit.Verify(trail, keys, heads, opts...), Keys: keys, Heads: heads}, nil
}

func (f *Flags) keyring(ctx context.Context, stderr io.Writer, kmsOpts []option.ClientOption) (*audit.Keyring, error) {
	keys := &audit.Keyring{}
	for _, p := range f.keys {
		if err := keys.AddPEMFile(p); err != nil {
			return nil, err
		}
	}
	for _, name := range f.kmsKeys {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := keys.AddKMS(ctx, name, kmsOpts...)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	if keys.Len() == 0 && f.localKey != "" {
		if _, err := os.Stat(f.localKey); err == nil {
			if err := keys.AddPEMFile(f.localKey); err != nil {
				return nil, fmt.Errorf("local key: %w", err)
			}
			fmt.Fprintf(stderr, "trusting the local system's key %s (no --key or --kms-key given)\n", f.localKey)
		}
	}
	if keys.Len() == 0 {
		return nil, ErrNoKey
	}
	fmt.Fprintf(stderr, "trusted keys: %s\n", keys)
	return keys, nil
}

func (f *Flags) loadHeads(ctx context.Context, stderr io.Writer) ([]audit.Head, error) {
	if f.noHeads {
		fmt.Fprintln(stderr, "no heads (--no-heads): entries cut off the end of a chain cannot be seen")
		return nil, nil
	}
	if f.heads == "" && f.dbURL == "" {
		return nil, ErrNoHeads
	}
	heads := []audit.Head{} // given, even if empty: a chain without a head is then a finding
	if f.heads != "" {
		hs, err := audit.ReadHeadsFile(f.heads)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "heads from %s (%d)\n", f.heads, len(hs))
		heads = append(heads, hs...)
	}
	if f.dbURL != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, f.dbURL)
		if err != nil {
			return nil, fmt.Errorf("connecting to the database: %w", err)
		}
		defer conn.Close(context.Background())
		hs, err := audit.ReadPGHeads(ctx, conn)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "heads from airlock.audit_heads (%d)\n", len(hs))
		heads = append(heads, hs...)
	}
	return heads, nil
}

// Print writes the report as audit-verify does: one FAIL line per finding, NOTE lines,
// then the summary.
func (r *Result) Print(w io.Writer) {
	for _, f := range r.Report.Findings {
		fmt.Fprintln(w, f)
	}
	for _, n := range r.Report.Notes {
		fmt.Fprintln(w, n)
	}
	if r.Trail.Skipped > 0 {
		fmt.Fprintf(w, "NOTE skipped %d entries of other logs\n", r.Trail.Skipped)
	}
	if r.Heads == nil {
		fmt.Fprintln(w, "NOTE no heads: entries cut off the end of a chain cannot be seen")
	}
	fmt.Fprintln(w, r.Report.Summary())
}

// ParseInterspersed parses flags that may come before or after the positional arguments.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
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
