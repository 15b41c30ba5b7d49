ALTER TABLE oauth_clients DROP COLUMN token_rate_limit;
