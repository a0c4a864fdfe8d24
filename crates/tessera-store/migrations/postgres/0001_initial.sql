-- Tessera's initial schema for PostgreSQL. Times are unix seconds (BIGINT), so both backends
-- store and compare them alike. Identifiers use the "C" collation so that ORDER BY sorts
-- bytewise, as SQLite does, whatever the database's default collation.

CREATE TABLE clients (
    client_id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_name                TEXT    NOT NULL,
    -- SHA-256 of the client secret, never the secret; NULL for public clients.
    secret_hash                BYTEA   CHECK (secret_hash IS NULL OR octet_length(secret_hash) = 32),
    token_endpoint_auth_method TEXT    NOT NULL,
    -- JSON arrays of strings, kept as text: the store never queries inside them.
    redirect_uris              TEXT    NOT NULL,
    post_logout_redirect_uris  TEXT    NOT NULL,
    grant_types                TEXT    NOT NULL,
    scope                      TEXT    NOT NULL,
    default_scope              TEXT    NOT NULL,
    audience                   TEXT    NOT NULL,
    first_party                BOOLEAN NOT NULL,
    created_at                 BIGINT  NOT NULL
);

CREATE TABLE users (
    -- The OIDC `sub`: random and opaque.
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    email         TEXT,
    name          TEXT,
    -- Argon2id, PHC string format.
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    alg                TEXT   NOT NULL,
    -- nonce || AES-256-GCM(PKCS#8), sealed under the key-encryption key.
    sealed_private_key BYTEA  NOT NULL,
    public_jwk         TEXT   NOT NULL,
    created_at         BIGINT NOT NULL,
    activates_at       BIGINT NOT NULL,
    signing_until      BIGINT,
    publish_until      BIGINT
);

CREATE INDEX signing_keys_publish_until ON signing_keys (publish_until);
