//! `Node`: every feature's state on this node, for what sits on top of the features (the dashboard,
//! the operational endpoints, the background jobs). Built by `startup`; features never name it.

use actix_web::web;

use crate::accounts::Accounts;
use crate::apikeys::ApiKeys;
use crate::apis::Apis;
use crate::jwt::Keyring;
use crate::oauth::OAuth;
use crate::ratelimit::RateLimits;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Node {
    pub core: web::Data<AppState>,
    /// Every rate limit (per key, per IP, sign-in, introspection), in process or in Redis.
    pub limits: web::Data<RateLimits>,
    /// The keys that sign access tokens.
    pub keyring: web::Data<Keyring>,
    pub accounts: web::Data<Accounts>,
    pub apis: web::Data<Apis>,
    pub keys: web::Data<ApiKeys>,
    pub oauth: web::Data<OAuth>,
}
crate::feature_state!(Node);

impl Node {
    /// Registers each state as app data, so a handler extracts only what it uses.
    pub fn register(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.core.clone())
            .app_data(self.limits.clone())
            .app_data(self.keyring.clone())
            .app_data(self.accounts.clone())
            .app_data(self.apis.clone())
            .app_data(self.keys.clone())
            .app_data(self.oauth.clone());
    }
}
