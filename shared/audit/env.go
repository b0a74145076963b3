package audit

import (
	"context"
	"fmt"
	"os"
)

// DefaultFile is the trail file used by the file sink when AUDIT_FILE is not set.
const DefaultFile = ".dev/audit.jsonl"

// FromEnv returns a Recorder configured from the environment:
//
//   - AUDIT_SINK=cloudlogging: [NewRecorder] for the project AUDIT_PROJECT, else
//     GOOGLE_CLOUD_PROJECT, else the project detected from the metadata server.
//   - AUDIT_SINK=file: [NewFileRecorder] for AUDIT_FILE (default [DefaultFile]), with
//     every line copied to stdout and the head saved after every entry to a
//     [FileHeadStore] at AUDIT_FILE+".heads.jsonl".
//
// Any other value, including none, is an error: an audit trail must be chosen, never
// defaulted. opts are applied after the environment's, so they win; production callers
// add WithHeadStore(NewPGHeadStore(pool, role)) and WithFunction. It reads only the
// environment and does no I/O.
func FromEnv(ctx context.Context, opts ...Option) (*Recorder, error) {
	switch sink := os.Getenv("AUDIT_SINK"); sink {
	case "cloudlogging":
		project := os.Getenv("AUDIT_PROJECT")
		if project == "" {
			project = os.Getenv("GOOGLE_CLOUD_PROJECT")
		}
		return NewRecorder(ctx, project, opts...)
	case "file":
		path := os.Getenv("AUDIT_FILE")
		if path == "" {
			path = DefaultFile
		}
		base := []Option{
			WithMirror(os.Stdout),
			WithHeadStore(NewFileHeadStore(path + HeadsFileSuffix)),
			WithHeadsEveryEntry(),
		}
		return NewFileRecorder(ctx, path, append(base, opts...)...)
	default:
		return nil, fmt.Errorf("audit: AUDIT_SINK must be \"cloudlogging\" or \"file\", got %q", sink)
	}
}
