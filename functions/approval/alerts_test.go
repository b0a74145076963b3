package approval_test

import (
	"net/http"
	"testing"
	"time"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/shared/alerts"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/migrate"
)

// TestOffHoursApprovalAlert: the demo policy's working hours are Monday to Friday,
// 07:00–19:00 UTC. An approval outside them is a WARNING alert on the security channel;
// a denial, or an approval inside them, is not.
func TestOffHoursApprovalAlert(t *testing.T) {
	tcs := []struct {
		desc     string
		at       time.Time
		decision string
		want     bool
	}{
		{"Wednesday noon", time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), "approve", false},
		{"Wednesday 06:59", time.Date(2026, 11, 25, 6, 59, 0, 0, time.UTC), "approve", true},
		{"Wednesday 19:00", time.Date(2026, 11, 25, 19, 0, 0, 0, time.UTC), "approve", true},
		{"Saturday noon", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), "approve", true},
		{"Saturday noon, but a denial", time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), "deny", false},
		// 08:00 in Tokyo is 23:00 UTC the day before: the policy's zone decides, not the approver's.
		{"Wednesday 08:00 in Tokyo", time.Date(2026, 11, 25, 8, 0, 0, 0, time.FixedZone("JST", 9*3600)), "approve", true},
	}
	for _, tc := range tcs {
		t.Run(tc.desc, func(t *testing.T) {
			env := apptest.New(t)
			f := &flow{Env: env}
			f.access = env.Serve(access.New(env.Deps(access.EntryPoint, migrate.GroupRequests))).URL + "/"
			f.approval = env.Serve(approval.New(env.Deps(approval.EntryPoint, migrate.GroupApprovals)).WithClock(func() time.Time { return tc.at })).URL + "/"

			id := f.request(t, "dev1@example.com", map[string]any{"role": "unmasked_users", "reason": reason, "duration": "10m"})
			if r := f.decide("lead1@example.com", id, tc.decision); r.Status != http.StatusOK {
				t.Fatalf("when lead1 decides %s, want = 200, got = %d %s", tc.decision, r.Status, r.Body)
			}
			var got []map[string]any
			for _, e := range f.AuditEvents(approval.EntryPoint) {
				if e.Event == alerts.EventOffHoursApproval {
					got = append(got, map[string]any{"actor": e.Actor, "severity": string(e.Severity), "request": e.AccessRequestID,
						"requester": e.Details["requester"], "role": e.Details["role"], "local_time": e.Details["local_time"]})
				}
			}
			msgs := f.count(t, `SELECT count(*) FROM airlock.notifications WHERE channel = 'security' AND payload->>'event' = $1 AND payload->>'actor' = 'lead1@example.com'`, alerts.EventOffHoursApproval)
			if !tc.want {
				if len(got) != 0 || msgs != 0 {
					t.Errorf("at %s, want no off-hours alert, got entries = %v, messages = %d", tc.at, got, msgs)
				}
				return
			}
			if len(got) != 1 || msgs != 1 {
				t.Fatalf("at %s, want one off-hours entry and one security message, got entries = %v, messages = %d", tc.at, got, msgs)
			}
			g := got[0]
			if g["actor"] != "lead1@example.com" || g["severity"] != "WARNING" || g["request"] != id || g["requester"] != "dev1@example.com" || g["role"] != "unmasked_users" ||
				g["local_time"] != tc.at.UTC().Format("Mon 15:04 MST") {
				t.Errorf("at %s, want the alert to name lead1, request %s by dev1 for unmasked_users at its UTC time, got = %v", tc.at, id, g)
			}
		})
	}
}
