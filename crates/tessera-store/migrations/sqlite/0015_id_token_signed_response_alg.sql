-- OIDC Registration §2 `id_token_signed_response_alg` (issue 16): the JWS algorithm of a
-- client's ID tokens. Existing clients keep RS256, the default when it is not registered.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256'
    CHECK (id_token_signed_response_alg IN ('RS256', 'ES256', 'EdDSA'));
