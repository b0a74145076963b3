package sqlguard

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// demoCatalog is the five demo tables. Writable columns are deliberately
// narrow: balances move through the ledger, not through hand edits, and a
// withdrawal can only have its status corrected.
func demoCatalog() Catalog {
	return Catalog{Tables: []Table{
		{
			Name:            "users",
			Keys:            [][]string{{"id"}},
			Columns:         []string{"id", "email", "full_name", "phone", "country", "kyc_status", "created_at"},
			Sensitive:       []string{"email", "full_name", "phone"},
			WritableColumns: []string{"country", "kyc_status"},
		},
		{
			Name:            "accounts",
			Keys:            [][]string{{"id"}},
			Columns:         []string{"id", "user_id", "currency", "balance", "updated_at"},
			Sensitive:       []string{"balance"},
			WritableColumns: []string{"currency", "updated_at"},
		},
		{
			Name:            "deposits",
			Keys:            [][]string{{"id"}},
			Columns:         []string{"id", "user_id", "currency", "amount", "wallet_address", "tx_hash", "status", "created_at"},
			Sensitive:       []string{"wallet_address"},
			WritableColumns: []string{"status"},
		},
		{
			Name:            "withdrawals",
			Keys:            [][]string{{"id"}},
			Columns:         []string{"id", "user_id", "currency", "amount", "destination_address", "status", "created_at"},
			Sensitive:       []string{"destination_address"},
			WritableColumns: []string{"status"},
		},
		{
			Name:            "trades",
			Keys:            [][]string{{"id"}},
			Columns:         []string{"id", "user_id", "pair", "side", "price", "quantity", "fee", "executed_at"},
			WritableColumns: []string{"fee"},
		},
	}}
}

// corpusItem is one line of a corpus file.
type corpusItem struct {
	ID       string `json:"id"`
	SQL      string `json:"sql"`
	Category string `json:"category"`
	Why      string `json:"why"`
}

func loadCorpus(t testing.TB, name string) []corpusItem {
	t.Helper()
	f, err := os.Open("testdata/corpus/" + name)
	if err != nil {
		t.Fatalf("opening corpus: %v", err)
	}
	defer f.Close()
	var out []corpusItem
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var it corpusItem
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			t.Fatalf("corpus %s: %v", name, err)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading corpus %s: %v", name, err)
	}
	return out
}

var (
	readNoGrants = Permissions{Mode: Read}
	writeGranted = Permissions{
		Mode:     Write,
		Unmasked: map[string]bool{"accounts": true, "withdrawals": true},
		Write: map[string]WriteGrant{
			"accounts":    {Insert: true, Update: true},
			"withdrawals": {Insert: true, Update: true},
		},
	}
)

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}
