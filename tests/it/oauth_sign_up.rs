//! `prompt=create` (Element X's and Element Web's "Create account") on SQLite and
//! PostgreSQL: the discovery document offers it exactly when sign-up is on; the
//! authorization shows the sign-up page instead of the sign-in page (the token's field only
//! when required, the terms only when set), or, with sign-up off, the sign-in page with a
//! notice. Over HTTP beside the real Synapse: every bad form comes back with its message and
//! makes nothing; a good one makes the account (the token's use completed), signs the
//! browser in, and the consent, the code, the token grant and Synapse's whoami follow. In a
//! real chromium (axe-core, screenshots `$CARGO_TARGET_DIR/account-page/sign-up-*.png`):
//! the page filled in lands on the client's redirect URI with a code.

use fantoccini::Locator;
use fantoccini::error::CmdError;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::account_page::{
    Chromium, DESKTOP, PHONE, Tour, axe_core, scheme_applied, synapse_section, tab_through,
};
use crate::oauth_grants::{Browser, Client, VERIFIER, allow, element_x};
use crate::oauth_pages::{Site, arrive, landed_on, param, query_of, text, web_app};
use crate::server::{PEPPER, Server, server_tests};
use crate::support::{TestDb, synapse_venv};
use crate::synapse_queue::BesideSynapse;
use homekey::store::{AuditFilter, RegistrationToken};

server_tests!(
    prompt_create_is_offered_only_with_sign_up_and_otherwise_shows_the_sign_in_with_a_notice,
);

const AUTHORIZE: &str = "/_homekey/oauth2/authorize";
const SIGN_UP: &str = "/_homekey/oauth2/sign-up";
const PASSWORD: &str = "a long sign-up password";
const NO_SIGN_UP_NOTICE: &str =
    "This server does not offer sign-up; sign in with an existing account.";

/// Sign-up with tokens and terms, a password policy, one account per address.
fn sign_up_with_tokens_and_terms() -> String {
    format!(
        "enable_registration: true\n\
         registration_requires_token: true\n\
         rc_registration: {{per_second: 0.001, burst_count: 1}}\n\
         rc_registration_token_validity: {{per_second: 1000, burst_count: 1000}}\n\
         branding: {{tos_uri: 'https://example.com/terms'}}\n\
         password_config:\n  pepper: {PEPPER}\n  policy:\n    enabled: true\n    \
         minimum_length: 12\n"
    )
}

async fn discovery(server: &Server) -> Value {
    let (status, body) = server
        .call("GET", "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn token(server: &Server, text: &str) -> RegistrationToken {
    server
        .store()
        .registration_token(text)
        .await
        .unwrap()
        .unwrap()
}

async fn user_count(server: &Server) -> u64 {
    server
        .store()
        .list_users(&Default::default(), 0, 1)
        .await
        .unwrap()
        .total as u64
}

/// What a page escapes, back as a browser reads it.
fn unescaped(html: &str) -> String {
    html.replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
}

/// The `href` of the link `id` on `html`, as a browser follows it.
fn link(html: &str, id: &str) -> String {
    let needle = format!("id=\"{id}\" href=\"");
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no link {id}: {html}"))
        + needle.len();
    let end = html[start..].find('"').unwrap() + start;
    unescaped(&html[start..end])
}

/// The authorization `query` with `prompt=create`.
fn creating(client: &Client, device: &str) -> String {
    client.query(device, &[("prompt", "create")])
}

/// The authorization a browser opens for `web_app` with `prompt=create`, asking for device
/// `device`, with a fixed PKCE challenge (state `the-state`).
pub(crate) fn browser_sign_up_query(web_app: &str, redirect_uri: &str, device: &str) -> String {
    let scope = format!("urn:matrix:client:api:* urn:matrix:client:device:{device}");
    serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", web_app),
        ("redirect_uri", redirect_uri),
        ("scope", scope.as_str()),
        ("state", "the-state"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
        ("prompt", "create"),
    ])
    .unwrap()
}

