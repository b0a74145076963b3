package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Kinds of [Finding]. Each means the trail is not what the recorders wrote.
const (
	// KindMalformed: a line or element is not a readable entry.
	KindMalformed = "malformed"
	// KindEdited: the entry's content does not hash to its hash field.
	KindEdited = "edited"
	// KindRemoved: seqs are missing inside a chain (or at its start).
	KindRemoved = "removed"
	// KindBrokenLink: consecutive seqs whose prev_hash does not match the previous hash:
	// one of the two was edited and re-hashed, or replaced.
	KindBrokenLink = "broken_link"
	// KindInserted: an entry at a seq the chain already has, that the chain does not
	// continue from and no later attempt at that seq declared in supersedes.
	KindInserted = "inserted"
	// KindDuplicated: the same entry (same chain, seq and hash) appears more than once.
	KindDuplicated = "duplicated"
	// KindReordered: a JSON-lines file has a chain's entries out of seq order, or a line
	// whose time is earlier than the line before it (one writer appends a file in time
	// order, whatever the chain), or entry times go backwards along a chain.
	KindReordered = "reordered"
	// KindTruncated: a head (from the heads store) is past the chain's last entry: the tail
	// was cut off. Also a head whose chain is missing entirely.
	KindTruncated = "truncated"
	// KindHeadMismatch: a head or a checkpoint names a hash other than the trail's at that seq.
	KindHeadMismatch = "head_mismatch"
	// KindUntrusted: no certificate signed by a trusted key vouches for the chain (none in
	// the trail, a bad signature, an unknown key, another chain's), so none of its
	// entries can be trusted. Reported once, at the chain's first entry; also for an
	// entry carrying a certificate other than its chain's.
	KindUntrusted = "untrusted"
	// KindUnsigned: the entry has no signature, or one its chain's key did not make: it
	// was made, or edited and re-hashed, by someone without the key.
	KindUnsigned = "unsigned"
	// KindSuperseded: an entry lists in supersedes an entry the chain confirmed (a later
	// entry links to it, or a head or checkpoint names it), or one written after it;
	// supersedes may only name failed attempts that came before it.
	KindSuperseded = "bad_supersedes"
	// KindForgedHead: a head in the heads store that no recorder signed.
	KindForgedHead = "forged_head"
	// KindUnanchored: heads were given, but none for this chain: entries cut off its end
	// could not be seen. Every recorder saves a head after its chain's first entry.
	KindUnanchored = "unanchored"
)

// A Finding is one piece of evidence that a trail was tampered with, naming the entry.
type Finding struct {
	Kind   string
	Chain  string
	Seq    int64
	Where  string // the entry's place in the input, as StoredEntry.Where
	Event  string
	Actor  string
	Detail string

	pos  int       // the entry's position in the input; 0 when the finding names none
	time time.Time // the entry's time, when known
}

// String formats f as one line, starting with "FAIL".
func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "FAIL %s:", f.Kind)
	if f.Chain != "" {
		fmt.Fprintf(&b, " chain=%s", f.Chain)
	}
	if f.Seq != 0 {
		fmt.Fprintf(&b, " seq=%d", f.Seq)
	}
	if f.Where != "" {
		fmt.Fprintf(&b, " %s", f.Where)
	}
	if f.Event != "" {
		fmt.Fprintf(&b, " event=%s", f.Event)
	}
	if f.Actor != "" {
		fmt.Fprintf(&b, " actor=%s", f.Actor)
	}
	fmt.Fprintf(&b, ": %s", f.Detail)
	return b.String()
}

// A Report is the result of [Verify].
type Report struct {
	Chains   int       // chains seen in the trail
	Entries  int       // entries read, readable or not
	Findings []Finding // empty for an intact trail
	// Notes are facts an auditor may want that are not tampering, such as an attempt the
	// recorder reported as failed that reached the log anyway.
	Notes []string
}

// OK reports whether the trail is intact.
func (r Report) OK() bool { return len(r.Findings) == 0 }

