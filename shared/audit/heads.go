package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// A HeadStore keeps chain heads outside the log, so that a verifier can tell when entries
// were cut off the end of a chain. SaveHead is called with the recorder's lock held and
// under the Record timeout; it must honour ctx. Heads of one chain only move forward.
type HeadStore interface {
	SaveHead(ctx context.Context, h Head) error
}

// HeadsFileSuffix is appended to a trail file's path to name its heads file.
const HeadsFileSuffix = ".heads.jsonl"

// A FileHeadStore appends one JSON line per head ({"chain":…,"seq":…,"hash":…,"time":…})
// to a file, conventionally the trail's path plus [HeadsFileSuffix]. Use
// NewFileHeadStore to make one; it is safe for concurrent use.
type FileHeadStore struct {
	path string
	mu   sync.Mutex // one line per write within this process
}

// NewFileHeadStore returns a FileHeadStore writing to path. It does no I/O; each SaveHead
// opens the file with O_APPEND (creating it), writes one line, and closes it.
func NewFileHeadStore(path string) *FileHeadStore {
	return &FileHeadStore{path: path}
}

// SaveHead appends h to the file.
func (s *FileHeadStore) SaveHead(ctx context.Context, h Head) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := marshal(h)
	if err != nil {
		return fmt.Errorf("encoding head: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := openAppend(s.path)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("appending to %s: %w", s.path, err)
	}
	return f.Close()
}

// ReadHeads reads heads written by a [FileHeadStore]: one JSON object per line, blank
// lines ignored. Every line is returned, so a chain usually has many heads.
func ReadHeads(r io.Reader) ([]Head, error) {
	var heads []Head
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var h Head
			if jerr := json.Unmarshal(line, &h); jerr != nil {
				return nil, fmt.Errorf("audit: heads line %d: %w", n, jerr)
			}
			if h.Chain == "" || h.Seq < 1 || len(h.Hash) != 64 {
				return nil, fmt.Errorf("audit: heads line %d: needs chain, seq >= 1 and a 64-digit hash", n)
			}
			heads = append(heads, h)
		}
		if err == io.EOF {
			return heads, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: reading heads: %w", err)
		}
	}
}

// ReadHeadsFile reads the heads file at path; see [ReadHeads].
func ReadHeadsFile(path string) ([]Head, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return ReadHeads(f)
}
