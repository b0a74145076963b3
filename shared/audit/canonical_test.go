package audit_test

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"airlock.dev/airlock/shared/audit"
)

// Test vectors from RFC 8785 (JSON Canonicalization Scheme), sections 3.2.2 and 3.2.3
// and Appendix B.
func TestCanonicalize(t *testing.T) {
	tcs := []struct {
		desc, in, want string
	}{
		{
			desc: "RFC 8785 section 3.2.2 sample",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			desc: "RFC 8785 section 3.2.3 key order is by UTF-16 code units",
			in:   `{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{
			desc: "no HTML escaping, U+2028 literal, controls short or \\u00xx",
			in:   `{"sql":"select 1 where a < b && c > d\u2028\b\f\t\u0001"}`,
			want: "{\"sql\":\"select 1 where a < b && c > d\u2028\\b\\f\\t\\u0001\"}",
		},
		{
			desc: "integers written as doubles the same way however they are spelled",
			in:   `[5, 5.0, 5e0, 50E-1, -0, 0.0]`,
			want: `[5,5,5,5,0,0]`,
		},
		{
			desc: "nested objects sorted, whitespace removed",
			in:   "{ \"b\" : { \"z\" : 1 , \"a\" : [ ] } , \"a\" : { } }",
			want: `{"a":{},"b":{"a":[],"z":1}}`,
		},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := audit.Canonicalize([]byte(tc.in))
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("want = %s\ngot  = %s", tc.want, got)
			}
		})
	}
}

// RFC 8785 Appendix B: IEEE-754 bit patterns and their ECMAScript serialization.
func TestCanonicalizeNumbers(t *testing.T) {
	tcs := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tc := range tcs {
		f := math.Float64frombits(tc.bits)
		in := strconv.FormatFloat(f, 'g', -1, 64)
		got, err := audit.Canonicalize([]byte(in))
		if err != nil {
			t.Fatalf("Canonicalize(%s): %v", in, err)
		}
		if string(got) != tc.want {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], tc.bits)
			t.Errorf("when bits = %x (%s), want = %s, got = %s", b, in, tc.want, got)
		}
	}
}

func TestHashPayloadIgnoresHashAndSpelling(t *testing.T) {
	a := `{"seq":1,"chain":"c","hash":"whatever","details":{"n":2}}`
	b := `{ "details" : {"n": 2.0}, "chain":"c", "seq": 1e0 }`
	ha, err := audit.HashPayload([]byte(a))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := audit.HashPayload([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if ha != hb {
		t.Errorf("want equal hashes, got %s and %s", ha, hb)
	}
	if _, err := audit.HashPayload([]byte(`[1]`)); err == nil {
		t.Errorf("when the payload is an array, want an error, got nil")
	}
}
