-- Device authorizations (RFC 8628), for PostgreSQL. Both codes are stored only as their
-- SHA-256 (32 bytes), never in plaintext: the device code's, and the normalized user code's.
-- Identifiers use the "C" collation, as in 0001.

-- One device authorization request: pending until the user decides, redeemed by the one poll
-- that finds it approved.
CREATE TABLE device_authorizations (
    device_code_hash BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(device_code_hash) = 32),
    user_code_hash   BYTEA  NOT NULL UNIQUE CHECK (octet_length(user_code_hash) = 32),
    client_id        TEXT COLLATE "C" NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope            TEXT   NOT NULL,
    -- JSON array of strings (RFC 8707 audiences); '[]': the client's default.
    audience         TEXT   NOT NULL,
    status           TEXT   NOT NULL
        CHECK (status IN ('pending', 'approved', 'denied', 'redeemed')),
    -- The approving user's `sub`, sign-in time and session (OIDC `sid`), set on approval.
    user_id          TEXT COLLATE "C",
    auth_time        BIGINT,
    sid              TEXT COLLATE "C",
    -- The polling interval in seconds; each slow_down adds 5 (RFC 8628 §3.5).
    interval         BIGINT NOT NULL,
    last_polled_at   BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);

CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
