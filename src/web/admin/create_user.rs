//! Creating an account from the console: a name (a localpart or the full user ID) checked
//! on submit by the rules of a new account (Synapse's, and whether the name is taken in any
//! case, here or beside Synapse in Synapse too), an optional display name, a password either
//! generated (the default, shown once on the next page) or typed twice, and the admin flag.
//! Through the account service's `create_user`, with the admin as actor (audited as the
//! Admin API's creation is).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::super::WebState;
use super::super::page::{Form, Message, base, unavailable, with, with_cookie};
use super::super::session::Session;
use crate::accounts::{AccountError, Actor, NewAccount, NewAccountPassword};
use crate::http::client_address::ClientAddress;
use crate::ids::UserId;
use crate::store::User;

/// What the form was given, to fill it in again after a refusal (never the password).
#[derive(Default)]
struct Typed {
    user: String,
    displayname: String,
    admin: bool,
    typed_password: bool,
}

impl Typed {
    fn of(form: &Form) -> Typed {
        Typed {
            user: form.get("user").unwrap_or("").trim().to_owned(),
            displayname: form.get("displayname").unwrap_or("").trim().to_owned(),
            admin: form.get("admin").is_some_and(|v| !v.is_empty()),
            typed_password: form.get("password_choice") == Some("type"),
        }
    }
}

