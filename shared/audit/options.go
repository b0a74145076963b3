package audit

import (
	"fmt"
	"io"
	"os"
	"time"

	"cloud.google.com/go/logging"
	"google.golang.org/api/option"

	"airlock.dev/airlock/shared/cloudlog"
)

// LogID is the Cloud Logging log every Airlock function writes its audit trail to:
// projects/PROJECT/logs/airlock-audit.
const LogID = "airlock-audit"

// Defaults used when no Option says otherwise.
const (
	// DefaultTimeout bounds one Record call, including the wait for the recorder's lock.
	DefaultTimeout = 5 * time.Second
	// DefaultCheckpointEvery is how many entries may pass between checkpoints.
	DefaultCheckpointEvery = 100
	// DefaultCheckpointInterval is how much time may pass between checkpoints.
	DefaultCheckpointInterval = 5 * time.Minute
)

// An Option configures a [Recorder]; pass them to [NewRecorder], [NewFileRecorder] or
// [FromConfig].
type Option func(*config)

type config struct {
	timeout            time.Duration
	checkpointEvery    int
	checkpointInterval time.Duration
	heads              HeadStore
	signer             Signer
	kmsKey             string // Config.KMSKey: newRecorder makes a KMSSigner with clientOpts
	ownSigner          bool   // the recorder made signer and closes it
	headsEveryEntry    bool
	function           string
	onError            func(error)
	now                func() time.Time
	clientOpts         []option.ClientOption
	loggerOpts         []logging.LoggerOption
	mirror             io.Writer
	err                error
}

func defaultConfig() config {
	return config{
		timeout:            DefaultTimeout,
		checkpointEvery:    DefaultCheckpointEvery,
		checkpointInterval: DefaultCheckpointInterval,
		onError:            logError,
		now:                time.Now,
	}
}

func (c *config) apply(opts []Option) error {
	for _, o := range opts {
		o(c)
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

// WithClientOptions passes options to the Google Cloud clients the recorder makes: Cloud
// Logging's, and Cloud KMS's when [FromConfig] makes a [KMSSigner]. Tests use
// option.WithEndpoint to reach a fake server of both (see package audittest). The file
// sink has no client.
func WithClientOptions(opts ...option.ClientOption) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithLoggerOptions passes options to the Cloud Logging Logger, for example
// logging.CommonResource to skip detecting the monitored resource. It is ignored by the
// file sink.
func WithLoggerOptions(opts ...logging.LoggerOption) Option {
	return func(c *config) { c.loggerOpts = append(c.loggerOpts, opts...) }
}

// WithTimeout bounds each Record and Close call: waiting for the lock, creating the
// client, writing the entry and any checkpoint. A sink that hangs makes Record return
// ErrUnavailable after d. Defaults to DefaultTimeout (5s).
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.err = fmt.Errorf("audit: timeout must be positive, got %v", d)
			return
		}
		c.timeout = d
	}
}

// WithCheckpoint sets how often the recorder writes an audit.checkpoint entry and saves
// the chain head to the HeadStore: after every entries entries, or when interval has
// passed since the last checkpoint, whichever comes first (0 turns a trigger off).
// The interval is checked when Record is called; no goroutine runs in the background,
// because CPU is throttled between requests. Defaults to 100 entries and 5 minutes.
func WithCheckpoint(entries int, interval time.Duration) Option {
	return func(c *config) {
		if entries < 0 || interval < 0 {
			c.err = fmt.Errorf("audit: checkpoint settings must not be negative")
			return
		}
		c.checkpointEvery, c.checkpointInterval = entries, interval
	}
}

// WithSigner certifies each chain's entry key with s; a Recorder needs one. [FromConfig]
// makes it from Config.KMSKey or Config.SigningKeyFile, and this option overrides that.
func WithSigner(s Signer) Option {
	return func(c *config) { c.signer = s }
}

// WithHeadStore keeps chain heads in hs as well as in the log's checkpoints. The caller
// owns hs. Without it, heads are only written into the log.
func WithHeadStore(hs HeadStore) Option {
	return func(c *config) { c.heads = hs }
}

// WithHeadsEveryEntry saves the head after every entry instead of only at checkpoints.
// It is cheap with a [FileHeadStore] and makes cutting the tail of a local trail
// detectable to the last entry; [FromConfig] turns it on for the file sink.
func WithHeadsEveryEntry() Option {
	return func(c *config) { c.headsEveryEntry = true }
}

// WithFunction sets the function name put into entries that have none, for example
// "ExecuteQuery".
func WithFunction(name string) Option {
	return func(c *config) { c.function = name }
}

// WithErrorHandler receives errors that Record cannot return because the entry itself was
// recorded: a failed checkpoint or head save (each is retried on the next Record).
// Defaults to an ERROR line on stderr in Cloud Logging's JSON (package cloudlog); functions
// pass their own logger's.
func WithErrorHandler(f func(error)) Option {
	return func(c *config) {
		if f == nil {
			f = func(error) {}
		}
		c.onError = f
	}
}

// WithMirror copies every line the file sink writes to w (os.Stdout, typically). Errors
// writing to w are ignored: the file is the record. It is ignored by the Cloud Logging sink.
func WithMirror(w io.Writer) Option {
	return func(c *config) { c.mirror = w }
}

// logError is the default error handler: a structured line on stderr.
func logError(err error) {
	cloudlog.New(os.Stderr).Error("audit: "+err.Error(), "error", err.Error())
}
