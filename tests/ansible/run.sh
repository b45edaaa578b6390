#!/usr/bin/env bash
# The Ansible role in deploy/ansible against this machine (ansible_connection=local): see
# deploy/ansible/README.md, "What CI exercises".
#
#   bash tests/ansible/run.sh        # after `cargo build` (or `cargo test`)
#
# It builds nothing: homekey is $HOMEKEY_BIN (default target/debug/homekey, or under $CARGO_TARGET_DIR). ansible-core and
# ansible-lint (pinned below) are installed once into a venv outside the repository,
# $HOMEKEY_ANSIBLE_VENV (default ~/.cache/homekey-ci/ansible-venv). Everything else lives in a
# temporary folder: a homeserver.yaml with SQLite, a `homekey serve` on 127.0.0.1 (port chosen
# by the system), a release archive served on 127.0.0.1, and the setup-all prefix. The
# setup-all part creates a system user (homekey-ci-$$) and removes it again; it needs root.
set -euo pipefail

ANSIBLE_CORE_VERSION=2.19.14
ANSIBLE_LINT_VERSION=26.10.1

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${HOMEKEY_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/homekey}"
venv="${HOMEKEY_ANSIBLE_VENV:-$HOME/.cache/homekey-ci/ansible-venv}"
playbook="$repo/deploy/ansible/setup.yml"

die() {
  echo "tests/ansible: FAILED: $*" >&2
  exit 1
}
say() { echo "tests/ansible: $*"; }
checks=0
pass() { # pass WHAT: one check passed
  checks=$((checks + 1))
  echo "tests/ansible: ok: $*"
}

[[ -x "$bin" ]] || die "no homekey binary at $bin: run \`cargo build\` first, or set HOMEKEY_BIN"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ $(id -u) -eq 0 ]] || die "run as root: the setup-all part creates a system user"
command -v curl >/dev/null || die "curl is not installed"

# --- ansible-core and ansible-lint, outside the repository ---------------------------------
if ! "$venv/bin/python" - "$ANSIBLE_CORE_VERSION" "$ANSIBLE_LINT_VERSION" 2>/dev/null <<'EOF'; then
import sys
from importlib.metadata import version
sys.exit(0 if (version("ansible-core"), version("ansible-lint")) == tuple(sys.argv[1:]) else 1)
EOF
  say "installing ansible-core==$ANSIBLE_CORE_VERSION ansible-lint==$ANSIBLE_LINT_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "ansible-core==$ANSIBLE_CORE_VERSION" "ansible-lint==$ANSIBLE_LINT_VERSION"
fi
export PATH="$venv/bin:$PATH"

# --- a temporary world, cleaned up on exit ----------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/homekey-ansible.XXXXXX")"
chmod 0755 "$work" # the system user of the setup-all part reads its prefix below
server_pid=""
release_pid=""
system_user="homekey-ci-$$"
created_system_user=""
pg_created=""
stop() {
  local pid="$1"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$?
  stop "$server_pid"
  stop "$release_pid"
  if [[ -n "$pg_created" ]]; then
    pg_admin "DROP DATABASE IF EXISTS $pg_created" >/dev/null 2>&1 || true
  fi
  if [[ -n "$created_system_user" ]]; then
    userdel "$system_user" 2>/dev/null || true
    groupdel "$system_user" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -s "$work/server.log" ]]; then
    echo "--- homekey serve's log ---" >&2
    tail -n 40 "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Ansible's settings for this run only: no ansible.cfg of the machine's, no colours, no
# retry files, its own temporary folders.
cat >"$work/ansible.cfg" <<EOF
[defaults]
interpreter_python = auto_silent
retry_files_enabled = False
local_tmp = $work/ansible-local
nocolor = True
EOF
export ANSIBLE_CONFIG="$work/ansible.cfg"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_HOME="$work/ansible-home"
# The modules run under the system's Python (the service's user must be able to run it too;
# interpreter discovery may find a version manager's shim instead).
target_python="$(command -v /usr/bin/python3 || command -v python3)"

