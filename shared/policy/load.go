package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// An Error lists every problem found in a policy document. Each problem names the line
// and the key it is about, so that a reviewer can fix them all in one pass.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "policy: " + strings.Join(e.Problems, "; ")
}

// The raw document, as written. Pointers tell "absent" from "zero".
type document struct {
	Version    int                 `yaml:"version"`
	Groups     map[string][]string `yaml:"groups"`
	Members    []string            `yaml:"members"`
	SlackUsers map[string]string   `yaml:"slack_users"`
	Tables     map[string]rawTable `yaml:"tables"`
	Roles      map[string]rawRole  `yaml:"roles"`
	Limits     rawLimits           `yaml:"limits"`
	Alerts     rawAlerts           `yaml:"alerts"`
}

type rawTable struct {
	PrimaryKey []string           `yaml:"primary_key"`
	Masked     map[string]rawMask `yaml:"masked"`
	Write      *rawWrite          `yaml:"write"`
}

type rawMask struct {
	Mask      yaml.Node `yaml:"mask"`
	KeepFirst int       `yaml:"keep_first"`
	KeepLast  int       `yaml:"keep_last"`
	Domain    string    `yaml:"domain"`
	Digits    int       `yaml:"digits"`
	Unit      string    `yaml:"unit"`
}

type rawWrite struct {
	Operations []string `yaml:"operations"`
	Columns    []string `yaml:"columns"`
	MaxRows    int      `yaml:"max_rows"`
}

type rawRole struct {
	Requesters  []string `yaml:"requesters"`
	Approvers   []string `yaml:"approvers"`
	Approvals   int      `yaml:"approvals"`
	MaxDuration string   `yaml:"max_duration"`
	Unmask      []string `yaml:"unmask"`
	Write       []string `yaml:"write"`
}

type rawLimits struct {
	MinDuration      string `yaml:"min_duration"`
	RequestTTL       string `yaml:"request_ttl"`
	StatementTimeout string `yaml:"statement_timeout"`
	LockTimeout      string `yaml:"lock_timeout"`
	DefaultMaxRows   int    `yaml:"default_max_rows"`
	MaxRows          int    `yaml:"max_rows"`
	MaxBytes         int64  `yaml:"max_bytes"`
	// A pointer, so that an explicit 0 is refused rather than taken for the default.
	ConcurrentStatements *int `yaml:"concurrent_statements"`
}

type rawAlerts struct {
	DeniedBurst *struct {
		Count  int    `yaml:"count"`
		Window string `yaml:"window"`
	} `yaml:"denied_burst"`
	BulkWriteRows int `yaml:"bulk_write_rows"`
	WorkingHours  *struct {
		Timezone string   `yaml:"timezone"`
		Days     []string `yaml:"days"`
		Start    string   `yaml:"start"`
		End      string   `yaml:"end"`
	} `yaml:"working_hours"`
}

var (
	identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)
	emailRE = regexp.MustCompile(`^[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}$`)
	clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
)

// Defaults applied when the document leaves a limit out.
const (
	defaultRequestTTL       = 24 * time.Hour
	defaultMinDuration      = time.Minute
	defaultStatementTimeout = 30 * time.Second
	defaultLockTimeout      = 3 * time.Second
	defaultMaxRows          = 500
	defaultMaxRowsCap       = 10000
	defaultMaxBytes         = 4 << 20
	defaultBreakGlassMax    = time.Hour

	defaultConcurrentStatements = 4
)

// MaxConcurrentStatements is the highest limits.concurrent_statements a policy may set.
const MaxConcurrentStatements = 64

// Load parses and validates a policy document. Unknown keys, wrong types and every
// inconsistency are reported together in an *Error that names lines and keys.
func Load(data []byte) (*Policy, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{Problems: []string{err.Error()}}
	}
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Problems: []string{"the document is empty"}}
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, &Error{Problems: te.Errors}
		}
		return nil, &Error{Problems: []string{err.Error()}}
	}
	v := &validator{root: &root}
	p := v.build(&doc)
	if len(v.problems) > 0 {
		return nil, &Error{Problems: v.problems}
	}
	return p, nil
}

type validator struct {
	root     *yaml.Node
	problems []string
}