// Summary is one line: "OK: 3 chains, 120 entries verified" or "TAMPERED: 2 findings;
// the first entry that cannot be trusted is chain=… seq=… line=…".
func (r Report) Summary() string {
	if r.OK() {
		return fmt.Sprintf("OK: %d %s, %d %s verified", r.Chains, plural(r.Chains, "chain"), r.Entries, plural(r.Entries, "entry"))
	}
	s := fmt.Sprintf("TAMPERED: %d %s", len(r.Findings), plural(len(r.Findings), "finding"))
	if f, ok := r.FirstUntrusted(); ok {
		s += "; the first entry that cannot be trusted is"
		if f.Chain != "" {
			s += " chain=" + f.Chain
		}
		if f.Seq != 0 {
			s += fmt.Sprintf(" seq=%d", f.Seq)
		}
		s += " " + f.Where
		if f.Event != "" {
			s += " event=" + f.Event
		}
	}
	return s
}

// FirstUntrusted returns the finding naming the earliest entry of the trail, by time
// (then by position), among the findings that name an entry.
func (r Report) FirstUntrusted() (Finding, bool) {
	var best *Finding
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.pos == 0 {
			continue
		}
		switch {
		case best == nil,
			!f.time.IsZero() && !best.time.IsZero() && f.time.Before(best.time),
			(f.time.IsZero() || best.time.IsZero() || f.time.Equal(best.time)) && f.pos < best.pos:
			best = f
		}
	}
	if best == nil {
		return Finding{}, false
	}
	return *best, true
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	if strings.HasSuffix(s, "y") {
		return s[:len(s)-1] + "ies"
	}
	return s + "s"
}

// A VerifyOption changes what [Verify] accepts.
type VerifyOption func(*verifyConfig)

type verifyConfig struct{ allowMissingStart bool }

// AllowMissingStart accepts chains that do not start at seq 1, and ignores heads of chains
// with no entries in the trail. Use it for an export that covers a time window (entries
// before it expired or were filtered out); the tail is still checked against the heads.
func AllowMissingStart() VerifyOption {
	return func(c *verifyConfig) { c.allowMissingStart = true }
}

