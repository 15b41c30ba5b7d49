-- What a credential may reach (issue 12).
-- The APIs (audiences, space-separated) an API key is good for; empty: any API.
ALTER TABLE api_keys ADD COLUMN audiences TEXT NOT NULL DEFAULT '';
-- The APIs (audiences, space-separated) whose tokens a client may introspect; NULL: the client is no
-- resource server and introspection tells it nothing.
ALTER TABLE oauth_clients ADD COLUMN introspect_audiences TEXT;
