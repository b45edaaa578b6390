//! `homekey user …` and `homekey audit list` as processes, on SQLite and on PostgreSQL: what
//! an operator types and what they see, and what the database holds afterwards.

use std::path::PathBuf;
use std::process::Output;

use homekey::config::{DatabaseConfig, HashScheme};
use homekey::password::HashSettings;
use homekey::store::{NewAuditRecord, NewSession, Store};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::server::server_tests;
use crate::support::{self, HOMEKEY, TestDb, run_binary, stderr, stdout};

const PEPPER: &str = "cli-user-pepper";

server_tests!(
    create_show_and_list_for_people_and_scripts,
    set_password_keeps_or_ends_sessions_as_asked,
    admin_lock_logout_and_deactivate_change_the_account,
    login_mints_a_token_that_the_server_accepts,
    import_creates_accounts_and_a_second_run_skips_them,
    a_bad_import_line_imports_nothing,
    an_import_skips_an_account_whose_name_a_new_one_could_not_have,
    an_import_gives_email_addresses_and_refuses_bad_ones_whole,
    audit_list_shows_each_change_with_its_actor,
    a_change_whose_audit_record_cannot_be_written_is_not_made,
    the_password_policy_refuses_and_changes_nothing,
    no_secret_reaches_the_output_or_the_logs,
    show_finds_an_account_as_a_login_does_and_says_every_flag,
    show_says_which_sessions_are_oauth_and_of_which_app,
);

/// A test database with a config file for it (server example.com, a pepper, bcrypt cost 5,
/// a password policy), and the commands to run on it.
struct Operator {
    db: TestDb,
    dir: tempfile::TempDir,
    config: PathBuf,
    database: String,
}

impl Operator {
    fn new(db: TestDb) -> Operator {
        let dir = tempfile::tempdir().unwrap();
        let config = support::write_config(
            dir.path(),
            &format!(
                "server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  \
                 pepper: {PEPPER}\n  policy:\n    enabled: true\n    minimum_length: 8\n    \
                 require_digit: true\n"
            ),
        );
        let database = match &db.config {
            DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
            DatabaseConfig::PostgresUrl(url) => url.clone(),
            other => panic!("unexpected test database {other:?}"),
        };
        Operator {
            db,
            dir,
            config,
            database,
        }
    }

    fn store(&self) -> &Store {
        &self.db.store
    }

    /// `homekey ARGS -c CONFIG --database DB` with `stdin`, as the OS user `tester`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "-c",
            self.config.to_str().unwrap(),
            "--database",
            &self.database,
        ]);
        run_binary(HOMEKEY, &all, stdin.as_bytes(), &[("USER", "tester")])
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs a command that must fail with `code` and a one-line message; returns it.
    fn fails(&self, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(args, stdin);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        one_line_error(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args, "")).unwrap()
    }

    fn create(&self, user: &str, password: &str) {
        self.ok(
            &["user", "create", user, "--password-stdin"],
            &format!("{password}\n"),
        );
    }

    async fn hash_of(&self, user_id: &str) -> Option<SecretString> {
        let user = self.store().get_user(user_id).await.unwrap().unwrap();
        user.password_hash
    }

    /// Whether `password` logs in as `user_id`, by the hash in the database.
    async fn password_is(&self, user_id: &str, password: &str) -> bool {
        settings().verify(
            &SecretString::from(password),
            self.hash_of(user_id).await.as_ref(),
        )
    }

    /// A login recorded straight in the store, as `homekey serve` records one.
    async fn session(&self, user_id: &str, device_id: &str) -> String {
        let token = format!("syt_test_{device_id}");
        self.store()
            .create_session(
                &NewSession {
                    user_id: user_id.into(),
                    device_id: device_id.into(),
                    device_display_name: None,
                    access_token: SecretString::from(token.clone()),
                    valid_until_ms: None,
                    now_ms: homekey::accounts::now_ms(),
                },
                None,
            )
            .await
            .unwrap();
        token
    }

    async fn has_session(&self, token: &str) -> bool {
        self.store().find_session(token).await.unwrap().is_some()
    }
}

fn settings() -> HashSettings {
    HashSettings::new(HashScheme::Bcrypt, 5, SecretString::from(PEPPER))
}

/// The process's stderr, which must be one line starting with `homekey: `.
fn one_line_error(out: &Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("note: ")).collect();
    assert_eq!(lines.len(), 1, "not one line: {err}");
    assert!(lines[0].starts_with("homekey: "), "{err}");
    lines[0].to_owned()
}

