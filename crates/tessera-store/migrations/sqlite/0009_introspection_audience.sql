-- Per-client introspection audience (issue 17 finding 6), for SQLite: when set, the
-- introspection endpoint describes to this client only tokens whose `aud` includes it. NULL:
-- no restriction, as for rows written before.
ALTER TABLE clients ADD COLUMN introspection_audience TEXT;
