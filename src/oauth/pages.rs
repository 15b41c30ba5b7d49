//! The consent page and the authorization error page (askama), in en-US and es-ES, and the app a
//! sign-in continues to.

use askama::Template;

use super::authorize::AuthorizeRequest;
use super::store;
use crate::db::DbConn;
use crate::error::AppError;
use crate::i18n::Lang;

pub struct ConsentText {
    pub title: &'static str,
    pub wants: &'static str,
    pub signed_in_as: &'static str,
    pub redirect_to: &'static str,
    pub permissions: &'static str,
    pub allow: &'static str,
    pub deny: &'static str,
}

impl ConsentText {
    fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                title: "Authorize access",
                wants: "wants to access your account with these permissions:",
                signed_in_as: "Signed in as",
                redirect_to: "you will return to",
                permissions: "Requested permissions",
                allow: "Allow",
                deny: "Deny",
            },
            Lang::Es => Self {
                title: "Autorizar acceso",
                wants: "quiere acceder a su cuenta con estos permisos:",
                signed_in_as: "Sesión iniciada como",
                redirect_to: "volverá a",
                permissions: "Permisos solicitados",
                allow: "Permitir",
                deny: "Denegar",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
struct Consent<'a> {
    lang: &'static str,
    t: ConsentText,
    client_name: &'a str,
    redirect_host: &'a str,
    user_email: &'a str,
    scopes: Vec<(String, String)>,
    csrf_token: &'a str,
    params: &'a [(String, String)],
}

/// Everything the consent page needs besides the request.
#[derive(Debug)]
pub struct ConsentPage<'a> {
    pub lang: Lang,
    pub csrf_token: &'a str,
    pub user_email: &'a str,
}

/// Renders the consent page for a validated request: the app's name, where the user returns, and
/// each scope with its description.
pub fn consent_page(
    conn: &mut DbConn,
    request: &AuthorizeRequest,
    page: &ConsentPage<'_>,
) -> Result<String, AppError> {
    let described = crate::apis::described_scopes(conn, &request.audience)?;
    let scopes = request
        .scope
        .split(' ')
        .map(|name| {
            let description = described
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.description.clone())
                .unwrap_or_default();
            (name.to_owned(), description)
        })
        .collect();
    let redirect = &request.redirect_uri;
    let host = match redirect.port() {
        Some(p) => format!("{}:{p}", redirect.host_str().unwrap_or_default()),
        None => redirect.host_str().unwrap_or_default().to_owned(),
    };
    Ok(Consent {
        lang: page.lang.tag(),
        t: ConsentText::for_lang(page.lang),
        client_name: &request.client.name,
        redirect_host: &host,
        user_email: page.user_email,
        scopes,
        csrf_token: page.csrf_token,
        params: &request.params,
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
struct ErrorPage<'a> {
    lang: &'static str,
    title: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// The page shown instead of a redirect when the client or its redirect URI cannot be trusted.
pub fn error_page(lang: Lang, request_id: &str) -> Result<String, AppError> {
    let (title, message) = match lang {
        Lang::En => (
            "This sign-in link is not valid",
            "The application that sent you here is unknown or asked to return you to an address it has not registered. You have not been redirected.",
        ),
        Lang::Es => (
            "Este enlace de inicio de sesión no es válido",
            "La aplicación que le envió aquí es desconocida o pidió devolverle a una dirección que no ha registrado. No se le ha redirigido.",
        ),
    };
    Ok(ErrorPage {
        lang: lang.tag(),
        title,
        message,
        request_id,
    }
    .render()?)
}

/// The name of the app an authorization request asks for, when a sign-in's `return_to` is one
/// (`/oauth/authorize?client_id=…`) and names a client that is registered and not disabled. The
/// sign-in page says "Sign in to continue to <name>" with it (`startup` hands this to accounts).
pub fn app_named_by_return_to(
    conn: &mut DbConn,
    return_to: &str,
) -> Result<Option<String>, AppError> {
    let Ok(url) = url::Url::parse("http://local.invalid").and_then(|base| base.join(return_to))
    else {
        return Ok(None);
    };
    if url.host_str() != Some("local.invalid") || url.path() != "/oauth/authorize" {
        return Ok(None);
    }
    let Some(client_id) = url
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(None);
    };
    Ok(store::find_client(conn, &client_id)?
        .filter(|c| c.disabled_at.is_none() && !c.owner_disabled)
        .map(|c| c.name))
}

#[derive(Template)]
#[template(path = "oauth/form_post.html")]
struct FormPost<'a> {
    lang: &'static str,
    title: &'a str,
    message: &'a str,
    button: &'a str,
    action: &'a str,
    params: &'a [(&'static str, String)],
}

/// The page of `response_mode=form_post` (OAuth 2.0 Form Post Response Mode): the answer's
/// parameters as hidden fields of a form that `/static/tessera.js` submits to the redirect URI at
/// once (no inline script; a button for browsers without scripts).
pub fn form_post_page(
    lang: Lang,
    action: &str,
    params: &[(&'static str, String)],
) -> Result<String, AppError> {
    let (title, message, button) = match lang {
        Lang::En => (
            "Returning to the app",
            "Scripts are off: press Continue to return to the app.",
            "Continue",
        ),
        Lang::Es => (
            "Volviendo a la aplicación",
            "Los scripts están desactivados: pulse Continuar para volver a la aplicación.",
            "Continuar",
        ),
    };
    Ok(FormPost {
        lang: lang.tag(),
        title,
        message,
        button,
        action,
        params,
    }
    .render()?)
}

/// The page that asks a signed-in user to confirm signing out (RP-Initiated Logout without an
/// `id_token_hint` naming them).
#[derive(Template)]
#[template(path = "oauth/logout.html")]
pub struct LogoutConfirm<'a> {
    lang: &'static str,
    title: &'static str,
    question: String,
    sign_out: &'static str,
    csrf_token: &'a str,
    fields: &'a [(&'static str, String)],
}

impl<'a> LogoutConfirm<'a> {
    pub fn for_lang(
        lang: Lang,
        csrf_token: &'a str,
        app: Option<&str>,
        fields: &'a [(&'static str, String)],
    ) -> Self {
        let (title, question, sign_out) = match (lang, app) {
            (Lang::En, Some(app)) => (
                "Sign out",
                format!("{app} asks to sign you out of Tessera. Sign out?"),
                "Sign out",
            ),
            (Lang::En, None) => ("Sign out", "Sign out of Tessera?".to_owned(), "Sign out"),
            (Lang::Es, Some(app)) => (
                "Cerrar sesión",
                format!("{app} pide cerrar su sesión en Tessera. ¿Cerrar sesión?"),
                "Cerrar sesión",
            ),
            (Lang::Es, None) => (
                "Cerrar sesión",
                "¿Cerrar su sesión en Tessera?".to_owned(),
                "Cerrar sesión",
            ),
        };
        Self {
            lang: lang.tag(),
            title,
            question,
            sign_out,
            csrf_token,
            fields,
        }
    }
}

#[derive(Template)]
#[template(path = "oauth/signed_out.html")]
struct SignedOut {
    lang: &'static str,
    title: &'static str,
    message: &'static str,
}

/// The page after a logout that returns nowhere.
pub fn signed_out_page(lang: Lang) -> Result<String, AppError> {
    let (title, message) = match lang {
        Lang::En => ("You are signed out", "You can close this page."),
        Lang::Es => ("Ha cerrado la sesión", "Puede cerrar esta página."),
    };
    Ok(SignedOut {
        lang: lang.tag(),
        title,
        message,
    }
    .render()?)
}
