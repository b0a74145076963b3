package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"cloud.google.com/go/logging"
	"google.golang.org/api/option"
)

// NewRecorder returns a Recorder that writes to Cloud Logging, log [LogID] in projectID
// (the project is detected from the environment when projectID is ""). It does no I/O:
// the client is created on the first Record, and again on a later Record if creating it
// failed. ctx is not kept.
//
// Each entry is written with Logger.LogSync, so Record returns only after Cloud Logging
// accepted it. The entry is the LogEntry's jsonPayload; the LogEntry also gets the
// entry's severity and time, the insertId CHAIN-SEQ-HASHPREFIX, and the labels chain,
// seq, event and function.
func NewRecorder(ctx context.Context, projectID string, opts ...Option) (*Recorder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	if err := cfg.apply(opts); err != nil {
		return nil, err
	}
	if projectID == "" {
		projectID = logging.DetectProjectID
	}
	s := &cloudLoggingSink{projectID: projectID, clientOpts: cfg.clientOpts, loggerOpts: cfg.loggerOpts}
	return newRecorder(s, cfg)
}

type cloudLoggingSink struct {
	projectID  string
	clientOpts []option.ClientOption
	loggerOpts []logging.LoggerOption

	// mu guards client and logger. It is held while the client is created, so only one
	// creation runs; a failed creation leaves them nil and the next write retries.
	mu     sync.Mutex
	client *logging.Client
	logger *logging.Logger
}

func (s *cloudLoggingSink) getLogger(ctx context.Context) (*logging.Logger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logger != nil {
		return s.logger, nil
	}
	// The client keeps its context for background work, so it must outlive this call.
	c, err := logging.NewClient(context.WithoutCancel(ctx), s.projectID, s.clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("creating Cloud Logging client: %w", err)
	}
	s.client = c
	s.logger = c.Logger(LogID, s.loggerOpts...)
	return s.logger, nil
}

// loggingSeverity maps an entry's severity to Cloud Logging's.
func loggingSeverity(s Severity) logging.Severity {
	switch s {
	case SeverityNotice:
		return logging.Notice
	case SeverityWarning:
		return logging.Warning
	case SeverityAlert:
		return logging.Alert
	default:
		return logging.Info
	}
}

func (s *cloudLoggingSink) write(ctx context.Context, e *Entry, line []byte) error {
	l, err := s.getLogger(ctx)
	if err != nil {
		return err
	}
	labels := map[string]string{"chain": e.Chain, "seq": strconv.FormatInt(e.Seq, 10), "event": e.Event}
	if e.Function != "" {
		labels["function"] = e.Function
	}
	return l.LogSync(ctx, logging.Entry{
		Timestamp: e.Time,
		Severity:  loggingSeverity(e.Severity),
		Payload:   json.RawMessage(line), // a JSON object becomes the jsonPayload
		Labels:    labels,
		// Unique per attempt, so the client's own retries of one attempt are deduplicated.
		InsertID: fmt.Sprintf("%s-%d-%s", e.Chain, e.Seq, e.Hash[:16]),
	})
}

func (s *cloudLoggingSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client, s.logger = nil, nil
	return err
}