// fail records a problem about the key at path (dot-separated), with its line.
func (v *validator) fail(path string, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line := lineOf(v.root, strings.Split(path, ".")); line > 0 {
		v.problems = append(v.problems, fmt.Sprintf("line %d: %s: %s", line, path, msg))
		return
	}
	v.problems = append(v.problems, fmt.Sprintf("%s: %s", path, msg))
}

// lineOf finds the line of the key at path in a YAML document, or of its nearest
// existing parent, so that even "missing key" problems point somewhere useful.
func lineOf(n *yaml.Node, path []string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

func (v *validator) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.fail(path, "%q is not a duration (write it like 90m or 8h)", s)
		return def
	}
	if d <= 0 {
		v.fail(path, "must be positive, got %s", s)
		return def
	}
	return d
}

func (v *validator) build(doc *document) *Policy {
	p := &Policy{
		Groups:     map[string][]string{},
		SlackUsers: map[string]string{},
		Tables:     map[string]*Table{},
		Roles:      map[string]*Role{},
	}
	if doc.Version != 1 {
		v.fail("version", "must be 1, got %d", doc.Version)
	}
	for name, members := range doc.Groups {
		if !identRE.MatchString(name) {
			v.fail("groups."+name, "group names are lower-case letters, digits and _")
		}
		for _, m := range members {
			m = strings.ToLower(strings.TrimSpace(m))
			if !emailRE.MatchString(m) {
				v.fail("groups."+name, "%q is not an e-mail address", m)
			}
			p.Groups[name] = append(p.Groups[name], m)
		}
	}
	p.Members = v.principals(p, "members", doc.Members)
	if len(p.Members) == 0 {
		v.fail("members", "nobody may use Airlock: list e-mails, group:NAME or domain:NAME")
	}
	for id, email := range doc.SlackUsers {
		email = strings.ToLower(strings.TrimSpace(email))
		if !emailRE.MatchString(email) {
			v.fail("slack_users."+id, "%q is not an e-mail address", email)
		}
		p.SlackUsers[id] = email
	}
	for name, rt := range doc.Tables {
		p.Tables[name] = v.table(name, rt)
	}
	if len(p.Tables) == 0 {
		v.fail("tables", "list at least one table developers may query")
	}
	for name, rr := range doc.Roles {
		if r := v.role(p, name, rr); r != nil {
			p.Roles[name] = r
		}
	}
	p.Limits = v.limits(doc.Limits)
	p.Alerts = v.alerts(doc.Alerts)
	v.writableHashes(p)
	for name, r := range p.Roles {
		if r.MaxDuration < p.Limits.MinDuration {
			v.fail("roles."+name+".max_duration", "%s is shorter than limits.min_duration (%s)", r.MaxDuration, p.Limits.MinDuration)
		}
	}
	return p
}

func (v *validator) principals(p *Policy, path string, in []string) []string {
	var out []string
	for _, pr := range in {
		pr = strings.ToLower(strings.TrimSpace(pr))
		switch {
		case strings.HasPrefix(pr, "group:"):
			if _, ok := p.Groups[strings.TrimPrefix(pr, "group:")]; !ok {
				v.fail(path, "%q names a group that is not defined under groups", pr)
			}
		case strings.HasPrefix(pr, "domain:"):
			if d := strings.TrimPrefix(pr, "domain:"); !strings.Contains(d, ".") || strings.ContainsAny(d, "@ ") {
				v.fail(path, "%q is not a domain", pr)
			}
		default:
			if !emailRE.MatchString(pr) {
				v.fail(path, "%q is neither an e-mail address, group:NAME nor domain:NAME", pr)
			}
		}
		out = append(out, pr)
	}
	return out
}

