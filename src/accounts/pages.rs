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

pub struct AccountText {
    pub title: &'static str,
    pub signed_in_as: &'static str,
    pub profile: &'static str,
    pub name: &'static str,
    pub given_name: &'static str,
    pub family_name: &'static str,
    pub preferred_username: &'static str,
    pub locale: &'static str,
    pub picture: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub sign_out: &'static str,
}

impl AccountText {
    pub fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::En => Self {
                title: "Your account",
                signed_in_as: "Signed in as",
                profile: "Profile",
                name: "Full name",
                given_name: "Given name",
                family_name: "Family name",
                preferred_username: "Username",
                locale: "Language",
                picture: "Picture URL",
                save: "Save profile",
                saved: "Your profile is saved. Apps see it the next time they ask.",
                sign_out: "Sign out",
            },
            Lang::Es => Self {
                title: "Su cuenta",
                signed_in_as: "Sesión iniciada como",
                profile: "Perfil",
                name: "Nombre completo",
                given_name: "Nombre",
                family_name: "Apellidos",
                preferred_username: "Nombre de usuario",
                locale: "Idioma",
                picture: "URL de la imagen",
                save: "Guardar perfil",
                saved: "Su perfil se ha guardado. Las aplicaciones lo verán la próxima vez que lo pidan.",
                sign_out: "Cerrar sesión",
            },
        }
    }
}

/// `/account`: the signed-in user's profile (the OpenID Connect `profile` claims), editable.
#[derive(Template)]
#[template(path = "accounts/account.html")]
pub struct AccountPage<'a> {
    pub lang: &'static str,
    pub t: AccountText,
    pub csrf_token: &'a str,
    pub email: &'a str,
    pub profile: &'a super::Profile,
    pub saved: bool,
    pub error: Option<String>,
}
