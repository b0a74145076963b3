package revert

import (
	"context"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// literalCases are texts a customer could have stored, and that a revert statement
// shows as SQL literals.
var literalCases = []string{
	"plain", "it's", `back\slash`, "", "\x1b]0;owned\x07\x1b[2J", "line\nbreak\r\ttab",
	"\u009b31m", "\u202egnp.exe", "zero\u200bwidth\ufeff", "\U000e0041tag", "\x7f", `E'\x41'`,
	"mixed ' and \\ and \x1b",
}

// TestLiteralIsSafeAndExact: a literal holds no control or format character raw, and the
// database reads it back as exactly the text.
func TestLiteralIsSafeAndExact(t *testing.T) {
	for _, s := range literalCases {
		lit := literal(s)
		if i := strings.IndexFunc(lit, unsafe); i >= 0 {
			t.Errorf("literal(%q) = %q holds %U raw", s, lit, []rune(lit[i:])[0])
		}
		if !strings.ContainsFunc(s, unsafe) && lit != "'"+strings.ReplaceAll(s, "'", "''")+"'" {
			t.Errorf("literal(%q) = %q: want a plain literal for text without control characters", s, lit)
		}
	}
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Skip("DATABASE_URL is not set; the literals were not read back by a server")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range literalCases {
		if !utf8.ValidString(s) {
			continue
		}
		var got string
		if err := conn.QueryRow(ctx, "SELECT "+literal(s)).Scan(&got); err != nil || got != s {
			t.Errorf("when the server reads %s, want = %q, got = %q (%v)", literal(s), s, got, err)
		}
	}
}