func (v *validator) table(name string, rt rawTable) *Table {
	path := "tables." + name
	if !identRE.MatchString(name) {
		v.fail(path, "table names are lower-case identifiers")
	}
	t := &Table{Name: name, PrimaryKey: rt.PrimaryKey, Masked: map[string]Mask{}}
	if len(t.PrimaryKey) == 0 {
		v.fail(path+".primary_key", "required: the columns that identify a row (used to revert writes)")
	}
	for col, m := range rt.Masked {
		mp := path + ".masked." + col
		if !identRE.MatchString(col) {
			v.fail(mp, "column names are lower-case identifiers")
		}
		if slices.Contains(t.PrimaryKey, col) {
			v.fail(mp, "a primary key column cannot be masked")
		}
		t.Masked[col] = v.mask(mp, name, col, m)
	}
	if rw := rt.Write; rw != nil {
		w := &Write{Columns: rw.Columns, MaxRows: rw.MaxRows}
		for _, op := range rw.Operations {
			switch strings.ToLower(op) {
			case "insert":
				w.Insert = true
			case "update":
				w.Update = true
			case "delete", "truncate", "merge":
				v.fail(path+".write.operations", "%s is never allowed: Airlock only INSERTs and UPDATEs", strings.ToUpper(op))
			default:
				v.fail(path+".write.operations", "%q is not an operation: use insert and/or update", op)
			}
		}
		if !w.Insert && !w.Update {
			v.fail(path+".write.operations", "list insert and/or update")
		}
		if len(w.Columns) == 0 {
			v.fail(path+".write.columns", "list the columns a write may change")
		}
		for _, c := range w.Columns {
			if !identRE.MatchString(c) {
				v.fail(path+".write.columns", "%q is not a column name", c)
			}
		}
		if w.MaxRows < 1 || w.MaxRows > 100000 {
			v.fail(path+".write.max_rows", "must be between 1 and 100000, got %d", w.MaxRows)
		}
		t.Write = w
	}
	return t
}

// mask validates one column's mask. Each kind takes only its own keys, so that a
// reviewer never reads a key that does nothing (a domain on a partial mask joins nothing).
func (v *validator) mask(path, table, col string, m rawMask) Mask {
	kind := maskKind(&m.Mask)
	out := Mask{Kind: kind, KeepFirst: m.KeepFirst, KeepLast: m.KeepLast, Domain: m.Domain, Digits: m.Digits, Unit: m.Unit}
	keys := map[string]bool{"keep_first": m.KeepFirst != 0, "keep_last": m.KeepLast != 0, "domain": m.Domain != "", "digits": m.Digits != 0, "unit": m.Unit != ""}
	own := map[string][]string{MaskPartial: {"keep_first", "keep_last"}, MaskHash: {"domain"}, MaskRound: {"digits"}, MaskTruncate: {"unit"}}
	switch kind {
	case MaskRedact, MaskNull:
	case MaskPartial:
		if m.KeepFirst < 0 || m.KeepLast < 0 || m.KeepFirst+m.KeepLast == 0 || m.KeepFirst+m.KeepLast > 16 {
			v.fail(path, "partial masks keep 1 to 16 characters in all (keep_first + keep_last)")
		}
	case MaskHash:
		switch {
		case m.Domain == "":
			out.Domain = DefaultDomain(table, col)
		case !identRE.MatchString(m.Domain):
			// Lower case only, and no dot: two spellings of one name never make two
			// domains, and no policy can name another column's default domain.
			v.fail(path+".domain", "%q is not a domain name: use lower-case letters, digits and _ (columns that share a name share a key)", m.Domain)
		}
	case MaskRound:
		if m.Digits < 1 || m.Digits > 6 {
			v.fail(path+".digits", "round keeps 1 to 6 significant digits, got %d", m.Digits)
		}
	case MaskTruncate:
		if !slices.Contains(TruncateUnits, m.Unit) {
			v.fail(path+".unit", "%q is not a unit: use %s", m.Unit, strings.Join(TruncateUnits, ", "))
		}
	case "":
		v.fail(path+".mask", "required: one of %s", maskNames)
		return out
	default:
		v.fail(path+".mask", "%q is not a mask: use %s", kind, maskNames)
		return out
	}
	for _, k := range []string{"keep_first", "keep_last", "domain", "digits", "unit"} {
		if keys[k] && !slices.Contains(own[kind], k) {
			v.fail(path+"."+k, "%s does not apply to mask: %s", k, kind)
		}
	}
	return out
}

const maskNames = "redact, partial, hash, round, truncate or null"

