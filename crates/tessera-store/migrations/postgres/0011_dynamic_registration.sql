-- Dynamic Client Registration (RFC 7591, RFC 7592; issue 15), for PostgreSQL. Numbered 0011:
-- 0010 belongs to a concurrent branch.
-- OIDC Registration §2 `application_type` (NULL: not declared) and the pages a client names.
ALTER TABLE clients ADD COLUMN application_type TEXT;
ALTER TABLE clients ADD COLUMN client_uri TEXT;
ALTER TABLE clients ADD COLUMN logo_uri TEXT;
ALTER TABLE clients ADD COLUMN tos_uri TEXT;
ALTER TABLE clients ADD COLUMN policy_uri TEXT;
-- SHA-256 of the RFC 7592 registration access token: set only for clients that registered
-- themselves, which is what makes a client dynamic.
ALTER TABLE clients ADD COLUMN registration_token_hash BYTEA
    CHECK (registration_token_hash IS NULL OR octet_length(registration_token_hash) = 32);
-- When a dynamic client last completed a flow; NULL: never. Stale ones are pruned.
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
CREATE INDEX clients_dynamic_last_used ON clients (last_used_at, created_at)
    WHERE registration_token_hash IS NOT NULL;

-- RFC 7591 §3 initial access tokens made with the CLI: only their hashes.
CREATE TABLE initial_access_tokens (
    token_hash BYTEA   NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    single_use BOOLEAN NOT NULL,
    expires_at BIGINT,
    created_at BIGINT  NOT NULL
);
