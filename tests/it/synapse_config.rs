//! Beside Synapse, the config as processes: `homekey generate-config --for-synapse`, the
//! `synapse:` section's refusals at start and in every command that reads the config, and a
//! delegating Synapse's own config refused by the commands on accounts.

use homekey::config::Config;
use secrecy::ExposeSecret;

use crate::support::{HOMEKEY, run_binary, stderr, stdout};

const SECRET: &str = "config-test-secret-0123456789abcdefghij";

#[test]
fn generate_config_for_synapse_writes_the_section_and_prints_synapses_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homekey.yaml");
    let generate = |path: &std::path::Path| {
        run_binary(
            HOMEKEY,
            &[
                "generate-config",
                "--server-name",
                "example.com",
                "--for-synapse",
                "http://127.0.0.1:8008",
                "--public-baseurl",
                "https://matrix.example.com",
                "-c",
                path.to_str().unwrap(),
            ],
            b"",
            &[],
        )
    };
    let out = generate(&path);
    assert!(out.status.success(), "{}", stderr(&out));

    let config = Config::load(&[&path]).unwrap();
    let synapse = config.synapse.as_ref().expect("a synapse: section");
    assert_eq!(synapse.endpoint, "http://127.0.0.1:8008/");
    let secret = synapse.secret.expose_secret().to_owned();
    assert!(secret.len() >= 32, "{}", secret.len());
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        config.public_baseurl.as_deref(),
        Some("https://matrix.example.com/")
    );
    // Not Synapse's port: both run on one host.
    assert_eq!(config.listeners[0].port, 8081);
    assert!(config.delegating_synapse_file.is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    // The secret is in a file of its own, beside the config, readable by its owner only,
    // which Synapse's block names too: nothing to copy, nothing secret printed.
    let secret_file = dir.path().join("homekey.synapse-secret");
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!(
            "matrix_authentication_service:\n  enabled: true\n  endpoint: \"http://127.0.0.1:8081/\"\n  secret_path: \"{}\"\n",
            secret_file.display()
        )),
        "{printed}"
    );
    for key in [
        "password_config.enabled",
        "enable_registration",
        "user_consent",
        "oidc_providers",
        "saml2_config",
        "cas_config",
        "jwt_config",
        "password_providers",
        "enable_registration_captcha",
        "login_via_existing_session",
        "refresh_token_lifetime",
        "nonrefreshable_access_token_lifetime",
        "session_lifetime",
        "enable_3pid_changes",
        "experimental_features.msc3861",
        "registration_shared_secret",
        "/oauth2/introspect",
        "/_synapse/mas",
        "/_homekey/",
    ] {
        assert!(printed.contains(key), "{key} missing from {printed}");
    }
    let registration = config.registration_shared_secret.unwrap();
    for secret in [secret.as_str(), registration.expose_secret()] {
        assert!(!printed.contains(secret), "a secret printed: {printed}");
        assert!(!stderr(&out).contains(secret));
    }

    // The block Synapse is told to take, with the secret filled in, is what Synapse's
    // config model reads (enabled, endpoint, secret) and what homekey then serves: the
    // same server loads it back, and a second file gets another secret.
    let second = dir.path().join("second.yaml");
    assert!(generate(&second).status.success());
    let other = Config::load(&[&second]).unwrap().synapse.unwrap();
    assert_ne!(other.secret.expose_secret(), secret);

    // Never overwritten.
    let before = std::fs::read(&path).unwrap();
    let out = generate(&path);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn generate_config_for_synapse_refuses_what_is_not_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("homekey.yaml");
    for (flag, args) in [
        ("--for-synapse", vec!["--for-synapse", "127.0.0.1:8008"]),
        (
            "--public-baseurl",
            vec![
                "--for-synapse",
                "http://127.0.0.1:8008/",
                "--public-baseurl",
                "matrix.example.com",
            ],
        ),
    ] {
        let mut argv = vec![
            "generate-config",
            "--server-name",
            "example.com",
            "-c",
            path.to_str().unwrap(),
        ];
        argv.extend(args);
        let out = run_binary(HOMEKEY, &argv, b"", &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{}", stderr(&out));
        assert!(!path.exists());
    }
    // --public-baseurl only with --for-synapse: a usage error.
    let out = run_binary(
        HOMEKEY,
        &[
            "generate-config",
            "--server-name",
            "example.com",
            "--public-baseurl",
            "https://m.example.com/",
            "-c",
            path.to_str().unwrap(),
        ],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// `--listen` moves homekey, and with it everything printed that names where homekey is:
/// Synapse's block and the reverse proxy's step; every address homekey listens on is reached
/// through the loopback one. A bad address is a usage error, and no file is written.
#[test]
fn generate_config_for_synapse_listens_where_told_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for (listen, bind, reach) in [
        ("127.0.0.1:9090", "127.0.0.1", "http://127.0.0.1:9090/"),
        ("0.0.0.0:9091", "0.0.0.0", "http://127.0.0.1:9091/"),
        ("[::1]:9092", "::1", "http://[::1]:9092/"),
    ] {
        let path = dir.path().join(format!("homekey-{bind}.yaml"));
        let out = run_binary(
            HOMEKEY,
            &[
                "generate-config",
                "--server-name",
                "example.com",
                "--for-synapse",
                "http://127.0.0.1:8008/",
                "--listen",
                listen,
                "-c",
                path.to_str().unwrap(),
            ],
            b"",
            &[],
        );
        assert!(out.status.success(), "{listen}: {}", stderr(&out));
        let config = Config::load(&[&path]).unwrap();
        let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(config.listeners[0].port, port);
        assert_eq!(config.listeners[0].bind_addresses, [bind]);
        let printed = stdout(&out);
        assert!(
            printed.contains(&format!("  endpoint: \"{reach}\"\n")),
            "{listen}: {printed}"
        );
        assert!(
            printed.contains(&format!("to homekey at {reach}")),
            "{listen}: {printed}"
        );
        assert!(!printed.contains("8081"), "{listen}: {printed}");
        // Synapse's public_baseurl is a step of its own, and each refused key its own line.
        assert!(printed.contains("public_baseurl: set it in Synapse's file"));
        assert!(printed.contains("/.well-known/matrix/client"));
        assert!(printed.contains("  - password_config.enabled: set it to false"));
        assert!(printed.contains("  - jwt_config: remove it\n"));
    }

    let path = dir.path().join("bad.yaml");
    for bad in [
        "nonsense",
        "127.0.0.1",
        "8081",
        "127.0.0.1:0",
        "localhost:8081",
    ] {
        let out = run_binary(
            HOMEKEY,
            &[
                "generate-config",
                "--server-name",
                "example.com",
                "--for-synapse",
                "http://127.0.0.1:8008/",
                "--listen",
                bad,
                "-c",
                path.to_str().unwrap(),
            ],
            b"",
            &[],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--listen"), "{bad}: {err}");
        assert!(!path.exists());
        assert!(!dir.path().join("bad.synapse-secret").exists());
    }
}

/// A homekey config with `synapse` as given, in `dir`.
fn config_with(dir: &std::path::Path, synapse: &str) -> std::path::PathBuf {
    let path = dir.join("homekey.yaml");
    std::fs::write(
        &path,
        format!(
            "server_name: example.com\npublic_baseurl: https://matrix.example.com/\n\
             database: {{name: sqlite3, args: {{database: {}/hk.db}}}}\n\
             listeners: [{{port: 0, bind_addresses: ['127.0.0.1']}}]\n{synapse}",
            dir.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_bad_synapse_section_is_refused_at_start_and_by_every_command_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("  {SECRET}\n")).unwrap();
    let short_file = dir.path().join("short");
    std::fs::write(&short_file, "short-file-secret\n").unwrap();
    let cases = [
        (
            "synapse:\n  endpoint: http://127.0.0.1:8008/\n".to_owned(),
            "`synapse.secret` is required",
        ),
        (
            "synapse:\n  endpoint: http://127.0.0.1:8008/\n  secret: shortsecret-x1\n".to_owned(),
            "`synapse.secret`: the secret shared with Synapse must be at least 32 characters",
        ),
        (
            format!(
                "synapse:\n  endpoint: http://127.0.0.1:8008/\n  secret_path: {}\n",
                short_file.display()
            ),
            "`synapse.secret_path`: the secret shared with Synapse must be at least 32",
        ),
        (
            format!(
                "synapse:\n  endpoint: http://127.0.0.1:8008/\n  secret: {SECRET}\n  secret_path: {}\n",
                secret_file.display()
            ),
            "`synapse.secret_path`: give either synapse.secret or synapse.secret_path, not both",
        ),
        (
            format!(
                "synapse:\n  endpoint: http://127.0.0.1:8008/\n  secret_path: {}/missing\n",
                dir.path().display()
            ),
            "`synapse.secret_path`: cannot read",
        ),
        (
            format!("synapse:\n  secret: {SECRET}\n"),
            "`synapse.endpoint` is required",
        ),
        (
            format!("synapse:\n  endpoint: 127.0.0.1:8008\n  secret: {SECRET}\n"),
            "`synapse.endpoint`: expected an http:// or https:// URL",
        ),
        (
            format!("synapse:\n  endpoint: http://127.0.0.1:8008/\n  secret: [{SECRET}]\n"),
            "`synapse.secret`: expected a string",
        ),
        (
            format!("synapse: {SECRET}\n"),
            "`synapse`: expected a mapping",
        ),
    ];
    for (section, expected) in cases {
        let path = config_with(dir.path(), &section);
        let config = path.to_str().unwrap();
        for argv in [
            vec!["serve", "-c", config],
            vec!["user", "list", "-c", config],
            vec!["migrate", "-c", config],
            vec!["hash-password", "-c", config, "-p", "pw"],
        ] {
            let out = run_binary(HOMEKEY, &argv, b"", &[]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{argv:?} {section}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(expected), "{argv:?} {section}: {err}");
            for secret in [SECRET, "shortsecret-x1", "short-file-secret"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }

    // Without public_baseurl there is no issuer to announce.
    let path = dir.path().join("no-baseurl.yaml");
    std::fs::write(
        &path,
        format!("server_name: example.com\nsynapse:\n  endpoint: http://127.0.0.1:8008/\n  secret: {SECRET}\n"),
    )
    .unwrap();
    let out = run_binary(HOMEKEY, &["serve", "-c", path.to_str().unwrap()], b"", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`public_baseurl` is required"),
        "{}",
        stderr(&out)
    );

    // A secret from a file, white space stripped as Synapse strips it: accepted.
    let path = config_with(
        dir.path(),
        &format!(
            "synapse:\n  endpoint: http://127.0.0.1:8008\n  secret_path: {}\n",
            secret_file.display()
        ),
    );
    let config = Config::load(&[&path]).unwrap();
    assert_eq!(config.synapse.unwrap().secret.expose_secret(), SECRET);
    let out = run_binary(
        HOMEKEY,
        &["migrate", "-c", path.to_str().unwrap()],
        b"",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_delegating_synapses_own_config_is_refused_by_the_commands_on_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let mas_secret = "synapse-side-mas-secret-0123456789abcdef";
    let synapse_config = |enabled: bool| {
        let path = dir.path().join(format!("homeserver-{enabled}.yaml"));
        std::fs::write(
            &path,
            format!(
                "server_name: example.com\n\
                 database: {{name: sqlite3, args: {{database: {}/synapse.db}}}}\n\
                 password_config: {{enabled: false}}\n\
                 matrix_authentication_service:\n  enabled: {enabled}\n  \
                 endpoint: http://127.0.0.1:8081/\n  secret: {mas_secret}\n",
                dir.path().display()
            ),
        )
        .unwrap();
        path
    };
    let off = synapse_config(false);
    let out = run_binary(HOMEKEY, &["migrate", "-c", off.to_str().unwrap()], b"", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let on = synapse_config(true);
    let config = on.to_str().unwrap();
    let no_accounts = dir.path().join("no-accounts.csv");
    std::fs::write(&no_accounts, "user,password\n").unwrap();
    for (argv, stdin) in [
        (
            vec!["user", "create", "alice", "--password-stdin", "-c", config],
            &b"alice-pw-long\n"[..],
        ),
        (
            vec![
                "user",
                "set-password",
                "alice",
                "--password-stdin",
                "-c",
                config,
            ],
            b"other-pw-long\n",
        ),
        (vec!["user", "deactivate", "alice", "-c", config], b""),
        (vec!["user", "list", "-c", config], b""),
        (
            vec![
                "user",
                "import",
                no_accounts.to_str().unwrap(),
                "-c",
                config,
            ],
            b"",
        ),
        (vec!["audit", "list", "-c", config], b""),
        (vec!["serve", "-c", config], b""),
        (vec!["migrate", "-c", config], b""),
    ] {
        let out = run_binary(HOMEKEY, &argv, stdin, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{argv:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("homeserver-true.yaml")
                && err.contains("matrix_authentication_service")
                && err.contains("homekey's own config"),
            "{argv:?}: {err}"
        );
        assert!(!err.contains(mas_secret), "{err}");
    }
    // Nothing was made there; with the delegation off, the same commands work.
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "create",
            "alice",
            "--password-stdin",
            "-c",
            off.to_str().unwrap(),
        ],
        b"alice-pw-long\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_binary(
        HOMEKEY,
        &["user", "list", "-c", off.to_str().unwrap()],
        b"",
        &[],
    );
    assert!(
        stdout(&out).contains("@alice:example.com"),
        "{}",
        stdout(&out)
    );
}

/// Beside Synapse, the operator's `homekey user create` and `homekey user login` wait for
/// Synapse as their HTTP counterparts do: with Synapse away they fail (exit 1, saying so)
/// and leave no account and no token.
#[test]
fn user_create_and_login_beside_an_absent_synapse_fail_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("homekey.yaml");
    let database = dir.path().join("homekey.db");
    std::fs::write(
        &config,
        format!(
            "server_name: example.com\nbcrypt_rounds: 4\n\
             database: {{name: sqlite3, args: {{database: {}}}}}\n\
             public_baseurl: https://matrix.example.com/\n\
             synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: {SECRET}\n",
            database.display()
        ),
    )
    .unwrap();
    let homekey = |args: &[&str], stdin: &str| {
        let mut all = args.to_vec();
        all.extend(["-c", config.to_str().unwrap()]);
        run_binary(HOMEKEY, &all, stdin.as_bytes(), &[])
    };
    let out = homekey(&["migrate"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    // A new account needs Synapse's word that it may have the name: none, no account.
    let out = homekey(
        &["user", "create", "zoe", "--password-stdin"],
        "zoe-password\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Synapse cannot be reached"),
        "{}",
        stderr(&out)
    );
    let out = homekey(&["user", "show", "zoe"], "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "zoe was created: {}",
        stdout(&out)
    );
    // zoe made without the synapse: section, on the same database.
    let standalone = dir.path().join("standalone.yaml");
    std::fs::write(
        &standalone,
        format!(
            "server_name: example.com\nbcrypt_rounds: 4\n\
             database: {{name: sqlite3, args: {{database: {}}}}}\n",
            database.display()
        ),
    )
    .unwrap();
    let out = run_binary(
        HOMEKEY,
        &[
            "user",
            "create",
            "zoe",
            "--password-stdin",
            "-c",
            standalone.to_str().unwrap(),
        ],
        b"zoe-password\n",
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = homekey(&["user", "login", "zoe"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no token is printed");
    let err = stderr(&out);
    assert!(err.contains("Synapse cannot be reached"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    let out = homekey(&["user", "show", "zoe", "--json"], "");
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(shown["devices"].as_array().is_some(), "{shown}");
    let tokens = rusqlite::Connection::open(&database)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM access_tokens", [], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap();
    assert_eq!(tokens, 0, "a token was left behind");
}

/// `homekey synapse …` with what it cannot work with: no `synapse:` section, no user named,
/// a user homekey does not have, another server's user, a database that is not there. Each
/// is one line naming the problem and a non-zero exit; nothing asks Synapse (none runs).
#[test]
fn synapse_commands_refuse_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("homekey.db");
    let write = |name: &str, synapse: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "server_name: example.com\nbcrypt_rounds: 4\n\
                 database: {{name: sqlite3, args: {{database: {}}}}}\n{synapse}",
                database.display()
            ),
        )
        .unwrap();
        path
    };
    let beside = write(
        "beside.yaml",
        &format!(
            "public_baseurl: https://matrix.example.com/\n\
             synapse:\n  endpoint: http://127.0.0.1:1/\n  secret: {SECRET}\n"
        ),
    );
    let standalone = write("standalone.yaml", "");
    let homekey = |args: &[&str], config: &std::path::Path| {
        let mut all = args.to_vec();
        all.extend(["-c", config.to_str().unwrap()]);
        run_binary(HOMEKEY, &all, b"", &[])
    };
    // The database is not there yet: exit 3, the database unreachable.
    let out = homekey(&["synapse", "status"], &beside);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(homekey(&["migrate"], &beside).status.success());

    let out = homekey(&["synapse", "status"], &beside);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "nothing is owed to Synapse\n");
    for (args, config, code, says) in [
        (
            &["synapse", "status"][..],
            &standalone,
            1,
            "no synapse: section",
        ),
        (
            &["synapse", "reconcile", "alice"][..],
            &standalone,
            1,
            "no synapse: section",
        ),
        (&["synapse", "reconcile"][..], &beside, 2, "<USER>"),
        (
            &["synapse", "reconcile", "alice", "--all"][..],
            &beside,
            2,
            "--all",
        ),
        (
            &["synapse", "reconcile", "nobody"][..],
            &beside,
            1,
            "does not exist",
        ),
        (
            &["synapse", "reconcile", "@alice:other.example"][..],
            &beside,
            1,
            "not a user of this server",
        ),
        (
            &["synapse", "reconcile", ""][..],
            &beside,
            2,
            "may not be empty",
        ),
    ] {
        let out = homekey(args, config);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(stdout(&out), "", "{args:?}");
        assert!(!err.contains(SECRET));
    }
}
