-- Grants and what descends from them (authorization codes, refresh-token families, access
-- tokens), remembered consents and login sessions, for PostgreSQL. Codes, refresh tokens and
-- session ids are stored only as their SHA-256 (32 bytes), never in plaintext. Identifiers use
-- the "C" collation, as in 0001.

-- One user's authorization of one client. Revoking it (revoked_at) revokes its refresh tokens
-- and access tokens.
CREATE TABLE grants (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id  TEXT COLLATE "C" NOT NULL,
    -- The user's `sub`.
    user_id    TEXT COLLATE "C" NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope      TEXT   NOT NULL,
    auth_time  BIGINT NOT NULL,
    sid        TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    -- Absolute end of the refresh-token family.
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX grants_user_client ON grants (user_id, client_id);

-- Single use: redeemed_at is set by one conditional UPDATE.
CREATE TABLE authorization_codes (
    code_hash      BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(code_hash) = 32),
    grant_id       TEXT COLLATE "C" NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id      TEXT COLLATE "C" NOT NULL,
    redirect_uri   TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    nonce          TEXT,
    expires_at     BIGINT NOT NULL,
    redeemed_at    BIGINT
);

CREATE INDEX authorization_codes_grant_id ON authorization_codes (grant_id);

-- A grant's refresh-token family: the current token has rotated_at NULL; a rotated one
-- presented again is reuse.
CREATE TABLE refresh_tokens (
    token_hash BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    grant_id   TEXT COLLATE "C" NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    -- Idle lifetime, capped by the grant's expires_at.
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);

-- The access tokens issued from a grant, by `jti`, so that revoking the grant revokes them.
CREATE TABLE grant_access_tokens (
    jti        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    grant_id   TEXT COLLATE "C" NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

CREATE INDEX grant_access_tokens_grant_id ON grant_access_tokens (grant_id);

-- Remembered consents, one per user and client.
CREATE TABLE consents (
    user_id    TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope      TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Login sessions of the server's own pages. The cookie holds the secret whose hash is id_hash;
-- sid is the public id (OIDC `sid`).
CREATE TABLE sessions (
    id_hash    BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(id_hash) = 32),
    sid        TEXT COLLATE "C" NOT NULL UNIQUE,
    user_id    TEXT COLLATE "C" NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
