//! The web pages' sessions and their CSRF tokens, kept in homekey's database
//! (`homekey_web_sessions`, migration 0008), for any page group (the account page today, an
//! admin console later).
//!
//! A browser holds an opaque random ID in the cookie [`COOKIE`] (`HttpOnly; SameSite=Lax`,
//! `Secure` unless `public_baseurl` is `http://`, `Path=/_homekey/`). `Lax`, not `Strict`: an
//! OAuth client sends the user to the authorization page by a link from its own site, and a
//! user signed in here must arrive signed in; a cross-site POST still carries no cookie, and
//! every POST needs its CSRF token besides. The table holds only its
//! SHA-256, so a copy of the database signs no one in. A session ends after [`IDLE_MS`]
//! without a request, and [`LIFETIME_MS`] after it began whatever happens. Each session has
//! its own CSRF token, which every form carries and every POST must bring back. Signing in
//! replaces the session (a new ID and a new token), so an ID planted before sign-in is
//! worth nothing after it; so does a password change. Neither the ID nor the token is ever
//! logged.
//!
//! Before sign-in a session is not written anywhere: the browser's cookie holds a random ID
//! all the same, and the sign-in form's CSRF token is an HMAC of it under a key of the
//! server's ([`anonymous_csrf_token`]; the key is made once and kept in the database, so
//! every instance agrees). Only the server can compute the token: someone who plants a
//! cookie in a victim's browser cannot make a sign-in form that goes with it. So a visitor,
//! or a script fetching the page without cookies, adds no row; a row is written only when
//! someone signs in.
//!
//! The table is reached through `Accounts::web_sessions` (`store::WebSessionTable`), which
//! writes no account. On a Synapse database (no homekey schema) there is no such table and
//! every page answers that it is unavailable.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use crate::accounts::now_ms;
use crate::store::{WebSessionRow, WebSessionTable};

/// The cookie's name.
pub const COOKIE: &str = "homekey_session";
/// The cookie's path: every page of homekey's, none of the Matrix APIs.
pub const COOKIE_PATH: &str = "/_homekey/";
/// A session ends after 15 minutes without a request.
pub const IDLE_MS: i64 = 15 * 60 * 1000;
/// ...and 8 hours after it began, however busy.
pub const LIFETIME_MS: i64 = 8 * 60 * 60 * 1000;
/// Within this long after the password was given, ending a session asks for it no more.
pub const RECENTLY_VERIFIED_MS: i64 = 5 * 60 * 1000;

/// The name of the sign-in forms' CSRF key in `homekey_server_keys`.
const FORM_KEY_NAME: &str = "web_form";

/// What sets one kind of session apart: its cookie and its lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct SessionRules {
    /// The cookie's name.
    pub cookie: &'static str,
    /// The cookie's `Path`.
    pub path: &'static str,
    /// The cookie's `SameSite`.
    pub same_site: &'static str,
    /// A session ends after this long without a request...
    pub idle_ms: i64,
    /// ...and this long after it began whatever happens.
    pub lifetime_ms: i64,
}

/// The account page's sessions.
pub const ACCOUNT_RULES: SessionRules = SessionRules {
    cookie: COOKIE,
    path: COOKIE_PATH,
    same_site: "Lax",
    idle_ms: IDLE_MS,
    lifetime_ms: LIFETIME_MS,
};

/// The sessions' table, on the server's database, and how their cookie is set.
#[derive(Clone)]
pub struct SessionStore {
    table: WebSessionTable,
    secure: bool,
    rules: SessionRules,
    /// The key of the sign-in forms' CSRF tokens, read from the database on first use.
    form_key: Arc<OnceCell<FormKey>>,
}

/// The server's key for the CSRF tokens of sessions not signed in.
struct FormKey(Vec<u8>);

