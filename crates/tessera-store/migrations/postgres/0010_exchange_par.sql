-- Token exchange (RFC 8693), pushed authorization requests (RFC 9126) and DPoP (RFC 9449), for
-- PostgreSQL. Every added column has a constant default, so rows written before keep reading.

-- A client's token-exchange policy (RFC 8693 §5): the subject tokens it may exchange are those
-- issued to one of these client_ids or meant for one of these audiences. JSON arrays of
-- strings; '[]' for none.
ALTER TABLE clients ADD COLUMN token_exchange_subject_clients TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN token_exchange_subject_audiences TEXT NOT NULL DEFAULT '[]';
-- RFC 9126 §6: the client's authorization requests must be pushed first.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL
    DEFAULT FALSE;

-- RFC 9449 §5.2 `dpop_bound_access_tokens`: the client's token requests must carry a DPoP proof.
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;

-- RFC 8693 §4.1: the delegation chain of an exchanged opaque token, as the `act` JSON object;
-- NULL when nobody acts for the subject.
ALTER TABLE opaque_access_tokens ADD COLUMN act TEXT;

-- Who acted for the subject (RFC 8693 §4.1 `act`'s `sub`), in the audit trail.
ALTER TABLE audit_events ADD COLUMN actor TEXT;

-- RFC 9126 §2.2: pushed authorization requests, by the SHA-256 of their request_uri (never the
-- request_uri itself), redeemed once by deleting the row.
CREATE TABLE pushed_authorization_requests (
    request_uri_hash BYTEA  NOT NULL PRIMARY KEY CHECK (octet_length(request_uri_hash) = 32),
    client_id        TEXT COLLATE "C" NOT NULL,
    -- The authorization request's parameters as a query string.
    params           TEXT   NOT NULL,
    expires_at       BIGINT NOT NULL
);

CREATE INDEX pushed_authorization_requests_expires_at
    ON pushed_authorization_requests (expires_at);
