package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc/codes"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// setupCloudLogging starts a fake Cloud Logging server and a Recorder that reaches it
// through the real client.
// recordTimeout bounds each Record in the tests that break the sink: long enough that a
// working fake never reaches it on a loaded machine (a chain's first Record also creates
// the clients and has Cloud KMS sign), so that only the failure the test makes can.
const recordTimeout = 5 * time.Second

func setupCloudLogging(t *testing.T, opts ...audit.Option) (*audittest.Server, *audit.Recorder) {
	t.Helper()
	srv := audittest.NewServer(t)
	base := []audit.Option{
		audit.WithClientOptions(srv.ClientOptions()...),
		audit.WithLoggerOptions(srv.LoggerOptions()...),
		audit.WithSigner(srv.Signer(t)),
	}
	rec, err := audit.NewRecorder(t.Context(), "test-project", append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewRecorder: %v", err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	return srv, rec
}

func TestCloudLoggingSinkWritesEntries(t *testing.T) {
	srv, rec := setupCloudLogging(t, audit.WithFunction("ExecuteQuery"))
	ctx := t.Context()
	if got := srv.Calls(); got != 0 {
		t.Fatalf("when only constructed, want = 0 calls, got = %d (constructors must not do I/O)", got)
	}
	in := []audit.Entry{
		{Event: audit.EventQueryAttempt, Actor: "dev@example.com", RequestID: "r1", SQL: "select * from users where id < 10",
			Fingerprint: "fp1", Mode: "read", GrantIDs: []int64{7, 9}, AccessRequestID: "ar_3", Tables: []string{"public.users"}},
		{Event: audit.EventQueryResult, Actor: "dev@example.com", Decision: audit.DecisionAllowed, Rows: 10, Bytes: 2048,
			DurationMS: 12, MaskedColumns: []string{"users.email"}, Details: map[string]any{"replica": true}},
		{Event: audit.EventQueryResult, Actor: "dev@example.com", Decision: audit.DecisionDenied, Rule: "no_ddl",
			ErrorClass: "42", Reason: "DDL is not allowed", Severity: audit.SeverityWarning},
		{Event: "security.signature_invalid", Message: "bad Slack signature"},
	}
	for _, e := range in {
		if err := rec.Record(ctx, e); err != nil {
			t.Fatalf("Record(%s): %v", e.Event, err)
		}
	}
	entries := srv.Entries()
	if len(entries) != len(in) {
		t.Fatalf("want = %d entries, got = %d: %v", len(in), len(entries), srv.Payloads())
	}
	wantSev := []ltype.LogSeverity{ltype.LogSeverity_INFO, ltype.LogSeverity_INFO, ltype.LogSeverity_WARNING, ltype.LogSeverity_ALERT}
	prev := audit.GenesisHash
	for i, le := range entries {
		if !strings.HasSuffix(le.GetLogName(), "/logs/airlock-audit") || !strings.HasPrefix(le.GetLogName(), "projects/test-project/") {
			t.Errorf("entry %d: want logName projects/test-project/logs/airlock-audit, got = %q", i, le.GetLogName())
		}
		if le.GetSeverity() != wantSev[i] {
			t.Errorf("entry %d: want severity = %v, got = %v", i, wantSev[i], le.GetSeverity())
		}
		p := le.GetJsonPayload().AsMap()
		if p == nil {
			t.Fatalf("entry %d: want a jsonPayload, got %T", i, le.GetPayload())
		}
		if got := p["seq"]; got != float64(i+1) {
			t.Errorf("entry %d: want seq = %d, got = %v", i, i+1, got)
		}
		if p["prev_hash"] != prev {
			t.Errorf("entry %d: want prev_hash = %s, got = %v", i, prev, p["prev_hash"])
		}
		prev, _ = p["hash"].(string)
		if p["event"] != in[i].Event || p["function"] != "ExecuteQuery" || p["chain"] == "" {
			t.Errorf("entry %d: want event %s, function ExecuteQuery and a chain, got %v", i, in[i].Event, p)
		}
		if le.GetLabels()["chain"] != p["chain"] || le.GetLabels()["event"] != in[i].Event {
			t.Errorf("entry %d: want labels chain and event, got = %v", i, le.GetLabels())
		}
		ts, err := time.Parse(time.RFC3339Nano, p["time"].(string))
		if err != nil || !ts.Equal(le.GetTimestamp().AsTime()) || ts.Location() != time.UTC {
			t.Errorf("entry %d: want time in UTC equal to the LogEntry timestamp, got = %v (%v)", i, p["time"], err)
		}
		if !strings.HasPrefix(le.GetInsertId(), p["chain"].(string)+"-") {
			t.Errorf("entry %d: want insertId to start with the chain, got = %q", i, le.GetInsertId())
		}
	}
	p0 := entries[0].GetJsonPayload().AsMap()
	for k, want := range map[string]any{"actor": "dev@example.com", "request_id": "r1", "sql": "select * from users where id < 10",
		"fingerprint": "fp1", "mode": "read", "access_request_id": "ar_3", "severity": "INFO"} {
		if p0[k] != want {
			t.Errorf("query.attempt: want %s = %v, got = %v", k, want, p0[k])
		}
	}
	if g := p0["grant_ids"].([]any); len(g) != 2 || g[0] != 7.0 {
		t.Errorf("want grant_ids = [7 9], got = %v", g)
	}
	p1 := entries[1].GetJsonPayload().AsMap()
	if p1["rows"] != 10.0 || p1["bytes"] != 2048.0 || p1["duration_ms"] != 12.0 || p1["decision"] != "allowed" ||
		p1["details"].(map[string]any)["replica"] != true || p1["masked_columns"].([]any)[0] != "users.email" {
		t.Errorf("query.result: unexpected payload %v", p1)
	}
	p2 := entries[2].GetJsonPayload().AsMap()
	if p2["rule"] != "no_ddl" || p2["error_class"] != "42" || p2["reason"] != "DDL is not allowed" || p2["severity"] != "WARNING" {
		t.Errorf("denied query.result: unexpected payload %v", p2)
	}
	if _, ok := p0["rows"]; ok {
		t.Errorf("want zero rows omitted, got %v", p0["rows"])
	}
}

func TestCloudLoggingFailsClosed(t *testing.T) {
	tcs := []struct {
		desc   string
		break_ func(*audittest.Server)
	}{
		{desc: "Unavailable", break_: func(s *audittest.Server) { s.FailWith(codes.Unavailable) }},
		{desc: "PermissionDenied", break_: func(s *audittest.Server) { s.FailWith(codes.PermissionDenied) }},
		{desc: "hang", break_: func(s *audittest.Server) { s.Hang() }},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			srv, rec := setupCloudLogging(t, audit.WithTimeout(recordTimeout))
			ctx := t.Context()
			for range 2 {
				if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryAttempt}); err != nil {
					t.Fatalf("Record: %v", err)
				}
			}
			before, _ := rec.Head(ctx)

			tc.break_(srv)
			for range 2 {
				start := time.Now()
				err := rec.Record(ctx, audit.Entry{Event: audit.EventGrantCreated})
				if !errors.Is(err, audit.ErrUnavailable) {
					t.Fatalf("when the sink fails, want ErrUnavailable, got = %v", err)
				}
				if !strings.HasPrefix(err.Error(), "audit:") {
					t.Errorf("want the error to start with \"audit:\", got = %q", err)
				}
				// At its timeout, not later (one more timeout of margin for a busy machine).
				if d := time.Since(start); d > 2*recordTimeout {
					t.Errorf("want Record to return at its %v timeout, took %v", recordTimeout, d)
				}
			}
			after, _ := rec.Head(ctx)
			if after != before {
				t.Errorf("when writes fail, want the head unchanged = %+v, got = %+v", before, after)
			}

			srv.Recover()
			if err := rec.Record(ctx, audit.Entry{Event: audit.EventGrantRevoked}); err != nil {
				t.Fatalf("after recovery, Record: %v", err)
			}
			ps := srv.Payloads()
			if len(ps) != 3 {
				t.Fatalf("want 3 stored entries, got = %d", len(ps))
			}
			last := ps[2]
			if last["seq"] != 3.0 || last["prev_hash"] != ps[1]["hash"] || last["event"] != audit.EventGrantRevoked {
				t.Errorf("after recovery, want seq 3 linked to seq 2, got = %v", last)
			}
			if sup, _ := last["supersedes"].([]any); len(sup) != 2 {
				t.Errorf("want the two failed attempts listed in supersedes, got = %v", last["supersedes"])
			}
			assertVerifies(t, srv)
		})
	}
}

