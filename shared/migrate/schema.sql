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

-- The keyed-hash mask's key, stored as the HMAC inner and outer padded keys so that the
-- masked views compute HMAC-SHA-256 with built-in sha256() alone. Only the view owner reads it.
CREATE TABLE IF NOT EXISTS airlock.masking_key (
    id        integer PRIMARY KEY CHECK (id = 1),
    inner_key bytea NOT NULL,
    outer_key bytea NOT NULL
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

-- sync_developer makes a developer's database role hold exactly the capabilities of
-- their active, unexpired grants, creating the role on first use. It runs as {{p}}admin,
-- the only role allowed to change memberships, and takes an advisory lock per developer
-- so that concurrent approvals and sweeps converge.
CREATE OR REPLACE FUNCTION airlock.sync_developer(p_email text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_prefix text := (SELECT value FROM airlock.settings WHERE key = 'role_prefix');
    v_role   text;
    v_want   text[];
    v_have   text[];
    r        text;
BEGIN
    p_email := lower(p_email);
    PERFORM pg_advisory_xact_lock(hashtext('airlock.sync:' || p_email));
    SELECT db_role INTO v_role FROM airlock.developers WHERE email = p_email;
    IF v_role IS NULL THEN
        v_role := v_prefix || 'u_' || left(regexp_replace(p_email, '[^a-z0-9]+', '_', 'g'), 36)
                  || '_' || left(md5(p_email), 6);
        INSERT INTO airlock.developers (email, db_role) VALUES (p_email, v_role);
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
        EXECUTE format('GRANT %I TO %I', v_prefix || 'developer', v_role);
        EXECUTE format('GRANT %I TO %I', v_role, v_prefix || 'query');
    END IF;

    SELECT coalesce(array_agg(DISTINCT v_prefix || c), '{}') INTO v_want
      FROM airlock.grants g, unnest(g.capabilities) AS c
     WHERE g.grantee = p_email AND g.status = 'active'
       AND g.starts_at <= now() AND g.expires_at > now();
    SELECT coalesce(array_agg(b.rolname::text), '{}') INTO v_have
      FROM pg_auth_members m
      JOIN pg_roles b ON b.oid = m.roleid
      JOIN pg_roles u ON u.oid = m.member
     WHERE u.rolname = v_role
       AND (starts_with(b.rolname, v_prefix || 'unmasked_') OR starts_with(b.rolname, v_prefix || 'write_'));

    FOREACH r IN ARRAY v_have LOOP
        IF NOT r = ANY (v_want) THEN
            EXECUTE format('REVOKE %I FROM %I', r, v_role);
        END IF;
    END LOOP;
    FOREACH r IN ARRAY v_want LOOP
        IF NOT r = ANY (v_have) THEN
            EXECUTE format('GRANT %I TO %I', r, v_role);
        END IF;
    END LOOP;
    RETURN v_role;
END
$fn$;

-- terminate_grant_sessions ends every backend whose application_name (set by the query
-- function as "airlock r=<request> g=<grant>,<grant>") names one of the given grants.
-- It runs as {{p}}reaper, which may signal backends but can read no data.
CREATE OR REPLACE FUNCTION airlock.terminate_grant_sessions(p_grant_ids bigint[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n integer := 0;
    s record;
BEGIN
    FOR s IN
        SELECT a.pid
          FROM pg_stat_activity a
         WHERE a.datname = current_database()
           AND a.pid <> pg_backend_pid()
           AND a.application_name LIKE 'airlock r=%'
           AND EXISTS (
                 SELECT 1
                   FROM unnest(string_to_array(substring(a.application_name FROM ' g=([0-9,]+)'), ',')) AS g
                  WHERE g <> '' AND g::bigint = ANY (p_grant_ids))
    LOOP
        IF pg_terminate_backend(s.pid) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$fn$;

-- capture_write keeps the before- and after-image of each row a developer's write
-- changes. It runs as {{p}}admin because developers cannot write airlock.write_images.
CREATE OR REPLACE FUNCTION airlock.capture_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    INSERT INTO airlock.write_images (request_id, table_name, op, old_row, new_row)
    VALUES (coalesce(nullif(current_setting('airlock.request_id', true), ''), 'unattributed'),
            TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END,
            to_jsonb(NEW));
    RETURN NULL;
END
$fn$;

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
