package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// A Format is the shape of an exported trail.
type Format string

// The formats [ReadTrail] understands.
const (
	// FormatJSONL is the file sink's output: one entry per line, each chain's entries in
	// seq order, and the lines in time order whatever their chain, because one writer
	// appends to the file at a time (see [Verify]).
	FormatJSONL Format = "jsonl"
	// FormatGcloud is what `gcloud logging read --format=json` prints: a JSON array of
	// LogEntry objects whose jsonPayload is the entry, newest first by default. A JSON
	// lines file of LogEntry objects is read the same way. Its order carries no meaning.
	FormatGcloud Format = "gcloud"
)

// A StoredEntry is one entry as read back from a trail, with where it was found.
type StoredEntry struct {
	Entry    Entry
	Pos      int    // 1-based line number (JSON lines) or element number (gcloud array)
	InsertID string // the LogEntry's insertId; gcloud exports only
	Err      error  // why the entry could not be read; Entry may then be partly filled

	format   Format
	computed string // hash computed from the stored content
}

// Where names the entry's place in its input, for example "line=12" or
// "item=3 insert_id=abc".
func (s *StoredEntry) Where() string {
	if s.format == FormatJSONL {
		return "line=" + strconv.Itoa(s.Pos)
	}
	w := "item=" + strconv.Itoa(s.Pos)
	if s.InsertID != "" {
		w += " insert_id=" + s.InsertID
	}
	return w
}

// A Trail is an exported audit trail, read by [ReadTrail].
type Trail struct {
	Format  Format
	Entries []StoredEntry
	// Skipped counts gcloud entries of other logs (their logName does not end in
	// "/logs/airlock-audit"), which ReadTrail leaves out.
	Skipped int
}

// ReadTrail reads a trail in either format, telling them apart by the first non-space
// byte: '[' is a gcloud array, '{' starts JSON lines (of entries, or of LogEntry objects,
// which are then read as FormatGcloud). A line or element that is not a readable entry
// becomes a StoredEntry with Err set, for [Verify] to report; ReadTrail itself fails only
// on I/O errors and on a gcloud array that is not valid JSON.
func ReadTrail(r io.Reader) (*Trail, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return &Trail{Format: FormatJSONL}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit: reading trail: %w", err)
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0xEF || c == 0xBB || c == 0xBF { // whitespace, UTF-8 BOM
			continue
		}
		br.UnreadByte()
		if c == '[' {
			return readGcloud(br)
		}
		return readLines(br)
	}
}

// ReadTrailFile reads the trail at path ("-" for stdin); see [ReadTrail].
func ReadTrailFile(path string) (*Trail, error) {
	if path == "-" {
		return ReadTrail(os.Stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return ReadTrail(f)
}

func readLines(r *bufio.Reader) (*Trail, error) {
	t := &Trail{}
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("audit: reading line %d: %w", n, err)
		}
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 {
			if t.Format == "" {
				t.Format = FormatJSONL
				if isLogEntry(trimmed) {
					t.Format = FormatGcloud
				}
			}
			if t.Format == FormatGcloud {
				t.addLogEntry(n, trimmed)
			} else {
				t.Entries = append(t.Entries, parseStored(n, FormatJSONL, trimmed))
			}
		}
		if err == io.EOF {
			if t.Format == "" {
				t.Format = FormatJSONL
			}
			return t, nil
		}
	}
}

func readGcloud(r io.Reader) (*Trail, error) {
	t := &Trail{Format: FormatGcloud}
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("audit: reading gcloud export: %w", err)
	}
	for n := 1; dec.More(); n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("audit: reading gcloud export element %d: %w", n, err)
		}
		t.addLogEntry(n, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("audit: reading gcloud export: %w", err)
	}
	return t, nil
}

// isLogEntry reports whether doc looks like a Cloud Logging LogEntry rather than an entry.
func isLogEntry(doc []byte) bool {
	var probe struct {
		JSONPayload json.RawMessage `json:"jsonPayload"`
		LogName     string          `json:"logName"`
		InsertID    string          `json:"insertId"`
	}
	if json.Unmarshal(doc, &probe) != nil {
		return false
	}
	return probe.JSONPayload != nil || probe.LogName != "" || probe.InsertID != ""
}

