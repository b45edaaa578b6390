//! The actions of a user's page: the admin flag, lock and unlock, deactivate, erase (only
//! after the user ID is typed in full), reactivate with a new password, and end one device.
//! Each is a POST with the console's `Origin` and CSRF token ([`checked_post`]), made
//! through the account service with the signed-in admin as actor (`Actor::Admin`), so each
//! is audited as the Admin API's are. The service's guards (not the last admin who can act,
//! no self-demotion) decide; the console adds its own: an admin does not lock or deactivate
//! themself here (the page's controls are absent, and a forged POST is refused). Every
//! refusal is the user's page again with the reason, and nothing changed.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::ExposeSecret;

use super::super::WebState;
use super::super::page::{Form, Message};
use super::super::session::Session;
use super::users::show_user;
use crate::accounts::error::last_admin_refusal;
use crate::accounts::{AccountChanges, AccountError, Actor, Outcome, PasswordRefusal};
use crate::http::client_address::ClientAddress;
use crate::ids::UserId;
use crate::store::{Deactivation, User};

/// A checked POST of a signed-in admin about an existing user.
struct Acting {
    state: WebState,
    session: Session,
    admin: User,
    user: User,
    form: Form,
    /// The admin, acting from the request's address.
    actor: Actor,
}

/// Checks the POST (Origin, CSRF), the admin (still one who can act) and the user it names
/// (`user_id`). `Err`: the answer (the sign-in page, or the page saying there is no such
/// user).
async fn begin(
    state: WebState,
    address: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Acting, Response> {
    let (session, admin, form, actor) =
        super::admin_for_post(&state, address, headers, body).await?;
    let user_id = form.get("user_id").unwrap_or("");
    let user = match UserId::parse(user_id) {
        Err(_) => None,
        Ok(_) => state
            .accounts
            .get_user(user_id)
            .await
            .map_err(|err| super::super::page::unavailable(&state, err))?,
    };
    let Some(user) = user else {
        // The page's own answer for a user who does not exist.
        return Err(show_user(
            &state,
            &session,
            &admin,
            user_id,
            StatusCode::NOT_FOUND,
            Message::None,
        )
        .await);
    };
    Ok(Acting {
        state,
        session,
        admin,
        user,
        form,
        actor,
    })
}

impl Acting {
    /// Whether the admin acts on their own account.
    fn own(&self) -> bool {
        self.admin.name == self.user.name
    }

    /// The user's page again, with `message`.
    async fn page(&self, status: StatusCode, message: Message) -> Response {
        show_user(
            &self.state,
            &self.session,
            &self.admin,
            &self.user.name,
            status,
            message,
        )
        .await
    }

    async fn done(&self, notice: &str) -> Response {
        self.page(StatusCode::OK, Message::Notice(notice.to_owned()))
            .await
    }

    async fn refused(&self, status: StatusCode, why: &str) -> Response {
        self.page(status, Message::Error(why.to_owned())).await
    }

    /// The page with what the service's refusal means (never a 500).
    async fn refused_by_service(
        &self,
        err: &AccountError,
        field: Option<&'static str>,
    ) -> Response {
        let (status, why) = refusal(err);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %err, "an action of the admin console failed");
        }
        let message = match field {
            Some(field) if status == StatusCode::BAD_REQUEST => Message::FieldError(field, why),
            _ => Message::Error(why),
        };
        self.page(status, message).await
    }
}

/// The console's own guard: an admin does not lock or deactivate themself here (the
/// session would end with it; another admin can).
const NOT_YOURSELF: &str = "You cannot lock, deactivate or erase your own account here; another admin can. Nothing \
     was changed.";

/// `POST /_homekey/admin/set-admin`: `user_id`, `admin` (`on` grants, `off` removes).
pub async fn set_admin(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let acting = match begin(state, &address, &headers, &body).await {
        Ok(acting) => acting,
        Err(answer) => return answer,
    };
    let admin = match acting.form.get("admin") {
        Some("on") => true,
        Some("off") => false,
        _ => {
            let why = "Say whether to grant or remove the admin flag. Nothing was changed.";
            return acting.refused(StatusCode::BAD_REQUEST, why).await;
        }
    };
    let user = &acting.user.name;
    match acting
        .state
        .accounts
        .set_admin(&acting.actor, user, admin)
        .await
    {
        Ok(Outcome::Changed) if admin => acting.done("This user is now a server admin.").await,
        Ok(Outcome::Changed) => acting.done("This user is no longer a server admin.").await,
        Ok(Outcome::Unchanged) => acting.done("Nothing to change: it already was so.").await,
        Err(err) => acting.refused_by_service(&err, None).await,
    }
}