# Every ansible-playbook run's output, to be searched for passwords at the end.
runs=0
last_log=""
# play TAGS [ARGS…]: runs setup.yml with those tags (-: no --tags); its output goes to
# $last_log (and its exit code to $last_rc), never fails the script by itself.
play() {
  local tags="$1"
  shift
  runs=$((runs + 1))
  last_log="$work/run-$runs-$tags.log"
  local tag_args=(--tags="$tags")
  [[ "$tags" == - ]] && tag_args=()
  set +e
  ansible-playbook -i "$here/inventory/hosts" "$playbook" "${tag_args[@]}" \
    --extra-vars="ansible_python_interpreter=$target_python" "$@" </dev/null >"$last_log" 2>&1
  last_rc=$?
  set -e
}
show_log() {
  echo "--- ansible-playbook output ($last_log) ---" >&2
  cat "$last_log" >&2
}
# recap FIELD: the number after FIELD= in the last run's PLAY RECAP (one host: localhost).
recap() {
  local value
  value="$(sed -n '/^PLAY RECAP/,$p' "$last_log" | grep -o "$1=[0-9]*" | head -n1 | cut -d= -f2)"
  [[ -n "$value" ]] || { show_log; die "no PLAY RECAP in $last_log"; }
  echo "$value"
}
expect_ok() { # expect_ok CHANGED WHAT: the last run succeeded with that many changes
  if [[ $last_rc -ne 0 ]]; then show_log; die "$2: ansible-playbook exited $last_rc"; fi
  local changed
  changed="$(recap changed)"
  if [[ "$changed" != "$1" ]]; then show_log; die "$2: changed=$changed, expected changed=$1"; fi
  pass "$2 (changed=$changed)"
}
expect_changes() { # expect_changes WHAT: the last run succeeded and changed something
  if [[ $last_rc -ne 0 ]]; then show_log; die "$1: ansible-playbook exited $last_rc"; fi
  local changed
  changed="$(recap changed)"
  if [[ "$changed" -eq 0 ]]; then show_log; die "$1: changed=0, expected changes"; fi
  pass "$1 (changed=$changed)"
}
expect_failure() { # expect_failure MESSAGE WHAT: the last run failed and said MESSAGE
  if [[ $last_rc -eq 0 ]]; then show_log; die "$2: ansible-playbook succeeded, expected a failure"; fi
  if ! grep -qF -- "$1" "$last_log"; then show_log; die "$2: the output does not say: $1"; fi
  if [[ "$(recap changed)" != 0 ]]; then show_log; die "$2: a failed run reported changes"; fi
  pass "$2 (failed with: $1)"
}

# --- 1. ansible-lint -----------------------------------------------------------------------
say "ansible-lint $ANSIBLE_LINT_VERSION on deploy/ansible"
(cd "$repo/deploy/ansible" && ansible-lint --offline --profile production --nocolor) </dev/null >"$work/lint.log" 2>&1 ||
  { cat "$work/lint.log" >&2; die "ansible-lint found problems"; }
tail -n1 "$work/lint.log"

# --- 2. the user tags against a temporary config, and a server of our own -----------------------
db="$work/data/homeserver.db"
config="$work/homeserver.yaml"
mkdir -p "$work/data"
cat >"$config" <<EOF
server_name: example.com
database:
  name: sqlite3
  args:
    database: $db
listeners:
  - port: 0
    bind_addresses: ['127.0.0.1']
    type: http
bcrypt_rounds: 4
password_config:
  pepper: ansible-test-pepper
  policy:
    enabled: true
    minimum_length: 10
    require_digit: true
    require_lowercase: true
    require_uppercase: true
# Synapse's defaults throttle after a few logins from one address; this test logs in often.
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
EOF
"$bin" migrate -c "$config" >/dev/null

cat >"$work/users.yml" <<EOF
homekey_binary_path: $bin
homekey_config_path: $config
homekey_cli_become_user: ""
EOF
users=(--extra-vars="@$work/users.yml")

