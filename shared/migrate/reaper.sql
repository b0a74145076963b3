-- The function that runs as {{p}}reaper (SECURITY DEFINER), created as that role.

-- terminate_grant_sessions ends every backend whose application_name (set by the query
-- function as "airlock r=<request> g=<grant>,<grant>") names one of the given grants.
-- It runs as {{p}}reaper, which holds the privileges of the query function's login (an
-- inherited membership it cannot SET ROLE to) and nothing else: PostgreSQL lets a role
-- signal the backends whose login role's privileges it has, so the reaper can end the
-- query function's sessions, where developers' statements run, and no one else's, and it
-- can read no data. Backends it may not signal are passed over rather than failing the
-- whole call, so a stray application_name cannot stop the sweeper.
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
           AND a.usesysid IS NOT NULL
           AND pg_has_role(a.usesysid, 'USAGE')
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

