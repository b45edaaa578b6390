//! The users list (search, filters, pages, the total) and a user's page (flags, creation
//! time, display name, e-mail addresses, devices, the actions and their guards, the audit
//! records about the user), read through the account service's listing, the one the
//! Admin API's v2 users list uses.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::WebState;
use super::super::page::{Form, Message, base, unavailable, with, with_cookie};
use crate::accounts::AccountError;
use crate::ids::UserId;
use crate::store::{AuditFilter, StoreError, User, UserFilter, UserOrder, UserPage};
use crate::threepid::Medium;
use crate::utc::format_utc_minutes;
use crate::web::session::Session;

/// How many users a page shows unless asked.
const DEFAULT_LIMIT: i64 = 50;
/// The most a page shows.
const MAX_LIMIT: i64 = 500;

/// The sorts the list offers: its field's value, the listing's order, and its label.
const SORTS: [(&str, UserOrder, &str); 3] = [
    ("name", UserOrder::Name, "User ID"),
    ("created", UserOrder::CreationTs, "Creation"),
    ("last_seen", UserOrder::LastSeenTs, "Last seen"),
];

/// The user types the list can be narrowed to: its field's value, and its label. Synapse's
/// own types are `bot` and `support`; "regular" is an account with neither.
const USER_TYPES: [(&str, &str); 4] = [
    ("", "Any type"),
    ("regular", "Regular users"),
    ("bot", "Bots"),
    ("support", "Support"),
];

/// The list's query: `q`, `admins`, `deactivated`, `locked`, `guests`, `type`, `sort`,
/// `dir`, `from`, `limit`. A value the form cannot send (an unknown sort or type) counts as
/// the default, as a filter box left empty does.
struct ListQuery {
    q: String,
    admins: bool,
    deactivated: bool,
    locked: bool,
    guests: bool,
    user_type: &'static str,
    /// The sort's field value and the listing's order.
    sort: (&'static str, UserOrder),
    descending: bool,
    from: i64,
    limit: i64,
}

impl ListQuery {
    fn of(query: Option<&str>) -> ListQuery {
        let form = Form::parse(query.unwrap_or("").as_bytes()).unwrap_or_default();
        let number = |name: &str| form.get(name).and_then(|v| v.trim().parse::<i64>().ok());
        let on = |name: &str| form.get(name).is_some_and(|v| !v.is_empty());
        let given = form.get("sort").unwrap_or("");
        let sort = SORTS.iter().find(|(value, _, _)| *value == given);
        let given = form.get("type").unwrap_or("");
        let user_type = USER_TYPES.iter().find(|(value, _)| *value == given);
        ListQuery {
            q: form.get("q").unwrap_or("").trim().to_owned(),
            admins: on("admins"),
            deactivated: on("deactivated"),
            locked: on("locked"),
            guests: on("guests"),
            user_type: user_type.map_or("", |(value, _)| value),
            sort: sort.map_or(("name", UserOrder::Name), |(value, order, _)| {
                (value, *order)
            }),
            descending: form.get("dir") == Some("desc"),
            from: number("from").unwrap_or(0).max(0),
            limit: number("limit").unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        }
    }

    /// The filter: text starting with `@` is searched in user IDs, text with an `@` further
    /// on in e-mail addresses, any other text in localparts and display names.
    fn filter(&self) -> UserFilter {
        let text = (!self.q.is_empty()).then(|| self.q.clone());
        let (by_id, by_email) = match self.q.find('@') {
            Some(0) => (true, false),
            Some(_) => (false, true),
            None => (false, false),
        };
        let not_user_types = match self.user_type {
            "regular" => vec!["bot".into(), "support".into()],
            // Only one type: every other type left out, and so is "no type" ("").
            "bot" => vec!["".into(), "support".into()],
            "support" => vec!["".into(), "bot".into()],
            _ => Vec::new(),
        };
        UserFilter {
            name_contains: text.clone().filter(|_| !by_id && !by_email),
            user_id_contains: text.clone().filter(|_| by_id),
            email_contains: text.filter(|_| by_email),
            admins: self.admins.then_some(true),
            include_guests: self.guests,
            include_deactivated: self.deactivated,
            include_locked: self.locked,
            not_user_types,
            order_by: self.sort.1,
            descending: self.descending,
            ..UserFilter::default()
        }
    }

