package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
)

// maxSuperseded bounds how many failed attempts at one seq the next entry lists.
const maxSuperseded = 32

// A sink stores sealed entries. write must return only once the entry is durably accepted
// (or return an error), and must honour ctx.
type sink interface {
	write(ctx context.Context, e *Entry, line []byte) error
	close() error
}

// A Recorder appends entries to one hash chain and writes them to its sink (Cloud Logging
// or a JSON-lines file). Each Recorder is one chain, with a fresh chain id, so many
// function instances can write at once without coordinating. It is safe for concurrent
// use; entries reach the sink in seq order.
//
// Use [NewRecorder], [NewFileRecorder] or [FromConfig] to make one, and Close it when the
// instance shuts down.
type Recorder struct {
	cfg  config
	sink sink

	// sem is held across sealing and writing an entry, so the order in the sink is the seq
	// order. It is a channel rather than a sync.Mutex so that waiting for it obeys the
	// Record timeout. The fields below are guarded by sem.
	sem chan struct{}

	chain          string
	key            ed25519.PrivateKey // the chain's entry key; never leaves memory
	cert           *Certificate       // the chain's certificate, signed by cfg.signer
	seq            int64              // seq of the last confirmed entry; 0 before the first
	hash           string             // hash of the last confirmed entry; GenesisHash before the first
	sig            string             // signature of the last confirmed entry
	last           time.Time          // time of the last confirmed entry; entry times never go back
	sinceCheckpt   int                // confirmed entries since the last checkpoint
	lastCheckpt    time.Time          // when the last checkpoint (or the first entry) was written
	failed         []string           // hashes of attempts at seq+1 that the sink reported as failed
	headSaved      int64              // seq of the last head the HeadStore accepted
	checkpointFail bool               // a due checkpoint failed; retry on the next Record
	headWanted     bool               // a checkpoint's head is not yet saved (a failed save is retried on the next Record)
	closed         bool
}

func newRecorder(s sink, cfg config) (*Recorder, error) {
	if cfg.signer == nil && cfg.kmsKey != "" {
		ks, err := NewKMSSigner(cfg.kmsKey, cfg.clientOpts...)
		if err != nil {
			return nil, err
		}
		cfg.signer, cfg.ownSigner = ks, true
	}
	if cfg.signer == nil {
		return nil, errors.New("audit: no Signer: every chain needs a certificate (WithSigner, or AUDIT_KMS_KEY / AUDIT_SIGNING_KEY_FILE for FromConfig)")
	}
	return &Recorder{cfg: cfg, sink: s, sem: make(chan struct{}, 1), hash: GenesisHash}, nil
}

// Record seals e as the next link of the chain and writes it, returning once the sink has
// confirmed the write. On failure it returns an error wrapping [ErrUnavailable], and the
// chain does not advance: the next entry reuses the seq, so a failed write never leaves a
// hole. The call is bounded by the Record timeout ([WithTimeout]) as well as by ctx.
//
// Record returns a plain error (not ErrUnavailable) when e itself is invalid: no Event,
// an unknown Severity, or Details that do not encode as JSON.
func (r *Recorder) Record(ctx context.Context, e Entry) error {
	if err := e.prepare(r.cfg.function); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	if r.closed {
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrClosed)
	}
	if err := r.append(ctx, &e); err != nil {
		return err
	}
	r.afterEntry(ctx)
	return nil
}

// Head returns the chain's latest confirmed link; Seq is 0 before the first entry.
func (r *Recorder) Head(ctx context.Context) (Head, error) {
	if err := r.lock(ctx); err != nil {
		return Head{}, err
	}
	defer r.unlock()
	return r.head(), nil
}

