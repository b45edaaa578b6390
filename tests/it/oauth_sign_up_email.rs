//! The sign-up page (`prompt=create`) when `registrations_require_3pid: [email]`, on SQLite
//! and PostgreSQL, over HTTP against homekey beside the real Synapse, with a real SMTP server
//! (aiosmtpd):
//! discovery offers `create`; the form asks for the address; a good form mails one code and
//! makes nothing; a wrong code shows the tries left and makes nothing; the code read from the
//! real mail makes the account with the address (it logs in by it), then the consent and the
//! client's redirect; too many wrong codes start over; an address in use or outside
//! `allowed_local_3pids` is refused on the form with no mail sent. In a real chromium
//! (axe-core, screenshots `$CARGO_TARGET_DIR/account-page/sign-up-email-*.png`): the form,
//! the code step and a wrong code, then the client's redirect URI with a code.

use fantoccini::Locator;
use fantoccini::error::CmdError;
use reqwest::StatusCode;
use serde_json::json;

use crate::account_page::{Chromium, DESKTOP, PHONE, Tour, axe_core};
use crate::oauth_pages::{Site, arrive, landed_on, param, query_of, text, web_app};

use crate::mail::{Smtp, python_with_aiosmtpd};
use crate::oauth_grants::{Browser, Client, allow, element_x};
use crate::oauth_sign_up::browser_sign_up_query;
use crate::server::Server;
use crate::support::{TestDb, free_port, synapse_venv};
use crate::synapse_queue::BesideSynapse;
use homekey::store::AuditFilter;
use homekey::threepid::Threepid;

const AUTHORIZE: &str = "/_homekey/oauth2/authorize";
const SIGN_UP: &str = "/_homekey/oauth2/sign-up";
const PASSWORD: &str = "a long sign-up password";

/// Sign-up requiring an address of example.com, the rate limits out of the way, mail to an
/// SMTP server on `smtp_port`; the test site's plain-http redirect URIs allowed; and `extra`.
fn config(smtp_port: u16, extra: &str) -> String {
    format!(
        "oauth:\n  allow_insecure_client_uris: true\n\
         enable_registration: true\n\
         registrations_require_3pid: [email]\n\
         allowed_local_3pids:\n  - medium: email\n    pattern: '.*@example\\.com'\n\
         rc_registration: {{per_second: 1000, burst_count: 1000}}\n\
         rc_3pid_validation: {{per_second: 1000, burst_count: 1000}}\n\
         {extra}{}",
        crate::mail::email_section(smtp_port, "")
    )
}

/// The six digits in a mail's text.
fn code_in(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

/// homekey beside Synapse with [`config`], and its SMTP server; `None`: skipped here.
async fn start(test: &str, db: Option<TestDb>, extra: &str) -> Option<(BesideSynapse, Smtp)> {
    start_at(test, db, "https://matrix.example.com/", extra).await
}

/// [`start`] with `public_baseurl`.
async fn start_at(
    test: &str,
    db: Option<TestDb>,
    public_baseurl: &str,
    extra: &str,
) -> Option<(BesideSynapse, Smtp)> {
    let python = python_with_aiosmtpd(test)?;
    let venv = synapse_venv(test)?;
    let db = db?;
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let beside =
        BesideSynapse::start_with_homekey_config(venv, db, public_baseurl, &config(port, extra))
            .await;
    Some((beside, smtp))
}

/// The sqlite_ and postgres_ tests of `name`, each beside its own Synapse, `extra` added to
/// homekey's config.
macro_rules! beside_synapse_tests {
    ($($name:ident: $extra:expr),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let test = concat!("sqlite_", stringify!($name));
                    if let Some((beside, smtp)) =
                        super::start(test, Some(super::TestDb::sqlite().await), $extra).await
                    {
                        super::$name(&beside.homekey, smtp).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let test = concat!("postgres_", stringify!($name));
                    if let Some((beside, smtp)) =
                        super::start(test, super::TestDb::postgres(test).await, $extra).await
                    {
                        super::$name(&beside.homekey, smtp).await;
                    }
                }
            )*
        }
    };
}

beside_synapse_tests!(
    a_required_address_is_proved_on_the_sign_up_page_by_a_mailed_code: "",
    too_many_wrong_codes_start_the_sign_up_page_over: "",
    a_required_token_is_spent_only_when_the_code_makes_the_account:
        "registration_requires_token: true\n",
);

async fn user_count(server: &Server) -> u64 {
    server
        .store()
        .list_users(&Default::default(), 0, 1)
        .await
        .unwrap()
        .total as u64
}