async fn create_show_and_list_for_people_and_scripts(db: TestDb) {
    let op = Operator::new(db);
    let out = op.run(
        &[
            "user",
            "create",
            "alice",
            "--admin",
            "--displayname",
            "Alice Liddell",
            "--password-stdin",
        ],
        "wonderland1\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "created @alice:example.com (server admin)\n");
    // A full user ID works as well as a localpart; the display name defaults to the localpart.
    op.create("@bob:example.com", "builder22");
    assert!(op.password_is("@alice:example.com", "wonderland1").await);
    assert!(!op.password_is("@alice:example.com", "wonderland2").await);

    let shown = op.ok(&["user", "show", "alice"], "");
    assert!(shown.starts_with("@alice:example.com\n"), "{shown}");
    for expected in [
        "display name  Alice Liddell",
        "state         active",
        "server admin  yes",
        "password      set",
        "devices       0",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    let body = op.json(&["user", "show", "@bob:example.com", "--json"]);
    assert_eq!(body["name"], "@bob:example.com");
    assert_eq!(body["displayname"], "bob");
    assert_eq!(body["admin"], false);
    assert_eq!(body["deactivated"], false);
    assert_eq!(body["locked"], false);
    assert_eq!(body["password_set"], true);
    assert!(body["creation_ts"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["devices"], serde_json::json!([]));
    assert!(body.get("password_hash").is_none());

    let listed = op.ok(&["user", "list"], "");
    let lines: Vec<&str> = listed.lines().collect();
    assert!(lines[0].starts_with("USER"), "{listed}");
    assert!(lines[1].starts_with("@alice:example.com  yes"), "{listed}");
    assert!(lines[2].starts_with("@bob:example.com"), "{listed}");
    assert_eq!(lines[3], "2 users");
    let admins = op.json(&["user", "list", "--admins", "--json"]);
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["users"][0]["name"], "@alice:example.com");
    // --name matches the ID or the display name.
    let by_name = op.json(&["user", "list", "--name", "Liddell", "--json"]);
    assert_eq!(by_name["users"][0]["name"], "@alice:example.com");
    assert_eq!(by_name["total"], 1);
    assert_eq!(
        op.json(&["user", "list", "--name", "bo", "--json"])["total"],
        1
    );

    // Taken (in any case), unless --exists-ok, which changes nothing.
    let err = op.fails(
        &["user", "create", "ALICE", "--password-stdin"],
        "another1pw\n",
        1,
    );
    assert_eq!(err, "homekey: user @alice:example.com already exists");
    let out = op.ok(
        &["user", "create", "alice", "--exists-ok", "--password-stdin"],
        "another1pw\n",
    );
    assert_eq!(out, "@alice:example.com already exists; left as it is\n");
    assert!(op.password_is("@alice:example.com", "wonderland1").await);
    // New localparts follow the strict grammar; other servers' users are not ours.
    let err = op.fails(
        &["user", "create", "_carol", "--password-stdin"],
        "carol1234\n",
        1,
    );
    assert!(err.contains("User ID may not begin with _"), "{err}");
    let err = op.fails(
        &["user", "create", "@carol:other.org", "--password-stdin"],
        "carol1234\n",
        1,
    );
    assert!(err.contains("is not a user of this server"), "{err}");
    // Deactivated accounts are listed only when asked for.
    op.ok(&["user", "deactivate", "bob"], "");
    assert_eq!(op.json(&["user", "list", "--json"])["total"], 1);
    assert_eq!(
        op.json(&["user", "list", "--deactivated", "--json"])["total"],
        2
    );
}

async fn set_password_keeps_or_ends_sessions_as_asked(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "first-pass1");
    let phone = op.session("@alice:example.com", "PHONE").await;
    let laptop = op.session("@alice:example.com", "LAPTOP").await;

    let out = op.ok(
        &["user", "set-password", "alice", "--password-stdin"],
        "second-pass2\n",
    );
    assert_eq!(out, "password of @alice:example.com changed\n");
    assert!(op.password_is("@alice:example.com", "second-pass2").await);
    assert!(!op.password_is("@alice:example.com", "first-pass1").await);
    assert!(op.has_session(&phone).await && op.has_session(&laptop).await);

    let out = op.ok(
        &[
            "user",
            "set-password",
            "@alice:example.com",
            "--logout-devices",
            "--password-stdin",
        ],
        "third-pass3\n",
    );
    assert_eq!(
        out,
        "password of @alice:example.com changed; every device logged out\n"
    );
    assert!(op.password_is("@alice:example.com", "third-pass3").await);
    assert!(!op.has_session(&phone).await && !op.has_session(&laptop).await);
    assert!(
        op.store()
            .list_devices("@alice:example.com")
            .await
            .unwrap()
            .is_empty()
    );

    // -p works, with a warning about the shell's history.
    let out = op.run(&["user", "set-password", "alice", "-p", "fourth-pass4"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("shell's history"), "{}", stderr(&out));
    assert!(op.password_is("@alice:example.com", "fourth-pass4").await);

    // Without a terminal, the password is read only when --password-stdin says so.
    let err = op.fails(&["user", "set-password", "alice"], "fifth-pass5\n", 2);
    assert!(err.contains("--password-stdin"), "{err}");
    let err = op.fails(
        &["user", "set-password", "nobody", "--password-stdin"],
        "fifth-pass5\n",
        1,
    );
    assert_eq!(err, "homekey: user @nobody:example.com does not exist");
    let err = op.fails(
        &["user", "set-password", "alice", "--password-stdin"],
        "\n",
        1,
    );
    assert_eq!(err, "homekey: Password cannot be blank.");
    assert!(op.password_is("@alice:example.com", "fourth-pass4").await);
}

async fn admin_lock_logout_and_deactivate_change_the_account(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    let user = |op: &Operator| {
        let store = op.store().clone();
        async move { store.get_user("@alice:example.com").await.unwrap().unwrap() }
    };

    assert_eq!(
        op.ok(&["user", "set-admin", "alice", "true"], ""),
        "@alice:example.com is a server admin\n"
    );
    assert!(user(&op).await.admin);
    assert_eq!(
        op.ok(&["user", "set-admin", "alice", "true"], ""),
        "@alice:example.com already is a server admin\n"
    );
    // alice is the only admin: taking her away needs --force, or the operator is locked out.
    for command in [
        &["user", "set-admin", "alice", "false"][..],
        &["user", "lock", "alice"],
        &["user", "deactivate", "alice"],
    ] {
        let err = op.fails(command, "", 1);
        assert!(
            err.contains("last server admin") && err.contains("--force"),
            "{err}"
        );
    }
    let alice = user(&op).await;
    assert!(alice.admin && !alice.locked && !alice.deactivated);
    op.ok(&["user", "set-admin", "alice", "false", "--force"], "");
    assert!(!user(&op).await.admin);
    op.fails(&["user", "set-admin", "alice", "maybe"], "", 2);

    assert_eq!(
        op.ok(&["user", "lock", "alice"], ""),
        "locked @alice:example.com\n"
    );
    assert!(user(&op).await.locked);
    assert!(
        op.ok(&["user", "show", "alice"], "")
            .contains("state         locked")
    );
    op.ok(&["user", "unlock", "alice"], "");
    assert!(!user(&op).await.locked);

    let phone = op.session("@alice:example.com", "PHONE").await;
    let laptop = op.session("@alice:example.com", "LAPTOP").await;
    assert!(
        op.ok(&["user", "show", "alice"], "")
            .contains("devices       2")
    );
    assert_eq!(
        op.ok(&["user", "logout", "alice"], ""),
        "logged @alice:example.com out everywhere (2 access tokens removed)\n"
    );
    assert!(!op.has_session(&phone).await && !op.has_session(&laptop).await);
    assert!(op.password_is("@alice:example.com", "wonderland1").await);

    let phone = op.session("@alice:example.com", "PHONE").await;
    op.ok(&["user", "deactivate", "alice"], "");
    let alice = user(&op).await;
    assert!(alice.deactivated);
    assert!(alice.password_hash.is_none());
    assert!(!op.has_session(&phone).await);
    assert_eq!(
        op.ok(&["user", "deactivate", "alice"], ""),
        "@alice:example.com was already deactivated\n"
    );
    let err = op.fails(
        &["user", "set-password", "alice", "--password-stdin"],
        "wonderland2\n",
        1,
    );
    assert!(err.contains("is deactivated"), "{err}");
    for command in ["lock", "unlock", "logout", "deactivate", "show"] {
        let err = op.fails(&["user", command, "nobody"], "", 1);
        assert_eq!(err, "homekey: user @nobody:example.com does not exist");
    }
}

async fn login_mints_a_token_that_the_server_accepts(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    let before = homekey::accounts::now_ms();
    let body = op.json(&["user", "login", "alice", "--valid-for", "24h", "--json"]);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("syt_YWxpY2U_"), "{token}");
    assert_eq!(body["user_id"], "@alice:example.com");
    let session = op.store().find_session(token).await.unwrap().unwrap();
    assert_eq!(session.user.name, "@alice:example.com");
    assert_eq!(session.device_id.as_deref(), body["device_id"].as_str());
    let until = session.valid_until_ms.unwrap();
    assert_eq!(body["valid_until_ms"], until);
    let day = 24 * 3600 * 1000;
    assert!(until >= before + day && until <= homekey::accounts::now_ms() + day);

    // For people: the token alone on stdout, the rest on stderr; no expiry unless asked.
    let out = op.run(&["user", "login", "alice"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(
        stderr(&out).contains("until logged out"),
        "{}",
        stderr(&out)
    );
    let session = op.store().find_session(&token).await.unwrap().unwrap();
    assert_eq!(session.valid_until_ms, None);

    op.fails(&["user", "login", "alice", "--valid-for", "soon"], "", 2);
    op.fails(&["user", "login", "nobody"], "", 1);
    op.ok(&["user", "lock", "alice"], "");
    let err = op.fails(&["user", "login", "alice"], "", 1);
    assert!(err.contains("locked"), "{err}");
}

async fn import_creates_accounts_and_a_second_run_skips_them(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    let hash = settings()
        .hash(&SecretString::from("hashed-pass9"))
        .unwrap();
    let csv = op.dir.path().join("users.csv");
    std::fs::write(
        &csv,
        format!(
            "user,password,password_hash,admin,displayname\n\
             alice,another-pass1,,,\n\
             bob,\"comma, \"\"quoted\"\" pass1\",,true,\"Bob, the Builder\"\n\
             @carol:example.com,,{},false,\n\
             dave,,,no,Dave\n",
            hash.expose_secret()
        ),
    )
    .unwrap();
    let out = op.ok(&["user", "import", csv.to_str().unwrap()], "");
    assert_eq!(out, "imported 3 users; skipped 1 that already existed\n");
    assert!(op.password_is("@alice:example.com", "wonderland1").await);
    assert!(
        op.password_is("@bob:example.com", "comma, \"quoted\" pass1")
            .await
    );
    assert!(op.password_is("@carol:example.com", "hashed-pass9").await);
    assert_eq!(op.hash_of("@dave:example.com").await.map(|_| ()), None);
    let bob = op.json(&["user", "show", "bob", "--json"]);
    assert_eq!(bob["admin"], true);
    assert_eq!(bob["displayname"], "Bob, the Builder");
    assert_eq!(
        op.json(&["user", "show", "carol", "--json"])["displayname"],
        "carol"
    );

    let out = op.ok(&["user", "import", csv.to_str().unwrap()], "");
    assert_eq!(out, "imported 0 users; skipped 4 that already existed\n");

    // JSON lines, by the content when the extension says nothing.
    let jsonl = op.dir.path().join("more-users");
    std::fs::write(
        &jsonl,
        "{\"user\": \"erin\", \"password\": \"erin-pass1\", \"admin\": true}\n\n\
         {\"user\": \"bob\", \"password\": \"ignored-pass1\"}\n\
         {\"user\": \"frank\", \"displayname\": \"Frank\", \"admin\": null}\n",
    )
    .unwrap();
    let out = op.ok(&["user", "import", jsonl.to_str().unwrap()], "");
    assert_eq!(out, "imported 2 users; skipped 1 that already existed\n");
    assert!(op.password_is("@erin:example.com", "erin-pass1").await);
    assert_eq!(op.json(&["user", "show", "erin", "--json"])["admin"], true);
    assert_eq!(op.json(&["user", "list", "--json"])["total"], 6);
}

async fn a_bad_import_line_imports_nothing(db: TestDb) {
    let op = Operator::new(db);
    let file = op.dir.path().join("users.jsonl");
    let cases = [
        (
            "{\"user\": \"gina\", \"password\": \"gina-pass1\"}\n{\"user\": \"hal\", \"password\": \"short1\"}\n",
            "line 2: password refused by the policy: The password must be at least 8 characters long",
        ),
        (
            "{\"user\": \"gina\", \"password\": \"gina-pass1\"}\n{\"user\": \"hal\", \"passwd\": \"hal-pass12\"}\n",
            "line 2: unknown field `passwd`",
        ),
        (
            "{\"user\": \"gina\", \"password\": \"gina-pass1\"}\n{\"user\": \"hal\", \"password_hash\": \"plain-text-secret\"}\n",
            "line 2: `password_hash` is not a bcrypt or argon2id hash",
        ),
        (
            "{\"user\": \"gina\", \"password\": \"gina-pass1\"}\n{\"user\": \"hal\", \"password_hash\": \"$2b$04$notahash\"}\n",
            "line 2: `password_hash` is not a bcrypt or argon2id hash",
        ),
        (
            "{\"user\": \"gina\", \"password\": \"gina-pass1\"}\n{\"user\": \"GINA\"}\n",
            "line 2: @GINA:example.com is listed twice",
        ),
        (
            "{\"user\": \"gina\", \"password\": \"gina-pass1\"}\n{\"user\": \"hal\", \"password\": \"hal-secret-99\n",
            "line 2: not a JSON object",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let err = op.fails(&["user", "import", file.to_str().unwrap()], "", 1);
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(err.contains("nothing was imported"), "{err}");
        assert!(!err.contains("secret") && !err.contains("pass1"), "{err}");
        assert_eq!(
            op.json(&["user", "list", "--json"])["total"],
            0,
            "{expected}"
        );
    }
    let csv = op.dir.path().join("users.csv");
    std::fs::write(&csv, "user,password\ngina,gina-pass1,extra\n").unwrap();
    let err = op.fails(&["user", "import", csv.to_str().unwrap()], "", 1);
    assert!(err.contains("line 2: not valid CSV"), "{err}");
    // A CSV file without its header line: its first account is no header, and is not quoted
    // (it holds a password); so is a header without `user`, and an empty file.
    for text in [
        "gina,gina-secret-pass1\n",
        "name,password\ngina,gina-secret-pass1\n",
        "",
    ] {
        std::fs::write(&csv, text).unwrap();
        let err = op.fails(&["user", "import", csv.to_str().unwrap()], "", 1);
        assert!(
            err.contains("line 1: the header has no `user` column"),
            "{text:?}: {err}"
        );
        assert!(err.contains("nothing was imported"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
    assert_eq!(op.json(&["user", "list", "--json"])["total"], 0);
    let err = op.fails(&["user", "import", "/nonexistent/users.csv"], "", 1);
    assert!(
        err.contains("/nonexistent/users.csv: cannot read it"),
        "{err}"
    );
}

/// A historical account (here all digits, a name Synapse keeps for guests) listed in a file is
/// skipped as existing; such a name, new, is refused.
async fn an_import_skips_an_account_whose_name_a_new_one_could_not_have(db: TestDb) {
    let op = Operator::new(db);
    let old = homekey::store::NewUser {
        user_id: homekey::ids::UserId::parse("@12345:example.com").unwrap(),
        password_hash: None,
        creation_ts: 0,
        admin: false,
        is_guest: true,
        user_type: None,
        displayname: None,
        avatar_url: None,
        threepids: Vec::new(),
    };
    op.store().create_user(&old, None).await.unwrap();
    let csv = op.dir.path().join("users.csv");
    std::fs::write(&csv, "user,displayname\n12345,Old\ngina,Gina\n").unwrap();
    let out = op.ok(&["user", "import", csv.to_str().unwrap()], "");
    assert_eq!(out, "imported 1 user; skipped 1 that already existed\n");

    std::fs::write(&csv, "user\nhal\n67890\n").unwrap();
    let err = op.fails(&["user", "import", csv.to_str().unwrap()], "", 1);
    assert!(
        err.contains("line 3: cannot create @67890:example.com"),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(op.json(&["user", "list", "--json"])["total"], 2);
}

async fn audit_list_shows_each_change_with_its_actor(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    // A change with an old record, from before --since's window.
    let old = NewAuditRecord {
        ts_ms: homekey::accounts::now_ms() - 3 * 24 * 3600 * 1000,
        actor: "@admin:example.com".into(),
        action: "set_admin".into(),
        target: Some("@alice:example.com".into()),
        details: serde_json::json!({"admin": true}),
    };
    op.store()
        .set_admin(
            "@alice:example.com",
            true,
            homekey::store::AdminGuard::Off,
            Some(&old),
        )
        .await
        .unwrap();
    op.create("bob", "builder22");
    op.ok(
        &[
            "user",
            "set-password",
            "alice",
            "--logout-devices",
            "--password-stdin",
        ],
        "wonderland2\n",
    );
    op.ok(&["user", "lock", "bob"], "");

    let text = op.ok(&["audit", "list"], "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    // Newest first: when, who, what, whom, details.
    let fields = |line: &str| {
        line.split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(fields(lines[0]), "UTC cli:tester lock @bob:example.com {}");
    assert_eq!(
        fields(lines[1]),
        "UTC cli:tester reset_password @alice:example.com {\"logout_devices\":true}"
    );
    assert_eq!(
        fields(lines[4]),
        "UTC @admin:example.com set_admin @alice:example.com {\"admin\":true}"
    );
    // Columns line up.
    let column = |line: &str| line.find("@alice").or(line.find("@bob")).unwrap();
    assert!(
        lines.iter().all(|line| column(line) == column(lines[0])),
        "{text}"
    );

    let body = op.json(&[
        "audit", "list", "--user", "alice", "--since", "1d", "--json",
    ]);
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{body}");
    assert_eq!(records[0]["action"], "reset_password");
    assert_eq!(records[0]["actor"], "cli:tester");
    assert_eq!(records[0]["user_id"], "@alice:example.com");
    assert_eq!(
        records[0]["details"],
        serde_json::json!({"logout_devices": true})
    );
    assert!(records[0]["ts_ms"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(records[1]["action"], "create_user");
    assert_eq!(records[1]["details"], serde_json::json!({"admin": false}));
    let all_alice = op.json(&["audit", "list", "--user", "@alice:example.com", "--json"]);
    assert_eq!(all_alice["records"].as_array().unwrap().len(), 3);
    op.fails(&["audit", "list", "--since", "yesterday"], "", 2);
}

async fn a_change_whose_audit_record_cannot_be_written_is_not_made(db: TestDb) {
    use crate::audit::{bring_the_audit_log_back, take_the_audit_log_away};
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    let phone = op.session("@alice:example.com", "PHONE").await;
    let csv = op.dir.path().join("users.csv");
    std::fs::write(&csv, "user,admin\nbob,true\ncarol,false\n").unwrap();
    let refused = "the change was not made: its audit record could not be written: ";

    take_the_audit_log_away(&op.db).await;
    let err = op.fails(
        &[
            "user",
            "set-password",
            "alice",
            "--logout-devices",
            "--password-stdin",
        ],
        "wonderland2\n",
        1,
    );
    let lock = op.fails(&["user", "lock", "alice"], "", 1);
    let import = op.fails(&["user", "import", csv.to_str().unwrap()], "", 1);
    bring_the_audit_log_back(&op.db).await;

    assert!(err.starts_with(&format!("homekey: {refused}")), "{err}");
    assert!(err.contains("homekey_audit_log"), "{err}");
    assert!(!err.contains("wonderland"), "{err}");
    assert!(op.password_is("@alice:example.com", "wonderland1").await);
    assert!(op.has_session(&phone).await);
    assert!(lock.starts_with(&format!("homekey: {refused}")), "{lock}");
    let alice = op.json(&["user", "show", "alice", "--json"]);
    assert_eq!(alice["locked"], false);
    // The batch and its records are one transaction: no account without its record.
    assert!(
        import.starts_with(&format!("homekey: line 2 (@bob:example.com): {refused}")),
        "{import}"
    );
    assert!(
        import.ends_with("0 imported before it: run the import again to go on"),
        "{import}"
    );
    for user in ["@bob:example.com", "@carol:example.com"] {
        assert!(op.store().get_user(user).await.unwrap().is_none(), "{user}");
    }
    let body = op.json(&["audit", "list", "--json"]);
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{body}");
    assert_eq!(records[0]["action"], "create_user");
}

async fn the_password_policy_refuses_and_changes_nothing(db: TestDb) {
    let op = Operator::new(db);
    let err = op.fails(
        &["user", "create", "alice", "--password-stdin"],
        "short1\n",
        1,
    );
    assert_eq!(
        err,
        "homekey: password refused by the policy: The password must be at least 8 characters long"
    );
    assert!(
        op.store()
            .get_user("@alice:example.com")
            .await
            .unwrap()
            .is_none()
    );
    op.create("alice", "wonderland1");
    let phone = op.session("@alice:example.com", "PHONE").await;
    let before = op.hash_of("@alice:example.com").await.unwrap();
    for (password, expected) in [
        (
            "nodigitshere",
            "The password must include at least one digit",
        ),
        (
            &"a1".repeat(257),
            "the password is longer than 512 characters",
        ),
    ] {
        let err = op.fails(
            &[
                "user",
                "set-password",
                "alice",
                "--logout-devices",
                "--password-stdin",
            ],
            &format!("{password}\n"),
            1,
        );
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains(password), "{err}");
        let after = op.hash_of("@alice:example.com").await.unwrap();
        assert_eq!(after.expose_secret(), before.expose_secret());
        assert!(op.has_session(&phone).await);
    }
    // Only the successful change was recorded.
    let body = op.json(&["audit", "list", "--json"]);
    assert_eq!(body["records"].as_array().unwrap().len(), 1);

    // The operator may override the policy, never the length limit.
    op.ok(
        &[
            "user",
            "set-password",
            "alice",
            "--ignore-policy",
            "--password-stdin",
        ],
        "nodigitshere\n",
    );
    assert!(op.password_is("@alice:example.com", "nodigitshere").await);
    let err = op.fails(
        &[
            "user",
            "set-password",
            "alice",
            "--ignore-policy",
            "--password-stdin",
        ],
        &format!("{}\n", "a1".repeat(257)),
        1,
    );
    assert!(err.contains("longer than 512 characters"), "{err}");
    assert!(op.password_is("@alice:example.com", "nodigitshere").await);
}

async fn no_secret_reaches_the_output_or_the_logs(db: TestDb) {
    let op = Operator::new(db);
    let canary = "canary-password-77";
    let mut outputs = Vec::new();
    for (args, stdin) in [
        (vec!["user", "create", "alice", "--password-stdin"], canary),
        (
            vec!["user", "set-password", "alice", "--password-stdin"],
            canary,
        ),
        (
            vec!["user", "set-password", "alice", "--password-stdin"],
            "x",
        ),
        (vec!["user", "show", "alice", "--json"], ""),
        (vec!["user", "list", "--json"], ""),
        (vec!["audit", "list", "--json"], ""),
    ] {
        let mut all = args.clone();
        all.extend([
            "-c",
            op.config.to_str().unwrap(),
            "--database",
            &op.database,
        ]);
        let out = run_binary(
            HOMEKEY,
            &all,
            format!("{stdin}\n").as_bytes(),
            &[("RUST_LOG", "trace")],
        );
        outputs.push(format!("{}{}", stdout(&out), stderr(&out)));
    }
    let hash = op.hash_of("@alice:example.com").await.unwrap();
    let hash = hash.expose_secret();
    // The hash's salt and digest: the part after `$2b$05$`.
    let hash_body = &hash[7..];
    for output in outputs {
        assert!(!output.contains(canary), "{output}");
        assert!(!output.contains(PEPPER), "{output}");
        assert!(!output.contains(hash_body), "{output}");
    }
}

// Database selection and exit codes: the same on every database, so tested once.

#[test]
fn without_a_database_it_says_how_to_name_one_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(HOMEKEY)
        .args(["user", "list"])
        .current_dir(dir.path())
        .env_remove("HOMEKEY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "homekey: no database: give -c homeserver.yaml, --database sqlite:PATH or --database \
         postgres://…, set HOMEKEY_CONFIG, or run where ./homeserver.yaml is\n"
    );
    // Bad usage is exit 2 too, as clap reports it.
    let out = run_binary(HOMEKEY, &["user", "create"], b"", &[]);
    assert_eq!(out.status.code(), Some(2));
    let help = stdout(&run_binary(
        HOMEKEY,
        &["user", "set-password", "--help"],
        b"",
        &[],
    ));
    assert!(help.contains("Exit codes: 0 done; 1 refused"), "{help}");
    assert!(help.contains("3 database unreachable"), "{help}");
}

#[test]
fn an_unreachable_database_is_exit_3() {
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "list",
            "--database",
            "sqlite:/nonexistent/homeserver.db",
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        one_line_error(&out),
        "homekey: the database cannot be opened: /nonexistent/homeserver.db does not exist; \
         create it with `homekey migrate` given the same -c or --database (or start \
         `homekey serve` once)"
    );
    // Nothing listens on port 1; the password in the URL is never shown.
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "show",
            "@alice:example.com",
            "--database",
            "postgres://homekey:db-secret-pw@127.0.0.1:1/homekey",
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = one_line_error(&out);
    assert!(err.contains("cannot be opened"), "{err}");
    assert!(!err.contains("db-secret-pw"), "{err}");
}

#[tokio::test]
async fn the_config_comes_from_homekey_config_or_layered_files() {
    let db = TestDb::sqlite().await;
    let DatabaseConfig::Sqlite { path } = &db.config else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let base = support::write_config(
        dir.path(),
        &format!(
            "server_name: example.com\nbcrypt_rounds: 5\ndatabase:\n  name: sqlite3\n  args:\n    \
             database: {}\npassword_config:\n  pepper: first-pepper\n",
            path.display()
        ),
    );
    // $HOMEKEY_CONFIG names the file, which names the database.
    let out = run_binary(
        HOMEKEY,
        &["user", "create", "alice", "--password-stdin"],
        b"pw-from-env\n",
        &[("HOMEKEY_CONFIG", base.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let hash_of = |user: &'static str| {
        let store = db.store.clone();
        async move { store.get_user(user).await.unwrap().unwrap().password_hash }
    };
    let with_pepper =
        |pepper: &str| HashSettings::new(HashScheme::Bcrypt, 5, SecretString::from(pepper));
    assert!(with_pepper("first-pepper").verify(
        &SecretString::from("pw-from-env"),
        hash_of("@alice:example.com").await.as_ref()
    ));

    // A later -c file replaces the earlier one's password_config, as in Synapse.
    let layer = dir.path().join("conf.d.yaml");
    std::fs::write(&layer, "password_config:\n  pepper: second-pepper\n").unwrap();
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "set-password",
            "alice",
            "--password-stdin",
            "-c",
            base.to_str().unwrap(),
            "-c",
            layer.to_str().unwrap(),
        ],
        b"pw-layered\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(with_pepper("second-pepper").verify(
        &SecretString::from("pw-layered"),
        hash_of("@alice:example.com").await.as_ref()
    ));

    // --database alone: full user IDs only, and a note that no pepper applies.
    let database = format!("sqlite:{}", path.display());
    let out = run_binary(
        HOMEKEY,
        &["user", "show", "alice", "--database", &database],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line_error(&out).contains("a bare localpart needs the server name"));
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "set-password",
            "@alice:example.com",
            "--password-stdin",
            "--database",
            &database,
        ],
        b"pw-no-config\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no pepper"), "{}", stderr(&out));
    assert!(with_pepper("").verify(
        &SecretString::from("pw-no-config"),
        hash_of("@alice:example.com").await.as_ref()
    ));
}

#[tokio::test]
async fn on_a_terminal_the_password_is_prompted_twice_without_echo() {
    let db = TestDb::sqlite().await;
    let op = Operator::new(db);
    let config = op.config.to_str().unwrap();
    let argv = |user| {
        [
            HOMEKEY,
            "user",
            "create",
            user,
            "-c",
            config,
            "--database",
            &op.database,
        ]
    };
    let (screen, code) =
        support::on_a_terminal(&argv("alice"), &["typed-secret1", "typed-secret1"]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("Password: ") && screen.contains("Confirm password: "),
        "{screen}"
    );
    assert!(!screen.contains("typed-secret1"), "echoed: {screen}");
    assert!(screen.contains("created @alice:example.com"), "{screen}");
    assert!(op.password_is("@alice:example.com", "typed-secret1").await);

    let (screen, code) = support::on_a_terminal(&argv("bob"), &["one-secret1", "other-secret1"]);
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("Passwords do not match."), "{screen}");
    assert!(
        op.store()
            .get_user("@bob:example.com")
            .await
            .unwrap()
            .is_none()
    );
}

/// Control characters in what the operator gave (a path, an argument, a user in a file) are
/// shown escaped in the one-line error, never sent raw to the terminal.
#[tokio::test]
async fn control_characters_in_an_error_are_shown_escaped() {
    let db = TestDb::sqlite().await;
    let op = Operator::new(db);
    let file = op.dir.path().join("users.jsonl");
    std::fs::write(
        &file,
        "{\"user\": \"@\\u001b[2Jevil\\u0007:example.com\"}\n",
    )
    .unwrap();
    let missing = op.dir.path().join("typo\u{1b}[31m.db");
    let missing = format!("sqlite:{}", missing.display());
    // (clap itself strips ANSI sequences from a usage error; a lone C1 control it leaves.)
    let bogus = "--bogus\u{1b}[31m\u{9b}";
    for (what, out, code, escaped) in [
        (
            "import",
            op.run(&["user", "import", file.to_str().unwrap()], ""),
            1,
            "\\u{1b}[2Jevil\\u{7}",
        ),
        (
            "database",
            run_binary(HOMEKEY, &["user", "list", "--database", &missing], b"", &[]),
            3,
            "typo\\u{1b}[31m.db",
        ),
        (
            "usage",
            run_binary(HOMEKEY, &["user", "list", bogus], b"", &[]),
            2,
            "\\u{9b}",
        ),
    ] {
        let argv = what;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{argv:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{argv:?}: {err}");
        assert!(
            !err.chars().any(|c| c.is_control() && c != '\n'),
            "{argv:?}: raw control characters in {err:?}"
        );
        assert!(err.contains(escaped), "{argv:?}: {err}");
    }
}

/// `user show` finds an account as `/login` does (the exact ID, else the only one differing
/// in case: a name Synapse kept from before it lowercased new ones), and says whether it is
/// shadow-banned, suspended or erased; a change still needs the exact ID.
async fn show_finds_an_account_as_a_login_does_and_says_every_flag(db: TestDb) {
    let op = Operator::new(db);
    crate::server::raw_execute(
        &op.db.config,
        "INSERT INTO users (name, creation_ts, admin, is_guest, deactivated, shadow_banned, \
         approved, locked, suspended) VALUES ($1, 1700000000, 0, 0, 0, TRUE, TRUE, FALSE, TRUE)",
        &["@Upper:example.com"],
    )
    .await;
    let shown = op.ok(&["user", "show", "upper"], "");
    assert!(shown.starts_with("@Upper:example.com\n"), "{shown}");
    for expected in [
        "shadow-banned yes",
        "suspended     yes",
        "state         active",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    let body = op.json(&["user", "show", "upper", "--json"]);
    assert_eq!(body["shadow_banned"], true);
    assert_eq!(body["suspended"], true);
    assert_eq!(body["erased"], false);
    // A change names the exact account, and is told which one there is.
    let err = op.fails(&["user", "lock", "upper"], "", 1);
    assert!(err.contains("did you mean @Upper:example.com?"), "{err}");

    // An erased account says so.
    op.create("@erin:example.com", "erin12345");
    op.ok(&["user", "deactivate", "erin"], "");
    crate::server::raw_execute(
        &op.db.config,
        "INSERT INTO erased_users (user_id) VALUES ($1)",
        &["@erin:example.com"],
    )
    .await;
    let shown = op.ok(&["user", "show", "erin"], "");
    assert!(
        shown.contains("state         deactivated and erased"),
        "{shown}"
    );
    assert_eq!(op.json(&["user", "show", "erin", "--json"])["erased"], true);
}

/// Registers an OAuth client over HTTP, as an app does, at a `homekey serve` beside a
/// Synapse (that is not there: registration never asks it); returns its client ID.
pub(crate) async fn register_oauth_client(db: &TestDb, metadata: serde_json::Value) -> String {
    let config = "public_baseurl: https://matrix.example.com/\n\
                  synapse:\n  endpoint: http://127.0.0.1:1/\n  \
                  secret: cli-user-oauth-secret-0123456789abcdef\n";
    let mut server = crate::server::Server::start(db.share().await, config).await;
    let response = server
        .http
        .post(server.url("/oauth2/registration"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    server.stop();
    body["client_id"].as_str().unwrap().to_owned()
}

/// An OAuth session of `user_id` on `device_id` for the client `client_id`, written with SQL
/// exactly as a grant leaves it (`begin_oauth_session!`: the device named after the app, the
/// tokens as digests, the access token pointing at its refresh token, the session's row, the
/// client marked used). A grant over HTTP makes the device in Synapse before it answers, and
/// these tests have no Synapse.
pub(crate) async fn oauth_session(
    db: &TestDb,
    user_id: &str,
    device_id: &str,
    client: (&str, Option<&str>),
) {
    use homekey::store::token_forms::digest;
    let (client_id, client_name) = client;
    let now = homekey::accounts::now_ms();
    let access = digest(&format!("hka_test_{device_id}"));
    let refresh = digest(&format!("hkr_test_{device_id}"));
    let scope = format!("urn:matrix:client:api:* urn:matrix:client:device:{device_id}");
    let config = &db.config;
    // The device is named after the app, if it gave a name.
    let (display_name, values) = match client_name {
        Some(name) => ("$3", vec![user_id, device_id, name]),
        None => ("NULL", vec![user_id, device_id]),
    };
    crate::server::raw_execute(
        config,
        &format!(
            "INSERT INTO devices (user_id, device_id, display_name, last_seen, hidden) \
             VALUES ($1, $2, {display_name}, {now}, FALSE)"
        ),
        &values,
    )
    .await;
    crate::server::raw_execute(
        config,
        &format!(
            "INSERT INTO refresh_tokens (user_id, device_id, token, expiry_ts) \
             VALUES ($1, $2, $3, {})",
            now + 90 * 86_400_000
        ),
        &[user_id, device_id, &refresh],
    )
    .await;
    crate::server::raw_execute(
        config,
        &format!(
            "INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, \
             last_validated, refresh_token_id) VALUES ($1, $2, $3, {}, {now}, \
             (SELECT id FROM refresh_tokens WHERE token = $4))",
            now + 300_000
        ),
        &[user_id, device_id, &access, &refresh],
    )
    .await;
    crate::server::raw_execute(
        config,
        &format!(
            "INSERT INTO homekey_oauth_sessions (user_id, device_id, client_id, scope, \
             created_ms) VALUES ($1, $2, $3, $4, {now})"
        ),
        &[user_id, device_id, client_id, &scope],
    )
    .await;
    crate::server::raw_execute(
        config,
        &format!(
            "UPDATE homekey_oauth_clients SET first_session_ms = {now} \
             WHERE client_id = $1 AND first_session_ms IS NULL"
        ),
        &[client_id],
    )
    .await;
}

/// `user show` tells each device's session apart: "signed in with OAuth by" the app (its
/// `client_name`, else its client ID) for an OAuth session, "password login" for the rest;
/// `--json` gives `oauth_app` per device (null for a password login).
async fn show_says_which_sessions_are_oauth_and_of_which_app(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    let alice = "@alice:example.com";
    let element_x = register_oauth_client(
        &op.db,
        serde_json::json!({
            "application_type": "native",
            "client_name": "Element X",
            "client_uri": "https://element.io",
            "redirect_uris": ["io.element:/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    let nameless = register_oauth_client(
        &op.db,
        serde_json::json!({
            "client_uri": "https://app.example.org/",
            "redirect_uris": ["https://app.example.org/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
        }),
    )
    .await;
    oauth_session(
        &op.db,
        alice,
        "OAUTHDEVICE1",
        (&element_x, Some("Element X")),
    )
    .await;
    oauth_session(&op.db, alice, "OAUTHDEVICE2", (&nameless, None)).await;
    op.session(alice, "PASSWORDDEV").await;

    let shown = op.ok(&["user", "show", "alice"], "");
    assert!(shown.contains("devices       3"), "{shown}");
    let line = |device: &str| -> String {
        shown
            .lines()
            .find(|l| l.trim_start().starts_with(device))
            .unwrap_or_else(|| panic!("no line for {device}: {shown}"))
            .to_owned()
    };
    let oauth = line("OAUTHDEVICE1");
    assert!(
        oauth.contains("signed in with OAuth by Element X"),
        "{shown}"
    );
    let oauth = line("OAUTHDEVICE2");
    assert!(
        oauth.contains(&format!("signed in with OAuth by {nameless}")),
        "{shown}"
    );
    let password = line("PASSWORDDEV");
    assert!(password.contains("password login"), "{shown}");
    assert!(!password.contains("OAuth"), "{shown}");

    let body = op.json(&["user", "show", "alice", "--json"]);
    let mut apps: Vec<(String, Value)> = body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_owned(),
                d["oauth_app"].clone(),
            )
        })
        .collect();
    apps.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        apps,
        vec![
            ("OAUTHDEVICE1".to_owned(), Value::from("Element X")),
            ("OAUTHDEVICE2".to_owned(), Value::from(nameless.as_str())),
            ("PASSWORDDEV".to_owned(), Value::Null),
        ],
        "{body}"
    );
}

/// `user import`'s `email` column: one or several addresses separated by `;` (in JSON
/// lines also an array), kept canonical, listed by `user email list`; an address that is
/// none, listed twice or another account's refuses the file with one line naming the line
/// and the address, and nothing is imported.
async fn an_import_gives_email_addresses_and_refuses_bad_ones_whole(db: TestDb) {
    let op = Operator::new(db);
    op.create("alice", "wonderland1");
    op.ok(&["user", "email", "add", "alice", "alice@example.com"], "");
    let csv = op.dir.path().join("users.csv");
    let jsonl = op.dir.path().join("users.jsonl");
    let refused = [
        (
            "user,email\nbob,bob@example.com\ncarol,carol@example.com; not-an-address\n",
            "line 3: `email`: \"not-an-address\" is not an e-mail address",
        ),
        (
            "user,email\nbob,bob@example.com\ncarol,BOB@Example.com\n",
            "line 3: `email`: bob@example.com is on line 2 too",
        ),
        (
            "user,email\nbob,bob@example.com;Bob@example.com\n",
            "line 2: `email`: bob@example.com is twice on this line",
        ),
        (
            "user,email\nbob,bob@example.com\ncarol,Alice@example.com\n",
            "line 3: `email`: alice@example.com is already the address of another account, \
             @alice:example.com",
        ),
    ];
    for (text, expected) in refused {
        std::fs::write(&csv, text).unwrap();
        let err = op.fails(&["user", "import", csv.to_str().unwrap()], "", 1);
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(err.contains("nothing was imported"), "{err}");
        assert_eq!(op.json(&["user", "list", "--json"])["total"], 1, "{text}");
    }
    std::fs::write(
        &jsonl,
        "{\"user\": \"bob\", \"email\": [\"bob@example.com\", 7]}\n",
    )
    .unwrap();
    let err = op.fails(&["user", "import", jsonl.to_str().unwrap()], "", 1);
    assert!(
        err.contains("line 1: `email` must be a string or an array of strings"),
        "{err}"
    );

    std::fs::write(
        &csv,
        "user,password,email\n\
         bob,bob-pass12,Bob@Example.COM\n\
         carol,carol-pass1,carol@example.com ; Carol@Work.example;\n\
         dave,dave-pass12,\n",
    )
    .unwrap();
    let out = op.ok(&["user", "import", csv.to_str().unwrap()], "");
    assert_eq!(out, "imported 3 users; skipped 0 that already existed\n");
    assert_eq!(
        op.ok(&["user", "email", "list", "bob"], ""),
        "bob@example.com\n"
    );
    assert_eq!(
        op.ok(&["user", "email", "list", "carol"], ""),
        "carol@example.com\ncarol@work.example\n"
    );
    assert_eq!(op.ok(&["user", "email", "list", "dave"], ""), "");
    std::fs::write(
        &jsonl,
        "{\"user\": \"erin\", \"email\": [\"erin@example.com\", \"ERIN@home.example\"]}\n\
         {\"user\": \"frank\", \"email\": \"frank@example.com\"}\n",
    )
    .unwrap();
    op.ok(&["user", "import", jsonl.to_str().unwrap()], "");
    assert_eq!(
        op.ok(&["user", "email", "list", "erin"], ""),
        "erin@example.com\nerin@home.example\n"
    );
    assert_eq!(
        op.ok(&["user", "email", "list", "frank"], ""),
        "frank@example.com\n"
    );
}
