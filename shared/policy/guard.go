package policy

import "airlock.dev/airlock/shared/sqlguard"

// Catalog describes the policy's tables to the SQL guard. columns maps each table to its
// columns in table order, as the database has them (the policy names only the sensitive
// and writable ones). Without them the guard cannot tell which table an unqualified or
// whole-row column reference reads, so it cannot report masked columns; pass nil only
// where that does not matter.
func (p *Policy) Catalog(columns map[string][]string) sqlguard.Catalog {
	var c sqlguard.Catalog
	for _, name := range p.TableNames() {
		t := p.Tables[name]
		st := sqlguard.Table{Name: name, Columns: columns[name], Sensitive: t.SensitiveColumns(), Keys: [][]string{t.PrimaryKey}}
		if t.Write != nil {
			st.WritableColumns = t.Write.Columns
		}
		c.Tables = append(c.Tables, st)
	}
	return c
}

// Permissions turns the roles a person holds right now into what the SQL guard allows.
// A write grant opens only the operations the table's write section allows.
func (p *Policy) Permissions(mode sqlguard.Mode, roles []string) sqlguard.Permissions {
	unmask, write := p.Capabilities(roles)
	perms := sqlguard.Permissions{
		Mode:     mode,
		Unmasked: map[string]bool{},
		Write:    map[string]sqlguard.WriteGrant{},
	}
	for _, t := range unmask {
		perms.Unmasked[t] = true
	}
	for _, t := range write {
		if w := p.Tables[t].Write; w != nil {
			perms.Write[t] = sqlguard.WriteGrant{Insert: w.Insert, Update: w.Update}
		}
	}
	return perms
}