/// The sign-up form for `query`, filled in with `fields` and posted by `browser`.
async fn submit(
    server: &Server,
    browser: &mut Browser,
    query: &str,
    fields: &[(&str, &str)],
) -> crate::oauth_grants::Answer {
    let page = browser.get(server, &format!("{AUTHORIZE}?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let csrf = page.field("csrf");
    let request = page.field("request");
    let mut form = vec![("csrf", csrf.as_str()), ("request", request.as_str())];
    form.extend_from_slice(fields);
    browser.post(server, SIGN_UP, &form).await
}

/// Posts `code` on the code step `step`.
async fn type_code(
    server: &Server,
    browser: &mut Browser,
    step: &crate::oauth_grants::Answer,
    code: &str,
) -> crate::oauth_grants::Answer {
    let form = [
        ("csrf", step.field("csrf")),
        ("request", step.field("request")),
        ("code", code.to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(server, SIGN_UP, &form).await
}

fn filled<'a>(name: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", name),
        ("password", PASSWORD),
        ("password_again", PASSWORD),
        ("email", email),
    ]
}

async fn a_required_address_is_proved_on_the_sign_up_page_by_a_mailed_code(
    server: &Server,
    smtp: Smtp,
) {
    // Offered although an address is required: discovery, and the sign-in page's link.
    let (status, doc) = server
        .call("GET", "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["prompt_values_supported"], json!(["create"]), "{doc}");
    let client = Client::register(server, element_x()).await;
    let mut browser = Browser::new();
    let sign_in = browser
        .get(server, &format!("{AUTHORIZE}?{}", client.query("D0", &[])))
        .await;
    assert!(sign_in.html.contains("sign-up-instead"), "{}", sign_in.html);
    let query = client.query("SIGNUPDEVICE", &[("prompt", "create")]);
    let page = browser.get(server, &format!("{AUTHORIZE}?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    for present in [
        "Create an account to continue to",
        "<label for=\"email\">E-mail address</label>",
        "id=\"email\" name=\"email\" value=\"\" type=\"email\"",
        "We mail a code to it",
    ] {
        assert!(page.html.contains(present), "{present}: {}", page.html);
    }

    // Refused on the form, no mail: no address, one outside allowed_local_3pids.
    let users = user_count(server).await;
    let none = submit(server, &mut browser, &query, &filled("bob", "")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.html);
    assert!(
        none.html.contains("Enter your e-mail address."),
        "{}",
        none.html
    );
    let denied = submit(
        server,
        &mut browser,
        &query,
        &filled("bob", "bob@example.net"),
    )
    .await;
    assert_eq!(denied.status, StatusCode::BAD_REQUEST, "{}", denied.html);
    assert!(
        denied
            .html
            .contains("This server does not accept sign-ups with that e-mail address."),
        "{}",
        denied.html
    );
    assert_eq!(denied.field("username"), "bob");
    assert_eq!(denied.field("email"), "bob@example.net");
    assert!(!denied.html.contains(PASSWORD));

    // The good form: one mail with a code, and no account yet.
    let step = submit(
        server,
        &mut browser,
        &query,
        &filled("Bob", "Bob@Example.com"),
    )
    .await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.html);
    assert!(
        step.html
            .contains("Enter the code we mailed to <span id=\"mailed-address\">bob@example.com"),
        "{}",
        step.html
    );
    assert!(step.html.contains("id=\"start-again\""), "{}", step.html);
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].parsed["rcpt_tos"], json!(["bob@example.com"]));
    let text = received[0].text();
    assert!(
        text.contains("To create your account @bob:example.com on example.com"),
        "{text}"
    );
    let code = code_in(&text);
    assert!(!server.log().contains(&code));
    assert!(!server.log().contains(PASSWORD));
    assert_eq!(user_count(server).await, users);
    let bob_address = Threepid::email("bob@example.com").unwrap();
    assert_eq!(
        server.store().user_by_threepid(&bob_address).await.unwrap(),
        None
    );

    // A wrong code: the step again with the tries left, nothing made.
    let wrong = if code == "123456" { "654321" } else { "123456" };
    let refused = type_code(server, &mut browser, &step, wrong).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(
        refused
            .html
            .contains("That code is wrong. You have 4 tries left."),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("bob@example.com"), "{}", refused.html);
    assert_eq!(user_count(server).await, users);

    // The right code: the account, with the address, signed in and back to the authorization.
    let made = type_code(server, &mut browser, &refused, &code).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert_eq!(
        made.location.as_deref(),
        Some(format!("{AUTHORIZE}?{query}").as_str())
    );
    assert_eq!(user_count(server).await, users + 1);
    assert_eq!(
        server
            .store()
            .user_by_threepid(&bob_address)
            .await
            .unwrap()
            .as_deref(),
        Some("@bob:example.com")
    );
    let records = server
        .store()
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
    assert!(
        records[0]
            .details
            .to_string()
            .contains("email bob@example.com"),
        "{:?}",
        records[0].details
    );
    // The consent, then the client's redirect with a code.
    let granted = allow(server, &mut browser, &query).await;
    assert!(!granted.is_empty());
    // The new account logs in by its address.
    let login = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "bob@example.com"},
        "password": PASSWORD,
    });
    let (status, body) = server
        .call("POST", "/_matrix/client/v3/login", None, Some(login))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@bob:example.com");
    // The code is spent: typing it again makes nothing and starts over.
    let again = type_code(server, &mut browser, &refused, &code).await;
    assert_ne!(again.status, StatusCode::SEE_OTHER, "{}", again.html);
    assert_eq!(user_count(server).await, users + 1);

    // Another browser with bob's address: in use, told on the form, no mail.
    let mut other = Browser::new();
    let query = client.query("D2", &[("prompt", "create")]);
    let in_use = submit(
        server,
        &mut other,
        &query,
        &filled("carol", "bob@example.com"),
    )
    .await;
    assert_eq!(in_use.status, StatusCode::BAD_REQUEST, "{}", in_use.html);
    assert!(
        in_use
            .html
            .contains("That e-mail address is already in use by another account."),
        "{}",
        in_use.html
    );
    assert_eq!(user_count(server).await, users + 1);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(smtp.received().len(), 1, "no mail for the refused forms");
}

