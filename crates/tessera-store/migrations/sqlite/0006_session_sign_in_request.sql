-- The authorization request a session's sign-in was made for, for SQLite: the SHA-256 of its
-- query string, set by the sign-in (`POST /login`) when the consent page follows, and taken
-- by that consent. A consent form never counts as authentication (OIDC Core §3.1.2.1
-- `prompt=login`, `max_age`) unless this sign-in happened for this very request.
ALTER TABLE sessions ADD COLUMN signed_in_for BLOB
    CHECK (signed_in_for IS NULL OR length(signed_in_for) = 32);
