package app_test

import (
	"context"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
	"airlock.dev/airlock/shared/demo"
	"airlock.dev/airlock/shared/migrate"
)

// TestSharedRecorder builds two functions on one recorder, as the devserver does: both
// write to it, closing their Deps leaves it open for its owner, and the trail is one
// chain whose entries name their own function.
func TestSharedRecorder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	signer := audittest.NewLocalSigner(t)
	rec, err := audit.NewFileRecorder(t.Context(), path, audit.WithHeadStore(audit.NewFileHeadStore(path+audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry(),
		audit.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(context.Background()) })
	var deps []*app.Deps
	for _, f := range []struct{ entry, group string }{{"ExecuteQuery", migrate.GroupQuery}, {"RequestAccess", migrate.GroupRequests}} {
		cfg := app.Config{Function: f.entry, Group: f.group, Policy: demo.Policy, AuthMode: "cloudrun", Recorder: rec} // no audit sink: only Config.Recorder can give a recorder
		cfg.DB.URL = "postgres://nobody@127.0.0.1:1/none"                                                              // pools dial on first use, never here
		d, err := app.Build(t.Context(), cfg)
		if err != nil {
			t.Fatalf("when Config.Recorder is set, want Build to succeed without AUDIT_SINK, got = %v", err)
		}
		if d.Audit != rec {
			t.Errorf("when Config.Recorder is set, want Deps.Audit = that recorder, got = %p", d.Audit)
		}
		deps = append(deps, d)
	}
	for _, d := range deps {
		if err := d.Audit.Record(t.Context(), audit.Entry{Event: audit.EventQueryAttempt, Function: d.Config.Function}); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	if err := rec.Record(t.Context(), audit.Entry{Event: audit.EventSweepRun, Function: "SweepExpired"}); err != nil {
		t.Errorf("when every Deps sharing a recorder is closed, want the recorder still open, got = %v", err)
	}
	if err := rec.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	trail, err := audit.ReadTrailFile(path)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
	if err != nil {
		t.Fatal(err)
	}
	rep := audit.Verify(trail, audittest.Keyring(t, signer), heads)
	var functions []string
	for _, e := range trail.Entries {
		functions = append(functions, e.Entry.Function)
	}
	want := []string{"ExecuteQuery", "RequestAccess", "SweepExpired", ""} // the closing checkpoint names none
	if !rep.OK() || rep.Chains != 1 || len(functions) != len(want) {
		t.Fatalf("when two functions share a recorder, want one intact chain of %d entries, got = %s, functions %q, findings %v", len(want), rep.Summary(), functions, rep.Findings)
	}
	for i := range want {
		if functions[i] != want[i] {
			t.Errorf("entry %d: want function = %q, got = %q", i+1, want[i], functions[i])
		}
	}
}
