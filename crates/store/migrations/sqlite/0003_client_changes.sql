-- A counter every change to `clients` bumps, by trigger, whoever makes it (this server, the
-- admin CLI in another process, a hand-written statement). Servers keep decoded client
-- records in memory and use one only while this counter still has the value it was read
-- with, so a change applies to the next request as if nothing were cached.
CREATE TABLE change_counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('clients', 0);

CREATE TRIGGER clients_changed_insert AFTER INSERT ON clients
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_changed_update AFTER UPDATE ON clients
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
END;
CREATE TRIGGER clients_changed_delete AFTER DELETE ON clients
BEGIN
    UPDATE change_counters SET value = value + 1 WHERE name = 'clients';
END;
