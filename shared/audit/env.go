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
// Each chain's entry key is certified by the key named in AUDIT_KMS_KEY, a Cloud KMS
// key version (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N;
// Terraform sets it), or, for local runs, by the ECDSA P-256 PEM key in
// AUDIT_SIGNING_KEY_FILE (scripts/dev.sh: .dev/audit-key.pem). One of the two is required,
// unless opts hold [WithSigner].
//
// Any other value, including none, is an error: an audit trail must be chosen, never
// defaulted. opts are applied after the environment's, so they win; production callers
// add WithHeadStore(NewPGHeadStore(pool, role)) and WithFunction. It reads the
// environment and the local signing key file, if one is named; the KMS client and the
// sink are made on the first Record.
func FromEnv(ctx context.Context, opts ...Option) (*Recorder, error) {
	var base []Option
	switch kmsKey, keyFile := os.Getenv("AUDIT_KMS_KEY"), os.Getenv("AUDIT_SIGNING_KEY_FILE"); {
	case kmsKey != "" && keyFile != "":
		return nil, fmt.Errorf("audit: set AUDIT_KMS_KEY or AUDIT_SIGNING_KEY_FILE, not both")
	case kmsKey != "":
		base = append(base, func(c *config) { c.kmsKey = kmsKey })
	case keyFile != "":
		s, err := ReadLocalSigner(keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w (AUDIT_SIGNING_KEY_FILE)", err)
		}
		base = append(base, WithSigner(s))
	}
	switch sink := os.Getenv("AUDIT_SINK"); sink {
	case "cloudlogging":
		project := os.Getenv("AUDIT_PROJECT")
		if project == "" {
			project = os.Getenv("GOOGLE_CLOUD_PROJECT")
		}
		return NewRecorder(ctx, project, append(base, opts...)...)
	case "file":
		path := os.Getenv("AUDIT_FILE")
		if path == "" {
			path = DefaultFile
		}
		base = append(base,
			WithMirror(os.Stdout),
			WithHeadStore(NewFileHeadStore(path+HeadsFileSuffix)),
			WithHeadsEveryEntry(),
		)
		return NewFileRecorder(ctx, path, append(base, opts...)...)
	default:
		return nil, fmt.Errorf("audit: AUDIT_SINK must be \"cloudlogging\" or \"file\", got %q", sink)
	}
}
