-- Disabled accounts, for PostgreSQL. A disabled user cannot sign in; disabling (like deleting)
-- revokes the user's grants and ends their sessions in the same transaction (see
-- `UserStore::set_user_disabled`).
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

-- Before this migration, deleting a user removed only the users row: what such a user left
-- behind is ended now (the same as a deletion does from here on).
UPDATE grants SET revoked_at = CAST(extract(epoch FROM now()) AS BIGINT)
    WHERE revoked_at IS NULL AND user_id NOT IN (SELECT id FROM users);
DELETE FROM sessions WHERE user_id NOT IN (SELECT id FROM users);
DELETE FROM consents WHERE user_id NOT IN (SELECT id FROM users);
