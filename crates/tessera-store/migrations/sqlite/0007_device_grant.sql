-- The grant a device authorization was redeemed into, for SQLite, so that a replayed device
-- code revokes what was issued from it (RFC 8628 §3.5; RFC 6749 §4.1.2 by analogy). Rows
-- redeemed before this have no grant to name: they go (a device code lives minutes, and a
-- replay of one then reads as an unknown code, `invalid_grant` all the same).
ALTER TABLE device_authorizations ADD COLUMN grant_id TEXT;
DELETE FROM device_authorizations WHERE status = 'redeemed';
