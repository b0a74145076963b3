// Package cloudlog makes the functions' own logger: a log/slog JSON handler whose lines
// Cloud Logging reads as structured entries. The level becomes "severity" with Cloud
// Logging's names (DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY), the
// message is "message", and the time is "time" (RFC 3339), the keys Cloud Logging lifts
// out of a JSON line's payload.
//
// The logger is carried in each function's dependencies (app.Deps.Log); nothing here sets
// slog's default logger.
package cloudlog

import (
	"io"
	"log/slog"
)

// Levels of Cloud Logging between and above slog's four. slog.LevelDebug, LevelInfo,
// LevelWarn and LevelError map to DEBUG, INFO, WARNING and ERROR.
const (
	LevelNotice    = slog.Level(2)
	LevelCritical  = slog.Level(12)
	LevelAlert     = slog.Level(16)
	LevelEmergency = slog.Level(20)
)

// New returns a logger writing one JSON line per record to w, at every level from
// slog.LevelDebug. Each record is written with a single Write, so concurrent requests'
// lines do not interleave.
func New(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: replace}))
}

// Severity is Cloud Logging's name for l.
func Severity(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < LevelNotice:
		return "INFO"
	case l < slog.LevelWarn:
		return "NOTICE"
	case l < slog.LevelError:
		return "WARNING"
	case l < LevelCritical:
		return "ERROR"
	case l < LevelAlert:
		return "CRITICAL"
	case l < LevelEmergency:
		return "ALERT"
	}
	return "EMERGENCY"
}

func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		l, _ := a.Value.Any().(slog.Level)
		return slog.String("severity", Severity(l))
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

// Error is the attribute under which a log line carries its cause.
func Error(err error) slog.Attr {
	if err == nil {
		return slog.String("error", "")
	}
	return slog.String("error", err.Error())
}