/// `GET /_homekey/admin/new-user`: the form.
pub async fn form(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let (session, admin) = match super::admin_for_page(&state, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    page(
        &state,
        &session,
        &admin,
        &Typed::default(),
        StatusCode::OK,
        Message::None,
    )
}

fn page(
    state: &WebState,
    session: &Session,
    admin: &User,
    typed: &Typed,
    status: StatusCode,
    message: Message,
) -> Response {
    let context = with(
        base(state, session, Some(&admin.name), message),
        json!({
            "server_name": state.accounts.config.server_name,
            "typed_user": typed.user,
            "typed_displayname": typed.displayname,
            "typed_admin": typed.admin,
            "typed_password": typed.typed_password,
        }),
    );
    let response = state.renderer.page(status, "admin_new_user.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `POST /_homekey/admin/new-user`: `user`, `displayname`, `password_choice` (`generate`,
/// the default, or `type` with `password` and `password_again`), `admin`.
pub async fn create(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, admin, form, actor) =
        match super::admin_for_post(&state, &address, &headers, &body).await {
            Ok(found) => found,
            Err(answer) => return answer,
        };
    let typed = Typed::of(&form);
    let again = |status, message| page(&state, &session, &admin, &typed, status, message);
    let user_id = match new_user_id(&state, &typed.user).await {
        Ok(user_id) => user_id,
        Err(Refusal::Field(field, why)) => {
            return again(StatusCode::BAD_REQUEST, Message::FieldError(field, why));
        }
        Err(Refusal::Taken(user_id)) => {
            let why = format!("{user_id} is taken.");
            return again(StatusCode::CONFLICT, Message::FieldError("user", why));
        }
        Err(Refusal::Unavailable(err)) => return unavailable(&state, err),
    };
    if let Err(why) = check_displayname(&typed.displayname) {
        return again(
            StatusCode::BAD_REQUEST,
            Message::FieldError("displayname", why),
        );
    }
    let (password, generated) = match chosen_password(&state, &actor, &typed, &form) {
        Ok(chosen) => chosen,
        Err(why) => {
            return again(
                StatusCode::BAD_REQUEST,
                Message::FieldError("password", why),
            );
        }
    };
    let new = NewAccount {
        user_id: user_id.clone(),
        password: NewAccountPassword::Plain(password.clone()),
        admin: typed.admin,
        user_type: None,
        // Empty: the localpart, as Synapse names a new account.
        displayname: (!typed.displayname.is_empty()).then(|| typed.displayname.clone()),
        avatar_url: None,
        threepids: Vec::new(),
    };
    match state.accounts.create_user(&actor, new).await {
        Ok(created) => {
            let shown = generated.then_some(&password);
            {
                let set = super::password::PasswordSet::Created;
                super::password::password_page(&state, &session, &admin, &created.name, shown, set)
            }
        }
        Err(AccountError::UserExists(_)) => again(
            StatusCode::CONFLICT,
            Message::FieldError("user", format!("{user_id} is taken.")),
        ),
        Err(err @ AccountError::SynapseRefusesName { .. }) => again(
            StatusCode::CONFLICT,
            Message::FieldError("user", format!("{err}.")),
        ),
        Err(err @ (AccountError::Store(_) | AccountError::Synapse(_) | AccountError::Hash(_))) => {
            tracing::warn!(error = %err, "the admin console could not create an account");
            again(
                StatusCode::SERVICE_UNAVAILABLE,
                Message::Error(
                    "The account could not be created right now; nothing was changed. \
                     Please try again later."
                        .into(),
                ),
            )
        }
        Err(err) => again(StatusCode::BAD_REQUEST, Message::Error(format!("{err}."))),
    }
}

enum Refusal {
    /// The form's field and what is wrong with it.
    Field(&'static str, String),
    /// An account has the name, in this case or another.
    Taken(String),
    Unavailable(crate::store::StoreError),
}

/// The ID of the account to create, from a localpart or a full ID of this server, by the
/// rules of a new account and free in any case.
async fn new_user_id(state: &WebState, given: &str) -> Result<UserId, Refusal> {
    if given.is_empty() {
        return Err(Refusal::Field("user", "Enter a user name.".into()));
    }
    let server_name = &state.accounts.config.server_name;
    // The grammar and Synapse's rules for a new name, as sign-up checks them.
    let user_id = UserId::parse_new_local(given, server_name)
        .map_err(|err| Refusal::Field("user", format!("{err}.")))?;
    let taken = state
        .accounts
        .find_users_case_insensitive(user_id.as_str())
        .await
        .map_err(Refusal::Unavailable)?;
    if let Some(existing) = taken.first() {
        return Err(Refusal::Taken(existing.name.clone()));
    }
    Ok(user_id)
}

/// Synapse's `MAX_DISPLAYNAME_LEN`, in characters, which the Admin API keeps too.
const MAX_DISPLAYNAME_LENGTH: usize = 256;

/// A display name the account can have: at most Synapse's length, as the Admin API refuses a
/// longer one, and no NUL, which PostgreSQL cannot store (the creation would fail as a 503).
/// Any other text is the user's name as typed.
fn check_displayname(displayname: &str) -> Result<(), String> {
    if displayname.chars().count() > MAX_DISPLAYNAME_LENGTH {
        return Err(format!(
            "A display name has at most {MAX_DISPLAYNAME_LENGTH} characters."
        ));
    }
    if displayname.contains('\0') {
        return Err("A display name cannot contain a NUL character.".into());
    }
    Ok(())
}

/// The new account's password: generated (`true`: to be shown once), or typed twice and
/// checked by the rule the admin is bound by.
fn chosen_password(
    state: &WebState,
    actor: &Actor,
    typed: &Typed,
    form: &Form,
) -> Result<(SecretString, bool), String> {
    if !typed.typed_password {
        return Ok((crate::secrets::generated_password(), true));
    }
    let (Some(password), Some(repeated)) = (form.secret("password"), form.secret("password_again"))
    else {
        return Err("Type the password twice, or let one be generated.".into());
    };
    if password.expose_secret().is_empty() {
        return Err("Type the password twice, or let one be generated.".into());
    }
    if password.expose_secret() != repeated.expose_secret() {
        return Err("The two passwords differ.".into());
    }
    state
        .accounts
        .check_new_password(actor, &password)
        .map_err(|refusal| super::password::refusal_text(&refusal))?;
    Ok((password, false))
}
