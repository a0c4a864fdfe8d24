-- Tessera's initial schema for SQLite. STRICT tables, so a value of the wrong type is refused
-- on write instead of being read back as something else. Times are unix seconds.

CREATE TABLE clients (
    client_id                  TEXT    NOT NULL PRIMARY KEY,
    client_name                TEXT    NOT NULL,
    -- SHA-256 of the client secret, never the secret; NULL for public clients.
    secret_hash                BLOB    CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    token_endpoint_auth_method TEXT    NOT NULL,
    -- JSON arrays of strings.
    redirect_uris              TEXT    NOT NULL,
    post_logout_redirect_uris  TEXT    NOT NULL,
    grant_types                TEXT    NOT NULL,
    scope                      TEXT    NOT NULL,
    default_scope              TEXT    NOT NULL,
    audience                   TEXT    NOT NULL,
    first_party                INTEGER NOT NULL CHECK (first_party IN (0, 1)),
    created_at                 INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    -- The OIDC `sub`: random and opaque.
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    -- Argon2id, PHC string format.
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE signing_keys (
    kid                TEXT    NOT NULL PRIMARY KEY,
    alg                TEXT    NOT NULL,
    -- nonce || AES-256-GCM(PKCS#8), sealed under the key-encryption key.
    sealed_private_key BLOB    NOT NULL,
    public_jwk         TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    activates_at       INTEGER NOT NULL,
    signing_until      INTEGER,
    publish_until      INTEGER
) STRICT;

CREATE INDEX signing_keys_publish_until ON signing_keys (publish_until);
