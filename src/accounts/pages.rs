//! Askama pages of the accounts feature, with their text in en-US and es-ES.

use askama::Template;

use crate::i18n::Lang;

pub struct LoginText {
    pub title: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub submit: &'static str,
}

impl LoginText {
    pub fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                title: "Sign in",
                email: "Email",
                password: "Password",
                submit: "Sign in",
            },
            Lang::Es => Self {
                title: "Iniciar sesión",
                email: "Correo electrónico",
                password: "Contraseña",
                submit: "Iniciar sesión",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "accounts/login.html")]
pub struct LoginPage<'a> {
    pub lang: &'static str,
    pub t: LoginText,
    pub csrf_token: &'a str,
    pub return_to: &'a str,
    /// "Sign in to continue to <app>" (escaped by the template) when an app sent the user here.
    pub continue_to: Option<String>,
    pub email: &'a str,
    pub error: Option<String>,
}