// Close writes a final audit.checkpoint entry (if the chain has any entries), saves the
// head, and closes the sink. ctx and the Record timeout bound the whole call. Record
// fails with ErrClosed afterwards; a second Close does nothing.
func (r *Recorder) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	defer cancel()
	if err := r.lock(ctx); err != nil {
		return err
	}
	defer r.unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	if r.seq > 0 {
		if err := r.checkpoint(ctx, "close"); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, r.saveHead(ctx))
	}
	if err := r.sink.close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: closing sink: %w", err))
	}
	if c, ok := r.cfg.signer.(interface{ Close() error }); ok && r.cfg.ownSigner {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func (r *Recorder) lock(ctx context.Context) error {
	select {
	case r.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the recorder: %w", ErrUnavailable, context.Cause(ctx))
	}
}

func (r *Recorder) unlock() { <-r.sem }

// head returns the current head; r.sem must be held.
func (r *Recorder) head() Head {
	return Head{Chain: r.chain, Seq: r.seq, Hash: r.hash, Time: r.last, Sig: r.sig, Cert: r.cert}
}

// startChain picks the chain's id, makes its entry key and has the Signer certify it:
// the one call to Cloud KMS an instance makes. Until it succeeds there is no chain, so
// Record fails closed and the next Record tries again. r.sem must be held.
func (r *Recorder) startChain(ctx context.Context) error {
	now := r.cfg.now()
	id, err := newChainID(now)
	if err != nil {
		return err
	}
	cert, key, err := newCertificate(ctx, r.cfg.signer, id, r.cfg.function, now)
	if err != nil {
		return err
	}
	r.chain, r.cert, r.key = id, cert, key
	return nil
}

// append seals e as link seq+1 and writes it; the chain advances only if the sink
// confirms. r.sem must be held.
func (r *Recorder) append(ctx context.Context, e *Entry) error {
	if r.chain == "" {
		if err := r.startChain(ctx); err != nil {
			return fmt.Errorf("%w: starting the chain: %w", ErrUnavailable, err)
		}
	}
	now := r.cfg.now().UTC().Truncate(time.Microsecond)
	if now.Before(r.last) {
		now = r.last // the wall clock stepped back; keep times in seq order
	}
	e.Chain, e.Seq, e.PrevHash, e.Time = r.chain, r.seq+1, r.hash, now
	e.Supersedes = nil
	if len(r.failed) > 0 {
		e.Supersedes = append([]string(nil), r.failed...)
	}
	e.Cert = nil
	if e.Seq == 1 || e.Event == EventCheckpoint {
		e.Cert = r.cert // so that an export of any window holds the chain's certificate
	}
	line, err := seal(e, r.key)
	if err != nil {
		return fmt.Errorf("audit: encoding %s entry: %w", e.Event, err)
	}
	if err := r.sink.write(ctx, e, line); err != nil {
		// The attempt may still land (a timeout after the server stored it). Name it in
		// the next entry at this seq so the verifier can tell it from an insertion.
		r.failed = append(r.failed, e.Hash)
		if len(r.failed) > maxSuperseded {
			r.failed = r.failed[len(r.failed)-maxSuperseded:]
		}
		return fmt.Errorf("%w: writing %s entry (chain %s, seq %d): %w", ErrUnavailable, e.Event, e.Chain, e.Seq, err)
	}
	if r.seq == 0 {
		r.lastCheckpt = now
		r.headWanted = true // every chain has a head from its first entry on
	}
	r.seq, r.hash, r.sig, r.last = e.Seq, e.Hash, e.Sig, now
	r.failed = nil
	r.sinceCheckpt++
	return nil
}

// afterEntry writes a checkpoint if one is due and saves the head if wanted. The entry is
// already recorded, so failures go to the error handler and are retried next time.
func (r *Recorder) afterEntry(ctx context.Context) {
	if reason := r.checkpointDue(); reason != "" {
		if err := r.checkpoint(ctx, reason); err != nil {
			r.cfg.onError(err)
		}
	}
	if r.cfg.headsEveryEntry || r.headWanted {
		if err := r.saveHead(ctx); err != nil {
			r.cfg.onError(err)
		}
	}
}

func (r *Recorder) checkpointDue() string {
	switch {
	case r.checkpointFail:
		return "retry"
	case r.cfg.checkpointEvery > 0 && r.sinceCheckpt >= r.cfg.checkpointEvery:
		return "count"
	case r.cfg.checkpointInterval > 0 && r.cfg.now().Sub(r.lastCheckpt) >= r.cfg.checkpointInterval:
		return "interval"
	}
	return ""
}

// checkpoint writes an audit.checkpoint entry naming the current head; the checkpoint's
// own link is then the head to save. r.sem must be held.
func (r *Recorder) checkpoint(ctx context.Context, reason string) error {
	e := Entry{
		Event:    EventCheckpoint,
		Severity: SeverityInfo,
		Function: r.cfg.function,
		Reason:   reason,
		Message:  "chain head checkpoint",
		Details:  map[string]any{"head_seq": r.seq, "head_hash": r.hash, "entries": r.sinceCheckpt},
	}
	if err := r.append(ctx, &e); err != nil {
		r.checkpointFail = true
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	r.sinceCheckpt = 0
	r.lastCheckpt = e.Time
	r.checkpointFail = false
	r.headWanted = true
	return nil
}

// saveHead hands the current head to the HeadStore, if there is one and it does not
// have it yet. r.sem must be held.
func (r *Recorder) saveHead(ctx context.Context) error {
	if r.cfg.heads == nil || r.headSaved >= r.seq {
		r.headWanted = false
		return nil
	}
	h := r.head()
	if err := r.cfg.heads.SaveHead(ctx, h); err != nil {
		r.headWanted = true
		return fmt.Errorf("audit: saving head of chain %s at seq %d: %w", h.Chain, h.Seq, err)
	}
	r.headSaved, r.headWanted = h.Seq, false
	return nil
}
