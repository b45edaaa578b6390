//! `hash_password` and `homekey hash-password` as processes, as an operator runs them.

use homekey::config::HashScheme;
use homekey::password::HashSettings;
use secrecy::SecretString;

use crate::support::{self, HASH_PASSWORD, HOMEKEY, run_binary, stderr, stdout, write_config};

const PEPPER: &str = "cli-pepper-xyz";

fn config_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            "server_name: example.com\nbcrypt_rounds: 5\npassword_config:\n  pepper: {PEPPER}\n"
        ),
    );
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

fn verifies(hash: &str, password: &str) -> bool {
    HashSettings::new(HashScheme::Bcrypt, 5, SecretString::from(PEPPER)).verify(
        &SecretString::from(password),
        Some(&SecretString::from(hash)),
    )
}

#[test]
fn a_piped_password_prints_only_its_hash_with_the_configs_pepper_and_rounds() {
    let (_dir, config) = config_dir();
    for (binary, args) in [
        (HASH_PASSWORD, vec!["-c", config.as_str()]),
        (HOMEKEY, vec!["hash-password", "-c", config.as_str()]),
    ] {
        let out = run_binary(binary, &args, b"  pw with spaces \t\n", &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(lines[0].starts_with("$2b$05$"), "{text}");
        // Surrounding white space is stripped, as Synapse's script does; inner spaces stay.
        assert!(verifies(lines[0], "pw with spaces"));
        assert!(!verifies(lines[0], "  pw with spaces \t"));
    }
}

#[test]
fn only_the_first_line_of_stdin_is_the_password() {
    let (_dir, config) = config_dir();
    let out = run_binary(HASH_PASSWORD, &["-c", &config], b"first\nsecond\n", &[]);
    assert!(out.status.success());
    assert!(verifies(stdout(&out).trim(), "first"));
}

#[test]
fn dash_p_takes_the_password_as_given() {
    let (_dir, config) = config_dir();
    let out = run_binary(HASH_PASSWORD, &["-c", &config, "-p", " spaced "], b"", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(verifies(stdout(&out).trim(), " spaced "));
}

#[test]
fn a_blank_password_is_refused_and_prints_no_hash() {
    let (_dir, config) = config_dir();
    for input in [&b""[..], b"\n", b"   \n"] {
        let out = run_binary(HASH_PASSWORD, &["-c", &config], input, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "");
        assert_eq!(
            stderr(&out).trim(),
            "hash_password: Password cannot be blank."
        );
    }
}

#[test]
fn a_long_password_is_cut_silently_on_stdout_with_a_notice_on_stderr() {
    let (_dir, config) = config_dir();
    let long = "x".repeat(100);
    let out = run_binary(
        HASH_PASSWORD,
        &["-c", &config],
        format!("{long}\n").as_bytes(),
        &[],
    );
    assert!(out.status.success());
    let hash = stdout(&out);
    assert_eq!(hash.lines().count(), 1);
    assert!(verifies(hash.trim(), &long));
    assert!(verifies(hash.trim(), &"x".repeat(72)));
    assert!(stderr(&out).contains("72 bytes"), "{}", stderr(&out));
}

#[test]
fn a_missing_or_broken_config_is_named_in_a_one_line_error() {
    let out = run_binary(
        HASH_PASSWORD,
        &["-c", "/nonexistent/homeserver.yaml"],
        b"pw\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/homeserver.yaml: cannot read the config file"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "server_name: x.org\nbcrypt_rounds: lots\n");
    let out = run_binary(
        HOMEKEY,
        &["hash-password", "-c", config.to_str().unwrap()],
        b"pw\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("homeserver.yaml: `bcrypt_rounds`: invalid type"),
        "{}",
        stderr(&out)
    );

    // Without -c, HOMEKEY_CONFIG or ./homeserver.yaml, say what is missing.
    let out = run_binary(HOMEKEY, &["hash-password"], b"pw\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no config: give -c homeserver.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn homekey_config_env_names_the_config() {
    let (_dir, config) = config_dir();
    let out = run_binary(
        HOMEKEY,
        &["hash-password"],
        b"pw\n",
        &[("HOMEKEY_CONFIG", &config)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(verifies(stdout(&out).trim(), "pw"));
}

#[test]
fn neither_the_password_nor_the_pepper_reaches_the_logs() {
    let (_dir, config) = config_dir();
    let out = run_binary(
        HOMEKEY,
        &["hash-password", "-c", &config],
        b"logged-password-canary\n",
        &[("RUST_LOG", "trace")],
    );
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        !err.contains("logged-password-canary") && !err.contains(PEPPER),
        "{err}"
    );
}

/// Runs `hash_password -c CONFIG` on a pseudo-terminal, answering its prompts.
fn on_a_terminal(config: &str, answers: &[&str]) -> (String, i32) {
    support::on_a_terminal(&[HASH_PASSWORD, "-c", config], answers)
}

#[test]
fn on_a_terminal_it_prompts_twice_without_echo_and_refuses_a_mismatch() {
    let (_dir, config) = config_dir();
    let (screen, code) = on_a_terminal(&config, &["typed-secret", "typed-secret"]);
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("Password: ") && screen.contains("Confirm password: "),
        "{screen}"
    );
    assert!(
        !screen.contains("typed-secret"),
        "the password was echoed: {screen}"
    );
    let hash = screen
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("$2b$"))
        .unwrap();
    assert!(verifies(hash, "typed-secret"));

    let (screen, code) = on_a_terminal(&config, &["one-secret", "other-secret"]);
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("Passwords do not match."), "{screen}");
    assert!(!screen.contains("$2b$"), "{screen}");

    let (screen, code) = on_a_terminal(&config, &[""]);
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("Password cannot be blank."), "{screen}");
}

/// Beside Synapse, the habit `hash_password -c /etc/matrix-synapse/homeserver.yaml` would make
/// a hash without homekey's pepper for a table Synapse no longer reads: both commands refuse
/// a delegating Synapse's config, naming homekey's, and print no hash.
#[test]
fn a_delegating_synapses_config_is_refused_naming_homekeys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "server_name: example.com\n\
         password_config: {enabled: false, pepper: synapse-pepper}\n\
         matrix_authentication_service:\n  enabled: true\n  \
         endpoint: http://127.0.0.1:8081/\n  secret: synapse-side-mas-secret-0123456789abcdef\n",
    );
    let config = path.to_str().unwrap();
    for (binary, args) in [
        (HASH_PASSWORD, vec!["-c", config, "-p", "new-password"]),
        (
            HOMEKEY,
            vec!["hash-password", "-c", config, "-p", "new-password"],
        ),
    ] {
        let out = run_binary(binary, &args, b"", &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{binary}: {err}");
        assert_eq!(stdout(&out), "", "{binary}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("homeserver.yaml")
                && err.contains("matrix_authentication_service")
                && err.contains("homekey's own config"),
            "{binary}: {err}"
        );
        assert!(!err.contains("synapse-side-mas-secret") && !err.contains("synapse-pepper"));
    }
}