/// One browser's session, as a request found (or began) it.
#[derive(Clone)]
pub struct Session {
    id_hash: String,
    /// Who signed in; `None` before sign-in.
    pub user_id: Option<String>,
    csrf_token: String,
    /// When the password was last given.
    pub verified_ms: Option<i64>,
    /// The `Set-Cookie` of a session begun by this request.
    pub set_cookie: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the ID's hash nor the CSRF token.
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The hash of the session's ID, as the table keeps it (for the account service to
    /// spare this session when it ends the user's others).
    pub fn id_hash(&self) -> &str {
        &self.id_hash
    }

    /// The CSRF token to put in this session's forms.
    pub fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// Whether a form brought this session's CSRF token back.
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.csrf_token.as_bytes())))
    }

    /// Whether the password was given within [`RECENTLY_VERIFIED_MS`].
    pub fn recently_verified(&self) -> bool {
        self.verified_ms
            .is_some_and(|at| now_ms() - at < RECENTLY_VERIFIED_MS)
    }
}

impl SessionStore {
    /// The sessions in `table`. `secure`: whether the cookie is `Secure` (the pages are
    /// reached over HTTPS).
    pub fn new(table: WebSessionTable, secure: bool) -> SessionStore {
        SessionStore::with_rules(table, secure, ACCOUNT_RULES)
    }

    /// The sessions of another kind (the table as that kind's), with its own cookie and
    /// lifetimes.
    pub fn with_rules(table: WebSessionTable, secure: bool, rules: SessionRules) -> SessionStore {
        SessionStore {
            table,
            secure,
            rules,
            form_key: Arc::new(OnceCell::new()),
        }
    }

    /// The server's form key: the one in the database, made there by the first instance.
    async fn form_key(&self) -> Result<&FormKey, sqlx::Error> {
        self.form_key
            .get_or_try_init(|| async {
                let fresh = crate::secrets::random_alphanumeric(43);
                let key = self.table.server_key(FORM_KEY_NAME, &fresh).await?;
                Ok(FormKey(key.into_bytes()))
            })
            .await
    }

    /// The session the request's cookie names, if it is still alive (its last use is now);
    /// a cookie that names no live session is a session not signed in, on that ID; no
    /// cookie, a new one not signed in, whose cookie the response must set. Nothing is
    /// written for a session not signed in.
    pub async fn find_or_begin(&self, headers: &HeaderMap) -> Result<Session, sqlx::Error> {
        let Some(id) = cookie_value(headers, self.rules.cookie) else {
            return self.begin_anonymous().await;
        };
        let id_hash = hash_id(&id);
        let now = now_ms();
        let row = self
            .table
            .touch(
                &id_hash,
                now,
                now - self.rules.idle_ms,
                now - self.rules.lifetime_ms,
            )
            .await?;
        Ok(match row {
            Some(row) => Session {
                id_hash,
                user_id: row.user_id,
                csrf_token: row.csrf_token,
                verified_ms: row.verified_ms,
                set_cookie: None,
            },
            None => anonymous(self.form_key().await?, &id, None),
        })
    }

    /// A new session not signed in: a new ID, written nowhere.
    pub async fn begin_anonymous(&self) -> Result<Session, sqlx::Error> {
        let id = crate::secrets::random_alphanumeric(43);
        Ok(anonymous(
            self.form_key().await?,
            &id,
            Some(self.cookie(&id)),
        ))
    }

    /// A new session signed in as `user_id`, its password given now, with a new ID and CSRF
    /// token. Sessions past their time are deleted on the way.
    pub async fn begin(&self, user_id: &str) -> Result<Session, sqlx::Error> {
        let id = crate::secrets::random_alphanumeric(43);
        let id_hash = hash_id(&id);
        let csrf_token = crate::secrets::random_alphanumeric(43);
        let now = now_ms();
        let row = WebSessionRow {
            user_id: Some(user_id.to_owned()),
            csrf_token,
            verified_ms: Some(now),
        };
        self.table
            .insert(
                &id_hash,
                &row,
                now,
                now - self.rules.idle_ms,
                now - self.rules.lifetime_ms,
            )
            .await?;
        Ok(Session {
            id_hash,
            user_id: row.user_id,
            csrf_token: row.csrf_token,
            verified_ms: row.verified_ms,
            set_cookie: Some(self.cookie(&id)),
        })
    }