// Verify checks a trail against the keys it trusts, against itself and against heads. It
// groups entries by chain and checks: that a certificate signed by a key of keys vouches
// for the chain's entry key, and that each entry carries that key's signature of its
// chain, seq and hash (so an entry made, or edited and re-hashed, by anyone without the
// key fails); each entry's hash against its content; seqs 1, 2, 3… with no gap and each prev_hash
// equal to the previous hash (seq 1: [GenesisHash]); one entry per seq; entry times
// never going back; in a JSON-lines trail, file order equal to seq order within each
// chain and to time order across chains (see [FormatJSONL]); each
// checkpoint's and each head's hash equal to the trail's at that seq; and no head past
// the chain's last entry.
//
// heads may be nil: then nothing is said about a chain's tail, and entries cut off the
// end cannot be seen. Pass every head known (all lines of a heads file, all rows of
// airlock.audit_heads): each must be signed like an entry, and a chain with no head at
// all is reported (KindUnanchored), since every recorder saves one after its first entry.
//
// A gcloud export is sorted by (chain, seq) first: its order is the query's, and Cloud
// Logging entries cannot be moved, so it carries nothing to check. Order along a chain
// is proven by seq and prev_hash, which are hashed. Neither timestamp nor
// receiveTimestamp is used: the first is set by the writer (it equals the hashed time
// field) and the second has no ordering guarantee across Cloud Logging's front ends.
func Verify(t *Trail, keys *Keyring, heads []Head, opts ...VerifyOption) Report {
	var cfg verifyConfig
	for _, o := range opts {
		o(&cfg)
	}
	rep := Report{Entries: len(t.Entries)}
	bad := map[*StoredEntry]bool{} // entries already reported as not what the recorder wrote
	chains := map[string][]*StoredEntry{}
	malformedSeqs := map[string]map[int64]bool{}
	for i := range t.Entries {
		se := &t.Entries[i]
		if se.Err != nil {
			rep.add(KindMalformed, se, se.Err.Error())
			if se.Entry.Chain != "" && se.Entry.Seq > 0 {
				if malformedSeqs[se.Entry.Chain] == nil {
					malformedSeqs[se.Entry.Chain] = map[int64]bool{}
				}
				malformedSeqs[se.Entry.Chain][se.Entry.Seq] = true
			}
			continue
		}
		if se.computed != se.Entry.Hash {
			rep.add(KindEdited, se, fmt.Sprintf("content hashes to %s, but the entry says %s", short(se.computed), short(se.Entry.Hash)))
			bad[se] = true
		}
		chains[se.Entry.Chain] = append(chains[se.Entry.Chain], se)
	}
	rawHeads := map[string][]Head{}
	for _, h := range heads {
		rawHeads[h.Chain] = append(rawHeads[h.Chain], h)
	}
	// Each chain's entry key, from a certificate a trusted key signed.
	entryKeys := map[string]ed25519.PublicKey{}
	for c, list := range chains {
		if k := certifyChain(&rep, keys, c, list, rawHeads[c], bad); k != nil {
			entryKeys[c] = k
		}
	}
	if cfg.allowMissingStart {
		for c := range rawHeads { // a window's export: heads of chains outside it say nothing
			if chains[c] == nil {
				delete(rawHeads, c)
			}
		}
	}
	headsBy := trustedHeads(&rep, keys, rawHeads, entryKeys, chains)
	names := make([]string, 0, len(chains))
	for c := range chains {
		names = append(names, c)
	}
	sort.Strings(names)
	rep.Chains = len(names)
	moved := map[*StoredEntry]bool{} // entries already reported out of seq order
	for _, c := range names {
		v := chainVerifier{rep: &rep, cfg: cfg, chain: c, list: chains[c], heads: headsBy[c], malformed: malformedSeqs[c], moved: moved, bad: bad}
		v.run(t.Format == FormatJSONL)
		if heads != nil && len(headsBy[c]) == 0 && entryKeys[c] != nil {
			last := v.last
			rep.add(KindUnanchored, last, "the heads given hold no signed head of this chain, though its recorder saves one after the first entry: entries cut off its end could not be seen")
		}
	}
	if t.Format == FormatJSONL {
		checkLineTimes(&rep, t.Entries, moved)
	}
	if !cfg.allowMissingStart {
		var missing []string
		for c := range headsBy {
			if chains[c] == nil {
				missing = append(missing, c)
			}
		}
		sort.Strings(missing)
		for _, c := range missing {
			top := maxHead(headsBy[c])
			rep.Findings = append(rep.Findings, Finding{Kind: KindTruncated, Chain: c, Seq: top.Seq,
				Detail: fmt.Sprintf("the heads store recorded seq %d (hash %s) but the trail has no entry of this chain", top.Seq, short(top.Hash))})
		}
	}
	return rep
}

func (r *Report) add(kind string, se *StoredEntry, detail string) {
	r.Findings = append(r.Findings, Finding{Kind: kind, Chain: se.Entry.Chain, Seq: se.Entry.Seq,
		Where: se.Where(), Event: se.Entry.Event, Actor: se.Entry.Actor, Detail: detail, pos: se.Pos, time: se.Entry.Time})
}

// certifyChain finds the certificate that vouches for chain (in its entries, or else in
// its heads), checks it against keys, and checks every entry's signature with the entry
// key it certifies. It returns that key, or nil when the chain cannot be trusted.
func certifyChain(rep *Report, keys *Keyring, chain string, list []*StoredEntry, heads []Head, bad map[*StoredEntry]bool) ed25519.PublicKey {
	first := list[0]
	for _, se := range list {
		if se.Entry.Seq < first.Entry.Seq {
			first = se
		}
	}
	var cert *Certificate
	var key ed25519.PublicKey
	var why error
	try := func(c *Certificate) {
		if key != nil || c == nil {
			return
		}
		if c.Chain != chain {
			why = fmt.Errorf("its certificate is for chain %s", c.Chain)
			return
		}
		k, err := keys.verifyCert(c)
		if err != nil {
			why = err
			return
		}
		cert, key = c, k
	}
	for _, se := range list {
		try(se.Entry.Cert)
	}
	for i := range heads {
		try(heads[i].Cert)
	}
	if key == nil {
		if why == nil {
			why = errors.New("no certificate of this chain is in the trail or the heads (the chain's first entry and its checkpoints carry it)")
		}
		rep.add(KindUntrusted, first, fmt.Sprintf("none of the chain's %d entries can be trusted: %v", len(list), why))
		for _, se := range list {
			bad[se] = true
		}
		return nil
	}
	want, _ := marshal(cert)
	for _, se := range list {
		if c := se.Entry.Cert; c != nil {
			if got, _ := marshal(c); !bytes.Equal(got, want) {
				rep.add(KindUntrusted, se, "it carries a certificate other than its chain's")
				bad[se] = true
				continue
			}
		}
		if bad[se] {
			continue // edited: its signature, of the hash it claims, says nothing more
		}
		if !verifyEntrySig(key, chain, se.Entry.Seq, se.Entry.Hash, se.Entry.Sig) {
			what := "its signature was not made with the chain's key"
			if se.Entry.Sig == "" {
				what = "it has no signature"
			}
			rep.add(KindUnsigned, se, what+": it was made, or edited and re-hashed, by someone without the key")
			bad[se] = true
		}
	}
	return key
}

