package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/audit/audittest"
)

// A fixture is a trail of two chains, A (10 entries and a closing checkpoint) and B
// (4 entries and a closing checkpoint), interleaved in one JSON-lines file. The two
// recorders take turns, so the file is in time order, as one writer's file is.
type fixture struct {
	keys   *audit.Keyring
	lines  []string // the file's lines
	heads  []audit.Head
	chainA string
	chainB string
	chainC string // a forged chain, in some tests
}

func buildFixture(t *testing.T) fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a := newFileRecorder(t, path, audit.WithFunction("ExecuteQuery"))
	b := newFileRecorder(t, path, audit.WithFunction("RequestAccess"))
	ctx := t.Context()
	for i := range 10 {
		e := audit.Entry{Event: audit.EventQueryAttempt, Actor: fmt.Sprintf("dev%d@example.com", i), SQL: fmt.Sprintf("select %d", i),
			Details: map[string]any{"ratio": 0.25 * float64(i), "n": i}}
		if err := a.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := b.Record(ctx, audit.Entry{Event: audit.EventRequestCreated, Actor: "req@example.com", AccessRequestID: fmt.Sprint("ar_", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ha, _ := a.Head(ctx)
	hb, _ := b.Head(ctx)
	for _, r := range []*audit.Recorder{a, b} {
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{keys: keys(t), lines: strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"), heads: heads, chainA: ha.Chain, chainB: hb.Chain}
}

// find returns the index of the line holding chain's entry at seq.
func find(t *testing.T, lines []string, chain string, seq int64) int {
	t.Helper()
	for i, l := range lines {
		var e audit.Entry
		if json.Unmarshal([]byte(l), &e) == nil && e.Chain == chain && e.Seq == seq {
			return i
		}
	}
	t.Fatalf("no line for chain %s seq %d", chain, seq)
	return -1
}

// decode and encode move between an entry's JSON and a map, keeping numbers' text.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rehash gives m a hash matching its content, as a careful forger would.
func rehash(t *testing.T, m map[string]any) {
	t.Helper()
	h, err := audit.HashPayload([]byte(encode(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	m["hash"] = h
}

// forge returns a well-formed entry of chain at seq, linked to prevHash.
func forge(t *testing.T, template map[string]any, prevHash string) map[string]any {
	t.Helper()
	m := map[string]any{}
	for k, v := range template {
		m[k] = v
	}
	m["actor"] = "mallory@example.com"
	m["sql"] = "select * from users"
	m["prev_hash"] = prevHash
	rehash(t, m)
	return m
}

type want struct {
	kind  string
	chain string // "A" or "B"
	seq   int64
	line  int // 0: not checked
}

func checkFindings(t *testing.T, fx fixture, rep audit.Report, wants []want) {
	t.Helper()
	names := map[string]string{"A": fx.chainA, "B": fx.chainB, "C": fx.chainC}
	var got, exp []string
	for _, f := range rep.Findings {
		if !strings.HasPrefix(f.String(), "FAIL "+f.Kind) {
			t.Errorf("want the finding to start with FAIL, got = %q", f)
		}
		got = append(got, fmt.Sprintf("%s %s %d", f.Kind, f.Chain, f.Seq))
	}
	for _, w := range wants {
		exp = append(exp, fmt.Sprintf("%s %s %d", w.kind, names[w.chain], w.seq))
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Errorf("want findings = %q\ngot = %q\n(%v)", exp, got, rep.Findings)
		return
	}
	for _, w := range wants {
		if w.line == 0 {
			continue
		}
		ok := false
		for _, f := range rep.Findings {
			if f.Kind == w.kind && f.Seq == w.seq && f.Where == fmt.Sprintf("line=%d", w.line) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("want a %s finding at line=%d, got = %v", w.kind, w.line, rep.Findings)
		}
	}
	if len(wants) == 0 && (!rep.OK() || !strings.HasPrefix(rep.Summary(), "OK: 2 chains")) {
		t.Errorf("want OK: 2 chains …, got = %s", rep.Summary())
	}
	if len(wants) > 0 && !strings.HasPrefix(rep.Summary(), fmt.Sprintf("TAMPERED: %d %s", len(wants), map[bool]string{true: "finding", false: "findings"}[len(wants) == 1])) {
		t.Errorf("unexpected summary %q", rep.Summary())
	}
}

func TestVerifyJSONLines(t *testing.T) {
	fx := buildFixture(t)
	a, b := fx.chainA, fx.chainB
	tcs := []struct {
		desc    string
		tamper  func(t *testing.T, lines []string) ([]string, []want)
		noHeads bool
		opts    []audit.VerifyOption
	}{
		{desc: "intact", tamper: func(t *testing.T, ls []string) ([]string, []want) { return ls, nil }},
		{desc: "one entry edited", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 5)
			ls[i] = strings.Replace(ls[i], "dev4@example.com", "someone@example.com", 1)
			return ls, []want{{audit.KindEdited, "A", 5, i + 1}}
		}},
		{desc: "one entry edited and re-hashed", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 5)
			m := decode(t, ls[i])
			m["sql"] = "select 'nothing to see'"
			rehash(t, m)
			ls[i] = encode(t, m)
			// Without the chain's key it cannot be signed again; the heads file (a head
			// after every entry) catches it too.
			return ls, []want{{audit.KindUnsigned, "A", 5, i + 1}, {audit.KindBrokenLink, "A", 6, find(t, ls, a, 6) + 1}, {audit.KindHeadMismatch, "A", 5, i + 1}}
		}},
		{desc: "one entry removed", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 5)
			return slices.Delete(ls, i, i+1), []want{{audit.KindRemoved, "A", 5, 0}}
		}},
		{desc: "first entry removed", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, b, 1)
			return slices.Delete(ls, i, i+1), []want{{audit.KindRemoved, "B", 1, 0}}
		}},
		{desc: "first entry removed, missing start allowed", opts: []audit.VerifyOption{audit.AllowMissingStart()},
			tamper: func(t *testing.T, ls []string) ([]string, []want) {
				i := find(t, ls, b, 1)
				return slices.Delete(ls, i, i+1), nil
			}},
		{desc: "two entries swapped", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i, j := find(t, ls, a, 5), find(t, ls, a, 6)
			ls[i], ls[j] = ls[j], ls[i]
			return ls, []want{{audit.KindReordered, "A", 6, i + 1}}
		}},
		{desc: "two adjacent entries of different chains swapped", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			// Each chain stays in seq order; only the lines' times show the swap.
			i, j := find(t, ls, a, 4), find(t, ls, b, 2)
			if j != i+1 {
				t.Fatalf("fixture: want B's seq 2 right after A's seq 4, got lines %d and %d", i+1, j+1)
			}
			ls[i], ls[j] = ls[j], ls[i]
			return ls, []want{{audit.KindReordered, "A", 4, j + 1}}
		}},
		{desc: "one entry moved back past another chain's", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			// B's seq 2 moved up before A's seq 3: A's seq 3 now follows a later entry.
			i := find(t, ls, b, 2)
			moved := ls[i]
			ls = slices.Delete(ls, i, i+1)
			k := find(t, ls, a, 3)
			ls = slices.Insert(ls, k, moved)
			return ls, []want{{audit.KindReordered, "A", 3, k + 2}}
		}},
		{desc: "one entry moved far back", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 2)
			moved := ls[i]
			ls = slices.Delete(ls, i, i+1)
			ls = append(ls, moved)
			return ls, []want{{audit.KindReordered, "A", 2, len(ls)}}
		}},
		{desc: "one entry duplicated", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 5)
			return slices.Insert(ls, i+1, ls[i]), []want{{audit.KindDuplicated, "A", 5, i + 2}}
		}},
		{desc: "one entry inserted", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 6)
			prev := decode(t, ls[find(t, ls, a, 5)])
			f := forge(t, decode(t, ls[i]), prev["hash"].(string))
			return slices.Insert(ls, i, encode(t, f)), []want{{audit.KindUnsigned, "A", 6, i + 1}}
		}},
		{desc: "one entry inserted after the real one", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 6)
			prev := decode(t, ls[find(t, ls, a, 5)])
			f := forge(t, decode(t, ls[i]), prev["hash"].(string))
			return slices.Insert(ls, i+1, encode(t, f)), []want{{audit.KindUnsigned, "A", 6, i + 2}}
		}},
		{desc: "one entry replaced by a forgery", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 6)
			prev := decode(t, ls[find(t, ls, a, 5)])
			ls[i] = encode(t, forge(t, decode(t, ls[i]), prev["hash"].(string)))
			return ls, []want{{audit.KindUnsigned, "A", 6, i + 1}, {audit.KindBrokenLink, "A", 7, 0}, {audit.KindHeadMismatch, "A", 6, i + 1}}
		}},
		{desc: "last three entries cut off", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			// A has seq 1..11 (11 = closing checkpoint); cut 9, 10, 11.
			for s := int64(11); s >= 9; s-- {
				i := find(t, ls, a, s)
				ls = slices.Delete(ls, i, i+1)
			}
			return ls, []want{{audit.KindTruncated, "A", 8, find(t, ls, a, 8) + 1}}
		}},
		{desc: "last three entries cut off, no heads (undetectable)", noHeads: true, tamper: func(t *testing.T, ls []string) ([]string, []want) {
			for s := int64(11); s >= 9; s-- {
				i := find(t, ls, a, s)
				ls = slices.Delete(ls, i, i+1)
			}
			return ls, nil
		}},
		{desc: "whole chain removed", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			var out []string
			for _, l := range ls {
				if !strings.Contains(l, b) {
					out = append(out, l)
				}
			}
			return out, []want{{audit.KindTruncated, "B", 5, 0}}
		}},
		{desc: "line garbled", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 3)
			ls[i] = ls[i][:40]
			// Nothing of the line can be read, so its seq is also missing from the chain.
			return ls, []want{{audit.KindMalformed, "", 0, i + 1}, {audit.KindRemoved, "A", 3, 0}}
		}},
		{desc: "seq field changed", tamper: func(t *testing.T, ls []string) ([]string, []want) {
			i := find(t, ls, a, 3)
			ls[i] = strings.Replace(ls[i], `"seq":3,`, `"seq":"3",`, 1)
			return ls, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			lines, wants := tc.tamper(t, slices.Clone(fx.lines))
			trail, err := audit.ReadTrail(strings.NewReader(strings.Join(lines, "\n") + "\n"))
			if err != nil {
				t.Fatalf("ReadTrail: %v", err)
			}
			if trail.Format != audit.FormatJSONL {
				t.Errorf("want format jsonl, got = %s", trail.Format)
			}
			heads := fx.heads
			if tc.noHeads {
				heads = nil
			}
			rep := audit.Verify(trail, keys(t), heads, tc.opts...)
			checkFindings(t, fx, rep, wants)
		})
	}
}