// writableHashes refuses a hash-masked column that a write grant can set. Whoever may
// write it can store a guess, read the guess's hash through the masked view, and find
// every row of the domain whose hash is the same: the guess is confirmed for columns,
// and rows, they may not see. That holds for the column's own other rows as much as for
// other columns of its domain, and it outlives the grant (the row and its hash stay), so
// no grant, breakglass included, may write a hashed column. Masks without a key
// (partial, round, truncate) are not refused: anyone can compute them from a guess, so a
// written value compared in masked form tells nothing the mask does not show.
func (v *validator) writableHashes(p *Policy) {
	domains := p.HashDomains()
	for _, name := range p.TableNames() {
		t := p.Tables[name]
		if t.Write == nil {
			continue
		}
		for _, col := range slices.Compact(slices.Sorted(slices.Values(t.Write.Columns))) {
			m, ok := t.Masked[col]
			if !ok || m.Kind != MaskHash {
				continue
			}
			writers := p.Writers(name)
			if len(writers) == 0 {
				writers = []string{"write_" + name}
			}
			var others []string
			for _, c := range domains[m.Domain] {
				if c != name+"."+col {
					others = append(others, c)
				}
			}
			rows := "the other rows of " + name + "." + col
			if len(others) > 0 {
				rows += " and the rows of " + strings.Join(others, ", ")
			}
			v.fail("tables."+name+".masked."+col,
				"hashed (domain %s) and writable (tables.%s.write.columns, through %s): whoever writes it can store a guess and find, by the guess's hash, %s that hold the same value without seeing them; take %s out of write.columns, or mask it with partial, round, truncate, redact or null",
				m.Domain, name, strings.Join(writers, " and "), rows, col)
		}
	}
}

func (v *validator) role(p *Policy, name string, rr rawRole) *Role {
	path := "roles." + name
	r := &Role{Name: name, Approvals: rr.Approvals}
	r.Requesters = v.principals(p, path+".requesters", rr.Requesters)
	r.Approvers = v.principals(p, path+".approvers", rr.Approvers)
	if len(r.Requesters) == 0 {
		v.fail(path+".requesters", "list who may request this role")
	}
	if len(r.Approvers) == 0 {
		v.fail(path+".approvers", "list who may approve this role")
	}
	if r.Approvals < 1 {
		v.fail(path+".approvals", "at least one approval is required, got %d", r.Approvals)
	}
	def := time.Duration(0)
	if name == BreakGlass {
		def = defaultBreakGlassMax
	}
	r.MaxDuration = v.duration(path+".max_duration", rr.MaxDuration, def)
	if r.MaxDuration == 0 {
		v.fail(path+".max_duration", "required: the longest time this role may be granted for")
	}
	if r.MaxDuration > 14*24*time.Hour {
		v.fail(path+".max_duration", "%s is longer than the 14 days Airlock allows any grant", r.MaxDuration)
	}
	switch {
	case name == BreakGlass:
		if len(rr.Unmask) == 0 && len(rr.Write) == 0 {
			v.fail(path, "breakglass must name the tables it unmasks (unmask) and/or writes (write)")
		}
		for _, t := range rr.Unmask {
			if tb, ok := p.Tables[t]; !ok || len(tb.Masked) == 0 {
				v.fail(path+".unmask", "%q is not a policy table with masked columns", t)
			}
		}
		for _, t := range rr.Write {
			if tb, ok := p.Tables[t]; !ok || tb.Write == nil {
				v.fail(path+".write", "%q is not a writable policy table (give it a write: section)", t)
			}
		}
		if r.Approvals < 2 {
			v.fail(path+".approvals", "break-glass needs at least two approvals, got %d", r.Approvals)
		}
		r.Unmask, r.Write = rr.Unmask, rr.Write
	case strings.HasPrefix(name, "unmasked_"):
		t := strings.TrimPrefix(name, "unmasked_")
		if tb, ok := p.Tables[t]; !ok || len(tb.Masked) == 0 {
			v.fail(path, "unmasked_%s needs a policy table %q with masked columns", t, t)
			return nil
		}
		v.noScope(path, rr)
		r.Unmask = []string{t}
	case strings.HasPrefix(name, "write_"):
		t := strings.TrimPrefix(name, "write_")
		if tb, ok := p.Tables[t]; !ok || tb.Write == nil {
			v.fail(path, "write_%s needs a policy table %q with a write: section", t, t)
			return nil
		}
		v.noScope(path, rr)
		r.Write = []string{t}
	default:
		v.fail(path, "role names are unmasked_<table>, write_<table> or breakglass")
		return nil
	}
	return r
}

// noScope rejects unmask/write lists on roles whose scope is their name.
func (v *validator) noScope(path string, rr rawRole) {
	if len(rr.Unmask) > 0 || len(rr.Write) > 0 {
		v.fail(path, "only breakglass lists unmask/write tables; this role's table is in its name")
	}
}