/// Without a Synapse (no page here needs one): sign-up off, then on without token or terms.
async fn prompt_create_is_offered_only_with_sign_up_and_otherwise_shows_the_sign_in_with_a_notice(
    db: TestDb,
) {
    let shared = db.share().await;
    let off = Server::start(db, &synapse_section("https://matrix.example.com/")).await;
    let doc = discovery(&off).await;
    assert!(doc.get("prompt_values_supported").is_none(), "{doc}");
    let client = Client::register(&off, element_x()).await;
    let mut browser = Browser::new();
    let page = browser
        .get(&off, &format!("{AUTHORIZE}?{}", creating(&client, "D1")))
        .await;
    // Not an error sent back to the client: the sign-in page, saying why.
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("Sign in to continue to"),
        "{}",
        page.html
    );
    assert!(page.html.contains(NO_SIGN_UP_NOTICE), "{}", page.html);
    assert!(!page.html.contains("sign-up-instead"), "{}", page.html);
    // A sign-up posted anyway makes nothing: back to the authorization.
    let users = user_count(&off).await;
    let posted = browser
        .post(
            &off,
            SIGN_UP,
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("username", "mallory"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    assert!(posted.location.unwrap().starts_with(AUTHORIZE));
    assert_eq!(user_count(&off).await, users);

    let on = Server::start(
        shared,
        &format!(
            "{}enable_registration: true\nenable_registration_without_verification: true\n",
            synapse_section("https://matrix.example.com/")
        ),
    )
    .await;
    let doc = discovery(&on).await;
    assert_eq!(doc["prompt_values_supported"], json!(["create"]), "{doc}");
    let mut browser = Browser::new();
    let query = creating(&client, "D2");
    let page = browser.get(&on, &format!("{AUTHORIZE}?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("Create an account to continue to"),
        "{}",
        page.html
    );
    for present in [
        "id=\"username\"",
        "id=\"password\"",
        "id=\"password_again\"",
        "not starting with",
    ] {
        assert!(page.html.contains(present), "{present}: {}", page.html);
    }
    // No token asked, no terms to accept.
    assert!(!page.html.contains("registration_token"), "{}", page.html);
    assert!(!page.html.contains("id=\"terms\""), "{}", page.html);
    // "Sign in instead": the sign-in page of the same authorization, and back.
    let sign_in = browser.get(&on, &link(&page.html, "sign-in-instead")).await;
    assert_eq!(sign_in.status, StatusCode::OK, "{}", sign_in.html);
    assert!(
        sign_in.html.contains("Sign in to continue to"),
        "{}",
        sign_in.html
    );
    assert!(!sign_in.html.contains(NO_SIGN_UP_NOTICE));
    assert_eq!(sign_in.field("request"), client.query("D2", &[]));
    let again = browser
        .get(&on, &link(&sign_in.html, "sign-up-instead"))
        .await;
    assert!(
        again.html.contains("Create an account to continue to"),
        "{}",
        again.html
    );
}

/// A form's fields, as posted.
type Fields = Vec<(&'static str, &'static str)>;

/// Posts the sign-up form of `page` with `fields` (the CSRF token and request added).
async fn post_sign_up(
    server: &Server,
    browser: &mut Browser,
    page: &crate::oauth_grants::Answer,
    fields: &[(&str, &str)],
) -> crate::oauth_grants::Answer {
    let csrf = page.field("csrf");
    let request = page.field("request");
    let mut form = vec![("csrf", csrf.as_str()), ("request", request.as_str())];
    form.extend_from_slice(fields);
    browser.post(server, SIGN_UP, &form).await
}

async fn start(test: &str, db: Option<TestDb>, public_baseurl: &str) -> Option<BesideSynapse> {
    let venv = synapse_venv(test)?;
    let db = db?;
    Some(
        BesideSynapse::start_with_homekey_config(
            venv,
            db,
            public_baseurl,
            &format!(
                "{}oauth:\n  allow_insecure_client_uris: true\n",
                sign_up_with_tokens_and_terms()
            ),
        )
        .await,
    )
}

#[tokio::test]
async fn sqlite_a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token() {
    let test = "sqlite_a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token";
    if let Some(beside) = start(
        test,
        Some(TestDb::sqlite().await),
        "https://matrix.example.com/",
    )
    .await
    {
        a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token(beside).await;
    }
}

#[tokio::test]
async fn postgres_a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token() {
    let test = "postgres_a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token";
    if let Some(beside) = start(
        test,
        TestDb::postgres(test).await,
        "https://matrix.example.com/",
    )
    .await
    {
        a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token(beside).await;
    }
}

async fn a_new_user_signs_up_on_the_authorization_and_the_client_gets_their_token(
    beside: BesideSynapse,
) {
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    let doc = discovery(homekey).await;
    assert_eq!(doc["prompt_values_supported"], json!(["create"]), "{doc}");
    homekey.create_user("alice", "alice-pw").await;
    let store = homekey.store();
    assert!(
        store
            .create_registration_token("invite-bob", Some(1), None, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .create_registration_token("used-up", Some(0), None, None)
            .await
            .unwrap()
    );
    let client = Client::register(homekey, element_x()).await;
    let mut browser = Browser::new();
    let query = creating(&client, "SIGNUPDEVICE");
    let page = browser.get(homekey, &format!("{AUTHORIZE}?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("Create an account to continue to"));
    assert!(page.html.contains("Element X"));
    for present in [
        "id=\"registration_token\"",
        "id=\"terms\"",
        "href=\"https:&#x2f;&#x2f;example.com&#x2f;terms\"",
        "id=\"password-rules\"",
    ] {
        assert!(page.html.contains(present), "{present}: {}", page.html);
    }
    let rules = page.html.split("id=\"password-rules\">").nth(1).unwrap();
    assert!(rules.starts_with("It must have at least 12"), "{rules}");

    let good = |name: &'static str| {
        vec![
            ("username", name),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
            ("registration_token", "invite-bob"),
            ("terms", "on"),
        ]
    };
    let but = |name: &'static str, field: &'static str, value: &'static str| {
        let mut form = good(name);
        form.retain(|(key, _)| *key != field);
        if !value.is_empty() || field == "registration_token" {
            form.push((field, value));
        }
        form
    };
    let users = user_count(homekey).await;
    let refusals: Vec<(Fields, StatusCode, &str, &str)> = vec![
        (
            but("Alice", "username", "Alice"),
            StatusCode::BAD_REQUEST,
            "That user name is taken.",
            "username",
        ),
        (
            but("_bob", "username", "_bob"),
            StatusCode::BAD_REQUEST,
            "That user name cannot be used: it may not start with _.",
            "username",
        ),
        (
            but("12345", "username", "12345"),
            StatusCode::BAD_REQUEST,
            "That user name cannot be used: it may not be all digits.",
            "username",
        ),
        (
            but("bob smith", "username", "bob smith"),
            StatusCode::BAD_REQUEST,
            "That user name cannot be used: it may have only lowercase letters, digits and . _ = - / +.",
            "username",
        ),
        (
            but("bob", "password_again", "another long password"),
            StatusCode::BAD_REQUEST,
            "The two passwords differ.",
            "password_again",
        ),
        (
            vec![
                ("username", "bob"),
                ("password", "short"),
                ("password_again", "short"),
                ("registration_token", "invite-bob"),
                ("terms", "on"),
            ],
            StatusCode::BAD_REQUEST,
            "The password is too weak:",
            "password",
        ),
        (
            but("bob", "registration_token", ""),
            StatusCode::BAD_REQUEST,
            "Enter the registration token you were given.",
            "registration_token",
        ),
        (
            but("bob", "registration_token", "no-such-token"),
            StatusCode::BAD_REQUEST,
            "That registration token is not valid, or it has been used up.",
            "registration_token",
        ),
        (
            but("bob", "registration_token", "used-up"),
            StatusCode::BAD_REQUEST,
            "That registration token is not valid, or it has been used up.",
            "registration_token",
        ),
        (
            but("bob", "registration_token", "nul\u{0}token"),
            StatusCode::BAD_REQUEST,
            "That registration token is not valid, or it has been used up.",
            "registration_token",
        ),
        (
            but("bob", "terms", ""),
            StatusCode::BAD_REQUEST,
            "Accept the terms of service to create an account.",
            "terms",
        ),
    ];
    for (form, status, message, field) in refusals {
        let answer = post_sign_up(homekey, &mut browser, &page, &form).await;
        assert_eq!(answer.status, status, "{form:?}: {}", answer.html);
        assert!(
            answer.html.contains(&format!("id=\"{field}-error\"")),
            "{form:?}: not beside {field}: {}",
            answer.html
        );
        let shown = unescaped(&answer.html);
        assert!(shown.contains(message), "{form:?}: {}", answer.html);
        // The fields kept, never the passwords.
        let name = form.iter().find(|(k, _)| *k == "username").unwrap().1;
        assert_eq!(answer.field("username"), name, "{form:?}");
        let given_token = form
            .iter()
            .find(|(k, _)| *k == "registration_token")
            .map_or("", |(_, v)| *v);
        assert_eq!(answer.field("registration_token"), given_token);
        assert_eq!(
            answer
                .html
                .contains("id=\"terms\" name=\"terms\" value=\"on\" required checked"),
            form.iter().any(|(k, _)| *k == "terms"),
            "{form:?}"
        );
        for (key, value) in &form {
            if key.starts_with("password") && value.len() > 8 {
                assert!(!answer.html.contains(value), "{form:?}: a password shown");
            }
        }
        assert_eq!(
            user_count(homekey).await,
            users,
            "{form:?}: an account made"
        );
        let invite = token(homekey, "invite-bob").await;
        assert_eq!((invite.pending, invite.completed), (0, 0), "{form:?}");
        assert_eq!(token(homekey, "used-up").await.completed, 0, "{form:?}");
    }
    // A form that is not text once decoded: an error page, never a server error.
    let response = homekey
        .http
        .post(homekey.url(SIGN_UP))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("csrf=x&username=%FF&password=%FE")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("not valid text"));
    // Without the page's CSRF token: refused, nothing made.
    let mut forged = good("bob");
    forged.insert(0, ("csrf", "not-the-token"));
    forged.push(("request", &query));
    let answer = browser.post(homekey, SIGN_UP, &forged).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.html);
    assert!(
        answer.html.contains("This form had expired"),
        "{}",
        answer.html
    );
    assert_eq!(user_count(homekey).await, users);
    assert!(!homekey.log().contains(PASSWORD));
    assert!(!homekey.log().contains("invite-bob"));

    // The good form: the account, the browser signed in, back to the authorization.
    let made = post_sign_up(homekey, &mut browser, &page, &good("Bob")).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert_eq!(
        made.location.as_deref(),
        Some(format!("{AUTHORIZE}?{query}").as_str())
    );
    assert_eq!(user_count(homekey).await, users + 1);
    let bob = store.get_user("@bob:example.com").await.unwrap().unwrap();
    assert!(!bob.admin);
    let invite = token(homekey, "invite-bob").await;
    assert_eq!((invite.pending, invite.completed), (0, 1));
    let records = store
        .list_audit(&AuditFilter {
            target: Some("@bob:example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (records[0].actor.as_str(), records[0].action.as_str()),
        ("sign-up", "create_user")
    );
    let details = records[0].details.to_string();
    assert!(details.contains("registration-token:"), "{details}");
    assert!(details.contains("client_address"), "{details}");
    assert!(!details.contains("invite-bob"), "{details}");

    // The consent, the code, the token grant: Synapse knows the new user and the device.
    let code = allow(homekey, &mut browser, &query).await;
    let (status, tokens) = client.exchange(homekey, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, body) = synapse.whoami(access).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["user_id"], "@bob:example.com");
    assert_eq!(body["device_id"], "SIGNUPDEVICE");
    // Once signed in, prompt=create goes on as the user (the consent page).
    let signed_in = browser.get(homekey, &format!("{AUTHORIZE}?{query}")).await;
    assert!(signed_in.html.contains("Allow"), "{}", signed_in.html);

    // rc_registration: one account from this address; another is refused, makes nothing.
    assert!(
        store
            .create_registration_token("invite-carol", Some(1), None, None)
            .await
            .unwrap()
    );
    let mut other = Browser::new();
    let page = other
        .get(homekey, &format!("{AUTHORIZE}?{}", creating(&client, "D3")))
        .await;
    let mut form = good("carol");
    form.retain(|(k, _)| *k != "registration_token");
    form.push(("registration_token", "invite-carol"));
    let limited = post_sign_up(homekey, &mut other, &page, &form).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.html
    );
    assert!(
        limited.html.contains("Too many sign-ups from your address"),
        "{}",
        limited.html
    );
    assert_eq!(limited.field("username"), "carol");
    assert_eq!(user_count(homekey).await, users + 1);
    let carol = token(homekey, "invite-carol").await;
    assert_eq!((carol.pending, carol.completed), (0, 0));
}

/// Sign-up with tokens, the rate limits out of the way.
const SIGN_UP_RACING: &str = "enable_registration: true\n\
     registration_requires_token: true\n\
     rc_registration: {per_second: 1000, burst_count: 1000}\n\
     rc_registration_token_validity: {per_second: 1000, burst_count: 1000}\n";

#[tokio::test]
async fn sqlite_sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account() {
    let test = "sqlite_sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account";
    if let Some(venv) = synapse_venv(test) {
        let db = TestDb::sqlite().await;
        let beside = BesideSynapse::start_with_homekey_config(
            venv,
            db,
            "https://matrix.example.com/",
            SIGN_UP_RACING,
        )
        .await;
        sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account(beside).await;
    }
}

#[tokio::test]
async fn postgres_sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account() {
    let test = "postgres_sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account";
    if let (Some(venv), Some(db)) = (synapse_venv(test), TestDb::postgres(test).await) {
        let beside = BesideSynapse::start_with_homekey_config(
            venv,
            db,
            "https://matrix.example.com/",
            SIGN_UP_RACING,
        )
        .await;
        sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account(beside).await;
    }
}

/// Eight browsers post the sign-up page at once with the same one-use token (each passes the
/// token's first check): the statement that spends and completes the use lets exactly one
/// through; the others get the page again with the token's message, and nothing of theirs
/// is made.
async fn sign_up_pages_racing_for_a_tokens_last_use_make_exactly_one_account(
    beside: BesideSynapse,
) {
    const RACERS: usize = 8;
    let homekey = &beside.homekey;
    assert!(
        homekey
            .store()
            .create_registration_token("last-use", Some(1), None, None)
            .await
            .unwrap()
    );
    let client = Client::register(homekey, element_x()).await;
    let users = user_count(homekey).await;
    let mut ready = Vec::new();
    for n in 0..RACERS {
        let mut browser = Browser::new();
        let page = browser
            .get(
                homekey,
                &format!("{AUTHORIZE}?{}", creating(&client, &format!("R{n}"))),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.html);
        ready.push((browser, page, format!("racer{n}")));
    }
    // Every racer posts at once, from a task of its own.
    let beside = std::sync::Arc::new(beside);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut racing = tokio::task::JoinSet::new();
    for (mut browser, page, name) in ready {
        let (beside, barrier) = (beside.clone(), barrier.clone());
        racing.spawn(async move {
            let (csrf, request) = (page.field("csrf"), page.field("request"));
            let form = [
                ("csrf", csrf.as_str()),
                ("request", request.as_str()),
                ("username", name.as_str()),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
                ("registration_token", "last-use"),
            ];
            barrier.wait().await;
            browser.post(&beside.homekey, SIGN_UP, &form).await
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = racing.join_next().await {
        answers.push(done.unwrap());
    }
    let homekey = &beside.homekey;
    let made: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::SEE_OTHER)
        .collect();
    assert_eq!(
        made.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|a| a.status != StatusCode::SEE_OTHER) {
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
        assert!(
            refused
                .html
                .contains("That registration token is not valid, or it has been used up."),
            "{}",
            refused.html
        );
    }
    assert_eq!(user_count(homekey).await, users + 1);
    let spent = token(homekey, "last-use").await;
    assert_eq!((spent.pending, spent.completed), (0, 1));
}

/// The sign-up page in chromium: axe-core finds no serious or critical violation at a
/// desktop's and a phone's width (the form, and the form refused), and the filled-in page
/// leads through the consent to the client's redirect URI with a code.
#[tokio::test]
async fn in_a_real_browser_the_sign_up_page_passes_axe_core_and_lands_on_the_client() {
    let test = "in_a_real_browser_the_sign_up_page_passes_axe_core_and_lands_on_the_client";
    let axe = axe_core(test);
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let Some(dark) = Chromium::start_dark(test).await else {
        chromium.close().await;
        return;
    };
    // Plain http: the cookie is not `Secure`.
    let Some(beside) = start(test, Some(TestDb::sqlite().await), "http://127.0.0.1/").await else {
        chromium.close().await;
        dark.close().await;
        return;
    };
    let homekey = &beside.homekey;
    assert!(
        homekey
            .store()
            .create_registration_token("invite-dana", Some(1), None, None)
            .await
            .unwrap()
    );
    let site = Site::start();
    let web_app = crate::oauth_pages::register(homekey, web_app(&site)).await;
    let redirect_uri = site.url("127.0.0.1", "/cb");
    let query = browser_sign_up_query(&web_app, &redirect_uri, "DANASBROWSER");
    let client = chromium.client.clone();
    let widths = [("desktop", DESKTOP), ("phone", PHONE)];
    let mut tour = Tour {
        chromium: &chromium,
        prefix: "sign-up".into(),
        widths: &widths,
        axe: axe.as_deref(),
        problems: Vec::new(),
        checked: 0,
    };
    let fill = |name: &'static str, again: &'static str| {
        let client = client.clone();
        async move {
            for (id, value) in [("password", PASSWORD), ("password_again", again)] {
                client.find(Locator::Id(id)).await?.send_keys(value).await?;
            }
            if !name.is_empty() {
                client
                    .find(Locator::Id("username"))
                    .await?
                    .send_keys(name)
                    .await?;
                client
                    .find(Locator::Id("registration_token"))
                    .await?
                    .send_keys("invite-dana")
                    .await?;
                client.find(Locator::Id("terms")).await?.click().await?;
            }
            client.find(Locator::Id("sign-up")).await?.click().await
        }
    };
    let result = async {
        client
            .goto(&homekey.url(&format!("{AUTHORIZE}?{query}")))
            .await?;
        arrive(&client, "sign-up").await?;
        assert_eq!(text(&client, "client-name").await?, "Example Web Chat");
        // Every control by keyboard, in the page's order.
        assert_eq!(
            tab_through(&client, 9).await?,
            [
                "#main",
                "username",
                "password",
                "password_again",
                "registration_token",
                "terms",
                "terms-link",
                "sign-up",
                "sign-in-instead"
            ]
        );
        tour.check("1-form").await?;
        fill("dana", "not the same password").await?;
        arrive(&client, "password_again-error").await?;
        let error = text(&client, "error").await?;
        assert!(error.contains("The two passwords differ"), "{error}");
        assert_eq!(
            client
                .find(Locator::Id("username"))
                .await?
                .prop("value")
                .await?
                .as_deref(),
            Some("dana")
        );
        tour.check("2-refused").await?;
        // The name, token and terms kept: the passwords again.
        fill("", PASSWORD).await?;
        arrive(&client, "allow").await?;
        assert_eq!(text(&client, "signed-in-as").await?, "@dana:example.com");
        tour.check("3-consent").await?;
        client.find(Locator::Id("allow")).await?.click().await?;
        let back = landed_on(&client, &site).await?;
        let sent = query_of(&back);
        assert_eq!(param(&sent, "state"), Some("the-state"), "{back}");
        assert!(param(&sent, "code").is_some(), "{back}");
        Ok::<_, CmdError>(())
    }
    .await;
    let mut problems = std::mem::take(&mut tour.problems);
    let mut checked = tour.checked;
    // The form and the form refused in the dark, as a browser preferring it shows them (its
    // own profile: not signed in).
    let mut dark_tour = Tour {
        chromium: &dark,
        prefix: "sign-up-dark".into(),
        widths: &widths,
        axe: axe.as_deref(),
        problems: Vec::new(),
        checked: 0,
    };
    let dark_result = async {
        let client = &dark.client;
        client
            .goto(&homekey.url(&format!("{AUTHORIZE}?{query}")))
            .await?;
        arrive(client, "sign-up").await?;
        dark_tour.check("1-form").await?;
        // Every field filled (the browser's own checks pass): a second sign-up from this
        // address, which `rc_registration` refuses before anything else.
        for (id, value) in [
            ("username", "_erin"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
            ("registration_token", "invite-erin"),
        ] {
            client.find(Locator::Id(id)).await?.send_keys(value).await?;
        }
        client.find(Locator::Id("terms")).await?.click().await?;
        client.find(Locator::Id("sign-up")).await?.click().await?;
        arrive(client, "error").await?;
        let error = text(client, "error").await?;
        assert!(
            error.contains("Too many sign-ups from your address"),
            "{error}"
        );
        dark_tour.check("2-refused").await?;
        let (background, prefers_dark) = scheme_applied(client).await?;
        assert!(prefers_dark);
        assert_eq!(background, "rgb(17, 19, 24)");
        Ok::<_, CmdError>(())
    }
    .await;
    problems.append(&mut dark_tour.problems);
    checked += dark_tour.checked;
    chromium.close().await;
    dark.close().await;
    result.unwrap();
    dark_result.unwrap();
    match axe {
        Some(_) => eprintln!("axe-core checked {checked} page views"),
        None => eprintln!("axe-core: SKIPPED (HOMEKEY_TEST_AXE not set); screenshots only"),
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let dana = beside.homekey.store().get_user("@dana:example.com").await;
    assert!(dana.unwrap().is_some());
}

/// Element Web's library creates an account: `getAuthMetadata` through Synapse (behind nginx)
/// offers `prompt=create`, `OAuth2.registerClient`, the authorization URL with `prompt=create`
/// opened in Chromium, where homekey's sign-up page is filled in (a registration token
/// required) and the consent allowed; `completeAuthorizationCodeGrant`, and the new user's
/// client creates a room, sends a message and syncs it back through Synapse.
#[tokio::test]
async fn matrix_js_sdk_43_creates_an_account_with_prompt_create_through_nginx() {
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use crate::oauth_clients::{
        APP, APP_HOST, Site as HttpsSite, node_22_and_js_sdk_43, wait_for_line,
    };
    use crate::synapse_proxy::{Proxy, Stopped, client, free_port, program};

    let test = "matrix_js_sdk_43_creates_an_account_with_prompt_create_through_nginx";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some((node, modules)) = node_22_and_js_sdk_43(test) else {
        return;
    };
    let app = HttpsSite::start(Some(APP_HOST)).await;
    let rules = format!(
        "--host-resolver-rules=MAP {APP_HOST} 127.0.0.1:{}",
        app.port
    );
    let flags = [rules, "--ignore-certificate-errors".to_owned()];
    let Some(chromium) = Chromium::start_with(test, &flags).await else {
        return;
    };
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/");
    let beside = BesideSynapse::start_with_homekey_config(
        venv,
        TestDb::sqlite().await,
        &public,
        "enable_registration: true\nregistration_requires_token: true\n",
    )
    .await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    assert!(
        homekey
            .store()
            .create_registration_token("invite-erin", Some(1), None, None)
            .await
            .unwrap()
    );
    let http = client();
    let proxy = Proxy::nginx_on(port, &nginx, synapse, homekey, &http).await;

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oauth_sign_up_js_sdk.mjs");
    let out = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out.path().join("stdout"), out.path().join("stderr"));
    let callbacks = out.path().join("callbacks");
    std::fs::create_dir(&callbacks).unwrap();
    let child = Command::new(&node)
        .arg(&script)
        .arg(proxy.url("/"))
        .args(["@erin:example.com", APP])
        .arg(&callbacks)
        .env("HOMEKEY_JS_SDK_DIR", &modules)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut node = Stopped(child);
    let context = || {
        format!(
            "{}\n{}\nhomekey:\n{}\nSynapse:\n{}\nnginx:\n{}\nthe app's site got: {:?}",
            std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            std::fs::read_to_string(&stderr_path).unwrap_or_default(),
            homekey.log(),
            synapse.log_tail(),
            proxy.log(),
            app.requests()
        )
    };
    let Some(url) = wait_for_line(&stdout_path, "AUTHORIZE 1 ", &mut node).await else {
        panic!("the script asked for no sign-up:\n{}", context());
    };
    let browser = chromium.client.clone();
    let signed_up = async {
        browser.goto(&url).await?;
        arrive(&browser, "sign-up").await?;
        chromium.shot("oauth-js-sdk-sign-up-1-form").await;
        for (id, value) in [
            ("username", "erin"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
            ("registration_token", "invite-erin"),
        ] {
            browser
                .find(Locator::Id(id))
                .await?
                .send_keys(value)
                .await?;
        }
        browser.find(Locator::Id("sign-up")).await?.click().await?;
        arrive(&browser, "allow").await?;
        chromium.shot("oauth-js-sdk-sign-up-2-consent").await;
        assert_eq!(text(&browser, "signed-in-as").await?, "@erin:example.com");
        browser.find(Locator::Id("allow")).await?.click().await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = browser.current_url().await?;
            if now.as_str().starts_with(APP) {
                return Ok::<_, CmdError>(now.to_string());
            }
            assert!(Instant::now() < deadline, "still at {now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    let landed = signed_up.unwrap_or_else(|e| panic!("chromium: {e}\n{}", context()));
    let file = callbacks.join("callback-1");
    std::fs::write(file.with_extension("new"), &landed).unwrap();
    std::fs::rename(file.with_extension("new"), &file).unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the js-sdk 43 script did not finish in 120 s:\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    chromium.close().await;
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    assert!(status.success(), "{}", context());
    assert!(
        stdout.contains("matrix-js-sdk: 4 passed, 0 failed, 0 skipped"),
        "{}",
        context()
    );
    let invite = token(homekey, "invite-erin").await;
    assert_eq!((invite.pending, invite.completed), (0, 1));
    eprintln!("{stdout}");
}
