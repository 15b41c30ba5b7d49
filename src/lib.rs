//! Tessera: a self-hosted authorization server (OAuth 2.0, API keys, JWT) on SQLite or PostgreSQL.

pub mod accounts;
pub mod apikeys;
pub mod apis;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod i18n;
pub mod invalidate;
pub mod janitor;
pub mod jwt;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod ratelimit;
pub mod request;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod web;
