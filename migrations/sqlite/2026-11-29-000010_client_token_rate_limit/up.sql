-- A client's own limit of token requests per minute (NULL: TESSERA_TOKEN_RATE_LIMIT).
ALTER TABLE oauth_clients ADD COLUMN token_rate_limit INTEGER;
