//! Users: `v2/users/<id>` (GET, PUT create-or-modify), the `v2`/`v3` listings, the admin
//! flag, deactivation, and `username_available`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use super::{AdminRequester, local_user_id, parse_user_id};
use crate::accounts::{AccountChanges, AccountError, Actor, NewAccount, NewAccountPassword};
use crate::http::AppState;
use crate::http::error::MatrixError;
use crate::http::json::{MatrixJson, parse_optional_body};
use crate::ids::UserId;
use crate::password::policy::within_length_limit;
use crate::store::{AccountThreepid, User, UserFilter, UserOrder};
use crate::threepid::Threepid;

/// Synapse's built-in user types (`UserTypes.ALL_USER_TYPES`).
pub(super) const USER_TYPES: [&str; 2] = ["bot", "support"];
/// Synapse's `MAX_DISPLAYNAME_LEN`.
const MAX_DISPLAYNAME_LENGTH: usize = 256;

/// A user as `GET /_synapse/admin/v2/users/<id>` shows it (`creation_ts` in seconds, as
/// Synapse has it here), with its third-party IDs. homekey keeps no external IDs.
/// `last_seen_ts` is the latest of the devices' `last_seen` (Synapse reads its `user_ips`
/// here and both tables in the listing; it updates them together, homekey has only devices).
fn user_json(user: &User, threepids: &[AccountThreepid]) -> Value {
    json!({
        "name": user.name,
        "admin": user.admin,
        "deactivated": user.deactivated,
        "locked": user.locked,
        "shadow_banned": user.shadow_banned,
        "creation_ts": user.creation_ts,
        "appservice_id": user.appservice_id,
        "consent_server_notice_sent": null,
        "consent_version": null,
        "consent_ts": null,
        "user_type": user.user_type,
        "is_guest": user.is_guest,
        "suspended": user.suspended,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "threepids": threepids.iter().map(|t| json!({
            "medium": t.threepid.medium.as_str(),
            "address": t.threepid.address,
            "added_at": t.added_at,
            "validated_at": t.validated_at,
        })).collect::<Vec<_>>(),
        "external_ids": [],
        "erased": user.erased,
        "last_seen_ts": user.last_seen_ts,
    })
}

/// A user as the listings show it (`creation_ts` in milliseconds there).
fn listed_user_json(user: &User) -> Value {
    json!({
        "name": user.name,
        "user_type": user.user_type,
        "is_guest": user.is_guest,
        "admin": user.admin,
        "deactivated": user.deactivated,
        "shadow_banned": user.shadow_banned,
        "displayname": user.displayname,
        "avatar_url": user.avatar_url,
        "creation_ts": user.creation_ts * 1000,
        "approved": user.approved,
        "erased": user.erased,
        "last_seen_ts": user.last_seen_ts,
        "locked": user.locked,
    })
}

async fn existing_user(state: &AppState, user_id: &UserId) -> Result<User, MatrixError> {
    state
        .accounts
        .get_user(user_id.as_str())
        .await?
        .ok_or_else(|| MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "User not found"))
}

pub async fn get_user(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = local_user_id(&state, &user_id, "Can only look up local users")?;
    let user = existing_user(&state, &user_id).await?;
    let user = state.accounts.with_synapse_profile(user).await;
    let threepids = state.accounts.user_threepids(&user.name).await?;
    Ok(Json(user_json(&user, &threepids)))
}

/// `GET /_synapse/admin/v1/threepid/<medium>/users/<address>`: the account that has the
/// third-party ID (an e-mail address found whatever its case, as it is kept canonical).
pub async fn user_by_threepid(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path((medium, address)): Path<(String, String)>,
) -> Result<Json<Value>, MatrixError> {
    let not_found = || MatrixError::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", "User not found");
    let Ok(threepid) = Threepid::parse(&medium, &address) else {
        return Err(not_found());
    };
    match state.accounts.user_by_threepid(&threepid).await? {
        Some(user_id) => Ok(Json(json!({"user_id": user_id}))),
        None => Err(not_found()),
    }
}

/// The body of `PUT /_synapse/admin/v2/users/<id>`, checked in Synapse's order before
/// anything changes.
struct UserPut {
    password: Option<String>,
    logout_devices: bool,
    admin: Option<bool>,
    deactivated: Option<bool>,
    locked: Option<bool>,
    /// `Some(None)` for `null`; `Some(Some(""))` for an empty name.
    displayname: Option<Option<String>>,
    avatar_url: Option<Option<String>>,
    user_type: Option<Option<String>>,
    /// The whole set, replacing the account's.
    threepids: Option<Vec<Threepid>>,
}

