//! Sign-up beside the real Synapse, through the README's nginx config: the registration token
//! made with synadm (`synadm regtok`) through the proxy, matrix-js-sdk's legacy sign-up
//! (`registerRequest` through the token stage) reaching homekey, the new user chatting on
//! Synapse at once, and an appservice's registration passed on to Synapse unchanged.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestDb, synadm_venv, synapse_venv};
use crate::synadm_interop::Synadm;
use crate::synapse_proxy::{
    AS_TOKEN, Proxy, Stopped, client, js_sdk, program, register_appservice,
};
use crate::synapse_queue::BesideSynapse;

/// Sign-up with registration tokens, on homekey only (Synapse refuses `enable_registration`
/// beside homekey).
const SIGN_UP_WITH_TOKENS: &str = "enable_registration: true\nregistration_requires_token: true\n";

#[tokio::test]
async fn beside_synapse_through_nginx_a_js_sdk_client_signs_up_with_a_synadm_token_and_chats() {
    let test =
        "beside_synapse_through_nginx_a_js_sdk_client_signs_up_with_a_synadm_token_and_chats";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(synadm_venv) = synadm_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(modules) = js_sdk(test) else {
        return;
    };
    let started = Instant::now();
    let mut beside = BesideSynapse::start_with_homekey_config(
        venv,
        TestDb::sqlite().await,
        "https://matrix.example.com/",
        SIGN_UP_WITH_TOKENS,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    register_appservice(&mut beside.synapse, dir.path()).await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    let root = homekey.admin_token("root", "root-pw").await;
    let http = client();
    let proxy = Proxy::nginx(&nginx, synapse, homekey, &http).await;

    // The operator makes a one-use invitation with synadm, through the proxy.
    let synadm = Synadm::new(&synadm_venv, &proxy.url(""), "root", &root);
    let made = synadm.ok(&[
        "regtok",
        "new",
        "--token",
        "invite-js",
        "--uses-allowed",
        "1",
    ]);
    assert_eq!(made["token"], "invite-js", "{made}");
    assert_eq!(
        (made["pending"].clone(), made["completed"].clone()),
        (json!(0), json!(0))
    );

    // matrix-js-sdk signs up with it through the proxy and chats on Synapse.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/register_js_sdk.mjs");
    let out = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out.path().join("stdout"), out.path().join("stderr"));
    let child = Command::new("node")
        .arg(&script)
        .args([&proxy.url(""), "https://matrix.example.com/", "newcomer"])
        .env("HOMEKEY_JS_SDK_DIR", &modules)
        .env("HOMEKEY_NEW_PASSWORD", "newcomer's long password")
        .env("HOMEKEY_REGISTRATION_TOKEN", "invite-js")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut node = Stopped(child);
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the js-sdk script did not finish in 180 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success() && stdout.contains("4 passed, 0 failed"),
        "{stdout}\n{stderr}\nhomekey:\n{}\nSynapse:\n{}\nnginx:\n{}",
        homekey.log(),
        synapse.log_tail(),
        proxy.log()
    );
    eprintln!("{stdout}");

    // The token's use is completed, as synadm shows it; Synapse has the user (homekey made it
    // exist there before the client got its token).
    let details = synadm.ok(&["regtok", "details", "invite-js"]);
    assert_eq!(
        (details["pending"].clone(), details["completed"].clone()),
        (json!(0), json!(1)),
        "{details}"
    );
    let (status, body) = synapse
        .get("/_synapse/admin/v2/users/@newcomer:example.com", &root)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        homekey
            .log()
            .contains("method=POST path=/_matrix/client/v3/register status=200")
    );

    // A bridge registers its user with its as_token: homekey passes it on to Synapse, which
    // makes the user (homekey never sees the appservice's token as its own).
    let answer = http
        .post(proxy.url("/_matrix/client/v3/register"))
        .bearer_auth(AS_TOKEN)
        .json(&json!({"type": "m.login.application_service", "username": "bridge_alice", "inhibit_login": true}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "{body}\nSynapse:\n{}",
        synapse.log_tail()
    );
    assert_eq!(body["user_id"], "@bridge_alice:example.com");
    let (status, _) = synapse
        .get("/_synapse/admin/v2/users/@bridge_alice:example.com", &root)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        homekey
            .store()
            .get_user("@bridge_alice:example.com")
            .await
            .unwrap()
            .is_none(),
        "the appservice's user is Synapse's alone"
    );
    // A person cannot sign up for a name in the bridge's exclusive namespace: Synapse says so
    // when homekey asks, at the availability check and at the first request.
    let (status, body) = crate::synapse_proxy::call(
        &http,
        "GET",
        &proxy.url("/_matrix/client/v3/register/available?username=bridge_bob"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::BAD_REQUEST, json!("M_EXCLUSIVE")),
        "{body}"
    );
    let (status, body) = crate::synapse_proxy::call(
        &http,
        "POST",
        &proxy.url("/_matrix/client/v3/register"),
        None,
        Some(json!({"username": "bridge_bob", "password": "a long password here"})),
    )
    .await;
    assert_eq!(
        (status, body["errcode"].clone()),
        (StatusCode::BAD_REQUEST, json!("M_EXCLUSIVE")),
        "{body}"
    );
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}
