//! `m.login.application_service` on homekey's `/login` beside the real Synapse 1.163.2:
//! Synapse serves no `/login` then, so a bridge logs its bot in on homekey (for an encryption
//! device), with the `as_token` of a registration file both read (Synapse's
//! `app_service_config_files`). The bot is Synapse's user (registered through Synapse's
//! appservice `/register`); its new token works on Synapse through the README's nginx config.

use std::path::Path;
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::Server;
use crate::support::{TestDb, synapse_venv};
use crate::synapse_interop::Synapse;
use crate::synapse_proxy::{Proxy, call, client, program};
use crate::synapse_queue::BesideSynapse;

pub(crate) const AS_TOKEN: &str = "as-token-login-0123456789abcdefghij";
const HS_TOKEN: &str = "hs-token-login-0123456789abcdefghij";

/// A bridge's registration file (`bridge_*` users, exclusive; its sender `bridgebot`), and
/// the YAML naming it for both homeserver.yaml and homekey's config.
pub(crate) fn write_registration(dir: &Path) -> String {
    let registration = dir.join("bridge.yaml");
    std::fs::write(
        &registration,
        format!(
            "id: bridge\nurl: null\nas_token: {AS_TOKEN}\nhs_token: {HS_TOKEN}\n\
             sender_localpart: bridgebot\nrate_limited: false\n\
             namespaces:\n  users:\n    - exclusive: true\n      regex: '@bridge_.*:example\\.com'\n\
             \x20 aliases: []\n  rooms: []\n"
        ),
    )
    .unwrap();
    // Another, with MSC4190 device management: it makes its devices itself.
    let msc4190 = dir.join("msc4190.yaml");
    std::fs::write(
        &msc4190,
        format!(
            "id: msc4190\nurl: null\nas_token: {MSC4190_TOKEN}\nhs_token: hs-token-msc4190-0123456789\n\
             sender_localpart: msc4190bot\nio.element.msc4190: true\n\
             namespaces:\n  users:\n    - exclusive: true\n      regex: '@msc4190_.*:example\\.com'\n"
        ),
    )
    .unwrap();
    format!(
        "app_service_config_files: ['{}', '{}']\n",
        registration.display(),
        msc4190.display()
    )
}

const MSC4190_TOKEN: &str = "as-token-msc4190-0123456789abcdefghij";

pub(crate) fn as_login(user: &str) -> Value {
    json!({
        "type": "m.login.application_service",
        "identifier": {"type": "m.id.user", "user": user},
        "initial_device_display_name": "Bridge encryption",
    })
}

