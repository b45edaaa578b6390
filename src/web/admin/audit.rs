//! The audit log's page: who changed what, newest first, filtered by user (the record's
//! target), admin (its actor: an admin, `cli:<OS user>`, `sign-up`…), action and time (UTC),
//! a page at a time with the total. Read through the account service's listing, the one
//! `homekey audit list` uses.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::WebState;
use super::super::page::{Form, Message, base, unavailable, with, with_cookie};
use super::signed_in_admin;
use crate::audit::Action;
use crate::ids::UserId;
use crate::store::{AuditFilter, AuditRecord, StoreError};
use crate::utc::{format_utc, parse_utc};
use crate::web::session::Session;

/// How many records a page shows unless asked.
const DEFAULT_LIMIT: i64 = 50;
/// The most a page shows.
const MAX_LIMIT: i64 = 500;
/// The longest text a filter field takes (a user ID is at most 255 bytes).
const MAX_TEXT: usize = 512;

/// The page's query: `user`, `admin`, `action`, `from`, `until` (as typed), `offset`,
/// `limit`.
struct AuditQuery {
    user: String,
    admin: String,
    action: String,
    from: String,
    until: String,
    offset: i64,
    limit: i64,
}

impl AuditQuery {
    fn of(query: Option<&str>) -> AuditQuery {
        let form = Form::parse(query.unwrap_or("").as_bytes()).unwrap_or_default();
        let text = |name: &str| form.get(name).unwrap_or("").trim().to_owned();
        let number = |name: &str| form.get(name).and_then(|v| v.trim().parse::<i64>().ok());
        AuditQuery {
            user: text("user"),
            admin: text("admin"),
            action: text("action"),
            from: text("from"),
            until: text("until"),
            offset: number("offset").unwrap_or(0).max(0),
            limit: number("limit").unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        }
    }

    /// The page's link for the page starting at `offset`.
    fn href(&self, offset: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("user", &self.user),
            ("admin", &self.admin),
            ("action", &self.action),
            ("from", &self.from),
            ("until", &self.until),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("offset", &offset.to_string());
        query.append_pair("limit", &self.limit.to_string());
        format!("audit?{}", query.finish())
    }
}

/// Whom a filter's text names: a user ID as typed; a localpart, the user of this server
/// if there is one (else the text itself: `sign-up`, an actor that is no user); anything
/// else (`cli:root`, a client ID, `registration-token:…`) as typed. `Err`: a text no
/// record can name (the field's message).
async fn named(state: &WebState, text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.contains('\0') || text.chars().any(char::is_control) {
        return Err("This field cannot contain control characters.".into());
    }
    if text.len() > MAX_TEXT {
        return Err("This is longer than any name in the log.".into());
    }
    if text.starts_with('@') || text.contains(':') {
        return Ok(Some(text.to_owned()));
    }
    if let Ok(user_id) = UserId::from_parts(text, &state.accounts.config.server_name) {
        match state.accounts.get_user(user_id.as_str()).await {
            Ok(Some(user)) => return Ok(Some(user.name)),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "the audit page could not look a user up");
            }
        }
    }
    Ok(Some(text.to_owned()))
}

/// The filter the query asks for, or the field it cannot take and why.
async fn filter(
    state: &WebState,
    query: &AuditQuery,
) -> Result<AuditFilter, (&'static str, String)> {
    let target = named(state, &query.user).await.map_err(|e| ("user", e))?;
    let actor = named(state, &query.admin).await.map_err(|e| ("admin", e))?;
    let action = match query.action.as_str() {
        "" => None,
        name => match Action::named(name) {
            Some(action) => Some(action.as_str().to_owned()),
            None => return Err(("action", "There is no such action.".into())),
        },
    };
    let time = |field: &'static str, text: &str| match text {
        "" => Ok(None),
        text => parse_utc(text).map(Some).ok_or_else(|| {
            (
                field,
                "Give a date as YYYY-MM-DD, or a date and time as YYYY-MM-DDTHH:MM (UTC)."
                    .to_owned(),
            )
        }),
    };
    let since_ms = time("from", &query.from)?.map(|(start, _)| start);
    // Until a day, or a minute: all of it.
    let until_ms = time("until", &query.until)?.map(|(start, length)| start + length);
    if let (Some(since), Some(until)) = (since_ms, until_ms)
        && until <= since
    {
        return Err((
            "until",
            "This is before the time the search starts from.".into(),
        ));
    }
    Ok(AuditFilter {
        target,
        actor,
        action,
        since_ms,
        until_ms,
        offset: Some(query.offset),
        limit: Some(query.limit),
    })
}

