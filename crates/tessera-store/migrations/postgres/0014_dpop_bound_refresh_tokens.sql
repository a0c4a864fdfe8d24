-- RFC 9449 §5: the refresh tokens of a public client's grant are bound to the DPoP key the
-- client proved when they were issued (its RFC 7638 thumbprint); a refresh must prove the same
-- key. NULL: not bound (confidential clients, or no proof), as for rows written before.
ALTER TABLE grants ADD COLUMN dpop_jkt TEXT;
