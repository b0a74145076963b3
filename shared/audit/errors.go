package audit

import "errors"

// Errors returned by a [Recorder].
var (
	// ErrUnavailable is returned (wrapped) by [Recorder.Record] when the entry could not be
	// confirmed by the sink: the Cloud Logging client could not be created, the write
	// failed or timed out, or the recorder was busy past the Record timeout. The chain
	// did not advance; the caller must not perform the audited action (fail closed).
	ErrUnavailable = errors.New("audit: trail unavailable")

	// ErrClosed is returned, together with ErrUnavailable, by Record after Close.
	ErrClosed = errors.New("audit: recorder closed")
)