func (t *Trail) addLogEntry(pos int, doc []byte) {
	var le struct {
		JSONPayload json.RawMessage `json:"jsonPayload"`
		LogName     string          `json:"logName"`
		InsertID    string          `json:"insertId"`
	}
	if err := json.Unmarshal(doc, &le); err != nil {
		t.Entries = append(t.Entries, StoredEntry{Pos: pos, format: FormatGcloud, Err: fmt.Errorf("not a LogEntry: %w", err)})
		return
	}
	if le.LogName != "" && !strings.HasSuffix(le.LogName, "/logs/"+LogID) {
		t.Skipped++
		return
	}
	if len(le.JSONPayload) == 0 || le.JSONPayload[0] != '{' {
		t.Entries = append(t.Entries, StoredEntry{Pos: pos, format: FormatGcloud, InsertID: le.InsertID, Err: errors.New("LogEntry has no jsonPayload object")})
		return
	}
	se := parseStored(pos, FormatGcloud, le.JSONPayload)
	se.InsertID = le.InsertID
	t.Entries = append(t.Entries, se)
}

// parseStored reads one entry object and computes its hash. The object must mean one
// thing to every reader: it is decoded strictly (see [decodeStrict]), and must be exactly
// what the recorder would write for the entry it decodes to (same members, same values:
// the canonical forms are compared), so that no member is read by one tool and not by
// another (an unknown member, "Actor" beside "actor", a null, a string where a number
// belongs).
func parseStored(pos int, f Format, doc []byte) StoredEntry {
	se := StoredEntry{Pos: pos, format: f}
	v, err := decodeStrict(doc)
	if err != nil {
		se.Err = err
		salvage(&se, doc)
		return se
	}
	obj, ok := v.(map[string]any)
	if !ok {
		se.Err = errors.New("not a JSON object")
		return se
	}
	if err := json.Unmarshal(doc, &se.Entry); err != nil {
		se.Entry = Entry{}
		salvage(&se, doc)
		se.Err = fmt.Errorf("fields have the wrong type: %w", err)
		return se
	}
	switch {
	case se.Entry.Chain == "":
		se.Err = errors.New("no chain")
	case se.Entry.Seq < 1:
		se.Err = errors.New("no seq (or seq < 1)")
	case len(se.Entry.Hash) != 64:
		se.Err = errors.New("no 64-digit hash")
	case len(se.Entry.PrevHash) != 64:
		se.Err = errors.New("no 64-digit prev_hash")
	}
	if se.Err != nil {
		return se
	}
	if err := roundTrips(obj, &se.Entry); err != nil {
		se.Err = err
		return se
	}
	if se.computed, err = hashObject(obj); err != nil {
		se.Err = err
	}
	return se
}

// salvage keeps what can be read of a broken entry, so a finding can still name its
// chain and seq.
func salvage(se *StoredEntry, doc []byte) {
	var probe map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&probe) != nil {
		return
	}
	se.Entry.Chain, _ = probe["chain"].(string)
	se.Entry.Event, _ = probe["event"].(string)
	se.Entry.Actor, _ = probe["actor"].(string)
	switch n := probe["seq"].(type) {
	case json.Number:
		se.Entry.Seq, _ = n.Int64()
	case string:
		se.Entry.Seq, _ = strconv.ParseInt(n, 10, 64)
	}
}

// roundTrips reports how obj differs from the encoding of e, the entry it decoded to.
func roundTrips(obj map[string]any, e *Entry) error {
	b, err := marshal(e)
	if err != nil {
		return err
	}
	v, err := decodeJSON(b)
	if err != nil {
		return err
	}
	again := v.(map[string]any)
	for k, x := range obj {
		y, ok := again[k]
		if !ok {
			return fmt.Errorf("member %q is not an entry field as the recorder writes it (unknown, misspelt, null or empty)", k)
		}
		cx, err1 := appendCanonical(nil, x)
		cy, err2 := appendCanonical(nil, y)
		if err1 != nil || err2 != nil || !bytes.Equal(cx, cy) {
			return fmt.Errorf("member %q does not read back as written: %s is read as %s", k, clip(cx), clip(cy))
		}
	}
	for k := range again {
		if _, ok := obj[k]; !ok {
			return fmt.Errorf("member %q is read from another member's value", k)
		}
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