fn parse_user_put(body: &Map<String, Value>) -> Result<UserPut, MatrixError> {
    let unknown = |message: &str| MatrixError::new(StatusCode::BAD_REQUEST, "M_UNKNOWN", message);
    for (list, keys) in [
        ("threepids", ["medium", "address"]),
        ("external_ids", ["auth_provider", "external_id"]),
    ] {
        if let Some(Value::Array(items)) = body.get(list) {
            for item in items {
                for key in keys {
                    if item.get(key).is_none() {
                        return Err(MatrixError::missing_param(format!(
                            "Missing params: ['{key}']"
                        )));
                    }
                }
            }
        }
    }
    let user_type = match body.get("user_type") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(kind)) if USER_TYPES.contains(&kind.as_str()) => {
            Some(Some(kind.clone()))
        }
        Some(_) => return Err(unknown("Invalid user type")),
    };
    let admin = match body.get("admin") {
        None => None,
        Some(Value::Bool(admin)) => Some(*admin),
        Some(_) => {
            return Err(MatrixError::bad_json(
                "Param 'admin' must be a boolean, if given",
            ));
        }
    };
    let password = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(password)) if within_length_limit(password) => Some(password.clone()),
        Some(_) => return Err(unknown("Invalid password")),
    };
    let flag = |name: &str| match body.get(name) {
        None => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(unknown(&format!(
            "'{name}' parameter is not of type boolean"
        ))),
    };
    let logout_devices = flag("logout_devices")?.unwrap_or(true);
    let deactivated = flag("deactivated")?;
    let locked = flag("locked")?;
    if deactivated == Some(true) && locked == Some(true) {
        return Err(unknown("An user can't be deactivated and locked"));
    }
    let displayname = match body.get("displayname") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(name)) => {
            let name = name.trim();
            if name.chars().count() > MAX_DISPLAYNAME_LENGTH {
                return Err(unknown(&format!(
                    "Displayname is too long (max {MAX_DISPLAYNAME_LENGTH})"
                )));
            }
            // "" stays "": on creation it means no display name, not the default.
            Some(Some(name.to_owned()))
        }
        Some(_) => {
            return Err(MatrixError::invalid_param("'displayname' must be a string"));
        }
    };
    let avatar_url = match body.get("avatar_url") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(url)) => Some(Some(url.clone()).filter(|u| !u.is_empty())),
        Some(_) => {
            return Err(MatrixError::invalid_param("'avatar_url' must be a string"));
        }
    };
    let threepids = match body.get("threepids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    let field = |key: &str| item.get(key).and_then(Value::as_str);
                    let (Some(medium), Some(address)) = (field("medium"), field("address")) else {
                        return Err(MatrixError::invalid_param(
                            "'medium' and 'address' of each threepid must be strings",
                        ));
                    };
                    Threepid::parse(medium, address)
                        .map_err(|err| MatrixError::invalid_param(err.to_string()))
                })
                .collect::<Result<Vec<Threepid>, MatrixError>>()?,
        ),
        Some(_) => return Err(MatrixError::invalid_param("'threepids' must be a list")),
    };
    Ok(UserPut {
        threepids,
        password,
        logout_devices,
        admin,
        deactivated,
        locked,
        displayname,
        avatar_url,
        user_type,
    })
}