// gcloudFixture records the fixture's pattern through the fake Cloud Logging server and
// returns the gcloud export's elements.
func gcloudFixture(t *testing.T) (fixture, []map[string]any) {
	t.Helper()
	heads := &memHeads{}
	srv, a := setupCloudLogging(t, audit.WithHeadStore(heads), audit.WithCheckpoint(4, 0))
	b, err := audit.NewRecorder(t.Context(), "test-project", audit.WithClientOptions(srv.ClientOptions()...), audit.WithSigner(srv.Signer(t)),
		audit.WithLoggerOptions(srv.LoggerOptions()...), audit.WithHeadStore(heads))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 10 {
		e := audit.Entry{Event: audit.EventQueryResult, Actor: fmt.Sprintf("dev%d@example.com", i), Rows: int64(i * 1000),
			Details: map[string]any{"ratio": 0.1 * float64(i), "big": 1e22, "tiny": 1e-9, "nested": map[string]any{"list": []any{}, "obj": map[string]any{}}}}
		if err := a.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := b.Record(ctx, audit.Entry{Event: audit.EventGrantCreated, Actor: "approver@example.com", GrantIDs: []int64{int64(i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ha, _ := a.Head(ctx)
	hb, _ := b.Head(ctx)
	for _, r := range []*audit.Recorder{a, b} {
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	export, err := srv.GcloudJSON()
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(export))
	dec.UseNumber()
	var elems []map[string]any
	if err := dec.Decode(&elems); err != nil {
		t.Fatal(err)
	}
	return fixture{keys: keys(t, srv), heads: heads.all(), chainA: ha.Chain, chainB: hb.Chain}, elems
}

func payload(e map[string]any) map[string]any { return e["jsonPayload"].(map[string]any) }

func findElem(t *testing.T, es []map[string]any, chain string, seq int64) int {
	t.Helper()
	for i, e := range es {
		p := payload(e)
		if p["chain"] == chain && p["seq"].(json.Number).String() == fmt.Sprint(seq) {
			return i
		}
	}
	t.Fatalf("no element for chain %s seq %d", chain, seq)
	return -1
}

func TestVerifyGcloudExport(t *testing.T) {
	fx, elems := gcloudFixture(t)
	a := fx.chainA
	// A: seq 1..4 entries, 5 checkpoint, 6..9 entries, 10 checkpoint, 11..12 entries, 13 closing checkpoint.
	tcs := []struct {
		desc   string
		tamper func(t *testing.T, es []map[string]any) ([]map[string]any, []want)
	}{
		{desc: "intact, newest first", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) { return es, nil }},
		{desc: "oldest first", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			slices.Reverse(es)
			return es, nil
		}},
		{desc: "shuffled (order carries no meaning)", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			r := rand.New(rand.NewPCG(1, 2))
			r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
			return es, nil
		}},
		{desc: "one entry edited", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			i := findElem(t, es, a, 6)
			payload(es[i])["rows"] = json.Number("1")
			return es, []want{{audit.KindEdited, "A", 6, 0}}
		}},
		{desc: "one entry removed", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			i := findElem(t, es, a, 6)
			return slices.Delete(es, i, i+1), []want{{audit.KindRemoved, "A", 6, 0}}
		}},
		{desc: "one entry duplicated", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			i := findElem(t, es, a, 6)
			return append(es, es[i]), []want{{audit.KindDuplicated, "A", 6, 0}}
		}},
		{desc: "one entry inserted", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			i := findElem(t, es, a, 7)
			prev := payload(es[findElem(t, es, a, 6)])
			forged := map[string]any{"jsonPayload": forge(t, payload(es[i]), prev["hash"].(string)), "insertId": "forged",
				"logName": es[i]["logName"], "timestamp": es[i]["timestamp"]}
			return slices.Insert(es, 0, forged), []want{{audit.KindUnsigned, "A", 7, 0}}
		}},
		{desc: "last three entries cut off", tamper: func(t *testing.T, es []map[string]any) ([]map[string]any, []want) {
			for s := int64(13); s >= 11; s-- {
				i := findElem(t, es, a, s)
				es = slices.Delete(es, i, i+1)
			}
			return es, []want{{audit.KindTruncated, "A", 10, 0}}
		}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			es, wants := tc.tamper(t, deepCopy(t, elems))
			raw, err := json.MarshalIndent(es, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			trail, err := audit.ReadTrail(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("ReadTrail: %v", err)
			}
			if trail.Format != audit.FormatGcloud {
				t.Errorf("want format gcloud, got = %s", trail.Format)
			}
			rep := audit.Verify(trail, fx.keys, fx.heads)
			checkFindings(t, fx, rep, wants)
			for _, f := range rep.Findings {
				if f.Where != "" && !strings.HasPrefix(f.Where, "item=") {
					t.Errorf("want gcloud findings placed by item, got = %q", f.Where)
				}
			}
		})
	}
}

