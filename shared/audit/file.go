package audit

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// NewFileRecorder returns a Recorder that appends entries to the JSON-lines file at path,
// one entry per line, creating the file (mode 0600) and its directory when needed. Its
// heads go to the HeadStore given with WithHeadStore; [FromConfig] uses a [FileHeadStore]
// at path+".heads.jsonl". It does no I/O: the file is opened on the first Record, and
// reopened after a failed write. ctx is not kept.
//
// Each line is written with one write(2) on a file opened with O_APPEND, so lines from
// several recorders, even in several processes, never interleave. Still, give a file one
// Recorder at a time (share it among the functions of one process): [Verify] expects a
// file's lines in time order, which concurrent recorders do not keep. A write is
// confirmed when write(2) returns; the file is not fsynced.
func NewFileRecorder(ctx context.Context, path string, opts ...Option) (*Recorder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("audit: file sink needs a path")
	}
	cfg := defaultConfig()
	if err := cfg.apply(opts); err != nil {
		return nil, err
	}
	return newRecorder(&fileSink{path: path, mirror: cfg.mirror}, cfg)
}

type fileSink struct {
	path   string
	mirror io.Writer

	mu sync.Mutex // guards f, and keeps one line per write call within this process
	f  *os.File
}

func (s *fileSink) write(ctx context.Context, _ *Entry, line []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := openAppend(s.path)
		if err != nil {
			return err
		}
		s.f = f
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	if _, err := s.f.Write(buf); err != nil {
		s.f.Close() // reopen next time: the file may have been moved or its disk fixed
		s.f = nil
		return fmt.Errorf("appending to %s: %w", s.path, err)
	}
	if s.mirror != nil {
		s.mirror.Write(buf) // best effort: the file is the record
	}
	return nil
}

func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// openAppend opens path for appending, creating it and its directory if needed.
func openAppend(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return f, nil
}
