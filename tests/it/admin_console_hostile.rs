//! Hostile input on every form and every query of the admin console (issue 28: "bad input in
//! any field gives the page again with the message, never a 500"), as a property test on
//! SQLite and PostgreSQL. Each form of the console is posted with its real fields, all valid
//! but one, which holds random text (NUL, control characters, bidi overrides, 3000
//! characters), bytes that are not UTF-8 once decoded, nothing, or a value sent twice: the
//! answer is the console's HTML page with a message, never a 5xx, and nothing changed (the
//! users and their flags, devices and passwords, the registration tokens, the OAuth clients,
//! the audit log). The users list, a user's page and the audit log take random queries. And
//! display names of any text are stored as typed and shown as text on every page.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::admin_console::{Answer, CONSOLE, Console, make_admin, start};
use crate::mail::email_section;
use crate::server::{Server, raw_execute, server_tests};
use crate::support::TestDb;

/// The property tests' strategies, as the unit tests of `src/` use them (the module is
/// compiled for them only).
#[path = "../../src/property_testing.rs"]
#[allow(dead_code)]
mod property_testing;
use property_testing::{config, hostile_text, percent_encoded, query_string};

server_tests!(
    hostile_fields_on_every_form_give_the_page_with_a_message_and_change_nothing,
    display_names_of_any_text_are_stored_as_typed_and_shown_as_text,
);

/// homekey beside a Synapse that is not there (OAuth clients register, work owed to Synapse
/// can be retried); the Admin API and logins are asked of a standalone server on the same
/// database.
const BESIDE_NO_SYNAPSE: &str = "public_baseurl: https://matrix.example.com/\n\
     synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: console-hostile-secret-0123456789abcdef\n";

const ALICE: &str = "@alice:example.com";
const BOB: &str = "@bob:example.com";
const DAVE: &str = "@dave:example.com";
const USERS: [&str; 3] = [ALICE, BOB, DAVE];
/// The registration token that is there all along.
const KEPT_TOKEN: &str = "keep-token";

