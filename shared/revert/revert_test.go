package revert

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"airlock.dev/airlock/shared/policy"
)

var accounts = &policy.Table{
	Name: "accounts", PrimaryKey: []string{"id"},
	Masked: map[string]policy.Mask{"balance": {Kind: "null"}},
	Write:  &policy.Write{Update: true, Insert: true, Columns: []string{"user_id", "currency", "balance", "updated_at", "note", "meta", "tags"}, MaxRows: 20},
}

var accountTypes = map[string]string{
	"id": "bigint", "user_id": "bigint", "currency": "text", "balance": "numeric(36,8)",
	"updated_at": "timestamp with time zone", "note": "text", "meta": "jsonb", "tags": "text[]",
}

// row builds an image row from JSON text, as to_jsonb writes it.
func row(t *testing.T, s string) map[string]json.RawMessage {
	t.Helper()
	m, err := decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPlan(t *testing.T) {
	old := row(t, `{"id": 42, "user_id": 7, "currency": "EUR", "balance": 150.00000000, "updated_at": "2024-05-01T10:00:00.123456+00:00", "note": "it's a \\ test", "meta": {"a": [1, 2]}, "tags": null}`)
	new := row(t, `{"id": 42, "user_id": 7, "currency": "EUR", "balance": 0, "updated_at": "2031-01-01T00:00:00+00:00", "note": null, "meta": {}, "tags": null}`)
	stmts, err := Plan([]Image{{ID: 1, Table: "accounts", Op: "UPDATE", Old: old, New: new}}, accounts, accountTypes)
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 1 {
		t.Fatalf("want one statement, got = %d", len(stmts))
	}
	s := stmts[0]
	wantSQL := `UPDATE "accounts" SET "balance" = $1::text::numeric(36,8), "meta" = $2::text::jsonb, "note" = $3::text::text, "updated_at" = $4::text::timestamp with time zone WHERE "id" = $5::text::bigint`
	if s.SQL != wantSQL {
		t.Errorf("want SQL = %s\ngot = %s", wantSQL, s.SQL)
	}
	// Values go back exactly as PostgreSQL wrote them: the numeric keeps its scale.
	wantArgs := []any{"150.00000000", `{"a": [1, 2]}`, `it's a \ test`, "2024-05-01T10:00:00.123456+00:00", "42"}
	if !slices.Equal(s.Args, wantArgs) {
		t.Errorf("want args = %q, got = %q", wantArgs, s.Args)
	}
	wantShown := `UPDATE "accounts" SET "balance" = [masked], "meta" = '{"a": [1, 2]}', "note" = 'it''s a \ test', "updated_at" = '2024-05-01T10:00:00.123456+00:00' WHERE "id" = '42';`
	if s.Shown != wantShown {
		t.Errorf("want Shown = %s\ngot = %s", wantShown, s.Shown)
	}
	if !strings.Contains(s.Revealed, `"balance" = '150.00000000'`) || strings.Contains(s.Revealed, Masked) {
		t.Errorf("want Revealed to carry the balance, got = %s", s.Revealed)
	}
}

func TestPlanRefuses(t *testing.T) {
	tcs := []struct {
		desc     string
		img      Image
		table    *policy.Table
		want     error
		wantText string
	}{
		{
			desc: "an INSERT needs a DELETE",
			img:  Image{ID: 1, Table: "accounts", Op: "INSERT", New: map[string]json.RawMessage{"id": json.RawMessage(`9001`), "balance": json.RawMessage(`5`)}},
			want: ErrNeedsDelete, wantText: `DELETE FROM "accounts" WHERE "id" = '9001';`,
		},
		{
			desc: "an array cannot come back from its JSON image",
			img: Image{ID: 1, Table: "accounts", Op: "UPDATE", Old: map[string]json.RawMessage{"id": json.RawMessage(`1`), "tags": json.RawMessage(`["a"]`)},
				New: map[string]json.RawMessage{"id": json.RawMessage(`1`), "tags": json.RawMessage(`["b"]`)}},
			want: ErrUnsupported, wantText: "text[]",
		},
		{
			desc: "a column no write grant can set",
			img: Image{ID: 1, Table: "accounts", Op: "UPDATE", Old: map[string]json.RawMessage{"id": json.RawMessage(`1`), "user_id": json.RawMessage(`1`)},
				New: map[string]json.RawMessage{"id": json.RawMessage(`1`), "user_id": json.RawMessage(`2`)}},
			table: &policy.Table{Name: "accounts", PrimaryKey: []string{"id"}, Write: &policy.Write{Update: true, Columns: []string{"currency"}}},
			want:  ErrUnsupported, wantText: "accounts.user_id",
		},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			tbl := tc.table
			if tbl == nil {
				tbl = accounts
			}
			_, err := Plan([]Image{tc.img}, tbl, accountTypes)
			pe, ok := errors.AsType[*PlanError](err)
			if !ok || !errors.Is(err, tc.want) {
				t.Fatalf("want a PlanError wrapping %v, got = %v", tc.want, err)
			}
			if !strings.Contains(pe.Detail+strings.Join(pe.Shown, " "), tc.wantText) {
				t.Errorf("want the error to show %q, got = %s %v", tc.wantText, pe.Detail, pe.Shown)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	before := row(t, `{"id": 1, "balance": 1.50}`)
	after := row(t, `{"id": 1, "balance": 0}`)
	orig := []Image{{Op: "UPDATE", Old: before, New: after}}
	tcs := []struct {
		desc     string
		undo     []Image
		conflict bool
		ok       bool
	}{
		{"found as left, put back exactly", []Image{{Op: "UPDATE", Old: after, New: before}}, false, true},
		{"changed since the write", []Image{{Op: "UPDATE", Old: row(t, `{"id": 1, "balance": 7}`), New: before}}, true, false},
		{"gone since the write", nil, true, false},
		// 1.5 is not 1.50: byte for byte means the numeric's scale too.
		{"not put back exactly", []Image{{Op: "UPDATE", Old: after, New: row(t, `{"id": 1, "balance": 1.5}`)}}, false, false},
		{"more rows than the write changed", []Image{{Op: "UPDATE", Old: after, New: before}, {Op: "UPDATE", Old: after, New: before}}, true, false},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			err := Check(orig, tc.undo, accounts)
			if tc.ok {
				if err != nil {
					t.Errorf("want no error, got = %v", err)
				}
				return
			}
			me, ok := errors.AsType[*MismatchError](err)
			if !ok || me.Conflict != tc.conflict {
				t.Fatalf("want a mismatch with conflict = %v, got = %v", tc.conflict, err)
			}
			if len(tc.undo) <= 1 && !strings.Contains(err.Error(), "id=1") {
				t.Errorf("want the mismatch to name the row id=1, got = %v", err)
			}
		})
	}
}

func TestSummaryMasksAndBounds(t *testing.T) {
	var imgs []Image
	for i := range 3 {
		imgs = append(imgs, Image{Op: "UPDATE",
			Old: row(t, `{"id": `+string(rune('1'+i))+`, "balance": 10, "currency": "EUR", "user_id": 5}`),
			New: row(t, `{"id": `+string(rune('1'+i))+`, "balance": 0, "currency": "USD", "user_id": 5}`)})
	}
	out, cut := Summary(imgs, accounts, 2)
	if !cut || len(out) != 2 {
		t.Fatalf("want 2 rows and truncated, got %d rows, truncated = %v", len(out), cut)
	}
	b, _ := json.Marshal(out[0])
	if got := string(b); got != `{"before":{"balance":"[masked]","currency":"EUR"},"key":{"id":1},"op":"UPDATE"}` {
		t.Errorf("want the key, the changed columns' old values and balance masked, got = %s", got)
	}
}