func deepCopy(t *testing.T, es []map[string]any) []map[string]any {
	t.Helper()
	raw, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out []map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadTrailFormats(t *testing.T) {
	tcs := []struct {
		desc, in string
		want     audit.Format
		entries  int
		skipped  int
		wantErr  bool
	}{
		{desc: "empty", in: "", want: audit.FormatJSONL},
		{desc: "empty gcloud array", in: " \n[]\n", want: audit.FormatGcloud},
		{desc: "JSON lines of LogEntry objects", in: `{"insertId":"x","logName":"projects/p/logs/airlock-audit","jsonPayload":{"seq":1}}` + "\n", want: audit.FormatGcloud, entries: 1},
		{desc: "gcloud entries of other logs are skipped", in: `[{"logName":"projects/p/logs/diagnostic-log","jsonPayload":{}}]`, want: audit.FormatGcloud, skipped: 1},
		{desc: "broken gcloud array", in: `[{"a":1},`, wantErr: true},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			tr, err := audit.ReadTrail(strings.NewReader(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Errorf("want an error, got nil")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.Format != tc.want || len(tr.Entries) != tc.entries || tr.Skipped != tc.skipped {
				t.Errorf("want format %s, %d entries, %d skipped; got %s, %d, %d", tc.want, tc.entries, tc.skipped, tr.Format, len(tr.Entries), tr.Skipped)
			}
		})
	}
}

// TestVerifyForgeries plays an insider who can write to the log and to the heads store,
// has read this package, but does not hold a chain's key.
func TestVerifyForgeries(t *testing.T) {
	fx := buildFixture(t)
	a, b := fx.chainA, fx.chainB
	last := func(t *testing.T, ls []string, chain string) (int, map[string]any) {
		t.Helper()
		idx := -1
		var top int64
		for i, l := range ls {
			m := decode(t, l)
			if m["chain"] == chain {
				if s, _ := m["seq"].(json.Number).Int64(); s > top {
					top, idx = s, i
				}
			}
		}
		return idx, decode(t, ls[idx])
	}
	// appended returns an entry of chain linked after prev, hashed as the recorder hashes,
	// with the time of the file's last line, so that the file stays in time order.
	lastTime := decode(t, fx.lines[len(fx.lines)-1])["time"]
	appended := func(t *testing.T, prev map[string]any, event, actor string) map[string]any {
		t.Helper()
		seq, _ := prev["seq"].(json.Number).Int64()
		m := map[string]any{"seq": seq + 1, "chain": prev["chain"], "prev_hash": prev["hash"], "time": lastTime,
			"event": event, "severity": "NOTICE", "actor": actor, "function": "ApprovalCallback", "grant_ids": []any{1}}
		rehash(t, m)
		return decode(t, encode(t, m))
	}
	otherKey := audittest.NewLocalSigner(t)
	tcs := []struct {
		desc   string
		tamper func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want)
		keys   *audit.Keyring // default fx.keys
	}{
		{desc: "two forged entries appended, hashes recomputed, heads extended", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i, prev := last(t, ls, a)
			f1 := appended(t, prev, "grant.revoked", "lead1@example.com")
			f2 := appended(t, f1, "query.result", "dev1@example.com")
			ls = append(ls, encode(t, f1), encode(t, f2))
			// The forger also appends heads naming the forged entries.
			for _, f := range []map[string]any{f1, f2} {
				s, _ := f["seq"].(json.Number).Int64()
				heads = append(heads, audit.Head{Chain: a, Seq: s, Hash: f["hash"].(string)})
			}
			_ = i
			return ls, heads, []want{{audit.KindUnsigned, "A", 12, len(ls) - 1}, {audit.KindUnsigned, "A", 13, len(ls)},
				{audit.KindForgedHead, "A", 12, 0}, {audit.KindForgedHead, "A", 13, 0}}
		}},
		{desc: "forged entry appended with a copied signature", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			_, prev := last(t, ls, a)
			f := appended(t, prev, "grant.revoked", "lead1@example.com")
			f["sig"] = prev["sig"] // a real signature, of another entry
			return append(ls, encode(t, f)), heads, []want{{audit.KindUnsigned, "A", 12, len(ls) + 1}}
		}},
		{desc: "tail cut and the heads emptied", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			for s := int64(11); s >= 9; s-- {
				i := find(t, ls, a, s)
				ls = slices.Delete(ls, i, i+1)
			}
			return ls, []audit.Head{}, []want{{audit.KindUnanchored, "A", 8, 0}, {audit.KindUnanchored, "B", 5, 0}}
		}},
		{desc: "tail cut and the heads cut to match", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			for s := int64(11); s >= 9; s-- {
				i := find(t, ls, a, s)
				ls = slices.Delete(ls, i, i+1)
			}
			var kept []audit.Head
			for _, h := range heads {
				if h.Chain != a || h.Seq <= 8 {
					kept = append(kept, h)
				}
			}
			// Undetectable without a head kept out of the forger's reach: the database's
			// heads only move forward (see PGHeadStore).
			return ls, kept, nil
		}},
		{desc: "newest entry replaced by a copy that supersedes it", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i, real := last(t, ls, a)
			f := decode(t, ls[i])
			f["actor"] = "mallory@example.com"
			f["time"] = lastTime
			f["supersedes"] = []any{real["hash"]}
			rehash(t, f)
			ls = append(ls, encode(t, f))
			// Checkpoint-only heads, as a deployment keeps: none names the newest entry.
			var kept []audit.Head
			for _, h := range heads {
				if h.Chain != a || h.Seq <= 10 {
					kept = append(kept, h)
				}
			}
			return ls, kept, []want{{audit.KindUnsigned, "A", 11, len(ls)}}
		}},
		{desc: "a whole chain forged with a certificate of another key", keys: nil, tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			path := filepath.Join(t.TempDir(), "forged.jsonl")
			rec, err := audit.NewFileRecorder(t.Context(), path, audit.WithSigner(otherKey), audit.WithHeadStore(audit.NewFileHeadStore(path+audit.HeadsFileSuffix)), audit.WithHeadsEveryEntry())
			if err != nil {
				t.Fatal(err)
			}
			rec.Record(t.Context(), audit.Entry{Event: audit.EventGrantRevoked, Actor: "lead1@example.com"})
			rec.Record(t.Context(), audit.Entry{Event: audit.EventQueryResult, Actor: "dev1@example.com"})
			rec.Close(t.Context())
			forged := readLines(t, path)
			hs, _ := audit.ReadHeadsFile(path + audit.HeadsFileSuffix)
			for _, m := range forged {
				b, _ := json.Marshal(m)
				ls = append(ls, string(b))
			}
			return ls, append(heads, hs...), []want{{audit.KindUntrusted, "C", 1, len(ls) - 2}}
		}},
		{desc: "a forged head past the end", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			h := heads[len(heads)-1]
			h.Seq += 5
			return ls, append(heads, h), []want{{audit.KindForgedHead, h.Chain[:0] + map[bool]string{true: "A", false: "B"}[h.Chain == a], h.Seq, 0}}
		}},
		{desc: "duplicate member", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			ls[i] = strings.Replace(ls[i], `"actor":"dev2@example.com"`, `"actor":"dev2@example.com","actor":"root@example.com"`, 1)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "member in another case", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			m := decode(t, ls[i])
			m["Actor"] = "root@example.com"
			rehash(t, m) // the hash covers it: only the round trip shows it
			ls[i] = encode(t, m)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "unknown member", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			ls[i] = strings.Replace(ls[i], `{"seq":3,`, `{"seq":3,"approved_by":"ceo@example.com",`, 1)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "escaped lone surrogate", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			ls[i] = strings.Replace(ls[i], `"dev2@example.com"`, `"dev2@example.com\ud800"`, 1)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "invalid UTF-8", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			ls[i] = strings.Replace(ls[i], `"dev2@example.com"`, "\"dev2@example.com\xff\"", 1)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "integer beyond 2^53", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			ls[i] = strings.Replace(ls[i], `"n":2`, `"n":9007199254740993`, 1)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "null member", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			i := find(t, ls, a, 3)
			m := decode(t, ls[i])
			m["rule"] = nil
			rehash(t, m)
			ls[i] = encode(t, m)
			return ls, heads, []want{{audit.KindMalformed, "A", 3, i + 1}}
		}},
		{desc: "certificate moved to another chain", tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			ia, ib := find(t, ls, a, 1), find(t, ls, b, 1)
			mb := decode(t, ls[ib])
			mb["cert"] = decode(t, ls[ia])["cert"]
			rehash(t, mb)
			ls[ib] = encode(t, mb)
			return ls, heads, []want{{audit.KindUntrusted, "B", 1, ib + 1}, {audit.KindBrokenLink, "B", 2, 0}, {audit.KindHeadMismatch, "B", 1, ib + 1}}
		}},
		{desc: "no key trusted", keys: &audit.Keyring{}, tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			return ls, heads, []want{{audit.KindUntrusted, "A", 1, find(t, ls, a, 1) + 1}, {audit.KindUntrusted, "B", 1, find(t, ls, b, 1) + 1}}
		}},
		{desc: "only another key trusted", keys: audittest.Keyring(t, otherKey), tamper: func(t *testing.T, ls []string, heads []audit.Head) ([]string, []audit.Head, []want) {
			return ls, heads, []want{{audit.KindUntrusted, "A", 1, find(t, ls, a, 1) + 1}, {audit.KindUntrusted, "B", 1, find(t, ls, b, 1) + 1}}
		}},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			lines, heads, wants := tc.tamper(t, slices.Clone(fx.lines), slices.Clone(fx.heads))
			trail, err := audit.ReadTrail(strings.NewReader(strings.Join(lines, "\n") + "\n"))
			if err != nil {
				t.Fatalf("ReadTrail: %v", err)
			}
			k := fx.keys
			if tc.keys != nil {
				k = tc.keys
			}
			rep := audit.Verify(trail, k, heads)
			// Chain C is the forged one, when there is one.
			var chainC string
			for _, se := range trail.Entries {
				if c := se.Entry.Chain; c != a && c != b && c != "" {
					chainC = c
				}
			}
			checkFindings(t, fixture{chainA: a, chainB: b, chainC: chainC}, rep, wants)
			if len(wants) > 0 {
				f, ok := rep.FirstUntrusted()
				if w := wants[0]; ok && w.line > 0 && (f.Kind != w.kind && f.Where != fmt.Sprintf("line=%d", w.line)) {
					t.Errorf("want the first untrusted entry at line=%d, got = %s", w.line, f)
				}
			}
		})
	}
}
