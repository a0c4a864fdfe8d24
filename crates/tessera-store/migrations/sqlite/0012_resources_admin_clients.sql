-- The registry of resource servers and the admin flag of clients (issue 15 items 3 and 5),
-- for SQLite.
-- `resource` is the canonical identifier (lowercase scheme and host, no fragment, no trailing
-- slash); `scope` the space-separated scopes it defines; `dynamic_clients` whether clients the
-- operator did not register may obtain tokens for it.
CREATE TABLE resources (
    resource        TEXT    NOT NULL PRIMARY KEY,
    scope           TEXT    NOT NULL,
    dynamic_clients INTEGER NOT NULL CHECK (dynamic_clients IN (0, 1)),
    created_at      INTEGER NOT NULL
) STRICT;

-- First-party administration clients (`tessera client create --admin`): the only clients that
-- may be granted `admin:*` scopes. A table of its own, so that the clients table keeps its
-- columns; deleting the client removes the flag.
CREATE TABLE admin_clients (
    client_id TEXT NOT NULL PRIMARY KEY REFERENCES clients (client_id) ON DELETE CASCADE
) STRICT;