/// The bridge registers `localpart` in Synapse with its `as_token`, as bridges do.
async fn register_bot(http: &reqwest::Client, register_url: &str, localpart: &str) {
    let (status, body) = call(
        http,
        "POST",
        register_url,
        Some(AS_TOKEN),
        Some(json!({
            "type": "m.login.application_service",
            "username": localpart,
            "inhibit_login": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// What every database shows: the bot logs in with the `as_token`, its token works on
/// Synapse (`whoami`, `/sync`), and Synapse's refusals. `at` makes the URL of a path (through
/// the proxy, or straight to homekey for `/login` and to Synapse for the rest).
async fn bot_logs_in_and_the_refusals(
    http: &reqwest::Client,
    login_url: &str,
    synapse_at: &dyn Fn(&str) -> String,
    synapse: &Synapse,
    homekey: &Server,
) -> Vec<String> {
    register_bot(
        http,
        &synapse_at("/_matrix/client/v3/register"),
        "bridge_bot",
    )
    .await;

    let (status, body) = call(http, "GET", login_url, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["flows"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "m.login.application_service"})),
        "{body}"
    );

    let (status, body) = call(
        http,
        "POST",
        login_url,
        Some(AS_TOKEN),
        Some(as_login("bridge_bot")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", homekey.log());
    assert_eq!(body["user_id"], "@bridge_bot:example.com", "{body}");
    assert_eq!(body["home_server"], "example.com", "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let device = body["device_id"].as_str().unwrap().to_owned();

    // Synapse has the device before the answer, and takes the token at once.
    let whoami = synapse_at("/_matrix/client/v3/account/whoami");
    let (status, body) = call(http, "GET", &whoami, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"user_id": "@bridge_bot:example.com", "device_id": device, "is_guest": false})
    );
    let (status, body) = call(
        http,
        "GET",
        &synapse_at("/_matrix/client/v3/sync?timeout=0"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["next_batch"].is_string(), "{body}");
    let (status, body) = call(
        http,
        "GET",
        &synapse_at("/_matrix/client/v3/devices"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["devices"][0]["display_name"], "Bridge encryption",
        "{body}"
    );

    // `?access_token=`, as Synapse reads it, and a full user ID: a second device.
    let with_query = format!("{login_url}?access_token={AS_TOKEN}");
    let (status, body) = call(
        http,
        "POST",
        &with_query,
        None,
        Some(as_login("@bridge_bot:example.com")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(body["device_id"], json!(device));
    assert_eq!(
        call(http, "GET", &whoami, Some(&second), None).await.0,
        StatusCode::OK
    );
    // The bot logs that device out on homekey: Synapse no longer has it, nor takes its token.
    let logout = login_url.replace("/login", "/logout");
    let (status, body) = call(http, "POST", &logout, Some(&second), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(http, "GET", &whoami, Some(&second), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = call(http, "GET", &whoami, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Synapse's refusals, in its words.
    let refused =
        |status: StatusCode, errcode: &str, error: &str| (status, json!(errcode), json!(error));
    let answer = |(status, body): (StatusCode, Value)| {
        (status, body["errcode"].clone(), body["error"].clone())
    };
    // A NUL in the device's ID or name (which Synapse's PostgreSQL cannot store): refused,
    // where Synapse answers a 500.
    for (field, says) in [
        ("device_id", "device_id may not contain a NUL character"),
        (
            "initial_device_display_name",
            "initial_device_display_name may not contain a NUL character",
        ),
    ] {
        let mut body = as_login("bridge_bot");
        body[field] = json!("a\u{0}b");
        let nul = call(http, "POST", login_url, Some(AS_TOKEN), Some(body)).await;
        assert_eq!(
            answer(nul),
            refused(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", says)
        );
    }
    // A user outside the namespaces.
    let outside = call(
        http,
        "POST",
        login_url,
        Some(AS_TOKEN),
        Some(as_login("alice")),
    )
    .await;
    assert_eq!(
        answer(outside),
        refused(StatusCode::FORBIDDEN, "M_FORBIDDEN", "Invalid access_token")
    );
    // A wrong as_token.
    let wrong = call(
        http,
        "POST",
        login_url,
        Some("as-token-wrong"),
        Some(as_login("bridge_bot")),
    )
    .await;
    assert_eq!(
        answer(wrong),
        refused(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "Unrecognised access token"
        )
    );
    // No token.
    let none = call(http, "POST", login_url, None, Some(as_login("bridge_bot"))).await;
    assert_eq!(
        answer(none),
        refused(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "Missing access token"
        )
    );
    // A user's own token is not an application service's.
    let (status, body) = call(
        http,
        "POST",
        login_url,
        Some(&token),
        Some(as_login("bridge_bot")),
    )
    .await;
    assert_eq!(
        answer((status, body)),
        refused(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "This login method is only valid for application services"
        )
    );
    // The identifier as Synapse reads it: the deprecated top-level `user` is not read.
    let top_level = json!({"type": "m.login.application_service", "user": "bridge_bot"});
    let legacy = call(http, "POST", login_url, Some(AS_TOKEN), Some(top_level)).await;
    assert_eq!(
        answer(legacy),
        refused(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "Invalid identifier in login submission"
        )
    );
    // An application service with MSC4190 device management may not log in.
    let msc4190 = call(
        http,
        "POST",
        login_url,
        Some(MSC4190_TOKEN),
        Some(as_login("msc4190_bot")),
    )
    .await;
    assert_eq!(
        answer(msc4190),
        refused(
            StatusCode::BAD_REQUEST,
            "M_APPSERVICE_LOGIN_UNSUPPORTED",
            "This appservice has MSC4190 enabled, so appservice login cannot be used."
        )
    );
    // A user in the namespace that Synapse does not have: no device no token could use.
    let unknown = call(
        http,
        "POST",
        login_url,
        Some(AS_TOKEN),
        Some(as_login("bridge_nobody")),
    )
    .await;
    assert_eq!(
        answer(unknown),
        refused(StatusCode::FORBIDDEN, "M_FORBIDDEN", "Unknown user")
    );

    // The application service's own user (its sender_localpart), registered as bridges do.
    register_bot(
        http,
        &synapse_at("/_matrix/client/v3/register"),
        "bridgebot",
    )
    .await;
    let (status, body) = call(
        http,
        "POST",
        login_url,
        Some(AS_TOKEN),
        Some(as_login("bridgebot")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sender = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = call(http, "GET", &whoami, Some(&sender), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@bridgebot:example.com");

    // Synapse deactivates the bot (its Admin API, straight to Synapse): homekey asks Synapse
    // at the next login and refuses it, as Synapse would.
    let root = homekey.admin_token("root", "root-pw").await;
    let deactivate = synapse.url("/_synapse/admin/v1/deactivate/@bridge_bot:example.com");
    let (status, body) = call(http, "POST", &deactivate, Some(&root), Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    let (status, body) = call(
        http,
        "POST",
        login_url,
        Some(AS_TOKEN),
        Some(as_login("bridge_bot")),
    )
    .await;
    assert_eq!(
        answer((status, body)),
        refused(
            StatusCode::FORBIDDEN,
            "M_USER_DEACTIVATED",
            "This account has been deactivated"
        )
    );

    vec![token, second, sender, root]
}

fn assert_no_secret_in(log: &str, tokens: &[String]) {
    assert!(!log.contains(AS_TOKEN), "the as_token reached the log");
    assert!(!log.contains(HS_TOKEN));
    for token in tokens {
        assert!(
            !log.contains(token.as_str()),
            "an issued token reached the log"
        );
    }
}

#[tokio::test]
async fn through_nginx_a_bridge_logs_its_bot_in_with_its_as_token() {
    let test = "through_nginx_a_bridge_logs_its_bot_in_with_its_as_token";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let shared = write_registration(dir.path());
    let beside = BesideSynapse::start_sharing(venv, TestDb::sqlite().await, None, &shared).await;
    beside.homekey.create_user("alice", "alice-pw").await;
    let http = client();
    let proxy = Proxy::nginx(&nginx, &beside.synapse, &beside.homekey, &http).await;
    let at = |path: &str| proxy.url(path);
    let tokens = bot_logs_in_and_the_refusals(
        &http,
        &at("/_matrix/client/v3/login"),
        &at,
        &beside.synapse,
        &beside.homekey,
    )
    .await;
    assert!(
        beside
            .homekey
            .wait_for_log("path=/_matrix/client/v3/login status=200")
    );

    // Synapse locks the bot (its Admin API, straight to Synapse): homekey's reconciliation
    // leaves Synapse's user as Synapse keeps it.
    let root = tokens.last().unwrap();
    let bot = beside
        .synapse
        .url("/_synapse/admin/v2/users/@bridgebot:example.com");
    let (status, body) = call(
        &http,
        "PUT",
        &bot,
        Some(root),
        Some(json!({"locked": true})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{body}\n{}",
        beside.synapse.log_tail()
    );
    let out = beside.cli(&["synapse", "reconcile", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = call(&http, "GET", &bot, Some(root), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["locked"], true, "{body}");

    assert_no_secret_in(&beside.homekey.log(), &tokens);
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn beside_synapse_on_postgres_a_bridge_logs_its_bot_in_with_its_as_token() {
    let test = "beside_synapse_on_postgres_a_bridge_logs_its_bot_in_with_its_as_token";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shared = write_registration(dir.path());
    let beside = BesideSynapse::start_sharing(venv, db, None, &shared).await;
    beside.homekey.create_user("alice", "alice-pw").await;
    let http = client();
    let synapse_at = |path: &str| beside.synapse.url(path);
    let tokens = bot_logs_in_and_the_refusals(
        &http,
        &beside.homekey.url("/_matrix/client/v3/login"),
        &synapse_at,
        &beside.synapse,
        &beside.homekey,
    )
    .await;
    assert_no_secret_in(&beside.homekey.log(), &tokens);
}

/// A standalone homekey has no application services: the key is Synapse's business there,
/// the flow is not offered and an `as_token` is a token homekey does not know.
#[tokio::test]
async fn without_synapse_app_service_config_files_give_no_appservice_login() {
    let dir = tempfile::tempdir().unwrap();
    let shared = write_registration(dir.path());
    let homekey = Server::start(TestDb::sqlite().await, &shared).await;
    let (status, body) = homekey
        .call("GET", "/_matrix/client/v3/login", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"flows": [{"type": "m.login.password"}]}));
    let (status, body) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/login",
            Some(AS_TOKEN),
            Some(as_login("bridge_bot")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN_TOKEN", "{body}");
}