// trustedHeads returns, by chain, the heads whose signature verifies with their chain's
// entry key (from the trail, or from the head's own certificate when the chain is not in
// the trail), reporting the others: once per chain and seq when the chain's key is
// known, once per chain when it is not. Heads of a chain that is in the trail but not
// trusted are left out silently: the chain is reported already.
func trustedHeads(rep *Report, keys *Keyring, raw map[string][]Head, entryKeys map[string]ed25519.PublicKey, inTrail map[string][]*StoredEntry) map[string][]Head {
	out := map[string][]Head{}
	chains := make([]string, 0, len(raw))
	for c := range raw {
		chains = append(chains, c)
	}
	sort.Strings(chains)
	for _, c := range chains {
		key := entryKeys[c]
		if key == nil && inTrail[c] != nil {
			continue
		}
		if key == nil {
			why := errors.New("none carries a certificate of the chain")
			for _, h := range raw[c] {
				if h.Cert == nil || h.Cert.Chain != c {
					continue
				}
				k, err := keys.verifyCert(h.Cert)
				if err == nil {
					key, why = k, nil
					break
				}
				why = err
			}
			if key == nil {
				top := maxHead(raw[c])
				rep.Findings = append(rep.Findings, Finding{Kind: KindForgedHead, Chain: c, Seq: top.Seq, Where: "heads",
					Detail: fmt.Sprintf("the heads store has %d head(s) of this chain, which is not in the trail, and none can be trusted: %v; they are ignored", len(raw[c]), why)})
				continue
			}
		}
		reported := map[int64]bool{}
		for _, h := range raw[c] {
			if verifyEntrySig(key, c, h.Seq, h.Hash, h.Sig) {
				out[c] = append(out[c], h)
				continue
			}
			if reported[h.Seq] {
				continue
			}
			reported[h.Seq] = true
			rep.Findings = append(rep.Findings, Finding{Kind: KindForgedHead, Chain: c, Seq: h.Seq, Where: "heads",
				Detail: fmt.Sprintf("the heads store says seq %d has hash %s, but no recorder of this chain signed that; the head is ignored", h.Seq, short(h.Hash))})
		}
	}
	return out
}

type chainVerifier struct {
	rep       *Report
	cfg       verifyConfig
	chain     string
	list      []*StoredEntry // in input order
	heads     []Head         // signed heads only
	malformed map[int64]bool
	moved     map[*StoredEntry]bool // shared by all chains; set by checkFileOrder
	bad       map[*StoredEntry]bool // shared: entries already reported as not the recorder's
	last      *StoredEntry          // set by run: the chain's last entry
}