/// Where a record's change came from, when it says: a sign-up's or a client registration's
/// address.
fn address_of(record: &AuditRecord) -> Option<String> {
    if let Some(address) = record.details["client_address"].as_str() {
        return Some(address.to_owned());
    }
    record
        .actor
        .strip_prefix("client registration from ")
        .map(str::to_owned)
}

/// A record's details as text, one `name: value` a line (JSON for what is not text), what
/// it leaves unset (null) left out.
fn details_text(details: &Value) -> Vec<String> {
    match details {
        Value::Object(fields) => fields
            .iter()
            .filter(|(name, value)| name.as_str() != "client_address" && !value.is_null())
            .map(|(name, value)| match value {
                Value::String(text) => format!("{name}: {text}"),
                other => format!("{name}: {other}"),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

/// A record as the pages show it (the audit page, and a user's page's newest records).
pub(super) fn record_context(record: &AuditRecord) -> Value {
    let user_href = |id: &str| {
        id.starts_with('@').then(|| {
            format!(
                "user?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("id", id)
                    .finish()
            )
        })
    };
    json!({
        "when": format_utc(record.ts_ms),
        "actor": record.actor,
        "actor_href": user_href(&record.actor),
        "action": record.action,
        "target": record.target,
        "target_href": record.target.as_deref().and_then(user_href),
        "details": details_text(&record.details),
        "address": address_of(record),
    })
}

/// `GET /_homekey/admin/audit`: the audit log, filtered, or the sign-in page.
pub async fn page(
    State(state): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match state.sessions.find_or_begin(&headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(&state, err),
    };
    let (session, admin, message) = match signed_in_admin(&state, session).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(admin) = admin else {
        return super::sign_in::page(&state, &session, StatusCode::OK, "", message);
    };
    let query = AuditQuery::of(query.as_deref());
    let filter = match filter(&state, &query).await {
        Ok(filter) => filter,
        Err((field, error)) => {
            let message = Message::FieldError(field, error);
            return show(
                &state,
                &session,
                &admin.name,
                &query,
                StatusCode::BAD_REQUEST,
                message,
                None,
            );
        }
    };
    let listed = async {
        let records = state.accounts.list_audit(&filter).await?;
        let total = state.accounts.count_audit(&filter).await?;
        Ok::<_, StoreError>((records, total))
    };
    match listed.await {
        Ok(found) => show(
            &state,
            &session,
            &admin.name,
            &query,
            StatusCode::OK,
            Message::None,
            Some(found),
        ),
        Err(StoreError::RefusedOnSynapse(_)) => {
            let message = Message::Error(
                "This server keeps its accounts in Synapse's database, which has no audit log."
                    .into(),
            );
            show(
                &state,
                &session,
                &admin.name,
                &query,
                StatusCode::OK,
                message,
                None,
            )
        }
        Err(err) => unavailable(&state, err),
    }
}

/// The page, with the records found and their total (`None`: none were looked for).
fn show(
    state: &WebState,
    session: &Session,
    admin: &str,
    query: &AuditQuery,
    status: StatusCode,
    message: Message,
    found: Option<(Vec<AuditRecord>, i64)>,
) -> Response {
    let searched = found.is_some();
    let (records, total) = found.unwrap_or_default();
    let shown_to = query.offset + records.len() as i64;
    let actions: Vec<Value> = Action::ALL
        .iter()
        .map(|action| {
            let name = action.as_str();
            json!({ "name": name, "selected": name == query.action })
        })
        .collect();
    let context = with(
        base(state, session, Some(admin), message),
        json!({
            "searched": searched,
            "records": records.iter().map(record_context).collect::<Vec<_>>(),
            "total": total,
            "user": query.user,
            "admin": query.admin,
            "action": query.action,
            "actions": actions,
            "from": query.from,
            "until": query.until,
            "limit": query.limit,
            "shown_from": if records.is_empty() { query.offset } else { query.offset + 1 },
            "shown_to": shown_to,
            "previous": (query.offset > 0).then(|| query.href((query.offset - query.limit).max(0))),
            "next": (shown_to < total).then(|| query.href(shown_to)),
        }),
    );
    let response = state.renderer.page(status, "admin_audit.html", context);
    with_cookie(response, session.set_cookie.as_deref())
}
