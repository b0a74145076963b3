-- The functions that run as {{p}}admin (SECURITY DEFINER). The migration creates them as
-- that role, so that they belong to it from the start: no one who runs the migrations
-- needs to inherit its privileges, and no superuser is needed to hand them over.

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