/// Creates the user (201) or changes it (200); answers with the user as `GET` shows it.
pub async fn put_user(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Response, MatrixError> {
    let server_name = &state.accounts.config.server_name;
    // As Synapse: any `@localpart:server` shape is read, the server checked, and a localpart
    // no account can have is the registration's error (no such account exists to modify).
    let (localpart, server) = user_id
        .strip_prefix('@')
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(|| MatrixError::invalid_param("Invalid user id"))?;
    if server != server_name {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "This endpoint can only be used with local users",
        ));
    }
    let user_id = match UserId::from_parts(localpart, server) {
        Ok(user_id) => user_id,
        Err(_) => {
            parse_user_put(&body)?;
            return Err(match UserId::parse_new_local(localpart, server) {
                Err(err) => invalid_username(err),
                Ok(_) => MatrixError::invalid_param("Invalid user id"),
            });
        }
    };
    let put = parse_user_put(&body)?;
    let accounts = &state.accounts;
    // Beside Synapse, what `/_synapse/mas` cannot carry to Synapse is refused by name.
    if accounts.beside_synapse() {
        let has_external_ids =
            matches!(body.get("external_ids"), Some(Value::Array(ids)) if !ids.is_empty());
        if has_external_ids {
            return Err(AccountError::NotCarriedToSynapse("external_ids").into());
        }
        if put.user_type.is_some() {
            return Err(AccountError::NotCarriedToSynapse("user_type").into());
        }
    }
    let actor = Actor::Admin(admin);
    let status = match accounts.get_user(user_id.as_str()).await? {
        Some(user) => {
            let changes = AccountChanges {
                displayname: put.displayname,
                avatar_url: put.avatar_url,
                admin: put.admin,
                password: put.password.map(SecretString::from),
                logout_devices: put.logout_devices,
                deactivated: put.deactivated,
                locked: put.locked,
                user_type: put.user_type,
                threepids: put.threepids,
            };
            accounts.modify_user(&actor, &user, changes).await?;
            StatusCode::OK
        }
        None => {
            // As Synapse: a new user's localpart follows the registration rules, and
            // `deactivated`, `locked` and `logout_devices` mean nothing yet.
            let user_id = UserId::parse_new_local(user_id.localpart(), user_id.server_name())
                .map_err(invalid_username)?;
            let password = match put.password {
                Some(password) => NewAccountPassword::Plain(SecretString::from(password)),
                None => NewAccountPassword::None,
            };
            accounts
                .create_user(
                    &actor,
                    NewAccount {
                        user_id: user_id.clone(),
                        password,
                        admin: put.admin.unwrap_or(false),
                        user_type: put.user_type.flatten(),
                        displayname: put.displayname.flatten(),
                        avatar_url: put.avatar_url.flatten(),
                        threepids: put.threepids.unwrap_or_default(),
                    },
                )
                .await?;
            StatusCode::CREATED
        }
    };
    let user = existing_user(&state, &user_id).await?;
    let user = state.accounts.with_synapse_profile(user).await;
    let threepids = state.accounts.user_threepids(&user.name).await?;
    Ok((status, Json(user_json(&user, &threepids))).into_response())
}

/// The query string as pairs, parsed with Synapse's rules and messages.
struct ListQuery(Vec<(String, String)>);

impl ListQuery {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeatable parameter, in order.
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn integer(&self, name: &str, default: i64) -> Result<i64, MatrixError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        let number: i64 = value.parse().map_err(|_| {
            MatrixError::invalid_param(format!("Query parameter {name} must be an integer"))
        })?;
        if number < 0 {
            return Err(MatrixError::invalid_param(format!(
                "Query parameter {name} must be a positive integer."
            )));
        }
        Ok(number)
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, MatrixError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(MatrixError::invalid_param(format!(
                "Boolean query parameter '{name}' must be one of ['true', 'false']"
            ))),
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }
}

/// Which listing: v2 hides deactivated users unless asked; v3's `deactivated` is tri-state.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListVersion {
    V2,
    V3,
}

pub async fn list_users_v2(
    state: State<AppState>,
    admin: AdminRequester,
    query: Query<Vec<(String, String)>>,
) -> Result<Json<Value>, MatrixError> {
    list_users(state, admin, query, ListVersion::V2).await
}

pub async fn list_users_v3(
    state: State<AppState>,
    admin: AdminRequester,
    query: Query<Vec<(String, String)>>,
) -> Result<Json<Value>, MatrixError> {
    list_users(state, admin, query, ListVersion::V3).await
}

