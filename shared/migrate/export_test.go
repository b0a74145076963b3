package migrate

import "airlock.dev/airlock/shared/policy"

// MaskExpr is maskExpr for tests: the SQL masking col, a column of type typ (as
// regtype names it: numeric, integer, timestamp with time zone, date, text, …).
func MaskExpr(col, typ string, mask policy.Mask) string {
	c := column{name: col, typ: typ}
	switch typ {
	case "timestamp with time zone", "timestamp without time zone", "date":
		c.time = typ
	}
	return maskExpr(col, c, mask)
}

// HMACWithPads is hmacWithPads for tests.
var HMACWithPads = hmacWithPads

// HMACPads is hmacPads for tests.
var HMACPads = hmacPads
