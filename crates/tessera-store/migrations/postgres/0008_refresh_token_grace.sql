-- A per-client refresh-token grace window, for PostgreSQL: for this many seconds after a
-- refresh token was rotated, its client may present it again (two requests that refreshed at
-- once) without the grant being revoked as a reuse. 0: none.
ALTER TABLE clients ADD COLUMN refresh_token_grace_seconds BIGINT NOT NULL DEFAULT 0
    CHECK (refresh_token_grace_seconds >= 0);
