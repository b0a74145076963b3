package access_test

import (
	"net/http"
	"testing"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/app/apptest"
	"airlock.dev/airlock/shared/migrate"
)

// With its database gone, RequestAccess answers 503 and leaves one structured line in its
// log naming the request and the cause, which the answer leaves out.
func TestFailureIsLogged(t *testing.T) {
	env := apptest.New(t)
	url, log := env.ClosedDB(access.EntryPoint, migrate.GroupRequests, func(d *app.Deps) http.Handler { return access.New(d) })
	body := map[string]any{"role": "unmasked_users", "reason": "Investigating support ticket SUP-881 about a wrong e-mail address", "duration": "10m"}
	apptest.CheckFailureLogged(t, "a request is stored on a closed pool", env.Do(http.MethodPost, url, dev1, body), log, "database_unavailable", "closed pool")
	apptest.CheckFailureLogged(t, "the requests are listed on a closed pool", env.Do(http.MethodGet, url+"?format=json", dev1, nil), log, "database_unavailable", "closed pool")
	apptest.CheckFailureLogged(t, "the page is loaded on a closed pool", env.Do(http.MethodGet, url, dev1, nil, "Accept", "text/html"), log, "database_unavailable", "closed pool")
}