func (v *validator) limits(rl rawLimits) Limits {
	l := Limits{
		MinDuration:      v.duration("limits.min_duration", rl.MinDuration, defaultMinDuration),
		RequestTTL:       v.duration("limits.request_ttl", rl.RequestTTL, defaultRequestTTL),
		StatementTimeout: v.duration("limits.statement_timeout", rl.StatementTimeout, defaultStatementTimeout),
		LockTimeout:      v.duration("limits.lock_timeout", rl.LockTimeout, defaultLockTimeout),
		DefaultMaxRows:   rl.DefaultMaxRows,
		MaxRows:          rl.MaxRows,
		MaxBytes:         rl.MaxBytes,
	}
	if l.DefaultMaxRows == 0 {
		l.DefaultMaxRows = defaultMaxRows
	}
	if l.MaxRows == 0 {
		l.MaxRows = defaultMaxRowsCap
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = defaultMaxBytes
	}
	l.ConcurrentStatements = defaultConcurrentStatements
	if rl.ConcurrentStatements != nil {
		l.ConcurrentStatements = *rl.ConcurrentStatements
		if l.ConcurrentStatements < 1 || l.ConcurrentStatements > MaxConcurrentStatements {
			v.fail("limits.concurrent_statements", "must be between 1 and %d, got %d", MaxConcurrentStatements, l.ConcurrentStatements)
		}
	}
	if l.DefaultMaxRows < 1 || l.DefaultMaxRows > l.MaxRows {
		v.fail("limits.default_max_rows", "must be between 1 and limits.max_rows (%d)", l.MaxRows)
	}
	if l.MaxRows > 1000000 {
		v.fail("limits.max_rows", "at most 1000000, got %d", l.MaxRows)
	}
	if l.MaxBytes < 1024 || l.MaxBytes > 64<<20 {
		v.fail("limits.max_bytes", "must be between 1 KiB and 64 MiB, got %d", l.MaxBytes)
	}
	if l.StatementTimeout > 10*time.Minute {
		v.fail("limits.statement_timeout", "at most 10m (the functions' own deadline), got %s", l.StatementTimeout)
	}
	return l
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (v *validator) alerts(ra rawAlerts) Alerts {
	a := Alerts{DeniedBurstCount: 5, DeniedBurstWindow: 10 * time.Minute, BulkWriteRows: ra.BulkWriteRows}
	if db := ra.DeniedBurst; db != nil {
		a.DeniedBurstCount = db.Count
		a.DeniedBurstWindow = v.duration("alerts.denied_burst.window", db.Window, 10*time.Minute)
		if db.Count < 1 {
			v.fail("alerts.denied_burst.count", "must be at least 1, got %d", db.Count)
		}
	}
	if a.BulkWriteRows < 0 {
		v.fail("alerts.bulk_write_rows", "must not be negative")
	}
	if wh := ra.WorkingHours; wh != nil {
		w := &WorkingHours{}
		loc, err := time.LoadLocation(wh.Timezone)
		if err != nil || wh.Timezone == "" {
			v.fail("alerts.working_hours.timezone", "%q is not a time zone (for example UTC or Europe/London)", wh.Timezone)
			loc = time.UTC
		}
		w.Location = loc
		for _, d := range wh.Days {
			wd, ok := weekdays[strings.ToLower(d)]
			if !ok {
				v.fail("alerts.working_hours.days", "%q is not a day: use mon, tue, wed, thu, fri, sat, sun", d)
				continue
			}
			w.Days = append(w.Days, wd)
		}
		w.Start = v.clock("alerts.working_hours.start", wh.Start)
		w.End = v.clock("alerts.working_hours.end", wh.End)
		if w.End <= w.Start {
			v.fail("alerts.working_hours.end", "must be after start")
		}
		a.WorkingHours = w
	}
	return a
}

func (v *validator) clock(path, s string) time.Duration {
	m := clockRE.FindStringSubmatch(s)
	if m == nil {
		v.fail(path, "%q is not a time of day like 08:00", s)
		return 0
	}
	var h, mi int
	fmt.Sscanf(m[1]+" "+m[2], "%d %d", &h, &mi)
	return time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute
}

// maskKind reads a mask name; `mask: null` unquoted is YAML's null, which means the null mask.
func maskKind(n *yaml.Node) string {
	if n.Kind == 0 {
		return ""
	}
	if n.Tag == "!!null" {
		return MaskNull
	}
	return n.Value
}