async fn list_users(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Query(pairs): Query<Vec<(String, String)>>,
    version: ListVersion,
) -> Result<Json<Value>, MatrixError> {
    let query = ListQuery(pairs);
    let from = query.integer("from", 0)?;
    let limit = query.integer("limit", 100)?;
    let name = query.text("name");
    // As Synapse: `user_id` is ignored when `name` is given.
    let user_id = query.text("user_id").filter(|_| name.is_none());
    let include_guests = query.boolean("guests")?.unwrap_or(true);
    let deactivated = query.boolean("deactivated")?;
    let (include_deactivated, only_deactivated) = match (version, deactivated) {
        (ListVersion::V2, deactivated) => (deactivated.unwrap_or(false), false),
        (ListVersion::V3, None) => (true, false),
        (ListVersion::V3, Some(true)) => (true, true),
        (ListVersion::V3, Some(false)) => (false, false),
    };
    let include_locked = query.boolean("locked")?.unwrap_or(false);
    let admins = query.boolean("admins")?;
    let order_by = match query.get("order_by") {
        None => UserOrder::Name,
        Some(given) => UserOrder::ALL
            .iter()
            .find(|(name, _)| *name == given)
            .map(|(_, order)| *order)
            .ok_or_else(|| {
                let names: Vec<String> = UserOrder::ALL
                    .iter()
                    .map(|(n, _)| format!("'{n}'"))
                    .collect();
                MatrixError::invalid_param(format!(
                    "Query parameter 'order_by' must be one of [{}]",
                    names.join(", ")
                ))
            })?,
    };
    let descending = match query.get("dir") {
        None | Some("f") => false,
        Some("b") => true,
        Some(_) => {
            return Err(MatrixError::invalid_param(
                "Query parameter 'dir' must be one of ['f', 'b']",
            ));
        }
    };
    // Repeatable; read as Synapse's `parse_strings_from_args` does, in ASCII.
    let not_user_types: Vec<String> = query
        .all("not_user_type")
        .map(|value| {
            if value.is_ascii() {
                Ok(value.to_owned())
            } else {
                Err(MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    "M_UNKNOWN",
                    "Query parameter 'not_user_type' must be ascii",
                ))
            }
        })
        .collect::<Result<_, _>>()?;
    let filter = UserFilter {
        name_contains: name,
        user_id_contains: user_id,
        email_contains: None,
        admins,
        include_guests,
        include_deactivated,
        only_deactivated,
        include_locked,
        not_user_types,
        order_by,
        descending,
    };
    let page = state.accounts.list_users(&filter, from, limit).await?;
    let users: Vec<Value> = page.users.iter().map(listed_user_json).collect();
    let mut answer = json!({"users": users, "total": page.total});
    // Synapse takes any integer (Python's have no bound): `from` and `limit` up to
    // `i64::MAX` each are answered, so their sum saturates rather than overflows.
    if from.saturating_add(limit) < page.total {
        answer["next_token"] = json!((from + users.len() as i64).to_string());
    }
    Ok(Json(answer))
}

pub async fn get_admin(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = local_user_id(
        &state,
        &user_id,
        "Only local users can be admins of this homeserver",
    )?;
    // As Synapse: an unknown local user is simply not an admin.
    let admin = state
        .accounts
        .get_user(user_id.as_str())
        .await?
        .is_some_and(|user| user.admin);
    Ok(Json(json!({ "admin": admin })))
}

/// `PUT …/users/<id>/admin` with `{"admin": bool}`. Synapse takes any value's truthiness
/// (so `"false"` makes an admin); homekey wants a boolean.
pub async fn set_admin(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    MatrixJson(body): MatrixJson<Map<String, Value>>,
) -> Result<Json<Value>, MatrixError> {
    let user_id = parse_user_id(&user_id)?;
    let make_admin = match body.get("admin") {
        None => return Err(MatrixError::missing_param("Missing params: ['admin']")),
        Some(Value::Bool(admin)) => *admin,
        Some(_) => {
            return Err(MatrixError::bad_json(
                "Param 'admin' must be a boolean, if given",
            ));
        }
    };
    let user_id = local_user_id(
        &state,
        user_id.as_str(),
        "Only local users can be admins of this homeserver",
    )?;
    state
        .accounts
        .set_admin(&Actor::Admin(admin), user_id.as_str(), make_admin)
        .await?;
    Ok(Json(json!({})))
}

