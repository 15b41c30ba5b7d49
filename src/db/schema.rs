//! The Diesel schema, one for both backends (hand-kept in step with `migrations/{sqlite,postgres}`).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        disabled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        preferred_username -> Nullable<Text>,
        locale -> Nullable<Text>,
        picture -> Nullable<Text>,
        email_verified -> Bool,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        sid -> Text,
    }
}

diesel::table! {
    resource_servers (id) {
        id -> Text,
        audience -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    scopes (id) {
        id -> Text,
        resource_server_id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    oauth_clients (id) {
        id -> Text,
        name -> Text,
        owner_user_id -> Nullable<Text>,
        is_public -> Bool,
        secret_hash -> Nullable<Text>,
        secret_pepper_version -> Nullable<Integer>,
        secret_encrypted -> Nullable<Binary>,
        token_endpoint_auth_method -> Text,
        grant_types -> Text,
        allowed_scopes -> Text,
        jwks_uri -> Nullable<Text>,
        jwks -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        token_rate_limit -> Nullable<Integer>,
        introspect_audiences -> Nullable<Text>,
        subject_type -> Text,
        sector_identifier -> Nullable<Text>,
        id_token_signed_response_alg -> Nullable<Text>,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_redirect_uris (client_id, uri) {
        client_id -> Text,
        uri -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        audience -> Text,
        code_challenge -> Text,
        code_challenge_method -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        refresh_family_id -> Nullable<Text>,
        access_token_jti -> Nullable<Text>,
        access_token_exp -> Nullable<BigInt>,
        nonce -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        sid -> Nullable<Text>,
        claims -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_token_families (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        scope -> Text,
        audience -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        sid -> Nullable<Text>,
        claims -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        family_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        access_token_jti -> Nullable<Text>,
        access_token_exp -> Nullable<BigInt>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        family_id -> Nullable<Text>,
        revoked_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    used_assertion_jtis (client_id, jti) {
        client_id -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    used_nonces (client_id, nonce_hash) {
        client_id -> Text,
        nonce_hash -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    session_clients (sid, client_id) {
        sid -> Text,
        client_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    access_token_claims (jti) {
        jti -> Text,
        claims -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id, audience) {
        user_id -> Text,
        client_id -> Text,
        audience -> Text,
        scope -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        key_hash -> Text,
        pepper_version -> Integer,
        display_prefix -> Text,
        last_four -> Text,
        name -> Text,
        key_type -> Text,
        environment -> Text,
        scopes -> Text,
        owner_user_id -> Nullable<Text>,
        owner_client_id -> Nullable<Text>,
        rate_limit -> Nullable<Integer>,
        metadata -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        replaced_by -> Nullable<Text>,
        audiences -> Text,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        public_jwk -> Text,
        private_key_encrypted -> Binary,
        created_at -> BigInt,
        publish_at -> BigInt,
        sign_from -> BigInt,
        sign_until -> Nullable<BigInt>,
        retire_at -> Nullable<BigInt>,
        successor_of -> Nullable<Text>,
    }
}

diesel::table! {
    key_fingerprint (id) {
        id -> Integer,
        pepper -> Text,
        master_key -> Text,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> BigInt,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    api_key_usage (key_id, day) {
        key_id -> Text,
        day -> BigInt,
        allowed -> BigInt,
        denied -> BigInt,
        rate_limited -> BigInt,
    }
}

diesel::table! {
    client_usage (client_id, day) {
        client_id -> Text,
        day -> BigInt,
        allowed -> BigInt,
        denied -> BigInt,
        rate_limited -> BigInt,
    }
}

diesel::table! {
    flashes (id) {
        id -> Text,
        session_hash -> Text,
        target -> Text,
        sealed -> Binary,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(api_key_usage -> api_keys (key_id));
diesel::joinable!(client_usage -> oauth_clients (client_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(scopes -> resource_servers (resource_server_id));
diesel::joinable!(oauth_redirect_uris -> oauth_clients (client_id));
diesel::joinable!(refresh_tokens -> refresh_token_families (family_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    resource_servers,
    scopes,
    oauth_clients,
    oauth_redirect_uris,
    authorization_codes,
    refresh_token_families,
    refresh_tokens,
    revoked_access_tokens,
    used_assertion_jtis,
    used_nonces,
    access_token_claims,
    session_clients,
    consents,
    api_keys,
    api_key_usage,
    client_usage,
    signing_keys,
    audit_events,
    flashes,
);