# Passwords unique enough that finding one in any output means it leaked.
old_password="Old-pass-$RANDOM$RANDOM-x"
new_password="New-pass-$RANDOM$RANDOM-y"
other_password="Other-pass-$RANDOM$RANDOM-z"
weak_password="wk$RANDOM$RANDOM"

play register-user "${users[@]}" --extra-vars="username=alice password=$old_password admin=no"
expect_ok 1 "register-user creates alice"
play register-user "${users[@]}" --extra-vars="username=alice password=$other_password admin=yes"
expect_ok 0 "register-user again leaves alice as she is"
grep -qF "already exists; left as it is" "$last_log" || { show_log; die "register-user again: no 'already exists'"; }

NO_COLOR=1 RUST_LOG=info "$bin" serve -c "$config" </dev/null >"$work/server.log" 2>&1 &
server_pid=$!
base_url=""
for _ in $(seq 1 300); do
  base_url="$(grep -o 'listening on http://[0-9.:]*' "$work/server.log" | head -n1 | sed 's/^listening on //')" || true
  [[ -n "$base_url" ]] && break
  kill -0 "$server_pid" 2>/dev/null || die "homekey serve exited before listening"
  sleep 0.1
done
[[ -n "$base_url" ]] || die "homekey serve did not say where it listens within 30 s"
[[ "$base_url" == http://127.0.0.1:* ]] || die "homekey serve listens on $base_url, not 127.0.0.1"

# login USER PASSWORD: the HTTP status of an m.login.password login (the token in $work/token).
login() {
  curl --silent --noproxy '*' --max-time 20 -o "$work/login.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' -X POST "$base_url/_matrix/client/v3/login" \
    --data-binary @- <<EOF
{"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "$1"}, "password": "$2"}
EOF
}
expect_login() { # expect_login STATUS USER PASSWORD WHAT
  local status
  status="$(login "$2" "$3")"
  [[ "$status" == "$1" ]] || die "$4: login answered $status, expected $1: $(cat "$work/login.json")"
  pass "$4 (login $status)"
}
whoami_status() {
  curl --silent --noproxy '*' --max-time 20 -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $1" "$base_url/_matrix/client/v3/account/whoami"
}

expect_login 200 alice "$old_password" "alice logs in with the password register-user gave"
expect_login 403 alice "$other_password" "the second register-user did not change the password"

play update-user-password "${users[@]}" --extra-vars="username=alice password=$new_password"
expect_ok 1 "update-user-password sets alice's password"
expect_login 200 alice "$new_password" "the new password logs in"
expect_login 403 alice "$old_password" "the old password is refused"

# logout_devices: false by default (a token survives), true logs every device out.
expect_login 200 alice "$new_password" "a session for the logout_devices checks"
token="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$work/login.json")"
play update-user-password "${users[@]}" --extra-vars="username=alice password=$new_password"
expect_ok 1 "update-user-password without logout_devices"
[[ "$(whoami_status "$token")" == 200 ]] || die "logout_devices defaults to false, yet the token stopped working"
pass "the session survives without logout_devices"
play update-user-password "${users[@]}" --extra-vars="username=alice password=$new_password logout_devices=true"
expect_ok 1 "update-user-password with logout_devices=true"
[[ "$(whoami_status "$token")" == 401 ]] || die "logout_devices=true left the token working"
pass "logout_devices=true logged the session out"

# At the highest verbosity too, the password stays out of the output (checked at the end).
play update-user-password "${users[@]}" -vvv --extra-vars="username=alice password=$new_password"
expect_ok 1 "update-user-password with -vvv"
play update-user-password "${users[@]}" -vvv --extra-vars="username=alice password=$weak_password"
expect_failure "homekey: password refused by the policy" "update-user-password with a weak password and -vvv"

# --- 3. bad input: a clear message, and nothing changed ------------------------------------------
play update-user-password "${users[@]}" --extra-vars="password=$other_password"
expect_failure "no username: give the user's localpart" "update-user-password without username"
play update-user-password "${users[@]}" --extra-vars="username=@alice:example.com password=$other_password"
expect_failure "username=@alice:example.com is a full user ID: give its localpart alone, e.g. username=alice" \
  "update-user-password with a full user ID"
play update-user-password "${users[@]}" --extra-vars="username=bob password=$other_password"
expect_failure "homekey: user @bob:example.com does not exist" "update-user-password for an unknown user"
play update-user-password "${users[@]}" --extra-vars="username=alice password=$weak_password"
expect_failure "homekey: password refused by the policy" "update-user-password with a weak password"
play update-user-password "${users[@]}" --extra-vars="username=alice"
expect_failure "no password: give it with" "update-user-password without password"
play update-user-password "${users[@]}" --extra-vars='{"username": "alice", "password": " padded-Pass-1 "}'
expect_failure "the password starts or ends with white space" "update-user-password with spaces around the password"
play register-user "${users[@]}" --extra-vars="username=carol password=$weak_password"
expect_failure "homekey: password refused by the policy" "register-user with a weak password"
play register-user "${users[@]}" --extra-vars="username=@carol:example.com password=$other_password"
expect_failure "is a full user ID" "register-user with a full user ID"
play register-user "${users[@]}" --extra-vars="username=carol password=$other_password admin=maybe"
expect_failure "admin=maybe: expected admin=yes or admin=no" "register-user with admin=maybe"
play set-user-admin "${users[@]}" --extra-vars="username=bob admin=yes"
expect_failure "homekey: user @bob:example.com does not exist" "set-user-admin for an unknown user"
play set-user-admin "${users[@]}" --extra-vars="username=alice"
expect_failure "set-user-admin needs admin=yes or admin=no" "set-user-admin without admin"
play update-user-password --extra-vars="homekey_binary_path=$work/nowhere/homekey homekey_config_path=$config" \
  --extra-vars='homekey_cli_become_user=""' --extra-vars="username=alice password=$other_password"
expect_failure "$work/nowhere/homekey does not exist on localhost" "update-user-password without a homekey binary"

expect_login 200 alice "$new_password" "after the bad input, alice's password is unchanged"
expect_login 403 alice "$other_password" "no bad run set another password"
"$bin" user show carol -c "$config" >/dev/null 2>&1 && die "carol was created by a refused register-user"
"$bin" user show bob -c "$config" >/dev/null 2>&1 && die "bob exists after the bad input"
pass "no user was created by the bad input"

# set-user-admin: changed only when the flag changes.
admin_of() { "$bin" user show "$1" --json -c "$config" | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin"])'; }
play set-user-admin "${users[@]}" --extra-vars="username=alice admin=yes"
expect_ok 1 "set-user-admin makes alice an admin"
[[ "$(admin_of alice)" == True ]] || die "alice is not an admin after set-user-admin admin=yes"
play set-user-admin "${users[@]}" --extra-vars="username=alice admin=yes"
expect_ok 0 "set-user-admin again changes nothing"
# alice is the only admin: the tag passes no --force, so homekey refuses to leave no admin.
play set-user-admin "${users[@]}" --extra-vars="username=alice admin=no"
expect_failure "is the last server admin who can act" "set-user-admin refuses to remove the last admin"
[[ "$(admin_of alice)" == True ]] || die "the last admin lost the flag"
play register-user "${users[@]}" --extra-vars="username=dave password=$other_password admin=yes"
expect_ok 1 "register-user creates an admin"
[[ "$(admin_of dave)" == True ]] || die "register-user admin=yes did not make dave an admin"
expect_login 200 dave "$other_password" "dave logs in"
play set-user-admin "${users[@]}" --extra-vars="username=alice admin=no"
expect_ok 1 "set-user-admin removes the flag"
[[ "$(admin_of alice)" == False ]] || die "alice is still an admin after set-user-admin admin=no"

stop "$server_pid"
server_pid=""

# --- 4. setup-all with homekey_service_manager=none into a temporary prefix ---------------------
id "$system_user" >/dev/null 2>&1 && die "user $system_user exists already"
getent group "$system_user" >/dev/null && die "group $system_user exists already"
created_system_user=yes
prefix="$work/prefix"

# A release archive on 127.0.0.1, as the role downloads it.
mkdir -p "$work/release"
cp "$bin" "$work/release/homekey"
tar -czf "$work/release/homekey-test.tar.gz" -C "$work/release" homekey
checksum="sha256:$(sha256sum "$work/release/homekey-test.tar.gz" | cut -d' ' -f1)"
python3 -u -m http.server --bind 127.0.0.1 --directory "$work/release" 0 >"$work/release.log" 2>&1 &
release_pid=$!
release_port=""
for _ in $(seq 1 100); do
  release_port="$(grep -o 'port [0-9]*' "$work/release.log" | head -n1 | cut -d' ' -f2)" || true
  [[ -n "$release_port" ]] && break
  sleep 0.1
done
[[ -n "$release_port" ]] || die "the release server did not start: $(cat "$work/release.log")"

cat >"$work/setup.yml" <<EOF
homekey_prefix: $prefix
homekey_service_manager: none
homekey_user: $system_user
homekey_server_name: example.com
homekey_bcrypt_rounds: 4
homekey_listen_port: 0
homekey_release_url: http://127.0.0.1:$release_port/homekey-test.tar.gz
homekey_release_checksum: $checksum
# The system user has no login shell: su needs one to run homekey as that user.
ansible_become_method: su
ansible_become_flags: -s /bin/sh
EOF
setup=(--extra-vars="@$work/setup.yml")

play setup-all "${setup[@]}" --diff
expect_changes "setup-all into $prefix"
play setup-all "${setup[@]}"
expect_ok 0 "setup-all again reports no change"
play - "${setup[@]}" --extra-vars="homekey_binary_src=$bin homekey_release_url=''"
expect_ok 0 "a run without --tags (setup-all), the same binary from the controller, reports no change"

# Without systemd the service tags refuse, and say why.
play start "${setup[@]}"
expect_failure "homekey_service_manager is none: this playbook does not run the service here" \
  "start with homekey_service_manager=none"

# What was installed.
[[ -x "$prefix/usr/local/bin/homekey" ]] || die "no binary at $prefix/usr/local/bin/homekey"
cmp -s "$bin" "$prefix/usr/local/bin/homekey" || die "the installed binary differs from $bin"
[[ "$(stat -c '%a %U %G' "$prefix/etc/homekey/homeserver.yaml")" == "640 root $system_user" ]] ||
  die "homeserver.yaml is $(stat -c '%a %U %G' "$prefix/etc/homekey/homeserver.yaml")"
[[ "$(stat -c '%a %U' "$prefix/var/lib/homekey")" == "750 $system_user" ]] ||
  die "the data folder is $(stat -c '%a %U' "$prefix/var/lib/homekey")"
[[ "$(stat -c '%U' "$prefix/var/lib/homekey/homeserver.db")" == "$system_user" ]] ||
  die "the SQLite database is not the service's"
unit="$prefix/etc/systemd/system/homekey.service"
for line in "User=$system_user" "ExecStart=$prefix/usr/local/bin/homekey serve -c $prefix/etc/homekey/homeserver.yaml" \
  NoNewPrivileges=true ProtectSystem=strict ProtectHome=true PrivateTmp=true "ReadWritePaths=$prefix/var/lib/homekey"; do
  grep -qxF "$line" "$unit" || die "the unit lacks $line"
done
grep -q '^server_name: example.com$' "$prefix/etc/homekey/homeserver.yaml" || die "homeserver.yaml lacks the server name"
pass "binary, user, config (0640 root:$system_user), data folder, database and hardened unit in place"

# systemd does not run here, but its analyzer reads unit files offline: every line must parse,
# and the hardening must score as systemd's own "OK" or better (exposure at most 3 of 10).
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || { cat "$work/verify.log" >&2; die "systemd-analyze verify failed"; }
  [[ ! -s "$work/verify.log" ]] || { cat "$work/verify.log" >&2; die "systemd-analyze verify complains about the unit"; }
  systemd-analyze security --offline=true --threshold=30 "$unit" >"$work/security.log" 2>&1 ||
    { cat "$work/security.log" >&2; die "the unit's exposure is above 3.0"; }
  pass "systemd-analyze verify is silent; $(grep -o 'Overall exposure level.*' "$work/security.log")"
else
  say "systemd-analyze is not installed: the unit file was not checked by systemd"
fi

# The user tags against what setup-all installed, as the service's user (become: su).
play register-user "${setup[@]}" --extra-vars="username=erin password=$other_password admin=yes"
expect_ok 1 "register-user on the installed homekey, as $system_user"
play update-user-password "${setup[@]}" --extra-vars="username=erin password=$new_password"
expect_ok 1 "update-user-password on the installed homekey, as $system_user"
foreign="$(find "$prefix/var/lib/homekey" ! -user "$system_user" -print)"
[[ -z "$foreign" ]] || die "files in the data folder not owned by $system_user: $foreign"
pass "every file in the data folder is still $system_user's"

# A wrong checksum stops the install before anything is unpacked.
play setup-all "${setup[@]}" --extra-vars="homekey_prefix=$work/prefix2 homekey_release_checksum=sha256:$(printf '0%.0s' $(seq 1 64))"
[[ $last_rc -ne 0 ]] || { show_log; die "setup-all with a wrong checksum succeeded"; }
grep -qi "checksum" "$last_log" || { show_log; die "setup-all with a wrong checksum does not say so"; }
[[ ! -e "$work/prefix2/usr/local/bin/homekey" ]] || die "a binary was installed despite the wrong checksum"
pass "a wrong checksum fails the install"

# --- 4b. setup-all with PostgreSQL, where a server answers ----------------------------------------
# $HOMEKEY_TEST_POSTGRES_URL as the Rust tests take it; a database of its own, dropped on exit.
# With CI=true a missing server is a failure, as in the Rust tests.
pg_url="${HOMEKEY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
read -r pg_host pg_port pg_user pg_password < <(python3 - "$pg_url" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 5432, urllib.parse.unquote(u.username or "postgres"),
      urllib.parse.unquote(u.password or "") or "-")
EOF
)
[[ "$pg_password" == - ]] && pg_password=""
pg_admin() { PGPASSWORD="$pg_password" psql -X -q -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -c "$1"; }
if command -v psql >/dev/null && pg_admin 'SELECT 1' >/dev/null 2>&1; then
  pg_db="homekey_ansible_$$"
  pg_admin "CREATE DATABASE $pg_db" >/dev/null
  pg_created="$pg_db"
  cat >"$work/setup-pg.yml" <<EOF
homekey_prefix: $work/prefix-pg
homekey_database_type: postgres
homekey_postgres_host: "$pg_host"
homekey_postgres_port: $pg_port
homekey_postgres_user: "$pg_user"
homekey_postgres_password: "$pg_password"
homekey_postgres_dbname: $pg_db
homekey_binary_src: $bin
homekey_release_url: ""
EOF
  play setup-all "${setup[@]}" --extra-vars="@$work/setup-pg.yml"
  expect_changes "setup-all with PostgreSQL (database $pg_db)"
  grep -q '^  name: psycopg2$' "$work/prefix-pg/etc/homekey/homeserver.yaml" || die "homeserver.yaml does not name psycopg2"
  play setup-all "${setup[@]}" --extra-vars="@$work/setup-pg.yml"
  expect_ok 0 "setup-all with PostgreSQL again reports no change"
  play register-user "${setup[@]}" --extra-vars="@$work/setup-pg.yml" --extra-vars="username=frank password=$other_password"
  expect_ok 1 "register-user on PostgreSQL"
  "$bin" user show frank -c "$work/prefix-pg/etc/homekey/homeserver.yaml" >/dev/null ||
    die "frank is not in the PostgreSQL database"
  pass "frank is in the PostgreSQL database"
elif [[ "${CI:-}" == true ]]; then
  die "no PostgreSQL at $pg_host:$pg_port (required with CI=true)"
else
  say "SKIPPED: setup-all with PostgreSQL (no server at $pg_host:$pg_port)"
fi

# --- 4c. setup-all beside Synapse ---------------------------------------------------------------
# The `synapse:` section the variables write, which homekey accepts (`homekey synapse status`
# reads it and the database and asks no Synapse), and the refusals before anything is written.
# No Synapse runs here (127.0.0.1:1 is never asked): register-user beside Synapse asks Synapse
# whether the name is free, so the user tags are checked on the configs above.
grep -q '^synapse:' "$prefix/etc/homekey/homeserver.yaml" && die "a synapse: section without homekey_synapse_endpoint"
grep -q '^admin_contact:' "$prefix/etc/homekey/homeserver.yaml" && die "admin_contact without homekey_synapse_endpoint"
"$bin" synapse status -c "$prefix/etc/homekey/homeserver.yaml" >"$work/status-none.log" 2>&1 &&
  die "homekey synapse status accepted a config without a synapse: section"
grep -q "synapse" "$work/status-none.log" || die "homekey synapse status did not say why: $(cat "$work/status-none.log")"
pass "without homekey_synapse_endpoint the config has no synapse: section (homekey synapse status exits 1)"

synapse_secret="Synapse-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
short_secret="Short-$RANDOM$RANDOM-s" # fewer than 32 characters
mkdir -p "$work/synapse"
chown "root:$system_user" "$work/synapse"
chmod 0750 "$work/synapse"
printf '%s\n' "$synapse_secret" >"$work/synapse/secret"
printf '%s\n' "$short_secret" >"$work/synapse/short-secret"
chown "root:$system_user" "$work/synapse/secret" "$work/synapse/short-secret"
chmod 0640 "$work/synapse/secret" "$work/synapse/short-secret"
synapse_prefix="$work/prefix-synapse"
synapse_config="$synapse_prefix/etc/homekey/homeserver.yaml"
cat >"$work/setup-synapse.yml" <<EOF
homekey_prefix: $synapse_prefix
homekey_binary_src: $bin
homekey_release_url: ""
homekey_public_baseurl: https://matrix.example.com/
homekey_synapse_endpoint: http://127.0.0.1:1/
homekey_synapse_secret_path: $work/synapse/secret
homekey_admin_contact: mailto:admin@example.com
EOF
synapse_setup=("${setup[@]}" --extra-vars="@$work/setup-synapse.yml")

# synapse_section: the written config's public_baseurl, admin_contact and synapse:, as JSON.
synapse_section() {
  "$venv/bin/python" - "$synapse_config" <<'PY'
import json, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({k: c.get(k) for k in ("public_baseurl", "admin_contact", "synapse")}, sort_keys=True))
PY
}
# synapse_status WHAT: `homekey synapse status` on the written config, as the service's user
# (who must be able to read the secret file), says nothing is owed.
synapse_status() {
  runuser -u "$system_user" -- "$synapse_prefix/usr/local/bin/homekey" synapse status -c "$synapse_config" \
    </dev/null >"$work/status.log" 2>&1 || { cat "$work/status.log" >&2; die "$1: homekey synapse status failed"; }
  grep -qxF "nothing is owed to Synapse" "$work/status.log" ||
    { cat "$work/status.log" >&2; die "$1: homekey synapse status did not say nothing is owed"; }
  pass "$1: homekey synapse status, as $system_user, accepts the config: nothing is owed to Synapse"
}

play setup-all "${synapse_setup[@]}"
expect_changes "setup-all beside Synapse with homekey_synapse_secret_path"
[[ "$(stat -c '%a %U %G' "$synapse_config")" == "640 root $system_user" ]] ||
  die "homeserver.yaml beside Synapse is $(stat -c '%a %U %G' "$synapse_config")"
expected='{"admin_contact": "mailto:admin@example.com", "public_baseurl": "https://matrix.example.com/", "synapse": {"endpoint": "http://127.0.0.1:1/", "secret_path": "'"$work/synapse/secret"'"}}'
[[ "$(synapse_section)" == "$expected" ]] || die "the config beside Synapse has $(synapse_section), expected $expected"
pass "the config (0640 root:$system_user) has public_baseurl, admin_contact and synapse: {endpoint, secret_path}"
synapse_status "secret_path"
play setup-all "${synapse_setup[@]}"
expect_ok 0 "setup-all beside Synapse again reports no change"

# The secret itself instead of its file, at the highest verbosity: it is in the config (0640)
# and in no output (checked at the end).
play setup-all "${synapse_setup[@]}" -vvv --extra-vars="homekey_synapse_secret_path='' homekey_synapse_secret=$synapse_secret"
expect_ok 1 "setup-all beside Synapse with homekey_synapse_secret and -vvv rewrites the config"
[[ "$(stat -c '%a %U %G' "$synapse_config")" == "640 root $system_user" ]] ||
  die "homeserver.yaml with the secret is $(stat -c '%a %U %G' "$synapse_config")"
expected='{"admin_contact": "mailto:admin@example.com", "public_baseurl": "https://matrix.example.com/", "synapse": {"endpoint": "http://127.0.0.1:1/", "secret": "'"$synapse_secret"'"}}'
[[ "$(synapse_section)" == "$expected" ]] || die "the config with homekey_synapse_secret has the wrong synapse: section"
pass "the config (0640 root:$system_user) has synapse: {endpoint, secret}"
synapse_status "secret"

# Refusals: the play fails naming the variable, and nothing is written.
bad_prefix="$work/prefix-synapse-bad"
# expect_synapse_refusal MESSAGE WHAT EXTRA-VARS…
expect_synapse_refusal() {
  local message="$1" what="$2"
  shift 2
  play setup-all "${synapse_setup[@]}" --extra-vars="homekey_prefix=$bad_prefix" "$@"
  expect_failure "$message" "$what"
  [[ ! -e "$bad_prefix" ]] || die "$what: something was written under $bad_prefix: $(find "$bad_prefix")"
}
expect_synapse_refusal "homekey_synapse_secret and homekey_synapse_secret_path are both set" \
  "setup-all beside Synapse with both secrets" --extra-vars="homekey_synapse_secret=$synapse_secret"
expect_synapse_refusal "homekey_synapse_endpoint is set, but neither homekey_synapse_secret nor homekey_synapse_secret_path" \
  "setup-all beside Synapse without a secret" --extra-vars="homekey_synapse_secret_path=''"
expect_synapse_refusal "homekey_synapse_secret is shorter than 32 characters" \
  "setup-all beside Synapse with a short secret" --extra-vars="homekey_synapse_secret_path='' homekey_synapse_secret=$short_secret"
expect_synapse_refusal "homekey_synapse_secret_path=$work/synapse/short-secret holds fewer than 32" \
  "setup-all beside Synapse with a short secret in its file" --extra-vars="homekey_synapse_secret_path=$work/synapse/short-secret"
expect_synapse_refusal "homekey_synapse_secret_path=$work/synapse/nowhere is not a file on localhost" \
  "setup-all beside Synapse with a missing secret file" --extra-vars="homekey_synapse_secret_path=$work/synapse/nowhere"
expect_synapse_refusal "homekey_public_baseurl is required beside Synapse" \
  "setup-all beside Synapse without homekey_public_baseurl" --extra-vars="homekey_public_baseurl=''"
expect_synapse_refusal "homekey_synapse_endpoint=127.0.0.1:8008 is not an http:// or https:// URL" \
  "setup-all beside Synapse with an endpoint that is not a URL" --extra-vars="homekey_synapse_endpoint=127.0.0.1:8008"

# --- 5. no password or secret in any output -----------------------------------------------------
secrets=()
for file in "$prefix/etc/homekey/secrets/"*; do secrets+=("$(cat "$file")"); done
[[ ${#secrets[@]} -eq 3 ]] || die "expected 3 generated secrets, found ${#secrets[@]}"
for password in "$old_password" "$new_password" "$other_password" "$weak_password" "${secrets[@]}" \
  "$synapse_secret" "$short_secret"; do
  if grep -rlF -- "$password" "$work"/run-*.log "$work/lint.log"; then
    die "a password or secret appears in the ansible output (files above)"
  fi
done
pass "no password, no generated secret and no secret shared with Synapse in the output of $runs ansible-playbook runs"
echo "ansible: $checks passed, 0 failed"
