package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// DefaultFile is the trail file used by the file sink when Config.File is empty.
const DefaultFile = ".dev/audit.jsonl"

// Sinks a Config may choose.
const (
	SinkCloudLogging = "cloudlogging"
	SinkFile         = "file"
)

// Config chooses a function's audit trail and the key that certifies its chains. The
// comment of each field names the environment variable app.LoadConfig reads it from.
type Config struct {
	// Sink is SinkCloudLogging or SinkFile (AUDIT_SINK). There is no default: an audit
	// trail must be chosen.
	Sink string
	// Project is the Cloud Logging sink's project (AUDIT_PROJECT, else
	// GOOGLE_CLOUD_PROJECT); empty: detected from the metadata server.
	Project string
	// File is the file sink's trail (AUDIT_FILE); empty: DefaultFile.
	File string
	// KMSKey is the Cloud KMS key version that certifies each chain's entry key
	// (AUDIT_KMS_KEY: projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N;
	// Terraform sets it). SigningKeyFile is, for local runs, an ECDSA P-256 PEM key
	// instead (AUDIT_SIGNING_KEY_FILE; scripts/dev.sh: .dev/audit-key.pem). One of the
	// two is required, unless the options given to FromConfig hold WithSigner.
	KMSKey         string
	SigningKeyFile string
}

// Validate reports a Config that FromConfig would refuse before any file is read: no
// sink or an unknown one, or two signing keys.
func (c Config) Validate() error {
	switch c.Sink {
	case SinkCloudLogging, SinkFile:
	default:
		return fmt.Errorf("audit: AUDIT_SINK must be %q or %q, got %q", SinkCloudLogging, SinkFile, c.Sink)
	}
	if c.KMSKey != "" && c.SigningKeyFile != "" {
		return errors.New("audit: set AUDIT_KMS_KEY or AUDIT_SIGNING_KEY_FILE, not both")
	}
	return nil
}

// FromConfig returns the Recorder c describes:
//
//   - SinkCloudLogging: [NewRecorder] for c.Project.
//   - SinkFile: [NewFileRecorder] for c.File (default [DefaultFile]), with every line
//     copied to stdout and the head saved after every entry to a [FileHeadStore] at
//     c.File+[HeadsFileSuffix].
//
// opts are applied after c's, so they win; production callers add
// WithHeadStore(NewPGHeadStore(pool, role)) and WithFunction. It reads the local signing
// key file, if one is named; the KMS client and the sink are made on the first Record.
func FromConfig(ctx context.Context, c Config, opts ...Option) (*Recorder, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var base []Option
	switch {
	case c.KMSKey != "":
		kmsKey := c.KMSKey
		base = append(base, func(c *config) { c.kmsKey = kmsKey })
	case c.SigningKeyFile != "":
		s, err := ReadLocalSigner(c.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w (AUDIT_SIGNING_KEY_FILE)", err)
		}
		base = append(base, WithSigner(s))
	}
	if c.Sink == SinkCloudLogging {
		return NewRecorder(ctx, c.Project, append(base, opts...)...)
	}
	path := c.File
	if path == "" {
		path = DefaultFile
	}
	base = append(base,
		WithMirror(os.Stdout),
		WithHeadStore(NewFileHeadStore(path+HeadsFileSuffix)),
		WithHeadsEveryEntry(),
	)
	return NewFileRecorder(ctx, path, append(base, opts...)...)
}
