-- Token introspection and revocation, private_key_jwt client authentication, per-client token
-- format and rate limit, resource indicators on grants, pruning and the audit table, for
-- SQLite. Opaque access tokens are stored only as their SHA-256 (32 bytes), never in
-- plaintext. Every added column has a constant default, so rows written before keep reading.

-- May call the introspection endpoint.
ALTER TABLE clients ADD COLUMN introspection INTEGER NOT NULL DEFAULT 0
    CHECK (introspection IN (0, 1));
-- 'jwt' or 'opaque'.
ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'jwt';
-- The client's JWKS document (JSON text) or where it publishes one, for private_key_jwt.
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- Token-endpoint requests per second; NULL: the server default. Read back as a u32.
ALTER TABLE clients ADD COLUMN rate_limit_per_second INTEGER;

-- The resource servers the grant's access tokens are for (RFC 8707), a JSON array of strings;
-- '[]': the client's default.
ALTER TABLE grants ADD COLUMN audience TEXT NOT NULL DEFAULT '[]';

-- Opaque (reference) access tokens, for introspection.
CREATE TABLE opaque_access_tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    jti        TEXT    NOT NULL UNIQUE,
    client_id  TEXT    NOT NULL,
    sub        TEXT    NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope      TEXT    NOT NULL,
    -- JSON array of strings.
    audience   TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX opaque_access_tokens_expires_at ON opaque_access_tokens (expires_at);

-- The access-token denylist: `jti`s revoked on their own (RFC 7009), kept until the token
-- expires.
CREATE TABLE revoked_access_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- The `jti`s of client assertions already accepted (RFC 7523 §3), kept until the assertion
-- expires, so that a replay is refused.
CREATE TABLE client_assertions (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT;

CREATE INDEX client_assertions_expires_at ON client_assertions (expires_at);

-- Audit events: never a token value. Not pruned.
CREATE TABLE audit_events (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    event      TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    client_id  TEXT,
    sub        TEXT,
    grant_type TEXT,
    jti        TEXT,
    reason     TEXT,
    source     TEXT
) STRICT;

CREATE INDEX audit_events_at ON audit_events (at);