/// `POST /_homekey/admin/set-locked`: `user_id`, `locked` (`on` locks, `off` unlocks).
pub async fn set_locked(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let acting = match begin(state, &address, &headers, &body).await {
        Ok(acting) => acting,
        Err(answer) => return answer,
    };
    let locked = match acting.form.get("locked") {
        Some("on") => true,
        Some("off") => false,
        _ => {
            let why = "Say whether to lock or unlock the account. Nothing was changed.";
            return acting.refused(StatusCode::BAD_REQUEST, why).await;
        }
    };
    if locked && acting.own() {
        return acting.refused(StatusCode::FORBIDDEN, NOT_YOURSELF).await;
    }
    if acting.user.locked == locked {
        return acting.done("Nothing to change: it already was so.").await;
    }
    let user = &acting.user.name;
    match acting
        .state
        .accounts
        .set_locked(&acting.actor, user, locked)
        .await
    {
        Ok(()) if locked => {
            acting
                .done("The account is locked: it can no longer sign in or use its sessions.")
                .await
        }
        Ok(()) => acting.done("The account is unlocked.").await,
        Err(err) => acting.refused_by_service(&err, None).await,
    }
}

/// `POST /_homekey/admin/deactivate`: `user_id`.
pub async fn deactivate(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let acting = match begin(state, &address, &headers, &body).await {
        Ok(acting) => acting,
        Err(answer) => return answer,
    };
    if acting.own() {
        return acting.refused(StatusCode::FORBIDDEN, NOT_YOURSELF).await;
    }
    let user = &acting.user.name;
    match acting
        .state
        .accounts
        .deactivate(&acting.actor, user, false)
        .await
    {
        Ok(Deactivation::Done) => {
            acting
                .done("The account is deactivated: its password and every device are gone.")
                .await
        }
        Ok(Deactivation::AlreadyDeactivated) => {
            acting.done("Nothing to change: it already was so.").await
        }
        Err(err) => acting.refused_by_service(&err, None).await,
    }
}

/// `POST /_homekey/admin/erase`: `user_id`, and `confirm`, which must be the user ID in
/// full: erasing cannot be undone.
pub async fn erase(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let acting = match begin(state, &address, &headers, &body).await {
        Ok(acting) => acting,
        Err(answer) => return answer,
    };
    if acting.own() {
        return acting.refused(StatusCode::FORBIDDEN, NOT_YOURSELF).await;
    }
    let user = &acting.user.name;
    if acting.form.get("confirm").map(str::trim) != Some(user.as_str()) {
        let why = format!(
            "To erase this account, type its user ID, {user}, in full. Nothing was changed."
        );
        return acting
            .page(StatusCode::BAD_REQUEST, Message::FieldError("confirm", why))
            .await;
    }
    match acting
        .state
        .accounts
        .deactivate(&acting.actor, user, true)
        .await
    {
        Ok(_) => {
            acting
                .done("The account is erased: deactivated, without its display name or avatar.")
                .await
        }
        Err(err) => acting.refused_by_service(&err, None).await,
    }
}

/// `POST /_homekey/admin/reactivate`: `user_id`, `new_password`, `new_password_again`. As
/// the Admin API's `PUT /v2/users/<id>` with `deactivated: false` and a password: a
/// deactivated account has none, and could not sign in without one.
pub async fn reactivate(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const FIELD: &str = "reactivate_password";
    let acting = match begin(state, &address, &headers, &body).await {
        Ok(acting) => acting,
        Err(answer) => return answer,
    };
    if !acting.user.deactivated {
        let why = "This account is not deactivated. Nothing was changed.";
        return acting.refused(StatusCode::BAD_REQUEST, why).await;
    }
    let field_error = |why: &str| Message::FieldError(FIELD, why.to_owned());
    let (Some(password), Some(repeated)) = (
        acting.form.secret("new_password"),
        acting.form.secret("new_password_again"),
    ) else {
        let why = field_error("Type the new password twice. Nothing was changed.");
        return acting.page(StatusCode::BAD_REQUEST, why).await;
    };
    if password.expose_secret() != repeated.expose_secret() {
        let why = field_error("The two passwords differ. Nothing was changed.");
        return acting.page(StatusCode::BAD_REQUEST, why).await;
    }
    let changes = AccountChanges {
        deactivated: Some(false),
        password: Some(password),
        ..AccountChanges::default()
    };
    match acting
        .state
        .accounts
        .modify_user(&acting.actor, &acting.user, changes)
        .await
    {
        Ok(()) => {
            acting
                .done("The account is reactivated: it signs in with the new password.")
                .await
        }
        Err(err) => acting.refused_by_service(&err, Some(FIELD)).await,
    }
}

