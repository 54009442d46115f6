-- Indexes on the columns that ON DELETE CASCADE and housekeeping search (PostgreSQL had them
-- from the start). Without codes_grant, purging one grant scanned every stored code.
CREATE INDEX codes_grant ON codes (grant_id);
CREATE INDEX codes_client ON codes (client_id);
CREATE INDEX codes_user ON codes (user_id);
CREATE INDEX pending_client ON pending_authorizations (client_id);
CREATE INDEX consents_client ON consents (client_id);
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