    /// The session replaced by a new one of the same user, its password given now, with a
    /// new ID and CSRF token (after a password change: whoever had learnt the old ID has
    /// nothing).
    pub async fn renew(&self, session: &Session) -> Result<Session, sqlx::Error> {
        let Some(user_id) = session.user_id.as_deref() else {
            return self.begin_anonymous().await;
        };
        let renewed = self.begin(user_id).await?;
        self.end(session).await?;
        Ok(renewed)
    }

    /// Ends a session (sign-out, or replaced at sign-in).
    pub async fn end(&self, session: &Session) -> Result<(), sqlx::Error> {
        self.table.delete(&session.id_hash).await
    }

    /// Notes that the password was given again now.
    pub async fn verified_now(&self, session: &mut Session) -> Result<(), sqlx::Error> {
        let now = now_ms();
        self.table.set_verified(&session.id_hash, now).await?;
        session.verified_ms = Some(now);
        Ok(())
    }

    /// The `Set-Cookie` of a session ID.
    fn cookie(&self, id: &str) -> String {
        let SessionRules {
            cookie,
            path,
            same_site,
            ..
        } = self.rules;
        format!(
            "{cookie}={id}; Path={path}; HttpOnly; SameSite={same_site}{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` that makes the browser forget its session.
    pub fn cleared_cookie(&self) -> String {
        let SessionRules {
            cookie,
            path,
            same_site,
            ..
        } = self.rules;
        format!(
            "{cookie}=; Path={path}; Max-Age=0; HttpOnly; SameSite={same_site}{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// The session ID in the request's cookies (the first, if sent twice), if it has the shape
/// of one.
fn cookie_value(headers: &HeaderMap, cookie: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The session not signed in on `id`.
fn anonymous(key: &FormKey, id: &str, set_cookie: Option<String>) -> Session {
    Session {
        id_hash: hash_id(id),
        user_id: None,
        csrf_token: anonymous_csrf_token(key, id),
        verified_ms: None,
        set_cookie,
    }
}

/// The CSRF token of the session not signed in on `id`: an HMAC of the ID under the
/// server's key, so only the server can make it, and neither the page (which shows the
/// token) nor the table (which holds the ID's plain hash for signed-in sessions) reveals
/// the ID.
fn anonymous_csrf_token(key: &FormKey, id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes a key of any length");
    mac.update(b"homekey web sign-in form\0");
    mac.update(id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_not_signed_in_has_a_token_that_is_neither_its_id_nor_the_ids_hash() {
        let key = FormKey(b"server key".to_vec());
        let id = "a".repeat(43);
        let session = anonymous(&key, &id, None);
        assert_ne!(session.csrf_token(), id);
        assert_ne!(session.csrf_token(), hash_id(&id));
        assert_eq!(
            session.csrf_token(),
            anonymous(&key, &id, None).csrf_token()
        );
        assert_ne!(
            session.csrf_token(),
            anonymous(&key, &"b".repeat(43), None).csrf_token()
        );
        assert!(session.csrf_matches(Some(&anonymous_csrf_token(&key, &id))));
        assert!(!session.csrf_matches(Some("")));
    }

    #[test]
    fn the_token_of_a_session_not_signed_in_depends_on_the_servers_key() {
        let id = "a".repeat(43);
        let one = anonymous(&FormKey(b"one server".to_vec()), &id, None);
        let other = anonymous(&FormKey(b"another server".to_vec()), &id, None);
        assert_ne!(one.csrf_token(), other.csrf_token());
    }
}