/// Text for a field: the property tests' hostile text, 3000 characters, runs of control and
/// bidi characters, and near misses of the valid values.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => hostile_text(),
        1 => Just("x".repeat(3000)),
        1 => (1usize..1500).prop_map(|n| "\u{202e}é".repeat(n)),
        1 => "[\\u{0}-\\u{1f}\\u{7f}-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}\\u{feff}]{1,8}",
        2 => prop::sample::select(vec![
            "<script>alert(1)</script>",
            "\0",
            " ",
            "\r\n",
            "on\u{202e}",
            "ON",
            "on\0",
            "@bob:example.com\0",
            "@BOB:example.com",
            " @bob:example.com",
            "@bob:example.com ",
            "bob",
            "@bob",
            "@dave:example.com\u{200e}",
            "-1",
            "2147483648",
            "99999999999999999999",
            "1e3",
            "0x10",
            "9999-12-31T23:59",
            "2000-01-01T00:00",
            "2030-02-30T25:61",
            "%00",
            "keep-token\0",
            "KEEP-TOKEN",
            "generate\0",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A field's value as a hostile client sends it.
#[derive(Clone, Debug)]
enum Sent {
    /// Text, encoded as a browser encodes it.
    Text(String),
    /// Put in the body as it is: escapes that are not UTF-8 once decoded (`%FF`, `%C3`…).
    Raw(String),
    /// The field left out.
    Missing,
    /// Sent twice: the hostile value first, the valid one after it.
    Twice(String),
}

impl Sent {
    /// The text the form's handler reads (the first of a name sent twice; a field left out
    /// reads as empty); `None`: not UTF-8, so the whole form is refused.
    fn read(&self) -> Option<String> {
        match self {
            Sent::Text(text) | Sent::Twice(text) => Some(text.clone()),
            Sent::Missing => Some(String::new()),
            Sent::Raw(raw) => {
                let spaced = raw.replace('+', " ");
                percent_encoding::percent_decode_str(&spaced)
                    .decode_utf8()
                    .ok()
                    .map(|text| text.into_owned())
            }
        }
    }

    /// For the failure's message: short.
    fn shown(&self) -> String {
        let text = format!("{self:?}");
        let mut shown: String = text.chars().take(120).collect();
        if shown.len() < text.len() {
            shown.push_str(&format!("… ({} chars)", text.chars().count()));
        }
        shown
    }
}

/// What every field is sent besides the random values: a NUL (which PostgreSQL refuses in a
/// query's text), 3000 characters, markup behind a bidi override, bytes that are not UTF-8
/// once decoded, nothing, a NUL sent before the valid value.
fn always_sent() -> Vec<Sent> {
    vec![
        Sent::Text("\0".into()),
        Sent::Text("@bob:example.com\0".into()),
        Sent::Text("x".repeat(3000)),
        Sent::Text("\u{202e}<script>alert(1)</script>".into()),
        Sent::Raw("%FF".into()),
        Sent::Raw("%C3%28".into()),
        Sent::Missing,
        Sent::Twice("\0".into()),
    ]
}

fn sent() -> impl Strategy<Value = Sent> {
    let raw = prop_oneof![
        prop::sample::select(vec![
            "%FF",
            "%C3",
            "%C3%28",
            "%ED%A0%80",
            "%F4%90%80%80",
            "%80",
            "abc%FE%FF",
            "%E2%80",
            "%",
            "%zz",
            "%00",
        ])
        .prop_map(str::to_owned),
        "(%[0-9A-F]{2}|[a-z0-9+.~-]){1,12}",
    ];
    prop_oneof![
        6 => field_text().prop_map(Sent::Text),
        2 => raw.prop_map(Sent::Raw),
        1 => Just(Sent::Missing),
        1 => field_text().prop_map(Sent::Twice),
    ]
}

/// `default_cases` values of `strategy` (or `PROPTEST_CASES`), drawn as proptest draws them:
/// the pages are asked from async code, where proptest's runner cannot wait.
fn samples<S: Strategy>(strategy: &S, default_cases: u32) -> Vec<S::Value> {
    let mut runner = TestRunner::new(config(default_cases));
    (0..runner.config().cases)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect()
}

/// One form with one hostile field: its route, its fields as the page fills them in (the
/// CSRF token among them), the field made hostile, and which of its values would make a
/// valid request (left out: such a request may rightly change something).
struct Case {
    path: &'static str,
    fields: Vec<(&'static str, String)>,
    hostile: &'static str,
    valid: Box<dyn Fn(&str) -> bool>,
}

fn case(
    path: &'static str,
    fields: &[(&'static str, &str)],
    hostile: &'static str,
    valid: impl Fn(&str) -> bool + 'static,
) -> Case {
    Case {
        path,
        fields: fields
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect(),
        hostile,
        valid: Box::new(valid),
    }
}

fn never(_: &str) -> bool {
    false
}

/// Names a user exactly (as the forms' `user_id` is looked up).
fn a_user(text: &str) -> bool {
    USERS.contains(&text)
}

/// A whole number in `range`, as the token forms read one (trimmed; empty: none).
fn number_in(text: &str, range: std::ops::RangeInclusive<i64>) -> bool {
    let text = text.trim();
    text.is_empty() || text.parse::<i64>().is_ok_and(|n| range.contains(&n))
}

/// An expiry the token forms take: none, or a time still to come.
fn future_or_none(text: &str) -> bool {
    let text = text.trim();
    text.is_empty()
        || homekey::utc::parse_utc(text)
            .is_some_and(|(start, _)| start > homekey::accounts::now_ms())
}

/// A name the create form takes for a new account.
fn a_new_name(text: &str) -> bool {
    homekey::ids::UserId::parse_local(text.trim(), "example.com")
        .is_ok_and(|id| homekey::ids::validate_new_localpart(id.localpart()).is_ok())
}

/// Every form of the console, each field made hostile in turn.
fn cases(csrf: &str, bob_device: &str, client_id: &str) -> Vec<Case> {
    use homekey::accounts::registration_tokens::{MAX_TOKEN_LENGTH, check_token};
    let device = bob_device.to_owned();
    let client = client_id.to_owned();
    let max_length = MAX_TOKEN_LENGTH as i64;
    let uses = 0..=i64::from(i32::MAX);
    let uses_again = uses.clone();
    let c = ("csrf", csrf);
    let typed_reset = [
        c,
        ("user_id", BOB),
        ("password_choice", "type"),
        ("new_password", "bob-new-pw"),
        ("new_password_again", "bob-new-pw"),
    ];
    // Two passwords that differ: any choice but `generate` is refused.
    let differing_reset = [
        c,
        ("user_id", BOB),
        ("password_choice", "type"),
        ("new_password", "bob-new-pw"),
        ("new_password_again", "bob-other-pw"),
        ("logout_devices", "on"),
    ];
    let new_user = [
        c,
        ("user", "newbie"),
        ("displayname", "New"),
        ("password_choice", "type"),
        ("password", "newbie-pw"),
        ("password_again", "newbie-pw"),
    ];
    // A name taken: refused whatever the other fields say.
    let taken_user = [
        c,
        ("user", "bob"),
        ("displayname", "Bob"),
        ("password_choice", "generate"),
        ("admin", "on"),
    ];
    let new_token = [
        c,
        ("token", "fresh-token"),
        ("length", ""),
        ("uses_allowed", "3"),
        ("expiry", ""),
    ];
    let generated_token = [
        c,
        ("token", ""),
        ("length", "12"),
        ("uses_allowed", "3"),
        ("expiry", ""),
    ];
    let kept_token = [
        c,
        ("token", KEPT_TOKEN),
        ("uses_allowed", "5"),
        ("expiry", ""),
    ];
    let sign_in = [c, ("user", "alice"), ("password", "alice-pw")];
    let set_admin = [c, ("user_id", BOB), ("admin", "on")];
    let set_locked = [c, ("user_id", BOB), ("locked", "on")];
    let erase = [c, ("user_id", BOB), ("confirm", BOB)];
    let reactivate = [
        c,
        ("user_id", DAVE),
        ("new_password", "dave-new-pw"),
        ("new_password_again", "dave-new-pw"),
    ];
    let end_device = [c, ("user_id", BOB), ("device_id", bob_device)];
    let mut all = vec![
        case("sign-in", &sign_in, "user", |v| {
            v.to_lowercase().contains("alice")
        }),
        case("sign-in", &sign_in, "password", |v| v == "alice-pw"),
        case("sign-out", &[c], "csrf", never),
        case("reset-password", &typed_reset, "user_id", a_user),
        case("reset-password", &typed_reset, "new_password", |v| {
            v == "bob-new-pw"
        }),
        case("reset-password", &typed_reset, "new_password_again", |v| {
            v == "bob-new-pw"
        }),
        case("reset-password", &differing_reset, "password_choice", |v| {
            v == "generate"
        }),
        case("reset-password", &differing_reset, "logout_devices", never),
        case(
            "send-reset-link",
            &[c, ("user_id", BOB), ("logout_devices", "")],
            "user_id",
            a_user,
        ),
        // Alice has no address: refused whatever the choice.
        case(
            "send-reset-link",
            &[c, ("user_id", ALICE), ("logout_devices", "")],
            "logout_devices",
            never,
        ),
        case("retry-mail", &[c, ("id", "1")], "id", never),
        case("retry-synapse", &[c, ("user_id", BOB)], "user_id", a_user),
        case("new-user", &new_user, "user", a_new_name),
        case("new-user", &new_user, "password", |v| v == "newbie-pw"),
        case("new-user", &new_user, "password_again", |v| {
            v == "newbie-pw"
        }),
        case("new-user", &taken_user, "password_choice", never),
        case("new-user", &taken_user, "admin", never),
        case("new-user", &taken_user, "displayname", never),
        case("set-admin", &set_admin, "user_id", a_user),
        case("set-admin", &set_admin, "admin", |v| {
            v == "on" || v == "off"
        }),
        case("set-locked", &set_locked, "user_id", a_user),
        case("set-locked", &set_locked, "locked", |v| {
            v == "on" || v == "off"
        }),
        case("deactivate", &[c, ("user_id", BOB)], "user_id", a_user),
        case("erase", &erase, "user_id", a_user),
        case("erase", &erase, "confirm", |v| v.trim() == BOB),
        case("reactivate", &reactivate, "user_id", a_user),
        case("reactivate", &reactivate, "new_password", |v| {
            v == "dave-new-pw"
        }),
        case("reactivate", &reactivate, "new_password_again", |v| {
            v == "dave-new-pw"
        }),
        case("end-device", &end_device, "user_id", a_user),
        case("end-device", &end_device, "device_id", move |v| v == device),
        case("create-registration-token", &new_token, "token", |v| {
            v.trim().is_empty() || check_token(v.trim()).is_ok()
        }),
        case(
            "create-registration-token",
            &new_token,
            "uses_allowed",
            move |v| number_in(v, uses.clone()),
        ),
        case(
            "create-registration-token",
            &new_token,
            "expiry",
            future_or_none,
        ),
        case(
            "create-registration-token",
            &generated_token,
            "length",
            move |v| number_in(v, 1..=max_length),
        ),
        case("update-registration-token", &kept_token, "token", |v| {
            v == KEPT_TOKEN
        }),
        case(
            "update-registration-token",
            &kept_token,
            "uses_allowed",
            move |v| number_in(v, uses_again.clone()),
        ),
        case(
            "update-registration-token",
            &kept_token,
            "expiry",
            future_or_none,
        ),
        case(
            "delete-registration-token",
            &[c, ("token", KEPT_TOKEN)],
            "token",
            |v| v == KEPT_TOKEN,
        ),
        case(
            "delete-oauth-client",
            &[c, ("client_id", client_id)],
            "client_id",
            move |v| v == client,
        ),
    ];
    // And each form with a CSRF token not its session's.
    let mut paths: Vec<&'static str> = all.iter().map(|case| case.path).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let fields = all
            .iter()
            .find(|case| case.path == path)
            .unwrap()
            .fields
            .clone();
        all.push(Case {
            path,
            fields,
            hostile: "csrf",
            valid: Box::new(never),
        });
    }
    all
}

/// The form's body: every field encoded as a browser encodes it, but the hostile one.
fn body(case: &Case, sent: &Sent) -> String {
    let encoded = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let mut pairs = Vec::new();
    for (name, value) in &case.fields {
        if *name != case.hostile {
            pairs.push(format!("{name}={}", encoded(value)));
            continue;
        }
        match sent {
            Sent::Text(text) => pairs.push(format!("{name}={}", encoded(text))),
            Sent::Raw(raw) => pairs.push(format!("{name}={raw}")),
            Sent::Missing => {}
            Sent::Twice(text) => {
                pairs.push(format!("{name}={}", encoded(text)));
                pairs.push(format!("{name}={}", encoded(value)));
            }
        }
    }
    pairs.join("&")
}

fn is_html(answer: &Answer) -> bool {
    answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// A refusal as the console gives it: a 4xx, its HTML page, the message in an alert.
fn assert_refused_with_a_message(answer: &Answer, what: &str) {
    assert!(
        answer.status.is_client_error(),
        "{what}: {} {}",
        answer.status,
        answer.body
    );
    assert!(is_html(answer), "{what}: {:?}", answer.headers);
    assert!(
        answer.body.contains("role=\"alert\""),
        "{what}: no message: {}",
        answer.body
    );
    assert!(
        !answer.body.contains("<script>alert"),
        "{what}: markup shown as markup"
    );
}

/// What a change could touch: the users and their flags (the Admin API's list), their
/// devices (the Admin API's) and password hashes, the registration tokens (the Admin API's),
/// the OAuth clients and the number of audit records.
async fn snapshot(api: &Server, token: &str) -> Value {
    let (status, mut users) = api
        .call(
            "GET",
            "/_synapse/admin/v2/users?deactivated=true&guests=true&limit=1000",
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let mut devices = Vec::new();
    let mut hashes = Vec::new();
    for user in users["users"].as_array_mut().unwrap() {
        // Seen by the snapshot's own requests: not a change.
        user.as_object_mut().unwrap().remove("last_seen_ts");
        let name = user["name"].as_str().unwrap().to_owned();
        let path = format!(
            "/_synapse/admin/v2/users/{}/devices",
            percent_encoded(&name)
        );
        let (status, listed) = api.call("GET", &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        let mut ids: Vec<(String, String)> = listed["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["device_id"].to_string(), d["display_name"].to_string()))
            .collect();
        ids.sort();
        devices.push(json!({ "user": name, "devices": ids }));
        let stored = api.store().get_user(&name).await.unwrap().unwrap();
        let hash = stored
            .password_hash
            .as_ref()
            .map(|h| h.expose_secret().to_owned());
        hashes.push(json!({ "user": name, "hash": hash }));
    }
    let (status, tokens) = api
        .call(
            "GET",
            "/_synapse/admin/v1/registration_tokens",
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let clients: Vec<Value> = api
        .store()
        .list_oauth_clients()
        .await
        .unwrap()
        .iter()
        .map(|client| json!([client.client_id, client.sessions]))
        .collect();
    let audit = api
        .store()
        .list_audit(&homekey::store::AuditFilter::default())
        .await
        .unwrap()
        .len();
    json!({
        "users": users,
        "devices": devices,
        "hashes": hashes,
        "tokens": tokens,
        "clients": clients,
        "audit": audit,
    })
}

async fn hostile_fields_on_every_form_give_the_page_with_a_message_and_change_nothing(db: TestDb) {
    let api = Server::start(db.share().await, "").await;
    // Mail on (to an SMTP server that is not there: a link is queued, never sent).
    let config = format!("{BESIDE_NO_SYNAPSE}{}", email_section(1, ""));
    let (console_server, console) = start(db, &config).await;
    let admin = make_admin(&api, "alice", "alice-pw").await;
    api.create_user("bob", "bob-pw").await;
    api.create_user("dave", "dave-pw").await;
    let (_, bob_device) = api.session_for("bob", "bob-pw").await;
    raw_execute(
        &api.db.config,
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
         VALUES ($1, 'email', $2, 0, 0)",
        &[BOB, "bob@example.org"],
    )
    .await;
    let (status, answer) = api
        .call(
            "POST",
            &format!("/_synapse/admin/v1/deactivate/{DAVE}"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = api
        .call(
            "POST",
            "/_synapse/admin/v1/registration_tokens/new",
            Some(&admin),
            Some(json!({"token": KEPT_TOKEN, "uses_allowed": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let client_id =
        crate::oauth_pages::register(&console_server, crate::oauth_grants::element_x()).await;

    let mut browser = Console::new(&console);
    browser.sign_in("alice", "alice-pw").await;
    let csrf = browser.get(CONSOLE).await.csrf();
    let bob_page = browser
        .get(&format!("{CONSOLE}user?id={}", percent_encoded(BOB)))
        .await;
    assert!(
        bob_page.body.contains("id=\"send-reset-link\""),
        "a link can be mailed to bob: {}",
        bob_page.body
    );
    let before = snapshot(&api, &admin).await;

    let values = sent();
    let mut tried = 0;
    let mut skipped = 0;
    for case in cases(&csrf, &bob_device, &client_id) {
        for sent in always_sent().into_iter().chain(samples(&values, 4)) {
            if sent.read().is_some_and(|read| (case.valid)(&read)) {
                skipped += 1;
                continue;
            }
            let what = format!("{} with {} = {}", case.path, case.hostile, sent.shown());
            let answer = browser
                .post_raw(&format!("{CONSOLE}{}", case.path), &body(&case, &sent))
                .await;
            assert_refused_with_a_message(&answer, &what);
            if sent.read().is_none() {
                // Not UTF-8: refused as a whole, as a form without its token.
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}");
                assert!(answer.body.contains("Nothing was done"), "{what}");
            }
            assert_eq!(snapshot(&api, &admin).await, before, "{what}: a change");
            tried += 1;
        }
    }

    // The pages with a query: the users list, a user's page, the audit log.
    let list_query = query_string(&[
        "q",
        "type",
        "sort",
        "dir",
        "from",
        "limit",
        "admins",
        "deactivated",
        "locked",
        "guests",
    ]);
    let long = "x".repeat(3000);
    let always = [
        "q=%00".to_owned(),
        "q=%40%00".into(),
        "q=a%00%40b".into(),
        format!("q={long}"),
        "type=%00&sort=%00&dir=%00&from=%00&limit=%00&admins=%00".into(),
        "limit=-1&from=99999999999999999999".into(),
        "q=%FF".into(),
        "q=%E2%80%AE%3Cscript%3E".into(),
    ];
    for query in always.into_iter().chain(samples(&list_query, 30)) {
        let answer = browser.get(&format!("{CONSOLE}?{query}")).await;
        let what = format!("the users list with ?{query:.200}");
        if answer.status == StatusCode::OK {
            assert!(is_html(&answer), "{what}");
            assert!(
                answer.body.contains("id=\"users\""),
                "{what}: {}",
                answer.body
            );
        } else {
            assert_refused_with_a_message(&answer, &what);
        }
        tried += 1;
    }
    let user_query = prop_oneof![
        query_string(&["id"]),
        field_text().prop_map(|id| format!("id={}", percent_encoded(&id))),
    ];
    let always = [
        "id=%00".to_owned(),
        "id=%40bob%3Aexample.com%00".into(),
        "id=%FF".into(),
        format!("id={long}"),
    ];
    for query in always.into_iter().chain(samples(&user_query, 25)) {
        let answer = browser.get(&format!("{CONSOLE}user?{query}")).await;
        let what = format!("a user's page with ?{query:.200}");
        if answer.status == StatusCode::OK {
            assert!(is_html(&answer), "{what}");
            assert!(
                answer.body.contains("id=\"devices\""),
                "{what}: {}",
                answer.body
            );
        } else {
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{what}");
            assert_refused_with_a_message(&answer, &what);
            assert!(answer.body.contains("There is no such user."), "{what}");
        }
        tried += 1;
    }
    let audit_query = query_string(&[
        "user", "admin", "action", "from", "until", "offset", "limit",
    ]);
    let always = [
        "user=%00".to_owned(),
        "admin=%40a%00".into(),
        "action=%00".into(),
        "from=%00".into(),
        "until=%FF".into(),
        format!("user={long}"),
        "user=%40bob%3Aexample.com&admin=alice&from=2000-01-01&until=1999-01-01".into(),
    ];
    for query in always.into_iter().chain(samples(&audit_query, 30)) {
        let answer = browser.get(&format!("{CONSOLE}audit?{query}")).await;
        let what = format!("the audit log with ?{query:.200}");
        if answer.status == StatusCode::OK {
            assert!(is_html(&answer), "{what}");
            assert!(
                answer.body.contains("id=\"total\""),
                "{what}: {}",
                answer.body
            );
        } else {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}");
            assert_refused_with_a_message(&answer, &what);
            assert!(answer.body.contains("class=\"field-error\""), "{what}");
        }
        tried += 1;
    }
    assert_eq!(
        snapshot(&api, &admin).await,
        before,
        "the pages changed something"
    );
    eprintln!("FIGURES console hostile inputs tried: {tried}, left out as valid: {skipped}");
    assert!(tried > 200, "{tried}");
    // Still signed in, with the same session.
    let list = browser.get(CONSOLE).await;
    assert!(!list.is_sign_in_page(), "still signed in");
    assert_eq!(list.csrf(), csrf);
}

/// Text as the console's templates show it (minijinja's HTML escaping, `/` included).
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

async fn display_names_of_any_text_are_stored_as_typed_and_shown_as_text(db: TestDb) {
    let (server, console) = start(db, "").await;
    let admin = make_admin(&server, "alice", "alice-pw").await;
    server.create_user("bob", "bob-pw").await;
    let script = "<script>alert(1)</script>";
    let (status, answer) = server
        .call(
            "PUT",
            &format!("/_synapse/admin/v2/users/{BOB}"),
            Some(&admin),
            Some(json!({ "displayname": script })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let mut browser = Console::new(&console);
    browser.sign_in("alice", "alice-pw").await;
    let user_page = format!("{CONSOLE}user?id={}", percent_encoded(BOB));
    // The audit log records that a display name changed, not the name: no markup there either.
    for (path, shows_it) in [
        (CONSOLE.to_owned(), true),
        (format!("{CONSOLE}?q=bob"), true),
        (user_page.clone(), true),
        (format!("{CONSOLE}audit"), false),
        (format!("{CONSOLE}audit?user=bob"), false),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(!page.body.contains(script), "{path}: markup: {}", page.body);
        assert!(
            !page.body.contains("<script>"),
            "{path}: a script element: {}",
            page.body
        );
        if shows_it {
            assert!(
                page.body.contains(&escaped(script)),
                "{path}: the name as text: {}",
                page.body
            );
        }
    }

    // Display names of any text typed on the create form: stored as typed (trimmed, as the
    // Admin API stores them), shown as text; or refused with the field's message.
    let mut created = 0;
    let always = [
        "\0".to_owned(),
        "Ann\0".into(),
        "x".repeat(3000),
        "é".repeat(257),
        "é".repeat(256),
        "  \u{202e}<b>Ann</b> & 'co' / \"x\"\u{1}\u{7f}  ".into(),
    ];
    let names = always.into_iter().chain(samples(&field_text(), 10));
    for (i, name) in names.enumerate() {
        let what = format!(
            "display name {:?}",
            name.chars().take(60).collect::<String>()
        );
        let csrf = browser.get(&format!("{CONSOLE}new-user")).await.csrf();
        let user = format!("shown{i}");
        let answer = browser
            .post(
                &format!("{CONSOLE}new-user"),
                &[
                    ("csrf", &csrf),
                    ("user", &user),
                    ("displayname", &name),
                    ("password_choice", "generate"),
                ],
            )
            .await;
        assert!(!answer.status.is_server_error(), "{what}: {}", answer.body);
        let user_id = format!("@{user}:example.com");
        let stored = server.store().get_user(&user_id).await.unwrap();
        if answer.status != StatusCode::OK {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}");
            assert_refused_with_a_message(&answer, &what);
            assert!(
                answer.body.contains("id=\"displayname-error\""),
                "{what}: {}",
                answer.body
            );
            assert!(stored.is_none(), "{what}: created all the same");
            continue;
        }
        created += 1;
        let stored = stored.expect("created");
        let typed = name.trim();
        if typed.is_empty() {
            continue; // the localpart, as Synapse names a new account
        }
        assert_eq!(stored.displayname.as_deref(), Some(typed), "{what}");
        let page = browser
            .get(&format!("{CONSOLE}user?id={}", percent_encoded(&user_id)))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{what}");
        assert!(page.body.contains(&escaped(typed)), "{what}: {}", page.body);
        let list = browser
            .get(&format!("{CONSOLE}?q={}", percent_encoded(&user)))
            .await;
        assert!(list.body.contains(&escaped(typed)), "{what}: {}", list.body);
    }
    eprintln!("FIGURES console display names created: {created}");
}
