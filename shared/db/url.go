package db

import "net/url"

// WithDatabase returns the postgres:// URL u pointing at database name instead.
// A DSN that is not a URL is returned unchanged.
func WithDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/" + name
	return p.String()
}

// WithUser returns the postgres:// URL u logging in as user with password.
func WithUser(u, user, password string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.User = url.UserPassword(user, password)
	return p.String()
}
