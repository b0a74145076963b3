-- Airlock's own schema. Applied by an administrator (scripts/dev.sh locally, the documented
-- bootstrap in production), never by the functions. Every statement is idempotent.
-- {{p}} is the role prefix (default "airlock_"), so that several Airlock databases can
-- share one cluster (the tests do) without sharing roles.

CREATE SCHEMA IF NOT EXISTS airlock;
CREATE SCHEMA IF NOT EXISTS masked;
REVOKE ALL ON SCHEMA airlock FROM PUBLIC;
REVOKE ALL ON SCHEMA masked FROM PUBLIC;

CREATE TABLE IF NOT EXISTS airlock.settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS airlock.developers (
    email      text PRIMARY KEY,
    db_role    text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS airlock.access_requests (
    id                 text PRIMARY KEY,
    requester          text NOT NULL,
    role               text NOT NULL,
    breakglass         boolean NOT NULL DEFAULT false,
    unmask             text[] NOT NULL DEFAULT '{}',
    write              text[] NOT NULL DEFAULT '{}',
    reason             text NOT NULL,
    ticket             text,
    duration           interval NOT NULL CHECK (duration > interval '0'),
    approvals_required integer NOT NULL CHECK (approvals_required > 0),
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    decided_at         timestamptz,
    notified_expiry    boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS access_requests_pending ON airlock.access_requests (expires_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS access_requests_requester ON airlock.access_requests (requester, created_at);

CREATE TABLE IF NOT EXISTS airlock.approvals (
    request_id text NOT NULL REFERENCES airlock.access_requests (id),
    approver   text NOT NULL,
    decision   text NOT NULL CHECK (decision IN ('approve', 'deny')),
    comment    text,
    via        text NOT NULL DEFAULT 'api',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, approver)
);

-- A grant is what an approved request becomes. capabilities are the capability role
-- names without prefix (unmasked_users, write_accounts); the developer's database role
-- holds exactly the capabilities of their active, unexpired grants (airlock.sync_developer).
CREATE TABLE IF NOT EXISTS airlock.grants (
    id           bigserial PRIMARY KEY,
    request_id   text UNIQUE REFERENCES airlock.access_requests (id),
    grantee      text NOT NULL,
    role         text NOT NULL,
    breakglass   boolean NOT NULL DEFAULT false,
    capabilities text[] NOT NULL,
    starts_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL CHECK (expires_at > starts_at),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expired', 'revoked')),
    ended_at     timestamptz,
    ended_by     text,
    reminded_at  timestamptz
);
CREATE INDEX IF NOT EXISTS grants_active_grantee ON airlock.grants (grantee) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS grants_active_expiry ON airlock.grants (expires_at) WHERE status = 'active';

-- Before- and after-images of every row a developer's write changed, kept so that an
-- approved change can be reverted exactly. Unmasked: only Airlock's roles read this.
CREATE TABLE IF NOT EXISTS airlock.write_images (
    id         bigserial PRIMARY KEY,
    request_id text NOT NULL,
    table_name text NOT NULL,
    op         text NOT NULL,
    old_row    jsonb,
    new_row    jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS write_images_request ON airlock.write_images (request_id, id);

-- Writes that were reverted, and by which request: a write is undone at most once (the
-- revert is itself a write, with images, and can be reverted in turn).
CREATE TABLE IF NOT EXISTS airlock.reverts (
    request_id        text PRIMARY KEY,
    revert_request_id text NOT NULL UNIQUE,
    reverted_by       text NOT NULL,
    reverted_at       timestamptz NOT NULL DEFAULT now()
);

-- The master key of the keyed-hash masks, made once, stored as the HMAC inner and outer
-- padded keys. No view uses it: each hash domain's key is derived from it
-- (airlock.masking_keys), and no Airlock role reads it.
CREATE TABLE IF NOT EXISTS airlock.masking_key (
    id        integer PRIMARY KEY CHECK (id = 1),
    inner_key bytea NOT NULL,
    outer_key bytea NOT NULL
);

-- One key per hash domain of the policy, HMAC-SHA-256(master, "airlock masking domain\0"
-- || domain), stored as its padded keys so that the masked views compute HMAC-SHA-256
-- with built-in sha256() alone. Equal values hash alike only within a domain. Only the
-- masker, which owns the views, reads it.
CREATE TABLE IF NOT EXISTS airlock.masking_keys (
    domain    text PRIMARY KEY,
    inner_key bytea NOT NULL CHECK (length(inner_key) = 64),
    outer_key bytea NOT NULL CHECK (length(outer_key) = 64)
);

-- Notifications waiting to be delivered (Slack, file); kept until sent so none is lost.
CREATE TABLE IF NOT EXISTS airlock.notifications (
    id         bigserial PRIMARY KEY,
    channel    text NOT NULL,
    recipient  text,
    payload    jsonb NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_unsent ON airlock.notifications (id) WHERE sent_at IS NULL;
-- Security alerts that may repeat (masked-column access) are sent once per key and hour.
CREATE INDEX IF NOT EXISTS notifications_security_key ON airlock.notifications ((payload->>'key'), created_at)
    WHERE channel = 'security';

-- How many messages each limit key (a security alert's kind and person, say) has had on
-- its channel in the current window, and how many the window held back. Counted in the
-- database because one person's alerts may reach many function instances; an upsert on
-- the key's row serialises those instances. Written only by package outbox.
CREATE TABLE IF NOT EXISTS airlock.notification_limits (
    channel        text NOT NULL,
    key            text NOT NULL,
    window_start   timestamptz NOT NULL DEFAULT now(),
    sent           integer NOT NULL DEFAULT 1,     -- queued in this window
    held           integer NOT NULL DEFAULT 0,     -- held back in this window
    passed         boolean NOT NULL DEFAULT true,  -- whether the last message was queued
    reported       integer NOT NULL DEFAULT 0,     -- held back in the window before, told by the last message
    reported_since timestamptz,                    -- when that window began
    PRIMARY KEY (channel, key)
);

-- Refused queries of the last few minutes, per person, for the denied-burst alert. Counted
-- in the database because one person's burst may reach many function instances.
CREATE TABLE IF NOT EXISTS airlock.denials (
    actor text NOT NULL,
    rule  text NOT NULL,
    at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS denials_actor_at ON airlock.denials (actor, at);

-- Replayed Slack callbacks are refused: each signature is accepted once.
CREATE TABLE IF NOT EXISTS airlock.slack_replays (
    signature  text PRIMARY KEY,
    seen_at    timestamptz NOT NULL DEFAULT now()
);

-- enforce_write_limit refuses a developer's statement that changes more rows than the
-- policy allows (TG_ARGV[0]), so the limit holds even if the gateway's own count fails.
CREATE OR REPLACE FUNCTION airlock.enforce_write_limit() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n   bigint;
    lim bigint := TG_ARGV[0]::bigint;
BEGIN
    SELECT count(*) INTO n FROM changed;
    IF n > lim THEN
        RAISE EXCEPTION 'airlock: this statement changes % rows of %, more than the % one write may change', n, TG_TABLE_NAME, lim
            USING ERRCODE = 'AL001';
    END IF;
    RETURN NULL;
END
$fn$;