async fn too_many_wrong_codes_start_the_sign_up_page_over(server: &Server, smtp: Smtp) {
    let users = user_count(server).await;
    let client = Client::register(server, element_x()).await;
    let mut browser = Browser::new();
    let query = client.query("D1", &[("prompt", "create")]);
    let step = submit(
        server,
        &mut browser,
        &query,
        &filled("dave", "dave@example.com"),
    )
    .await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.html);
    let code = code_in(&smtp.wait_for(1, 15)[0].text());
    let wrong = if code == "123456" { "654321" } else { "123456" };
    let mut answer = step;
    for left in (1..=4).rev() {
        answer = type_code(server, &mut browser, &answer, wrong).await;
        let tries = if left == 1 { "try" } else { "tries" };
        assert!(
            answer
                .html
                .contains(&format!("You have {left} {tries} left.")),
            "{}",
            answer.html
        );
    }
    // The fifth wrong code takes it: the form again, and even the right code is gone.
    let gone = type_code(server, &mut browser, &answer, wrong).await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST, "{}", gone.html);
    assert!(
        gone.html
            .contains("Fill in the form again to get a new code."),
        "{}",
        gone.html
    );
    assert!(gone.html.contains("id=\"username\""), "{}", gone.html);
    let late = type_code(server, &mut browser, &gone, &code).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.html);
    assert_eq!(user_count(server).await, users);
    assert_eq!(
        server
            .store()
            .user_by_threepid(&Threepid::email("dave@example.com").unwrap())
            .await
            .unwrap(),
        None
    );
}

