-- Secrets every instance must share and no client ever sees, created once by whichever instance
-- needs one first: the key authorization codes are sealed with, when no key encryption key is
-- configured (with one, that key is derived from it and nothing is stored).
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