/// `POST /_synapse/admin/v1/deactivate/<id>`, with an optional body `{"erase": bool}`.
pub async fn deactivate(
    State(state): State<AppState>,
    AdminRequester(admin): AdminRequester,
    Path(user_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, MatrixError> {
    let user_id = local_user_id(&state, &user_id, "Can only deactivate local users")?;
    let user = existing_user(&state, &user_id).await?;
    let body: Map<String, Value> = parse_optional_body(&body)?;
    let erase = match body.get("erase") {
        None => false,
        Some(Value::Bool(erase)) => *erase,
        Some(_) => {
            return Err(MatrixError::bad_json(
                "Param 'erase' must be a boolean, if given",
            ));
        }
    };
    state
        .accounts
        .deactivate(&Actor::Admin(admin), &user.name, erase)
        .await?;
    Ok(Json(json!({"id_server_unbind_result": "success"})))
}

/// `GET /_synapse/admin/v1/username_available?username=…`: `{"available": true}`, or the
/// registration error that taking the name would get.
pub async fn username_available(
    State(state): State<AppState>,
    _admin: AdminRequester,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, MatrixError> {
    let query = ListQuery(pairs);
    let username = query
        .get("username")
        .ok_or_else(|| MatrixError::missing_param("Missing string query parameter 'username'"))?;
    check_username_available(&state, username).await?;
    Ok(Json(json!({"available": true})))
}

/// Synapse's `check_username`: the registration rules, then a case-insensitive clash.
/// A localpart the registration rules refuse: 400 `M_INVALID_USERNAME`, Synapse's message.
fn invalid_username(err: crate::ids::UserIdError) -> MatrixError {
    MatrixError::new(
        StatusCode::BAD_REQUEST,
        "M_INVALID_USERNAME",
        err.to_string(),
    )
}

pub async fn check_username_available(
    state: &AppState,
    localpart: &str,
) -> Result<UserId, MatrixError> {
    let server_name = &state.accounts.config.server_name;
    let user_id = UserId::parse_new_local(localpart, server_name).map_err(invalid_username)?;
    let taken = !state
        .accounts
        .find_users_case_insensitive(user_id.as_str())
        .await?
        .is_empty();
    if taken {
        return Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_USER_IN_USE",
            "User ID already taken.",
        ));
    }
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::MAX_PASSWORD_LENGTH;

    #[test]
    fn put_bodies_are_checked_in_synapses_order_with_its_messages() {
        let error = |body: Value| {
            let body = body.as_object().unwrap().clone();
            let err = parse_user_put(&body).err().unwrap();
            (err.error.unwrap().1, err.status)
        };
        assert_eq!(
            error(json!({"user_type": "robot", "admin": "yes"})).0,
            "Invalid user type"
        );
        assert_eq!(
            error(json!({"admin": "yes", "password": 5})).0,
            "Param 'admin' must be a boolean, if given"
        );
        assert_eq!(
            error(json!({"password": "x".repeat(MAX_PASSWORD_LENGTH + 1)})).0,
            "Invalid password"
        );
        assert_eq!(
            error(json!({"deactivated": true, "locked": true})).0,
            "An user can't be deactivated and locked"
        );
        assert_eq!(
            error(json!({"threepids": [{"medium": "email"}]})),
            (
                "Missing params: ['address']".to_owned(),
                StatusCode::BAD_REQUEST
            )
        );
        let put = parse_user_put(
            json!({"displayname": "  Ann  ", "password": "pw", "logout_devices": false})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(put.displayname, Some(Some("Ann".to_owned())));
        assert!(!put.logout_devices && put.password.is_some());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::property_testing::json_object;

        const PUT_KEYS: &[&str] = &[
            "password",
            "logout_devices",
            "admin",
            "deactivated",
            "locked",
            "displayname",
            "avatar_url",
            "user_type",
            "threepids",
            "external_ids",
        ];

        proptest! {
            #![proptest_config(crate::property_testing::config(512))]

            /// Any body: a 400 with a Matrix errcode, or a change within Synapse's limits.
            #[test]
            fn any_put_body_is_refused_as_a_client_error_or_kept_within_the_limits(
                body in json_object(PUT_KEYS),
            ) {
                match parse_user_put(&body) {
                    Err(err) => {
                        prop_assert_eq!(err.status, StatusCode::BAD_REQUEST);
                        let (errcode, _) = err.error.unwrap();
                        prop_assert!(errcode.starts_with("M_"));
                    }
                    Ok(put) => {
                        if let Some(password) = &put.password {
                            prop_assert!(password.chars().count() <= MAX_PASSWORD_LENGTH);
                        }
                        if let Some(Some(name)) = &put.displayname {
                            prop_assert!(name.chars().count() <= MAX_DISPLAYNAME_LENGTH);
                        }
                        if let Some(Some(kind)) = &put.user_type {
                            prop_assert!(USER_TYPES.contains(&kind.as_str()));
                        }
                        prop_assert!(!(put.deactivated == Some(true) && put.locked == Some(true)));
                    }
                }
            }
        }
    }
}
