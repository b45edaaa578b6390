//! `m.login.application_service` beside Synapse, as Synapse's `_do_appservice_login`: an
//! application service, with its `as_token`, logs one of its users in on a new device (a
//! bridge's bot, for an encryption device). The user is Synapse's (registered by the
//! application service); homekey keeps a row for it without a password
//! (`Store::adopt_appservice_user`), and the device is made in Synapse before the answer, as
//! a password login's is.

use secrecy::SecretString;

use super::sessions::{AuthError, LoginError, LoginSuccess, localpart_of};
use super::{Accounts, now_ms};
use crate::ids::UserId;
use crate::store::{ClientSeen, DeviceContact};

/// An application service's login, parsed from the request.
#[derive(Debug)]
pub struct AppServiceLoginAttempt {
    /// The token of the request (`Authorization: Bearer` or `?access_token=`).
    pub token: SecretString,
    /// `identifier.user`: a localpart or a full user ID; or what is wrong with the
    /// identifier (refused after the token is checked, as Synapse does).
    pub user: Result<String, IdentifierProblem>,
    pub device_id: Option<String>,
    pub initial_device_display_name: Option<String>,
    pub client_address: String,
    pub user_agent: Option<String>,
}

/// Synapse's message about an identifier it cannot read (400 `M_INVALID_PARAM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentifierProblem(pub &'static str);

/// Why an application service's login was refused, with Synapse's words.
#[derive(Debug, thiserror::Error)]
pub enum AppServiceLoginError {
    /// A user's own token, not an application service's.
    #[error("This login method is only valid for application services")]
    NotAnAppService,
    /// The token is neither an application service's nor a valid user's.
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("This appservice has MSC4190 enabled, so appservice login cannot be used.")]
    Msc4190,
    /// The user is not the application service's sender nor in its user namespaces.
    #[error("{}", .0.0)]
    BadIdentifier(IdentifierProblem),
    #[error("Invalid access_token")]
    OutsideNamespace,
    /// The user is in the namespace but not on this server.
    #[error("Invalid user in identifier")]
    NotLocal,
    /// Synapse has no such user (it would make a device that no token could use).
    #[error("Unknown user")]
    UnknownUser,
    #[error(transparent)]
    Login(#[from] LoginError),
}

impl Accounts {
    /// `m.login.application_service`: a new device and access token of a user of the
    /// application service whose token `attempt` carries.
    pub async fn login_as_appservice(
        &self,
        attempt: AppServiceLoginAttempt,
    ) -> Result<LoginSuccess, AppServiceLoginError> {
        use secrecy::ExposeSecret;
        super::sessions::refuse_nul_in_device(
            &attempt.device_id,
            &attempt.initial_device_display_name,
        )?;
        let Some(appservice) = self
            .config
            .appservice_by_token(attempt.token.expose_secret())
        else {
            // Synapse authenticates the request first: a user's token is not refused as
            // unknown.
            self.authenticate(attempt.token.expose_secret()).await?;
            return Err(AppServiceLoginError::NotAnAppService);
        };
        if appservice.msc4190_device_management {
            return Err(AppServiceLoginError::Msc4190);
        }
        let limited = |retry_after_ms| LoginError::RateLimited { retry_after_ms };
        if appservice.rate_limited {
            self.limits
                .address
                .attempt(&attempt.client_address)
                .map_err(limited)?;
        }
        let given = attempt.user.map_err(AppServiceLoginError::BadIdentifier)?;
        let named = if given.starts_with('@') {
            given
        } else {
            format!("@{given}:{}", self.config.server_name)
        };
        if !appservice.is_interested_in_user(&named) {
            return Err(AppServiceLoginError::OutsideNamespace);
        }
        let user_id = UserId::parse_local(&named, &self.config.server_name)
            .map_err(|_| AppServiceLoginError::NotLocal)?;
        let user_id = user_id.as_str().to_owned();
        if appservice.rate_limited {
            self.limits
                .account
                .attempt(&user_id.to_lowercase())
                .map_err(limited)?;
        }
        let user = match self
            .store
            .get_user(&user_id)
            .await
            .map_err(LoginError::from)?
        {
            // An account of homekey's own (in a namespace that is not exclusive): homekey's
            // state says whether it may log in.
            Some(user) if user.appservice_id.is_none() => user,
            found => {
                // Synapse's user: Synapse's state, asked at every login, as Synapse checks it.
                self.check_in_synapse(&user_id).await?;
                if found.is_none() {
                    self.store
                        .adopt_appservice_user(&user_id, &appservice.id, now_ms() / 1000)
                        .await
                        .map_err(LoginError::from)?;
                }
                self.store
                    .get_user(&user_id)
                    .await
                    .map_err(LoginError::from)?
                    .ok_or(AppServiceLoginError::UnknownUser)?
            }
        };
        if user.deactivated {
            return Err(LoginError::Deactivated.into());
        }
        if user.locked {
            return Err(LoginError::Locked.into());
        }
        let ultimate = self
            .config
            .lifetimes
            .session_ms
            .map(|ms| now_ms().saturating_add(ms));
        let new = self.new_session(
            &user.name,
            attempt.device_id,
            attempt.initial_device_display_name,
            ultimate,
        );
        let token_id = self
            .store
            .create_session(&new, None)
            .await
            .map_err(LoginError::from)?;
        self.announce_session(&new, token_id)
            .await
            .map_err(LoginError::from)?;
        self.record_login_contact(
            token_id,
            DeviceContact {
                user_id: new.user_id.clone(),
                device_id: new.device_id.clone(),
                seen_ms: now_ms(),
                client: Some(ClientSeen {
                    address: attempt.client_address,
                    user_agent: attempt.user_agent,
                }),
            },
        )
        .await;
        tracing::info!(user = %new.user_id, appservice = %appservice.id, device = %new.device_id, "application service login");
        Ok(super::sessions::login_success(new))
    }

    /// Whether Synapse has `user_id`, active: [`AppServiceLoginError::UnknownUser`] if
    /// Synapse has no such user, [`LoginError::Deactivated`] if it deactivated it.
    async fn check_in_synapse(&self, user_id: &str) -> Result<(), AppServiceLoginError> {
        let Some(synapse) = &self.synapse else {
            return Err(AppServiceLoginError::UnknownUser);
        };
        let found = synapse
            .query_user(&localpart_of(user_id))
            .await
            .map_err(LoginError::from)?
            .ok_or(AppServiceLoginError::UnknownUser)?;
        if found.is_deactivated {
            return Err(LoginError::Deactivated.into());
        }
        Ok(())
    }
}
