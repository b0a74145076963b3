package audit_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"airlock.dev/airlock/shared/audit"
)

// mustConnect connects to DATABASE_URL, creating airlock.audit_heads, or skips the test.
func mustConnect(t *testing.T) *pgx.Conn {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL not set")
	}
	// Connecting and creating the table must come; the bound only stops a test that would hang.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to DATABASE_URL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	// The DDL is idempotent; an advisory lock keeps parallel test binaries from racing.
	for _, q := range []string{"SELECT pg_advisory_lock(727274)", "CREATE SCHEMA IF NOT EXISTS airlock", audit.HeadsTableDDL, "SELECT pg_advisory_unlock(727274)"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", strings.SplitN(q, "\n", 2)[0], err)
		}
	}
	return conn
}

func TestPGHeadStore(t *testing.T) {
	conn := mustConnect(t)
	ctx := t.Context()
	chain := "test-" + time.Now().UTC().Format("20060102T150405.000000000Z")
	t.Cleanup(func() { conn.Exec(context.Background(), "DELETE FROM airlock.audit_heads WHERE chain = $1", chain) })
	hs := audit.NewPGHeadStore(conn, "")
	h := func(seq int64, c string) audit.Head {
		return audit.Head{Chain: chain, Seq: seq, Hash: strings.Repeat(c, 64)}
	}
	tcs := []struct {
		desc    string
		save    audit.Head
		wantSeq int64
		wantErr bool
	}{
		{desc: "first head inserts", save: h(3, "a"), wantSeq: 3},
		{desc: "newer head moves forward", save: h(7, "b"), wantSeq: 7},
		{desc: "older head is ignored", save: h(5, "c"), wantSeq: 7},
		{desc: "bad hash is refused", save: audit.Head{Chain: chain, Seq: 9, Hash: "nothex"}, wantSeq: 7, wantErr: true},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			err := hs.SaveHead(ctx, tc.save)
			if (err != nil) != tc.wantErr {
				t.Fatalf("when %s, want error = %v, got = %v", tc.desc, tc.wantErr, err)
			}
			heads, err := audit.ReadPGHeads(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			for _, x := range heads {
				if x.Chain == chain {
					got = x.Seq
				}
			}
			if got != tc.wantSeq {
				t.Errorf("when %s, want seq = %d, got = %d", tc.desc, tc.wantSeq, got)
			}
		})
	}
	if _, err := conn.Exec(ctx, "UPDATE airlock.audit_heads SET seq = 1 WHERE chain = $1", chain); err == nil {
		t.Errorf("when moving a head backwards by hand, want the trigger to refuse, got nil")
	}
}

func TestPGHeadStoreSetsRole(t *testing.T) {
	conn := mustConnect(t)
	ctx := t.Context()
	role := "airlock_audit_test_nobody"
	// On the Cloud SQL emulation (scripts/test.sh) DATABASE_URL is an admin whose own
	// attributes are LOGIN only: it creates roles as cloudsqlsuperuser, keeping SET on them.
	create := "DO $$ BEGIN CREATE ROLE " + role + " NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
	var canCreate bool
	if err := conn.QueryRow(ctx, "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&canCreate); err != nil {
		t.Fatal(err)
	}
	if !canCreate {
		// Keep SET on the new role (PostgreSQL 16; before it, membership is granted).
		create = "BEGIN; SET LOCAL ROLE cloudsqlsuperuser; " +
			"SELECT set_config('createrole_self_grant', 'set', true) WHERE current_setting('server_version_num')::int >= 160000; " +
			create + "; " +
			"DO $$ BEGIN IF current_setting('server_version_num')::int < 160000 THEN EXECUTE 'GRANT " + role + " TO ' || quote_ident(session_user); END IF; END $$; COMMIT"
	}
	if _, err := conn.Exec(ctx, create); err != nil {
		t.Fatal(err)
	}
	// The role has no privilege on the table, so the save must fail: proof it ran as role.
	err := audit.NewPGHeadStore(conn, role).SaveHead(ctx, audit.Head{Chain: "role-test", Seq: 1, Hash: strings.Repeat("a", 64)})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("when the role lacks privileges, want permission denied, got = %v", err)
	}
}

// The recorder keeps the table's head in step with its checkpoints.
func TestRecorderWithPGHeadStore(t *testing.T) {
	conn := mustConnect(t)
	ctx := t.Context()
	srv, rec := setupCloudLogging(t, audit.WithHeadStore(audit.NewPGHeadStore(conn, "")), audit.WithCheckpoint(3, 0))
	for range 5 {
		if err := rec.Record(ctx, audit.Entry{Event: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h, _ := rec.Head(ctx)
	t.Cleanup(func() { conn.Exec(context.Background(), "DELETE FROM airlock.audit_heads WHERE chain = $1", h.Chain) })
	heads, err := audit.ReadPGHeads(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var mine []audit.Head
	for _, x := range heads {
		if x.Chain == h.Chain {
			mine = append(mine, x)
		}
	}
	if len(mine) != 1 || mine[0].Seq != h.Seq || mine[0].Hash != h.Hash {
		t.Errorf("want the table to hold the final head %+v, got = %+v", h, mine)
	}
	assertVerifiesWithHeads(t, srv, mine)
}
