package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

func TestFromEnv(t *testing.T) {
	srv := audittest.NewServer(t)
	dir := t.TempDir()
	tcs := []struct {
		desc    string
		env     map[string]string
		wantErr bool
		check   func(t *testing.T)
	}{
		{desc: "unset", env: map[string]string{"AUDIT_SINK": ""}, wantErr: true},
		{desc: "unknown", env: map[string]string{"AUDIT_SINK": "stdout"}, wantErr: true},
		{desc: "file", env: map[string]string{"AUDIT_SINK": "file", "AUDIT_FILE": filepath.Join(dir, "a.jsonl")}, check: func(t *testing.T) {
			if rep := verifyFile(t, filepath.Join(dir, "a.jsonl")); !rep.OK() || rep.Entries != 2 {
				t.Errorf("want 2 verified entries, got = %s %v", rep.Summary(), rep.Findings)
			}
			heads, err := audit.ReadHeadsFile(filepath.Join(dir, "a.jsonl.heads.jsonl"))
			if err != nil || len(heads) != 2 {
				t.Errorf("want a head per entry in a.jsonl.heads.jsonl, got = %d (%v)", len(heads), err)
			}
		}},
		{desc: "cloudlogging, AUDIT_PROJECT", env: map[string]string{"AUDIT_SINK": "cloudlogging", "AUDIT_PROJECT": "p1", "GOOGLE_CLOUD_PROJECT": "p2"}, check: func(t *testing.T) {
			if got := srv.Entries(); len(got) == 0 || got[len(got)-1].GetLogName() != "projects/p1/logs/airlock-audit" {
				t.Errorf("want log projects/p1/logs/airlock-audit, got = %v", got)
			}
		}},
		{desc: "cloudlogging, GOOGLE_CLOUD_PROJECT", env: map[string]string{"AUDIT_SINK": "cloudlogging", "AUDIT_PROJECT": "", "GOOGLE_CLOUD_PROJECT": "p2"}, check: func(t *testing.T) {
			if got := srv.Entries(); len(got) == 0 || got[len(got)-1].GetLogName() != "projects/p2/logs/airlock-audit" {
				t.Errorf("want log projects/p2/logs/airlock-audit, got = %v", got)
			}
		}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			rec, err := audit.FromEnv(t.Context(), audit.WithClientOptions(srv.ClientOptions()...),
				audit.WithLoggerOptions(srv.LoggerOptions()...), audit.WithMirror(nil))
			if tc.wantErr {
				if err == nil || errors.Is(err, audit.ErrUnavailable) {
					t.Errorf("when AUDIT_SINK=%q, want a configuration error, got = %v", os.Getenv("AUDIT_SINK"), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if err := rec.Record(t.Context(), audit.Entry{Event: "x"}); err != nil {
				t.Fatal(err)
			}
			if err := rec.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			tc.check(t)
		})
	}
}
