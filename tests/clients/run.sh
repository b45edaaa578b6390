#!/usr/bin/env bash
# A real Matrix client library (matrix-js-sdk, pinned in package.json / package-lock.json)
# against `homekey serve`: see README.md.
#
#   bash tests/clients/run.sh            # after `cargo build` (or `cargo test`)
#   bash tests/clients/run.sh --install  # only install the library (for tests/it/synapse_proxy.rs)
#   bash tests/clients/run.sh --install-js-sdk-43
#       # only install matrix-js-sdk 43 (js-sdk-43/package.json, for tests/it/oauth_clients.rs)
#       # under $HOMEKEY_CLIENTS_43_CACHE (default ~/.cache/homekey-ci/js-sdk-43), with the
#       # Node.js >= 22 and npm first on the PATH (.ci/run puts its Node 22 there)
#
# It builds nothing: the server is $HOMEKEY_BIN (default target/debug/homekey, or under $CARGO_TARGET_DIR). The library is
# installed once under $HOMEKEY_CLIENTS_CACHE (default ~/.cache/homekey-ci/js-sdk), outside the
# repository, and reinstalled when package-lock.json changes. The server runs on 127.0.0.1 on a
# port the system picks, with SQLite in a temporary folder, and is stopped (SIGTERM) on exit.
# Needs Node.js >= 20 with npm, and python3 (its sqlite3 module creates the test user).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${HOMEKEY_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug/homekey}"
cache="${HOMEKEY_CLIENTS_CACHE:-$HOME/.cache/homekey-ci/js-sdk}"

die() {
  echo "tests/clients: $*" >&2
  exit 1
}

install_only=""
package="$here"
node_major=20
case "${1:-}" in
  "") ;;
  --install) install_only=1 ;;
  --install-js-sdk-43)
    install_only=1
    package="$here/js-sdk-43"
    node_major=22
    cache="${HOMEKEY_CLIENTS_43_CACHE:-$HOME/.cache/homekey-ci/js-sdk-43}"
    ;;
  *) die "usage: run.sh [--install | --install-js-sdk-43]" ;;
esac

[[ -n "$install_only" || -x "$bin" ]] ||
  die "no homekey binary at $bin: run \`cargo build\` first, or set HOMEKEY_BIN"
command -v node >/dev/null || die "node (Node.js >= $node_major) is not installed"
command -v npm >/dev/null || die "npm is not installed"
node -e "process.exit(Number(process.versions.node.split('.')[0]) >= $node_major ? 0 : 1)" ||
  die "Node.js >= $node_major is needed, found $(node --version)"

# --- the client library, outside the repository -------------------------------------------
if ! cmp -s "$package/package-lock.json" "$cache/package-lock.json" ||
  [[ ! -f "$cache/node_modules/matrix-js-sdk/package.json" ]]; then
  echo "tests/clients: installing matrix-js-sdk into $cache"
  mkdir -p "$(dirname "$cache")"
  staging="$(mktemp -d "$cache.new.XXXXXX")"
  cp "$package/package.json" "$package/package-lock.json" "$staging/"
  (cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
    { rm -rf "$staging"; die "npm ci failed"; }
  rm -rf "$cache"
  mv "$staging" "$cache"
fi
export HOMEKEY_JS_SDK_DIR="$cache/node_modules"
[[ -z "$install_only" ]] || exit 0

# --- a server of our own -------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/homekey-clients.XXXXXX")"
server_pid=""
cleanup() {
  local status=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 && -s "$work/server.log" ]]; then
    echo "--- homekey serve's log ---" >&2
    cat "$work/server.log" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

db="$work/homeserver.db"
config="$work/homeserver.yaml"
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
  pepper: client-interop-pepper
# Synapse's defaults throttle after a few logins from one address; this test logs in often.
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
EOF

NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$bin" serve -c "$config" </dev/null >"$work/server.log" 2>&1 &
server_pid=$!

base_url=""
for _ in $(seq 1 300); do
  base_url="$(grep -o 'listening on http://[0-9.:]*' "$work/server.log" | head -n1 | sed 's/^listening on //')" || true
  [[ -n "$base_url" ]] && break
  kill -0 "$server_pid" 2>/dev/null || die "homekey serve exited before listening"
  sleep 0.1
done
[[ -n "$base_url" ]] || die "homekey serve did not say where it listens within 30 s"
# The server migrates the database before it listens; make sure it is there all the same.
for _ in $(seq 1 50); do [[ -s "$db" ]] && break; sleep 0.1; done
[[ -s "$db" ]] || die "no database at $db after the server started"

# --- the test user, as an operator makes one today: hash_password, then SQL ------------------
user_id="@alice:example.com"
password="interop-$(date +%s)-$RANDOM"
hash="$(printf '%s\n' "$password" | "$bin" hash-password -c "$config")" || die "hash-password failed"
python3 - "$db" "$user_id" "$hash" <<'EOF'
import sqlite3, sys, time
db, user_id, password_hash = sys.argv[1:]
with sqlite3.connect(db, timeout=30) as conn:
    conn.execute(
        "INSERT INTO users (name, password_hash, creation_ts, admin, is_guest, deactivated)"
        " VALUES (?, ?, ?, 0, 0, 0)",
        (user_id, password_hash, int(time.time())),
    )
conn.close()
EOF

# --- the client -----------------------------------------------------------------------------
node "$here/account_flow.mjs" "$base_url" "$user_id" "$password"
