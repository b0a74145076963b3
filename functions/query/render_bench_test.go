package query

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// nullWriter is a ResponseWriter that keeps nothing, so the benchmark measures render.
type nullWriter struct{ h http.Header }

func (d *nullWriter) Header() http.Header         { return d.h }
func (d *nullWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }
func (d *nullWriter) WriteHeader(int)             {}

// BenchmarkRenderJSON100 is the JSON answer of the bench's 100-row read (scripts/cmd/bench):
// an id, two short texts, two numerics and a masked e-mail per row.
func BenchmarkRenderJSON100(b *testing.B) {
	const int8OID, textOID, numericOID = 20, 25, 1700
	res := &result{
		requestID: "0123456789abcdef",
		columns: []Column{{Name: "id", Type: "bigint"}, {Name: "pair", Type: "text"}, {Name: "side", Type: "text"},
			{Name: "price", Type: "numeric"}, {Name: "qty", Type: "numeric"}, {Name: "email", Type: "text", Masked: true, Mask: "email"}},
		kinds:   []kind{kindOf(int8OID), kindOf(textOID), kindOf(textOID), kindOf(numericOID), kindOf(numericOID), kindOf(textOID)},
		maxRows: 500, maxBytes: 1 << 20, duration: time.Millisecond,
		until: time.Now().Add(time.Hour),
	}
	for i := range 100 {
		res.rows = append(res.rows, [][]byte{[]byte(strconv.Itoa(i + 1)), []byte("BTC-EUR"), []byte("buy"),
			[]byte("43210.1234"), []byte("0.0150"), []byte("d***@example.com")})
	}
	w := &nullWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if err := render(w, "json", res); err != nil {
			b.Fatal(err)
		}
	}
}