    /// The list's link for the page starting at `from`.
    fn href(&self, from: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            query.append_pair("q", &self.q);
        }
        for (name, on) in [
            ("admins", self.admins),
            ("deactivated", self.deactivated),
            ("locked", self.locked),
            ("guests", self.guests),
        ] {
            if on {
                query.append_pair(name, "on");
            }
        }
        if !self.user_type.is_empty() {
            query.append_pair("type", self.user_type);
        }
        query.append_pair("sort", self.sort.0);
        query.append_pair("dir", if self.descending { "desc" } else { "asc" });
        query.append_pair("from", &from.to_string());
        query.append_pair("limit", &self.limit.to_string());
        format!("./?{}", query.finish())
    }

    /// The options of the form's two selects, the chosen one marked.
    fn options(&self) -> Value {
        json!({
            "sorts": SORTS.iter().map(|(value, _, label)| json!({
                "value": value, "label": label, "selected": *value == self.sort.0,
            })).collect::<Vec<_>>(),
            "user_types": USER_TYPES.iter().map(|(value, label)| json!({
                "value": value, "label": label, "selected": *value == self.user_type,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A user's row as the pages show it.
fn user_context(user: &User) -> Value {
    json!({
        "user_id": user.name,
        "href": format!("user?{}", form_urlencoded::Serializer::new(String::new())
            .append_pair("id", &user.name)
            .finish()),
        "displayname": user.displayname,
        "admin": user.admin,
        "deactivated": user.deactivated,
        "locked": user.locked,
        "guest": user.is_guest,
        "erased": user.erased,
        "user_type": user.user_type,
        "created": format_utc_minutes(user.creation_ts.saturating_mul(1000)),
        "last_seen": user.last_seen_ts.map(format_utc_minutes),
    })
}

/// `GET /_homekey/admin/`: the users list, or the sign-in page.
pub async fn list(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (session, admin) = match super::admin_for_page(&state, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let query = ListQuery::of(query.as_deref());
    // A control character no search box sends: the page with the field's message, the
    // database not asked (PostgreSQL refuses a NUL in a query's text: the page would be a
    // 503), as the audit log's filters are refused.
    let (status, message, page) = if query.q.chars().any(char::is_control) {
        let why = "The search cannot contain control characters.".to_owned();
        let none = UserPage {
            users: Vec::new(),
            total: 0,
        };
        (StatusCode::BAD_REQUEST, Message::FieldError("q", why), none)
    } else {
        match state
            .accounts
            .list_users(&query.filter(), query.from, query.limit)
            .await
        {
            Ok(page) => (StatusCode::OK, Message::None, page),
            Err(err) => return unavailable(&state, err),
        }
    };
    let shown_to = query.from + page.users.len() as i64;
    let context = with(
        base(&state, &session, Some(&admin.name), message),
        json!({
            "users": page.users.iter().map(user_context).collect::<Vec<_>>(),
            "total": page.total,
            "q": query.q,
            "admins": query.admins,
            "deactivated": query.deactivated,
            "locked": query.locked,
            "guests": query.guests,
            "descending": query.descending,
            "options": query.options(),
            "limit": query.limit,
            "shown_from": if page.users.is_empty() { query.from } else { query.from + 1 },
            "shown_to": shown_to,
            "previous": (query.from > 0).then(|| query.href((query.from - query.limit).max(0))),
            "next": (shown_to < page.total).then(|| query.href(shown_to)),
        }),
    );
    let response = state.renderer.page(status, "admin_users.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// `GET /_homekey/admin/user?id=…`: one user's flags, creation time, display name and
/// devices.
pub async fn user(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (session, admin) = match super::admin_for_page(&state, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let form = Form::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let user_id = form.get("id").unwrap_or("");
    show_user(
        &state,
        &session,
        &admin,
        user_id,
        StatusCode::OK,
        Message::None,
    )
    .await
}

/// How many audit records a user's page shows (the newest).
const AUDIT_SHOWN: i64 = 20;

/// A user's page, with `message` at its top; a user that does not exist, a 404 saying so.
/// Besides the flags: e-mail addresses, devices (each with its OAuth app, and an end
/// button), the actions with their guards said before the click, and the newest audit
/// records about this user.
pub(super) async fn show_user(
    state: &WebState,
    session: &Session,
    admin: &User,
    user_id: &str,
    status: StatusCode,
    message: Message,
) -> Response {
    // Not a user ID (a NUL, too long…): no such user, without asking the database.
    let found = match UserId::parse(user_id) {
        Err(_) => None,
        Ok(_) => match state.accounts.get_user(user_id).await {
            Ok(found) => found,
            Err(err) => return unavailable(state, err),
        },
    };
    let Some(user) = found else {
        let context = with(
            base(
                state,
                session,
                Some(&admin.name),
                Message::Error("There is no such user.".into()),
            ),
            json!({ "user": null, "devices": [] }),
        );
        let response = state
            .renderer
            .page(StatusCode::NOT_FOUND, "admin_user.html", context);
        return with_cookie(response, session.set_cookie.as_deref());
    };
    let (devices, apps, threepids, last_admin) = match tokio::try_join!(
        async { Ok::<_, AccountError>(state.accounts.list_devices(&user.name).await?) },
        async { Ok::<_, AccountError>(state.accounts.session_apps(&user.name).await?) },
        state.accounts.user_threepids(&user.name),
        is_last_admin(state, &user),
    ) {
        Ok(read) => read,
        Err(err) => return unavailable(state, err),
    };
    let devices: Vec<Value> = devices
        .iter()
        .map(|device| {
            json!({
                "device_id": device.device_id,
                "display_name": device.display_name,
                "app": apps.get(&device.device_id),
                "last_seen": device.last_seen.map(format_utc_minutes),
                "ip": device.ip,
            })
        })
        .collect();
    let emails: Vec<&str> = threepids
        .iter()
        .filter(|t| t.threepid.medium == Medium::Email)
        .map(|t| t.threepid.address.as_str())
        .collect();
    let filter = AuditFilter {
        target: Some(user.name.clone()),
        limit: Some(AUDIT_SHOWN),
        ..AuditFilter::default()
    };
    // A Synapse database keeps no audit log: the page says so instead of failing.
    let (audit, audit_missing) = match state.accounts.list_audit(&filter).await {
        Ok(records) => (
            records.iter().map(super::audit::record_context).collect(),
            None,
        ),
        Err(StoreError::RefusedOnSynapse(_)) => (
            Vec::new(),
            Some("This server runs on Synapse's database, which has no audit log."),
        ),
        Err(err) => return unavailable(state, err),
    };
    // "Send a reset link" is offered when a mail can carry one to an address of the user's.
    let reset_link_offered = state.accounts.recovery_enabled() && !emails.is_empty();
    let context = with(
        base(state, session, Some(&admin.name), message),
        json!({
            "user": user_context(&user),
            "devices": devices,
            "reset_link_offered": reset_link_offered,
            "emails": emails,
            "own": user.name == admin.name,
            "last_admin": last_admin,
            "audit": audit,
            "audit_missing": audit_missing,
            "audit_shown": AUDIT_SHOWN,
        }),
    );
    let response = state.renderer.page(status, "admin_user.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}

/// Whether `user` is the last server admin who can act: the service refuses to demote,
/// lock or deactivate them (`AdminGuard::KeepOne`), and the page says so before the click.
async fn is_last_admin(state: &WebState, user: &User) -> Result<bool, AccountError> {
    if !user.admin || user.deactivated || user.locked {
        return Ok(false);
    }
    // Counted as the guard counts them: admins neither deactivated nor locked.
    let acting = UserFilter {
        admins: Some(true),
        include_guests: true,
        ..UserFilter::default()
    };
    Ok(state.accounts.list_users(&acting, 0, 1).await?.total <= 1)
}
