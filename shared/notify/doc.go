// Package notify delivers Airlock's notifications from the outbox: the transaction that
// creates or decides a request queues rows in airlock.notifications (package outbox), and
// a Sender delivers them after the commit (Slack incoming webhooks whose URLs live in
// Secret Manager, or a local JSON-lines file). A delivery that fails is retried with
// backoff and, if it still fails, logged and left in the outbox: a notification never
// loses the request or the grant it is about, and the request never waits for Slack.
package notify
