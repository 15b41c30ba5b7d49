ALTER TABLE oauth_clients DROP COLUMN introspect_audiences;
ALTER TABLE api_keys DROP COLUMN audiences;