/// `POST /_homekey/admin/end-device`: `user_id`, `device_id`. Signs that device out (its
/// tokens end), as the Admin API's device deletion.
pub async fn end_device(
    State(state): State<WebState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let acting = match begin(state, &address, &headers, &body).await {
        Ok(acting) => acting,
        Err(answer) => return answer,
    };
    let device_id = acting.form.get("device_id").unwrap_or("").to_owned();
    // Found among the user's devices, so that nothing typed reaches a query.
    let devices = match acting.state.accounts.list_devices(&acting.user.name).await {
        Ok(devices) => devices,
        Err(err) => return super::super::page::unavailable(&acting.state, err),
    };
    if !devices.iter().any(|device| device.device_id == device_id) {
        let why = "This user has no such device (signed out already?). Nothing was changed.";
        return acting.refused(StatusCode::NOT_FOUND, why).await;
    }
    match acting
        .state
        .accounts
        .delete_devices(&acting.actor, &acting.user.name, &[device_id])
        .await
    {
        Ok(()) => acting.done("The device is signed out.").await,
        Err(err) => acting.refused_by_service(&err, None).await,
    }
}

/// What the page says when the service refuses an action (never a secret).
pub(super) fn refusal(err: &AccountError) -> (StatusCode, String) {
    let forbidden = |why: String| (StatusCode::FORBIDDEN, why);
    match err {
        AccountError::UserNotFound(_) => (StatusCode::NOT_FOUND, "There is no such user.".into()),
        AccountError::SelfDemotion => forbidden(
            "You cannot remove your own admin flag; another admin can. Nothing was changed.".into(),
        ),
        AccountError::LastAdmin(user) => forbidden(format!(
            "Refused: {}. Nothing was changed.",
            last_admin_refusal(user)
        )),
        AccountError::RefusedOnSynapse { what, .. } => forbidden(format!(
            "Refused: this server runs on Synapse's database, and {what}. Nothing was changed."
        )),
        AccountError::NotCarriedToSynapse(_) => forbidden(format!("Refused: {err}.")),
        AccountError::PasswordChangeDisabled => forbidden(
            "This server does not let passwords be set, so the account cannot be given one. \
             Nothing was changed."
                .into(),
        ),
        AccountError::Password(PasswordRefusal::Policy(violation)) => (
            StatusCode::BAD_REQUEST,
            format!("The new password is too weak: {violation}. Nothing was changed."),
        ),
        AccountError::Password(PasswordRefusal::TooLong) => (
            StatusCode::BAD_REQUEST,
            "The new password is too long. Nothing was changed.".into(),
        ),
        AccountError::DeactivatedGetsNoPassword(_) => (
            StatusCode::BAD_REQUEST,
            "This account is deactivated: a password would not let it sign in.".into(),
        ),
        AccountError::Deactivated(_) | AccountError::Locked(_) => {
            (StatusCode::BAD_REQUEST, format!("Refused: {err}."))
        }
        AccountError::Synapse(_) | AccountError::SynapseBusy(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Synapse could not be reached, or is busy with this user; please try again later."
                .into(),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Something went wrong; nothing was changed. Please try again later.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::OnSynapse;

    /// The refusals no console action of an admin who can act meets but in a race (the last
    /// admin) or on a Synapse database: said with the service's reason, never a 500.
    #[test]
    fn the_services_refusals_are_said_with_their_reason() {
        let (status, said) = refusal(&AccountError::LastAdmin("@a:example.com".into()));
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            said.contains("@a:example.com is the last server admin who can act"),
            "{said}"
        );
        for (what, says) in [
            (
                OnSynapse::Deactivation,
                "deactivate through the running Synapse",
            ),
            (
                OnSynapse::Logout,
                "log the user out through the running Synapse",
            ),
        ] {
            let err = AccountError::RefusedOnSynapse {
                user: "@a:example.com".into(),
                what,
            };
            let (status, said) = refusal(&err);
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(
                said.contains("Synapse's database") && said.contains(says),
                "{said}"
            );
        }
        let (status, said) = refusal(&AccountError::NoNewPassword);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(said.starts_with("Something went wrong; nothing was changed"));
    }
}
