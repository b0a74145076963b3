// Command audit-report turns a verified Airlock audit trail into evidence for auditors:
// CSV files and self-contained HTML pages, per access request (who asked, why, who
// approved and when, the grant's window, every statement run under it) and per period
// (who held which access when; every approval, denial, refusal and alert, per person).
//
// Usage:
//
//	audit-report [trust flags] [--from T] [--to T] [--request ID] --out DIR TRAIL
//
// It verifies TRAIL first, with the same flags as audit-verify (--key, --kms-key,
// --heads, --database-url, --no-heads), and refuses to report on a trail that fails:
// it prints the findings and exits 1, writing nothing. It writes DIR/requests.html,
// DIR/review.html, DIR/requests.csv, DIR/statements.csv, DIR/review-access.csv and
// DIR/review-events.csv. Exit: 0 written, 1 the trail did not verify, 2 usage or I/O
// error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/api/option"

	"airlock.dev/airlock/shared/audit/trust"
	"airlock.dev/airlock/shared/auditreport"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: audit-report [flags] --out DIR TRAIL

Verifies TRAIL (as audit-verify does) and, only if it is intact, writes to DIR:
  requests.html, requests.csv, statements.csv   per access request: who asked, why, the ticket,
                                                 who decided and when, the grant's window, and
                                                 every statement run under it
  review.html, review-access.csv, review-events.csv
                                                 per period: who held which access when, every
                                                 approval, denial, refusal and alert, per person

Locally:   audit-report --heads .dev/audit.jsonl.heads.jsonl --out .dev/report .dev/audit.jsonl

Flags:
`

// run is the whole command, minus os.Exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, kmsOpts ...option.ClientOption) int {
	fs := flag.NewFlagSet("audit-report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tf := trust.Register(fs)
	out := fs.String("out", "", "directory to write the report to (created if needed)")
	from := fs.String("from", "", "start of the review period, RFC 3339 or YYYY-MM-DD (default: the trail's first entry)")
	to := fs.String("to", "", "end of the review period, RFC 3339 or YYYY-MM-DD, inclusive (default: the trail's last entry)")
	only := fs.String("request", "", "report on this access request only (ar_…) in requests.*")
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
	if len(pos) != 1 || *out == "" {
		fmt.Fprintln(stderr, "audit-report: want --out DIR and exactly one TRAIL argument")
		fs.Usage()
		return 2
	}
	var o auditreport.Options
	if o.From, err = parseWhen(*from, false); err != nil {
		fmt.Fprintf(stderr, "audit-report: --from: %v\n", err)
		return 2
	}
	if o.To, err = parseWhen(*to, true); err != nil {
		fmt.Fprintf(stderr, "audit-report: --to: %v\n", err)
		return 2
	}
	o.Request = *only
	res, err := tf.Verify(ctx, pos[0], stderr, kmsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "audit-report: %v\n", err)
		return 2
	}
	if !res.Report.OK() {
		res.Print(stderr)
		fmt.Fprintln(stderr, "audit-report: refusing to report on a trail that did not verify; nothing was written")
		return 1
	}
	rep, err := auditreport.Build(res.Trail, res.Report, res.Keys.String(), o)
	if err != nil {
		fmt.Fprintf(stderr, "audit-report: %v\n", err)
		return 1
	}
	if o.Request != "" && len(rep.Requests) == 0 {
		fmt.Fprintf(stderr, "audit-report: no access request %s in the trail\n", o.Request)
		return 2
	}
	if err := write(*out, rep); err != nil {
		fmt.Fprintf(stderr, "audit-report: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "%s\n", res.Report.Summary())
	fmt.Fprintf(stdout, "report on %d access request(s) and %d person(s), %s to %s, in %s:\n", len(rep.Requests), len(rep.People),
		rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339), *out)
	for _, f := range files {
		fmt.Fprintf(stdout, "  %s\n", filepath.Join(*out, f.name))
	}
	return 0
}

var files = []struct {
	name  string
	write func(*auditreport.Report, io.Writer) error
}{
	{"requests.html", (*auditreport.Report).WriteRequestsHTML},
	{"review.html", (*auditreport.Report).WriteReviewHTML},
	{"requests.csv", (*auditreport.Report).WriteRequestsCSV},
	{"statements.csv", (*auditreport.Report).WriteStatementsCSV},
	{"review-access.csv", (*auditreport.Report).WriteAccessCSV},
	{"review-events.csv", (*auditreport.Report).WriteEventsCSV},
}

func write(dir string, rep *auditreport.Report) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		fh, err := os.OpenFile(filepath.Join(dir, f.name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		werr := f.write(rep, fh)
		if err := errors.Join(werr, fh.Close()); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return nil
}

// parseWhen reads RFC 3339 or a date; a date as the end of a period means its end.
func parseWhen(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-06-30T23:59:59Z) nor a date (2026-06-30)", s)
	}
	if end {
		d = d.Add(24*time.Hour - time.Nanosecond)
	}
	return d, nil
}
