//! Integration tests: the real app over HTTP on SQLite, or on PostgreSQL when `TESSERA_TEST_POSTGRES_URL` is set.
// clippy.toml's disallowed methods guard the server's hot paths; tests read rows as they like.
#![allow(clippy::disallowed_methods)]

mod accounts;
mod apikeys;
mod authorize;
mod cli;
mod cli_admin;
mod client_jwt;
mod compose;
mod dashboard;
mod errors;
mod helpers;
mod i18n;
mod interop;
mod keyfile;
mod lifecycle;
mod limits;
mod look;
mod metrics;
mod nodes;
mod oauth;
mod openapi;
mod openid;
mod ops;
mod pages;
mod people;
mod reach;
mod redirects;
mod requests;
mod settings;
mod shutdown;
