package query

import (
	"testing"

	"airlock.dev/airlock/shared/sqlguard"
)

func TestParseMode(t *testing.T) {
	tcs := []struct {
		desc, in    string
		mode        sqlguard.Mode
		reverts, ok bool
	}{
		{"no mode is a read", "", sqlguard.Read, false, true},
		{"read", "read", sqlguard.Read, false, true},
		{"write", "write", sqlguard.Write, false, true},
		{"a revert is a write", "revert", sqlguard.Write, true, true},
		{"modes are lower case", "WRITE", sqlguard.Read, false, false},
		{"an unknown mode is checked as a read", "delete", sqlguard.Read, false, false},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			mode, reverts, ok := parseMode(tc.in)
			if mode != tc.mode || reverts != tc.reverts || ok != tc.ok {
				t.Errorf("when mode is %q, want = (%v, %v, %v), got = (%v, %v, %v)", tc.in, tc.mode, tc.reverts, tc.ok, mode, reverts, ok)
			}
		})
	}
}

// A revert's refusal is the verdict's, whatever the Decision under it says: its rules are
// not the guard's, and a refused revert is never allowed.
func TestVerdictOfARefusedRevert(t *testing.T) {
	v := &verdict{Decision: &sqlguard.Decision{Kind: "revert", Allowed: true}, refused: &revertRefusal{rule: ruleAlreadyReverted, message: "done before"}}
	if v.allowed() || v.rule() != ruleAlreadyReverted || v.message() != "done before" {
		t.Errorf("when a revert is refused, want not allowed with %s, got = (%v, %q, %q)", ruleAlreadyReverted, v.allowed(), v.rule(), v.message())
	}
	for _, r := range []string{ruleWriteNotFound, ruleAlreadyReverted, ruleRevertNeedsDel, ruleRevertCannot, ruleRevertNotAllow} {
		for _, g := range sqlguard.AllRules {
			if r == g {
				t.Errorf("revert rule %q is also a guard rule", r)
			}
		}
	}
	g := &verdict{Decision: &sqlguard.Decision{Rule: sqlguard.RuleParseError, Message: "syntax"}}
	if g.allowed() || g.rule() != sqlguard.RuleParseError || g.message() != "syntax" {
		t.Errorf("when the guard refuses, want its rule and message, got = (%v, %q, %q)", g.allowed(), g.rule(), g.message())
	}
}