func (v *chainVerifier) run(ordered bool) {
	if ordered {
		v.checkFileOrder()
	}
	bySeq := v.dedupe()
	seqs := make([]int64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	headHash := map[int64]map[string]bool{}
	for _, h := range v.heads {
		if headHash[h.Seq] == nil {
			headHash[h.Seq] = map[string]bool{}
		}
		headHash[h.Seq][h.Hash] = true
	}

	// Pick the entry the chain runs through at each seq; any other is a side branch.
	chosen := make([]*StoredEntry, 0, len(seqs))
	at := map[int64]*StoredEntry{}
	var prev *StoredEntry
	for _, s := range seqs {
		cands := bySeq[s]
		best := cands[0]
		if len(cands) > 1 {
			best = pick(cands, prev, bySeq[s+1], headHash[s], v.bad)
			for _, c := range cands {
				if c == best || v.bad[c] {
					continue // the chosen one, or one already reported
				}
				if slices.Contains(best.Entry.Supersedes, c.Entry.Hash) && !v.bad[best] {
					if why := v.confirmed(c, bySeq[s+1], headHash[s]); why != "" {
						v.rep.add(KindSuperseded, best, fmt.Sprintf("it supersedes seq %d at %s, which %s: supersedes may only name attempts that failed", s, c.Where(), why))
						continue
					}
					if c.Entry.Time.After(best.Entry.Time) {
						v.rep.add(KindSuperseded, best, fmt.Sprintf("it supersedes seq %d at %s, which was written after it: a failed attempt comes before the entry that replaces it", s, c.Where()))
						continue
					}
					v.rep.Notes = append(v.rep.Notes, fmt.Sprintf("NOTE unconfirmed: chain=%s seq=%d %s event=%s: an attempt the recorder reported as failed reached the log; the chain continues through %s, which supersedes it",
						v.chain, s, c.Where(), c.Entry.Event, best.Where()))
					continue
				}
				v.rep.add(KindInserted, c, fmt.Sprintf("not part of the chain, which runs through seq %d at %s", s, best.Where()))
			}
		}
		chosen = append(chosen, best)
		at[s] = best
		prev = best
	}

	first := chosen[0]
	if first.Entry.Seq != 1 && !v.cfg.allowMissingStart {
		v.removed(1, first.Entry.Seq-1, first, fmt.Sprintf("before the chain's first entry (seq %d at %s)", first.Entry.Seq, first.Where()))
	}
	if first.Entry.Seq == 1 && first.Entry.PrevHash != GenesisHash {
		v.rep.add(KindBrokenLink, first, "seq 1 must have prev_hash of 64 zeros")
	}
	for i := 1; i < len(chosen); i++ {
		p, c := chosen[i-1], chosen[i]
		switch {
		case c.Entry.Seq > p.Entry.Seq+1:
			v.removed(p.Entry.Seq+1, c.Entry.Seq-1, c, fmt.Sprintf("between seq %d at %s and seq %d at %s", p.Entry.Seq, p.Where(), c.Entry.Seq, c.Where()))
		case c.Entry.PrevHash != p.Entry.Hash:
			v.rep.add(KindBrokenLink, c, fmt.Sprintf("prev_hash %s does not match hash %s of seq %d at %s: one of them was edited and re-hashed, or replaced",
				short(c.Entry.PrevHash), short(p.Entry.Hash), p.Entry.Seq, p.Where()))
		}
		if c.Entry.Time.Before(p.Entry.Time) {
			v.rep.add(KindReordered, c, fmt.Sprintf("time %s is before the time of seq %d at %s", formatTime(c.Entry.Time), p.Entry.Seq, p.Where()))
		}
	}
	for _, c := range chosen {
		if c.Entry.Event == EventCheckpoint && !v.bad[c] {
			v.checkCheckpoint(c, at)
		}
	}
	v.last = chosen[len(chosen)-1]
	v.checkHeads(v.last, at)
}

// confirmed says why c, an entry at a seq with several candidates, is part of the
// chain for sure: the next seq links to it, a signed head names it, or a checkpoint
// does. It returns "" when nothing confirms it.
func (v *chainVerifier) confirmed(c *StoredEntry, next []*StoredEntry, heads map[string]bool) string {
	for _, n := range next {
		if n.Entry.PrevHash == c.Entry.Hash && !v.bad[n] {
			return fmt.Sprintf("seq %d at %s links to", n.Entry.Seq, n.Where())
		}
	}
	if heads[c.Entry.Hash] {
		return "a signed head names"
	}
	for _, se := range v.list {
		if se.Entry.Event != EventCheckpoint || v.bad[se] {
			continue
		}
		hs, _ := se.Entry.Details["head_seq"].(float64)
		hh, _ := se.Entry.Details["head_hash"].(string)
		if int64(hs) == c.Entry.Seq && hh == c.Entry.Hash {
			return fmt.Sprintf("the checkpoint at %s names", se.Where())
		}
	}
	return ""
}

// checkFileOrder reports entries that break seq order in a JSON-lines file. The longest
// run of entries in increasing seq order is taken as in place; the rest are reported.
func (v *chainVerifier) checkFileOrder() {
	seen := map[int64]bool{}
	var firsts []*StoredEntry // first occurrence of each seq, in file order
	for _, se := range v.list {
		if !seen[se.Entry.Seq] {
			seen[se.Entry.Seq] = true
			firsts = append(firsts, se)
		}
	}
	inPlace := longestIncreasing(firsts)
	var kept []*StoredEntry
	for i, se := range firsts {
		if inPlace[i] {
			kept = append(kept, se)
		}
	}
	for i, se := range firsts {
		if inPlace[i] {
			continue
		}
		detail := "out of seq order in the file"
		// Name the in-place neighbour it was moved past.
		j := sort.Search(len(kept), func(k int) bool { return kept[k].Entry.Seq > se.Entry.Seq })
		if j > 0 && kept[j-1].Pos > se.Pos {
			detail = fmt.Sprintf("out of seq order in the file: it comes before seq %d at %s", kept[j-1].Entry.Seq, kept[j-1].Where())
		} else if j < len(kept) && kept[j].Pos < se.Pos {
			detail = fmt.Sprintf("out of seq order in the file: it comes after seq %d at %s", kept[j].Entry.Seq, kept[j].Where())
		}
		v.rep.add(KindReordered, se, detail)
		v.moved[se] = true
	}
}

// checkLineTimes reports lines of a JSON-lines trail whose time is earlier than the time
// of the line before them when that line belongs to another chain. A trail file has one
// writer at a time (scripts/dev.sh's devserver shares one Recorder among its functions,
// and successive runs append one after another), and a Recorder takes an entry's time
// and writes it under one lock, so the file is in time order. Seq order already proves
// the order of one chain's lines; this proves how chains' lines interleave, which seq
// cannot: without it, two adjacent lines of different chains could be swapped unseen.
// Malformed lines are skipped, and entries already reported as out of seq order are
// not reported twice.
func checkLineTimes(rep *Report, entries []StoredEntry, moved map[*StoredEntry]bool) {
	var prev *StoredEntry
	for i := range entries {
		se := &entries[i]
		if se.Err != nil {
			continue
		}
		if prev != nil && prev.Entry.Chain != se.Entry.Chain && se.Entry.Time.Before(prev.Entry.Time) && !moved[se] {
			rep.add(KindReordered, se, fmt.Sprintf("time %s is before the time %s of the line before it (chain=%s seq=%d %s): lines are appended in time order",
				formatTime(se.Entry.Time), formatTime(prev.Entry.Time), prev.Entry.Chain, prev.Entry.Seq, prev.Where()))
		}
		prev = se
	}
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00") }

// longestIncreasing marks a longest subsequence of es with strictly increasing seq.
func longestIncreasing(es []*StoredEntry) []bool {
	tails := []int{}             // tails[k]: index of the smallest last element of a run of length k+1
	prev := make([]int, len(es)) // predecessor of each element in its run
	for i, e := range es {
		k := sort.Search(len(tails), func(k int) bool { return es[tails[k]].Entry.Seq >= e.Entry.Seq })
		prev[i] = -1
		if k > 0 {
			prev[i] = tails[k-1]
		}
		if k == len(tails) {
			tails = append(tails, i)
		} else {
			tails[k] = i
		}
	}
	in := make([]bool, len(es))
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
			in[i] = true
		}
	}
	return in
}

