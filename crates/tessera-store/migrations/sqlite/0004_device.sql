-- Device authorizations (RFC 8628), for SQLite. Both codes are stored only as their SHA-256
-- (32 bytes), never in plaintext: the device code's, and the normalized user code's.

-- One device authorization request: pending until the user decides, redeemed by the one poll
-- that finds it approved.
CREATE TABLE device_authorizations (
    device_code_hash BLOB    NOT NULL PRIMARY KEY CHECK (length(device_code_hash) = 32),
    user_code_hash   BLOB    NOT NULL UNIQUE CHECK (length(user_code_hash) = 32),
    client_id        TEXT    NOT NULL,
    -- Space-separated scope tokens; '' for none.
    scope            TEXT    NOT NULL,
    -- JSON array of strings (RFC 8707 audiences); '[]': the client's default.
    audience         TEXT    NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('pending', 'approved', 'denied', 'redeemed')),
    -- The approving user's `sub`, sign-in time and session (OIDC `sid`), set on approval.
    user_id          TEXT,
    auth_time        INTEGER,
    sid              TEXT,
    -- The polling interval in seconds; each slow_down adds 5 (RFC 8628 §3.5).
    interval         INTEGER NOT NULL,
    last_polled_at   INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX device_authorizations_expires_at ON device_authorizations (expires_at);