// A write reported as failed may still land; the retry at the same seq supersedes it and
// the verifier accepts the side branch with a note.
func TestCloudLoggingAmbiguousFailure(t *testing.T) {
	srv, rec := setupCloudLogging(t, audit.WithTimeout(recordTimeout))
	ctx := t.Context()
	if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryAttempt}); err != nil {
		t.Fatal(err)
	}
	srv.StoreThenFailWith(codes.PermissionDenied) // not retried by the client
	if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryAttempt, Actor: "lost@example.com"}); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got = %v", err)
	}
	srv.Recover()
	for range 2 {
		if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryResult}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Payloads()); n != 4 {
		t.Fatalf("want 4 stored entries (one of them the failed attempt), got = %d", n)
	}
	rep := assertVerifies(t, srv)
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "seq=2") {
		t.Errorf("want one note about the failed attempt at seq 2, got = %q", rep.Notes)
	}
}

func TestCloudLoggingCloseWritesCheckpoint(t *testing.T) {
	heads := &memHeads{}
	srv, rec := setupCloudLogging(t, audit.WithHeadStore(heads), audit.WithCheckpoint(3, 0))
	ctx := t.Context()
	for range 4 {
		if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryAttempt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := rec.Record(ctx, audit.Entry{Event: audit.EventQueryAttempt}); !errors.Is(err, audit.ErrClosed) || !errors.Is(err, audit.ErrUnavailable) {
		t.Errorf("after Close, want ErrClosed and ErrUnavailable, got = %v", err)
	}
	var events []string
	for _, p := range srv.Payloads() {
		events = append(events, p["event"].(string)+"/"+strOr(p["reason"]))
	}
	want := "query.attempt/,query.attempt/,query.attempt/,audit.checkpoint/count,query.attempt/,audit.checkpoint/close"
	if got := strings.Join(events, ","); got != want {
		t.Errorf("want events = %s, got = %s", want, got)
	}
	hs := heads.all()
	if len(hs) != 3 || hs[0].Seq != 1 || hs[1].Seq != 4 || hs[2].Seq != 6 {
		t.Errorf("want heads after the first entry and at the two checkpoints (seq 1, 4 and 6), got = %+v", hs)
	}
	ps := srv.Payloads()
	if d := ps[3]["details"].(map[string]any); d["head_seq"] != 3.0 || d["head_hash"] != ps[2]["hash"] {
		t.Errorf("want the checkpoint to name seq 3 and its hash, got = %v", d)
	}
	assertVerifiesWithHeads(t, srv, hs)
}

func strOr(v any) string {
	s, _ := v.(string)
	return s
}