// dedupe groups entries by seq, keeping the first copy of identical entries and reporting
// the others as duplicates.
func (v *chainVerifier) dedupe() map[int64][]*StoredEntry {
	bySeq := map[int64][]*StoredEntry{}
	for _, se := range v.list {
		dup := false
		for _, o := range bySeq[se.Entry.Seq] {
			if o.Entry.Hash == se.Entry.Hash {
				v.rep.add(KindDuplicated, se, fmt.Sprintf("same entry as %s", o.Where()))
				dup = true
				break
			}
		}
		if !dup {
			bySeq[se.Entry.Seq] = append(bySeq[se.Entry.Seq], se)
		}
	}
	return bySeq
}

// pick chooses which of several entries at one seq the chain runs through: the one a head
// names, then the one linked from the previous and to the next seq, with a valid hash.
func pick(cands []*StoredEntry, prev *StoredEntry, next []*StoredEntry, heads map[string]bool, bad map[*StoredEntry]bool) *StoredEntry {
	best, bestScore := cands[0], -1
	for _, c := range cands {
		score := 0
		if !bad[c] { // signed by the chain's key, and unedited: only the recorder made it
			score += 32
		}
		if heads[c.Entry.Hash] {
			score += 16
		}
		if prev != nil && prev.Entry.Seq == c.Entry.Seq-1 && c.Entry.PrevHash == prev.Entry.Hash {
			score += 8
		}
		for _, n := range next {
			if n.Entry.PrevHash == c.Entry.Hash {
				score += 4
				break
			}
		}
		if c.computed == c.Entry.Hash {
			score += 2
		}
		for _, o := range cands {
			if o != c && slices.Contains(c.Entry.Supersedes, o.Entry.Hash) {
				score++
				break
			}
		}
		if score > bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// removed reports seqs from..to as missing, leaving out those reported as malformed;
// after is the entry that follows the gap.
func (v *chainVerifier) removed(from, to int64, after *StoredEntry, where string) {
	for from <= to && v.malformed[from] {
		from++
	}
	for to >= from && v.malformed[to] {
		to--
	}
	if from > to {
		return
	}
	what := fmt.Sprintf("seq %d", from)
	if to > from {
		what = fmt.Sprintf("seq %d..%d", from, to)
	}
	f := Finding{Kind: KindRemoved, Chain: v.chain, Seq: from, Detail: fmt.Sprintf("%s missing %s", what, where)}
	if after != nil { // the gap is first seen at the entry after it
		f.pos, f.time = after.Pos, after.Entry.Time
	}
	v.rep.Findings = append(v.rep.Findings, f)
}

func (v *chainVerifier) checkCheckpoint(c *StoredEntry, at map[int64]*StoredEntry) {
	hs, _ := c.Entry.Details["head_seq"].(float64)
	hh, _ := c.Entry.Details["head_hash"].(string)
	seq := int64(hs)
	if seq == 0 {
		return
	}
	e := at[seq]
	if e == nil {
		return // a gap, reported as removed (or before the window)
	}
	if e.Entry.Hash != hh {
		v.rep.add(KindHeadMismatch, c, fmt.Sprintf("the checkpoint says seq %d has hash %s, but the trail has %s at %s", seq, short(hh), short(e.Entry.Hash), e.Where()))
	}
}

func (v *chainVerifier) checkHeads(last *StoredEntry, at map[int64]*StoredEntry) {
	var top *Head
	reported := map[int64]bool{}
	for i := range v.heads {
		h := &v.heads[i]
		if h.Seq > last.Entry.Seq {
			if top == nil || h.Seq > top.Seq {
				top = h
			}
			continue
		}
		e := at[h.Seq]
		if e == nil || e.Entry.Hash == h.Hash || reported[h.Seq] {
			continue
		}
		reported[h.Seq] = true
		v.rep.add(KindHeadMismatch, e, fmt.Sprintf("the heads store says seq %d has hash %s, but the trail has %s", h.Seq, short(h.Hash), short(e.Entry.Hash)))
	}
	if top != nil {
		what := fmt.Sprintf("seq %d", top.Seq)
		if top.Seq > last.Entry.Seq+1 {
			what = fmt.Sprintf("seq %d..%d", last.Entry.Seq+1, top.Seq)
		}
		v.rep.add(KindTruncated, last, fmt.Sprintf("the chain ends here, but the heads store recorded seq %d (hash %s) at %s: %s missing from the tail",
			top.Seq, short(top.Hash), top.Time.UTC().Format("2006-01-02T15:04:05Z"), what))
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

func maxHead(hs []Head) Head {
	top := hs[0]
	for _, h := range hs[1:] {
		if h.Seq > top.Seq {
			top = h
		}
	}
	return top
}
