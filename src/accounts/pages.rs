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
    pub email: &'a str,
    pub error: Option<String>,
}

pub struct HomeText {
    pub signed_in_as: &'static str,
    pub admin: &'static str,
    pub sign_out: &'static str,
}

impl HomeText {
    pub fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                signed_in_as: "Signed in as",
                admin: "administrator",
                sign_out: "Sign out",
            },
            Lang::Es => Self {
                signed_in_as: "Sesión iniciada como",
                admin: "administrador",
                sign_out: "Cerrar sesión",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "accounts/home.html")]
pub struct HomePage<'a> {
    pub lang: &'static str,
    pub t: HomeText,
    pub csrf_token: &'a str,
    pub email: &'a str,
    pub is_admin: bool,
}
