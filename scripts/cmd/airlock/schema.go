package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The schema as ExecuteQuery describes it to the caller (GET /schema, /schema/{table}).
type tableSummary struct {
	Name         string   `json:"name"`
	Columns      []string `json:"columns"`
	Masked       []string `json:"masked"`
	Unmasked     bool     `json:"unmasked"`
	Writable     bool     `json:"writable"`
	WriteGranted bool     `json:"write_granted"`
}

type tableDetail struct {
	Name       string   `json:"name"`
	PrimaryKey []string `json:"primary_key"`
	Columns    []struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		Sensitive bool   `json:"sensitive"`
		Masked    bool   `json:"masked"`
		Mask      string `json:"mask"`
		MaskShows string `json:"mask_description"`
		GrantRole string `json:"grant_role"`
		Writable  bool   `json:"writable"`
	} `json:"columns"`
	Unmasked   bool   `json:"unmasked"`
	UnmaskRole string `json:"unmask_role"`
	Write      *struct {
		Operations []string `json:"operations"`
		Columns    []string `json:"columns"`
		MaxRows    int      `json:"max_rows"`
		Granted    []string `json:"granted"`
		GrantRole  string   `json:"grant_role"`
	} `json:"write"`
	Grants []struct {
		ID        int64     `json:"grant_id"`
		Role      string    `json:"role"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"grants"`
}

func (a *app) tables(ctx context.Context) ([]tableSummary, []byte, error) {
	var v struct {
		Tables []tableSummary `json:"tables"`
	}
	raw, err := a.c.call(ctx, fnQuery, http.MethodGet, "/schema", nil, &v)
	return v.Tables, raw, err
}

func (a *app) table(ctx context.Context, name string) (*tableDetail, []byte, error) {
	var v struct {
		Table tableDetail `json:"table"`
	}
	raw, err := a.c.call(ctx, fnQuery, http.MethodGet, "/schema/"+url.PathEscape(name), nil, &v)
	return &v.Table, raw, err
}

func (a *app) cmdDescribe(ctx context.Context, args []string) error {
	fs := a.flags("describe")
	format := fs.String("format", "table", "table or json")
	pos, err := parse(fs, args, 0, 1, "describe [TABLE] [--format table|json]")
	if err != nil {
		return err
	}
	if err := checkFormat(*format, "table", "json"); err != nil {
		return err
	}
	if err := a.connect(); err != nil {
		return err
	}
	return a.describe(ctx, a.stdout, pos, *format)
}

// describe prints the list of tables (no names) or one table.
func (a *app) describe(ctx context.Context, w io.Writer, names []string, format string) error {
	if len(names) == 0 {
		ts, raw, err := a.tables(ctx)
		if err != nil {
			return err
		}
		if format == "json" {
			writeJSON(w, raw)
			return nil
		}
		printTables(w, ts)
		return nil
	}
	t, raw, err := a.table(ctx, names[0])
	if err != nil {
		return err
	}
	if format == "json" {
		writeJSON(w, raw)
		return nil
	}
	a.printTable(w, t)
	return nil
}

func printTables(w io.Writer, ts []tableSummary) {
	rows := [][]string{}
	for _, t := range ts {
		masked := strings.Join(t.Masked, ", ")
		if t.Unmasked {
			masked = "(unmasked by your grant)"
		}
		write := "no"
		switch {
		case t.WriteGranted:
			write = "yes, granted to you"
		case t.Writable:
			write = "with a write grant"
		}
		rows = append(rows, []string{t.Name, strconv.Itoa(len(t.Columns)), masked, write})
	}
	fmt.Fprintln(w, "Tables you can query")
	listing(w, []string{"table", "columns", "masked for you", "writable"}, rows)
}

// printTable prints one table as psql's \d does, with what the caller sees masked, how,
// and which role would show it or let them write.
func (a *app) printTable(w io.Writer, t *tableDetail) {
	rows := [][]string{}
	for _, c := range t.Columns {
		masked := ""
		switch {
		case c.Masked:
			masked = "masked (" + maskName(c.Mask) + ")"
		case c.Sensitive:
			masked = "sensitive (" + maskName(c.Mask) + "), unmasked for you"
		}
		unmaskedBy := ""
		if c.Masked {
			unmaskedBy = c.GrantRole
			if unmaskedBy == "" {
				unmaskedBy = "(no role you may request)"
			}
		}
		writable := ""
		if c.Writable {
			writable = "yes"
		}
		rows = append(rows, []string{c.Name, c.Type, masked, unmaskedBy, writable})
	}
	fmt.Fprintf(w, "Table %q\n", line(t.Name))
	listing(w, []string{"column", "type", "masked", "unmasked by", "writable"}, rows)
	if len(t.PrimaryKey) > 0 {
		fmt.Fprintf(w, "Primary key: %s\n", line(strings.Join(t.PrimaryKey, ", ")))
	}
	for _, c := range t.Columns {
		if c.Sensitive && c.MaskShows != "" {
			fmt.Fprintf(w, "Mask of %s: %s\n", line(c.Name), line(c.MaskShows))
		}
	}
	switch {
	case t.Unmasked:
		fmt.Fprintln(w, "You see the real values: a grant of yours unmasks this table.")
	case t.UnmaskRole != "":
		fmt.Fprintf(w, "To see the real values: %s request %s --for 30m --reason \"…\"\n", a.prog, line(t.UnmaskRole))
	}
	switch {
	case t.Write == nil:
		fmt.Fprintln(w, "Writes: never (the policy does not let this table be written through Airlock)")
	case len(t.Write.Granted) > 0:
		fmt.Fprintf(w, "Writes: %s granted to you, at most %d rows per statement; columns: %s\n",
			line(strings.Join(t.Write.Granted, " and ")), t.Write.MaxRows, line(strings.Join(t.Write.Columns, ", ")))
	default:
		role := t.Write.GrantRole
		if role == "" {
			role = "(no role you may request)"
		}
		fmt.Fprintf(w, "Writes: %s under a grant of %s, at most %d rows per statement; columns: %s\n",
			line(strings.Join(t.Write.Operations, " and ")), line(role), t.Write.MaxRows, line(strings.Join(t.Write.Columns, ", ")))
	}
	for _, g := range t.Grants {
		fmt.Fprintf(w, "Your grant %d (%s) until %s\n", g.ID, line(g.Role), g.ExpiresAt.Local().Format("2006-01-02 15:04:05 MST"))
	}
}