/// The sign-up page with its e-mail step in chromium: axe-core finds no serious or critical
/// violation at a desktop's and a phone's width (the form, the code step, a wrong code), and
/// the code from the real mail leads through the consent to the client's redirect URI.
#[tokio::test]
async fn in_a_real_browser_the_sign_up_page_mails_a_code_and_lands_on_the_client() {
    let test = "in_a_real_browser_the_sign_up_page_mails_a_code_and_lands_on_the_client";
    let axe = axe_core(test);
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    // Plain http: the cookie is not `Secure`.
    let Some((beside, smtp)) =
        start_at(test, Some(TestDb::sqlite().await), "http://127.0.0.1/", "").await
    else {
        chromium.close().await;
        return;
    };
    let homekey = &beside.homekey;
    let site = Site::start();
    let web_app = crate::oauth_pages::register(homekey, web_app(&site)).await;
    let redirect_uri = site.url("127.0.0.1", "/cb");
    let query = browser_sign_up_query(&web_app, &redirect_uri, "ERINSBROWSER");
    let client = chromium.client.clone();
    let widths = [("desktop", DESKTOP), ("phone", PHONE)];
    let mut tour = Tour {
        chromium: &chromium,
        prefix: "sign-up-email".into(),
        widths: &widths,
        axe: axe.as_deref(),
        problems: Vec::new(),
        checked: 0,
    };
    let type_in = |id: &'static str, value: String| {
        let client = client.clone();
        async move {
            let field = client.find(Locator::Id(id)).await?;
            field.clear().await?;
            field.send_keys(&value).await
        }
    };
    let result = async {
        client
            .goto(&homekey.url(&format!("{AUTHORIZE}?{query}")))
            .await?;
        arrive(&client, "email").await?;
        tour.check("1-form").await?;
        for (id, value) in [
            ("username", "erin"),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
            ("email", "erin@example.com"),
        ] {
            type_in(id, value.to_owned()).await?;
        }
        client.find(Locator::Id("sign-up")).await?.click().await?;
        arrive(&client, "code").await?;
        assert_eq!(text(&client, "mailed-address").await?, "erin@example.com");
        tour.check("2-code").await?;
        let received = smtp.wait_for(1, 15);
        let code = code_in(&received[0].text());
        let wrong = if code == "123456" { "654321" } else { "123456" };
        type_in("code", wrong.to_owned()).await?;
        client
            .find(Locator::Id("confirm-code"))
            .await?
            .click()
            .await?;
        arrive(&client, "code-error").await?;
        let error = text(&client, "code-error").await?;
        assert!(error.contains("4 tries left"), "{error}");
        tour.check("3-wrong-code").await?;
        type_in("code", code).await?;
        client
            .find(Locator::Id("confirm-code"))
            .await?
            .click()
            .await?;
        arrive(&client, "allow").await?;
        assert_eq!(text(&client, "signed-in-as").await?, "@erin:example.com");
        client.find(Locator::Id("allow")).await?.click().await?;
        let back = landed_on(&client, &site).await?;
        let sent = query_of(&back);
        assert_eq!(param(&sent, "state"), Some("the-state"), "{back}");
        assert!(param(&sent, "code").is_some(), "{back}");
        Ok::<_, CmdError>(())
    }
    .await;
    let problems = std::mem::take(&mut tour.problems);
    let checked = tour.checked;
    chromium.close().await;
    result.unwrap();
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
    let erin = Threepid::email("erin@example.com").unwrap();
    assert_eq!(
        homekey
            .store()
            .user_by_threepid(&erin)
            .await
            .unwrap()
            .as_deref(),
        Some("@erin:example.com")
    );
}

/// With a registration token required: the form checks it, the code's step spends and
/// completes its use with the account; a token deleted meanwhile makes nothing.
async fn a_required_token_is_spent_only_when_the_code_makes_the_account(
    server: &Server,
    smtp: Smtp,
) {
    let store = server.store();
    for (token, uses) in [("invite-frank", 1), ("invite-gina", 1)] {
        assert!(
            store
                .create_registration_token(token, Some(uses), None, None)
                .await
                .unwrap()
        );
    }
    let users = user_count(server).await;
    let client = Client::register(server, element_x()).await;
    let uses = |token: &'static str| async move {
        let row = server
            .store()
            .registration_token(token)
            .await
            .unwrap()
            .unwrap();
        (row.pending, row.completed)
    };
    // A wrong token: refused on the form, no mail.
    let mut browser = Browser::new();
    let query = client.query("D1", &[("prompt", "create")]);
    let mut form = filled("frank", "frank@example.com");
    form.push(("registration_token", "not-a-token"));
    let refused = submit(server, &mut browser, &query, &form).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(
        refused
            .html
            .contains("That registration token is not valid, or it has been used up."),
        "{}",
        refused.html
    );
    // The good one: a code mailed, the token not spent yet.
    let mut form = filled("frank", "frank@example.com");
    form.push(("registration_token", "invite-frank"));
    let step = submit(server, &mut browser, &query, &form).await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.html);
    let code = code_in(&smtp.wait_for(1, 15)[0].text());
    assert_eq!(uses("invite-frank").await, (0, 0));
    assert_eq!(user_count(server).await, users);
    let made = type_code(server, &mut browser, &step, &code).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert_eq!(uses("invite-frank").await, (0, 1));
    assert_eq!(user_count(server).await, users + 1);
    assert!(!server.log().contains("invite-frank"));

    // Gina's token is deleted between her form and her code: her code makes nothing.
    let mut browser = Browser::new();
    let query = client.query("D2", &[("prompt", "create")]);
    let mut form = filled("gina", "gina@example.com");
    form.push(("registration_token", "invite-gina"));
    let step = submit(server, &mut browser, &query, &form).await;
    assert_eq!(step.status, StatusCode::OK, "{}", step.html);
    let code = code_in(&smtp.wait_for(2, 15)[1].text());
    assert!(
        store
            .delete_registration_token("invite-gina", None)
            .await
            .unwrap()
    );
    let late = type_code(server, &mut browser, &step, &code).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.html);
    assert!(
        late.html
            .contains("That registration token is not valid, or it has been used up."),
        "{}",
        late.html
    );
    assert_eq!(user_count(server).await, users + 1);
    assert!(store.get_user("@gina:example.com").await.unwrap().is_none());
}
