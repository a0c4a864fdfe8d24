-- Mutual-TLS client authentication and certificate-bound tokens (RFC 8705), for SQLite. Every
-- added column has a constant default, so rows written before keep reading.

-- RFC 8705 §2.1.2: the one subject or SAN a tls_client_auth client's certificate carries, as
-- its metadata member name (tls_client_auth_subject_dn, _san_dns, _san_uri, _san_ip,
-- _san_email) and value; both NULL for every other client.
ALTER TABLE clients ADD COLUMN tls_client_auth_member TEXT;
ALTER TABLE clients ADD COLUMN tls_client_auth_value TEXT;

-- RFC 8705 §3.4 `tls_client_certificate_bound_access_tokens`.
ALTER TABLE clients ADD COLUMN tls_client_certificate_bound_access_tokens INTEGER NOT NULL
    DEFAULT 0 CHECK (tls_client_certificate_bound_access_tokens IN (0, 1));

-- RFC 8705 §4: `x5t#S256` of the certificate a public client's refresh token is bound to;
-- its rotations inherit it, and it rotates only for a request presenting that certificate.
ALTER TABLE refresh_tokens ADD COLUMN x5t_s256 TEXT;
