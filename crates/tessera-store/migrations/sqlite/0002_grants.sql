-- Grants and what descends from them (authorization codes, refresh-token families, access
-- tokens), remembered consents and login sessions, for SQLite. Codes, refresh tokens and
-- session ids are stored only as their SHA-256 (32 bytes), never in plaintext.

-- One user's authorization of one client. Revoking it (revoked_at) revokes its refresh tokens
-- and access tokens.
CREATE TABLE grants (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL,
    -- The user's `sub`.
    user_id    TEXT    NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope      TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    sid        TEXT,
    created_at INTEGER NOT NULL,
    -- Absolute end of the refresh-token family.
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX grants_user_client ON grants (user_id, client_id);

-- Single use: redeemed_at is set by one conditional UPDATE.
CREATE TABLE authorization_codes (
    code_hash      BLOB    NOT NULL PRIMARY KEY CHECK (length(code_hash) = 32),
    grant_id       TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    nonce          TEXT,
    expires_at     INTEGER NOT NULL,
    redeemed_at    INTEGER
) STRICT;

CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);

-- A grant's refresh-token family: the current token has rotated_at NULL; a rotated one
-- presented again is reuse.
CREATE TABLE refresh_tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    -- Idle lifetime, capped by the grant's expires_at.
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER
) STRICT;

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);

-- The access tokens issued from a grant, by `jti`, so that revoking the grant revokes them.
CREATE TABLE grant_access_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX grant_access_tokens_grant_id ON grant_access_tokens (grant_id);

-- Remembered consents, one per user and client.
CREATE TABLE consents (
    user_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope      TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

-- Login sessions of the server's own pages. The cookie holds the secret whose hash is id_hash;
-- sid is the public id (OIDC `sid`).
CREATE TABLE sessions (
    id_hash    BLOB    NOT NULL PRIMARY KEY CHECK (length(id_hash) = 32),
    sid        TEXT    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL,
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
