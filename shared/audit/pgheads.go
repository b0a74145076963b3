package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// HeadsTableDDL creates the table a [PGHeadStore] writes to, and a trigger that stops a
// head from moving backwards or changing its chain's certificate. Each row holds the
// head's signature (sig) and the chain's certificate (cert, JSON), so a verifier can
// tell a head a recorder saved from one written by anyone else who can write the table.
// It is idempotent and expects the schema airlock to exist.
// Function roles need SELECT, INSERT and UPDATE on it (INSERT … ON CONFLICT DO UPDATE
// reads the row it updates); nobody but an admin needs DELETE.
const HeadsTableDDL = `CREATE TABLE IF NOT EXISTS airlock.audit_heads (
    chain      text        PRIMARY KEY,
    seq        bigint      NOT NULL CHECK (seq > 0),
    hash       text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE airlock.audit_heads ADD COLUMN IF NOT EXISTS sig text;
ALTER TABLE airlock.audit_heads ADD COLUMN IF NOT EXISTS cert text;

CREATE OR REPLACE FUNCTION airlock.audit_heads_forward_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.chain <> OLD.chain OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.hash <> OLD.hash) THEN
        RAISE EXCEPTION 'audit head of chain % may only move forward (seq % to %)', OLD.chain, OLD.seq, NEW.seq;
    END IF;
    IF OLD.cert IS NOT NULL AND NEW.cert IS DISTINCT FROM OLD.cert THEN
        RAISE EXCEPTION 'audit head of chain % keeps the certificate it was saved with', OLD.chain;
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS audit_heads_forward_only ON airlock.audit_heads;
CREATE TRIGGER audit_heads_forward_only BEFORE UPDATE ON airlock.audit_heads
    FOR EACH ROW EXECUTE FUNCTION airlock.audit_heads_forward_only();
`

// upsertHeadSQL moves a chain's head forward; an older or equal seq leaves it alone.
const upsertHeadSQL = `INSERT INTO airlock.audit_heads AS h (chain, seq, hash, sig, cert, updated_at)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, sig = EXCLUDED.sig,
    cert = coalesce(h.cert, EXCLUDED.cert), updated_at = EXCLUDED.updated_at
WHERE h.seq < EXCLUDED.seq`

// A Beginner starts transactions; *pgxpool.Pool, *pgx.Conn and pgx.Tx are Beginners.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// A PGHeadStore upserts heads into airlock.audit_heads (see [HeadsTableDDL]): one row per
// chain, holding its newest head. Use NewPGHeadStore to make one.
type PGHeadStore struct {
	db   Beginner
	role string
}

// NewPGHeadStore returns a PGHeadStore using db. When role is not "", each save runs
// SET LOCAL ROLE role first, as Airlock's NOINHERIT login roles must (for example
// "airlock_query"). It does no I/O.
func NewPGHeadStore(db Beginner, role string) *PGHeadStore {
	return &PGHeadStore{db: db, role: role}
}

// SaveHead moves h.Chain's head to h, unless the stored head is already at or past h.Seq.
func (s *PGHeadStore) SaveHead(ctx context.Context, h Head) error {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if s.role != "" {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{s.role}.Sanitize()); err != nil {
				return fmt.Errorf("setting role %s: %w", s.role, err)
			}
		}
		var cert []byte
		if h.Cert != nil {
			var err error
			if cert, err = marshal(h.Cert); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, upsertHeadSQL, h.Chain, h.Seq, h.Hash, nullable(h.Sig), nullableBytes(cert))
		return err
	})
	if err != nil {
		return fmt.Errorf("upserting airlock.audit_heads: %w", err)
	}
	return nil
}

// A Querier runs queries; *pgxpool.Pool, *pgx.Conn and pgx.Tx are Queriers.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ReadPGHeads returns every row of airlock.audit_heads, ordered by chain. A row's
// certificate that is not valid JSON is left out of its head, which then fails
// verification like any unsigned head.
func ReadPGHeads(ctx context.Context, db Querier) ([]Head, error) {
	rows, err := db.Query(ctx, "SELECT chain, seq, hash, updated_at, coalesce(sig, ''), coalesce(cert, '') FROM airlock.audit_heads ORDER BY chain")
	if err != nil {
		return nil, fmt.Errorf("audit: reading airlock.audit_heads: %w", err)
	}
	heads, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Head, error) {
		var h Head
		var cert string
		if err := row.Scan(&h.Chain, &h.Seq, &h.Hash, &h.Time, &h.Sig, &cert); err != nil {
			return h, err
		}
		if cert != "" {
			var c Certificate
			if json.Unmarshal([]byte(cert), &c) == nil {
				h.Cert = &c
			}
		}
		return h, nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: reading airlock.audit_heads: %w", err)
	}
	return heads, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullableBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
