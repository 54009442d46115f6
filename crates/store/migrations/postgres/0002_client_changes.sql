-- A counter every change to `clients` bumps, by trigger, whoever makes it (any instance, the
-- admin CLI, a hand-written statement). Servers keep decoded client records in memory and use
-- one only while this counter still has the value it was read with, so a change applies to
-- the next request as if nothing were cached.
CREATE TABLE change_counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('clients', 0);

-- SET search_path FROM CURRENT: the function finds this schema's counter whatever the search
-- path of the session that changes a client (psql, another tool).
CREATE FUNCTION clients_changed() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
    RETURN NULL;
END;
$$;

-- Once per statement: a statement changing many clients bumps the counter once.
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION clients_changed();
