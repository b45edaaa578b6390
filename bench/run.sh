#!/usr/bin/env bash
# homekey against the real Synapse and against the machine's limits: see bench/README.md.
#
#   bash bench/run.sh                  # every row, release build, Synapse from the venv
#   bash bench/run.sh login whoami     # some rows only (limit is always measured)
#   bash bench/run.sh --smoke          # CI: debug build, tiny sizes, no Synapse, a few seconds
#   bash bench/run.sh --smoke --synapse  # the same with Synapse (about 20 s more)
#
# Rows: limit login whoami rss instructions hash reset set-password import pg introspect refresh exchange
# first-request login-nginx migrate (exchange, first-request, login-nginx and migrate need Synapse: with
# --smoke, only with --synapse)
# Everything listens on 127.0.0.1 on ports the system picks; every server is started and
# stopped here (SIGTERM, then SIGKILL), every load is bounded in time (and the login load in
# count), and the temporary folder is removed on exit. Results: a Markdown table on stdout,
# and in $BENCH_RESULTS (default bench/results/latest.md) for a full run; a run of some rows
# only keeps there the other rows' figures of the run before.
#
# Environment: HOMEKEY_BENCH_SYNAPSE (a venv with matrix-synapse; default
# ~/.cache/homekey-ci/synapse-venv), HOMEKEY_BENCH_SYNAPSE_PG (a venv with matrix-synapse and
# psycopg2, for Synapse on PostgreSQL in the pg and migrate rows; default: the first, to which
# .ci/run adds psycopg2-binary),
# BENCH_PG (default postgres://postgres@127.0.0.1:5432), CARGO_TARGET_DIR.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export BENCH_WRK_DIR="$here/wrk"

smoke=false
with_synapse=true
rows=()
for arg in "$@"; do
  case "$arg" in
    --smoke) smoke=true ;;
    --synapse) with_synapse=force ;;
    --no-synapse) with_synapse=false ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    limit | login | whoami | rss | instructions | hash | reset | set-password | import | pg | introspect | refresh | exchange | first-request | login-nginx | migrate)
      rows+=("$arg") ;;
    *) echo "bench: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done
if $smoke && [[ $with_synapse != force ]]; then with_synapse=false; fi
some_rows=true
if [[ ${#rows[@]} -eq 0 ]]; then
  some_rows=false
  rows=(limit login whoami rss instructions hash reset set-password import pg introspect refresh exchange first-request login-nginx migrate)
fi
wants() { local r; for r in "${rows[@]}"; do [[ $r == "$1" ]] && return 0; done; return 1; }

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

# --- sizes -----------------------------------------------------------------------------------
cores="$(nproc)"
if $smoke; then
  profile=debug cost=4 login_seconds=1 login_clients=4 whoami_seconds=1 whoami_rounds=1 runs=2
  devices=100 import_users=1000 resets=1 hashes=3 introspect_tokens=100 refresh_tokens=50 exchange_codes=30 first_tokens=20 first_seconds=30
  migrate_users=1000
else
  profile=release cost=12 login_seconds=25 login_clients=$((2 * cores)) whoami_seconds=10 whoami_rounds=3
  runs=15 devices=10000 import_users=100000 resets=5 hashes=10 introspect_tokens=10000 refresh_tokens=3000 exchange_codes=1000 first_tokens=2000 first_seconds=120
  migrate_users=100000
fi
login_max=$((login_seconds * 20)) # per wrk thread; far above what bcrypt allows
pepper="bench-pepper"
password="bench-password-1"

# --- tools -----------------------------------------------------------------------------------
for tool in wrk curl python3; do
  if ! command -v "$tool" >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      say "installing $tool from Debian's packages"
      apt-get install -y -q wrk curl >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk curl >/dev/null 2>&1; } || true
    fi
    command -v "$tool" >/dev/null || die "$tool is needed (Debian: apt-get install wrk curl)"
  fi
done

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
if [[ $profile == release ]]; then
  say "building (release)"
  (cd "$repo" && cargo build --quiet --release --bins --examples)
else
  say "building (debug)"
  (cd "$repo" && cargo build --quiet --bins --examples)
fi
bin="$target_dir/$profile"
homekey="$bin/homekey"

synapse_venv="${HOMEKEY_BENCH_SYNAPSE:-$HOME/.cache/homekey-ci/synapse-venv}"
synapse_pg_venv="${HOMEKEY_BENCH_SYNAPSE_PG:-$synapse_venv}"
if [[ $with_synapse != false ]] && ! "$synapse_venv/bin/python" -c 'import synapse' 2>/dev/null; then
  [[ $with_synapse == force ]] && die "no Synapse in $synapse_venv (HOMEKEY_BENCH_SYNAPSE)"
  say "no Synapse in $synapse_venv: Synapse's column stays empty"
  with_synapse=false
fi
pg_url="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"

# --- the run's folder, its servers, and cleaning up ------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/homekey-bench.XXXXXX")"
results="$work/results.tsv"
: >"$results"
pids=()
pg_dbs=()
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local status=$? pid db
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  for db in "${pg_dbs[@]}"; do
    psql "$pg_url/postgres" -qAt -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  done
  if [[ $status -ne 0 ]]; then
    for log in "$work"/*.log; do
      [[ -s $log ]] || continue
      echo "--- last lines of $(basename "$log") ---" >&2
      tail -n 20 "$log" >&2
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every request stays on this machine, whatever the environment says about proxies.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY=127.0.0.1,localhost

record() { printf '%s\t%s\n' "$1" "$2" >>"$results"; } # name, value
load1() { cut -d' ' -f1 /proc/loadavg; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
field() { sed -n "s/.*[ ]$1=\([^ ]*\).*/\1/p" <<<"$2"; } # field NAME "BENCH …"

# wrk with a script of bench/wrk; prints the BENCH line. A bad status or socket error fails.
run_wrk() { # URL SECONDS CONNECTIONS THREADS SCRIPT [wrk options…]
  local url=$1 seconds=$2 connections=$3 threads=$4 script=$5 out
  shift 5
  out="$(timeout $((seconds + 30)) wrk -t "$threads" -c "$connections" -d "${seconds}s" \
    --timeout 10s -s "$BENCH_WRK_DIR/$script" "$@" "$url")" || die "wrk failed: $out"
  local line
  line="$(grep '^BENCH ' <<<"$out")" || die "wrk said: $out"
  [[ $(field bad_status "$line") == 0 && $(field socket_errors "$line") == 0 ]] ||
    die "errors under load at $url: $line"
  echo "$line"
}

# Samples a process's RSS every 0.2 s while a command runs; prints the largest, in MB.
peak_rss_during() { # PID COMMAND…
  local pid=$1 peak=0 sampler
  shift
  (
    while kill -0 "$pid" 2>/dev/null; do rss_mb "$pid"; echo; sleep 0.2; done
  ) >"$work/rss-samples" &
  sampler=$!
  "$@" >"$work/rss-command-out"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  peak="$(sort -n "$work/rss-samples" | tail -n1)"
  cat "$work/rss-command-out"
  echo "PEAK_RSS $peak"
}

wait_for_url() { # URL PID LOG
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || die "the server exited before answering; see $3"
    sleep 0.1
  done
  die "no answer from $1 within 60 s"
}

# A server that prints "listening on http://ADDR": starts it, prints the base URL.
listening_on() { # LOG PID
  local url=""
  for _ in $(seq 1 600); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$1" | head -n1 | sed 's/^listening on //')" || true
    [[ -n $url ]] && { echo "$url"; return 0; }
    kill -0 "$2" 2>/dev/null || die "$(basename "$1" .log) exited before listening"
    sleep 0.1
  done
  die "$(basename "$1" .log) did not say where it listens within 60 s"
}

json_get() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

login_token() { # BASE_URL USER PASSWORD
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"type\":\"m.login.password\",\"identifier\":{\"type\":\"m.id.user\",\"user\":\"$2\"},\"password\":\"$3\"}" \
    "$1/_matrix/client/v3/login" | json_get access_token
}

# --- configs ---------------------------------------------------------------------------------
rc_login="rc_login:
  address: {per_second: 100000, burst_count: 100000}
  account: {per_second: 100000, burst_count: 100000}
  failed_attempts: {per_second: 100000, burst_count: 100000}"

homekey_config() { # FILE DATABASE-YAML [MORE-YAML]
  cat >"$1" <<EOF
server_name: example.com
$2
${3:-}
listeners:
  - port: 0
    bind_addresses: ['127.0.0.1']
    type: http
registration_shared_secret: bench-shared-secret
bcrypt_rounds: $cost
password_config:
  pepper: $pepper
$rc_login
EOF
}
sqlite_db() { printf 'database:\n  name: sqlite3\n  args:\n    database: %s\n' "$1"; }
pg_db() { # DBNAME
  printf 'database:\n  name: psycopg2\n  args:\n    user: postgres\n    host: 127.0.0.1\n    port: 5432\n    dbname: %s\n    cp_min: 5\n    cp_max: 10\n' "$1"
}

# Synapse's own password_config: its own logins, hashed as homekey's.
synapse_own_auth="password_config:
  pepper: $pepper"

synapse_config() { # DIR PORT DATABASE-YAML [AUTH-YAML, default: $synapse_own_auth]
  cat >"$1/homeserver.yaml" <<EOF
server_name: example.com
pid_file: $1/homeserver.pid
listeners:
  - port: $2
    tls: false
    type: http
    x_forwarded: false
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client]
        compress: false
$3
media_store_path: $1/media_store
signing_key_path: $1/example.com.signing.key
registration_shared_secret: bench-shared-secret
macaroon_secret_key: bench-macaroon-key
enable_registration: false
report_stats: false
suppress_key_server_warning: true
trusted_key_servers: []
bcrypt_rounds: $cost
${4:-$synapse_own_auth}
$rc_login
EOF
}

# Beside Synapse: the secret Synapse and homekey share (in a file both read, on no command
# line and in no log), homekey's synapse: section and a delegating Synapse's auth section.
synapse_secret_file() { # prints the file, made on first use
  local file="$work/synapse-secret"
  [[ -s $file ]] || python3 -c 'import secrets; print(secrets.token_hex(24))' >"$file"
  echo "$file"
}
homekey_beside_synapse() { # SYNAPSE-BASE-URL
  printf 'public_baseurl: https://matrix.example.com/\nsynapse:\n  endpoint: %s/\n  secret_path: %s\n' \
    "$1" "$(synapse_secret_file)"
}
synapse_delegating_to() { # HOMEKEY-BASE-URL
  printf 'public_baseurl: https://matrix.example.com/\npassword_config:\n  enabled: false\nmatrix_authentication_service:\n  enabled: true\n  endpoint: %s/\n  secret_path: %s\n' \
    "$1" "$(synapse_secret_file)"
}

# --- servers ---------------------------------------------------------------------------------
homekey_url="" homekey_pid="" homekey_cfg=""
start_homekey() { # NAME DATABASE-YAML [MORE-YAML]
  local name=$1 dir="$work/$1"
  mkdir -p "$dir"
  homekey_cfg="$dir/homeserver.yaml"
  homekey_config "$homekey_cfg" "$2" "${3:-}"
  # The users are made with the same config less MORE-YAML: beside Synapse a new account
  # needs Synapse's word on its name, and Synapse may not be there yet. Their first login
  # makes them in Synapse.
  homekey_config "$dir/users.yaml" "$2"
  "$homekey" migrate -c "$homekey_cfg" >/dev/null
  "$homekey" user create benchadmin --admin -p "$password" -c "$dir/users.yaml" >/dev/null ||
    die "creating benchadmin failed"
  "$homekey" user create alice -p "$password" -c "$dir/users.yaml" >/dev/null ||
    die "creating alice failed"
  NO_COLOR=1 RUST_LOG=info "$homekey" serve -c "$homekey_cfg" </dev/null >"$work/$name.log" 2>&1 &
  homekey_pid=$!
  pids+=("$homekey_pid")
  homekey_url="$(listening_on "$work/$name.log" "$homekey_pid")"
  wait_for_url "$homekey_url/_matrix/client/versions" "$homekey_pid" "$work/$name.log"
}

# Synapse on its own auth, with benchadmin and alice registered; or, given an AUTH-YAML
# (synapse_delegating_to), a Synapse delegating to homekey, which has no users until homekey
# makes them. PORT: where it listens (default: one the system picks).
synapse_url="" synapse_pid="" synapse_dir=""
start_synapse() { # NAME VENV sqlite|pg:DBNAME [AUTH-YAML [PORT]]
  local name=$1 venv=$2 port=${5:-$(free_port)} database
  synapse_dir="$work/$name"
  mkdir -p "$synapse_dir"
  case "$3" in
    sqlite) database="$(sqlite_db "$synapse_dir/homeserver.db")" ;;
    pg:*) database="$(pg_db "${3#pg:}")" ;;
  esac
  synapse_config "$synapse_dir" "$port" "$database" "${4:-}"
  (cd "$synapse_dir" && "$venv/bin/python" -m synapse.app.homeserver --generate-keys \
    -c "$synapse_dir/homeserver.yaml" >"$work/$name-keys.log" 2>&1)
  (cd "$synapse_dir" && exec "$venv/bin/python" -m synapse.app.homeserver \
    -c "$synapse_dir/homeserver.yaml" </dev/null >"$work/$name.log" 2>&1) &
  synapse_pid=$!
  pids+=("$synapse_pid")
  synapse_url="http://127.0.0.1:$port"
  wait_for_url "$synapse_url/_matrix/client/versions" "$synapse_pid" "$work/$name.log"
  [[ -z ${4:-} ]] || return 0
  local user flag
  for user in benchadmin alice; do
    flag=--no-admin
    [[ $user == benchadmin ]] && flag=--admin
    "$venv/bin/register_new_matrix_user" -u "$user" -p "$password" "$flag" \
      -k bench-shared-secret "$synapse_url" </dev/null >>"$work/$name-register.log" 2>&1 ||
      die "registering $user on Synapse failed"
  done
}

bare_url="" bare_pid=""
start_bare() {
  "$bin/examples/bench-bare-route" </dev/null >"$work/bare-route.log" 2>&1 &
  bare_pid=$!
  pids+=("$bare_pid")
  bare_url="$(listening_on "$work/bare-route.log" "$bare_pid")"
}

# 10,000 devices, each with an access token, for a user, straight in the database (SQLite
# file or PostgreSQL URL), as many logins would leave them. Synapse allocates access_tokens.id
# in its process: ids far above its counter keep clear of the logins it makes meanwhile.
# TOKENS-FILE: where to write the tokens, one a line.
seed_devices() { # DATABASE USER COUNT FIRST-TOKEN-ID [TOKENS-FILE]
  python3 - "$@" <<'EOF'
import sqlite3, sys, time
database, user, count, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
now = int(time.time() * 1000)
local = user[1:].split(":")[0]
devices = [(user, f"DEV{local}{i}", f"device {i}", now, False) for i in range(count)]
tokens = [(first + i, user, f"DEV{local}{i}", f"syt_bench_{local}_{i}_{first}", now) for i in range(count)]
conn = sqlite3.connect(database, timeout=60)
with conn:
    conn.executemany("INSERT INTO devices (user_id, device_id, display_name, last_seen, hidden) VALUES (?, ?, ?, ?, ?)", devices)
    conn.executemany("INSERT INTO access_tokens (id, user_id, device_id, token, last_validated) VALUES (?, ?, ?, ?, ?)", tokens)
conn.close()
if len(sys.argv) > 5:
    with open(sys.argv[5], "w") as f:
        f.writelines(t[3] + "\n" for t in tokens)
EOF
}

# COUNT OAuth 2.0 sessions of USER, each its device, access token (an hka_ token kept as its
# SHA-256 digest, valid for an hour) and homekey_oauth_sessions row, as that many grants would
# leave them; their tokens go to TOKENS-FILE, one a line.
seed_oauth_sessions() { # DATABASE USER COUNT FIRST-TOKEN-ID TOKENS-FILE
  python3 - "$@" <<'EOF'
import base64, hashlib, sqlite3, sys, time
database, user, count, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
now = int(time.time() * 1000)
local = user[1:].split(":")[0]
def digest(token):
    raw = hashlib.sha256(token.encode()).digest()
    return "sha256:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
plain = [f"hka_bench{local}{i}x{first}" for i in range(count)]
devices = [(user, f"OAUTH{local}{i}", f"app {i}", now, False) for i in range(count)]
tokens = [(first + i, user, f"OAUTH{local}{i}", digest(plain[i]), now + 3_600_000, now) for i in range(count)]
scope = "urn:matrix:client:api:* urn:matrix:client:device:"
sessions = [(user, f"OAUTH{local}{i}", "benchclient", scope + f"OAUTH{local}{i}", now) for i in range(count)]
conn = sqlite3.connect(database, timeout=60)
with conn:
    conn.executemany("INSERT INTO devices (user_id, device_id, display_name, last_seen, hidden) VALUES (?, ?, ?, ?, ?)", devices)
    conn.executemany("INSERT INTO access_tokens (id, user_id, device_id, token, valid_until_ms, last_validated) VALUES (?, ?, ?, ?, ?, ?)", tokens)
    conn.executemany("INSERT INTO homekey_oauth_sessions (user_id, device_id, client_id, scope, created_ms) VALUES (?, ?, ?, ?, ?)", sessions)
conn.close()
with open(sys.argv[5], "w") as f:
    f.writelines(t + "\n" for t in plain)
EOF
}

# COUNT logins of USER with PASSWORD on BASE_URL (homekey's or Synapse's /login), the first
# alone, then 4 at a time, each a new device; their access tokens go to TOKENS-FILE, one a
# line. Fails on any answer but 200 (its status and errcode said, nothing else). The first
# alone: beside Synapse, the first login of a user makes it in Synapse (provision_user), and
# two such calls at once for a user Synapse does not have yet race there (Synapse answers one
# 400 "User ID already taken", and homekey answers that login 503).
login_tokens() { # BASE_URL USER PASSWORD COUNT TOKENS-FILE
  timeout 900 python3 - "$@" <<'EOF' || die "logins on $1 failed"
import concurrent.futures, http.client, json, sys, threading, urllib.parse
url, user, password, count, path = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
address = urllib.parse.urlsplit(url)
body = json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
                   "password": password})
local = threading.local()
def login(_):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    local.conn.request("POST", "/_matrix/client/v3/login", body, {"Content-Type": "application/json"})
    response = local.conn.getresponse()
    answer = json.loads(response.read() or b"{}")
    if response.status != 200:
        raise SystemExit(f"bench: a login answered {response.status} {answer.get('errcode')}")
    return answer["access_token"]
tokens = [login(0)]
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    tokens += pool.map(login, range(1, count))
assert len(set(tokens)) == count, "two logins had the same token"
with open(path, "w") as f:
    f.writelines(t + "\n" for t in tokens)
EOF
}

# POST reset_password with logout_devices; prints seconds.
reset_seconds() { # BASE_URL ADMIN_TOKEN USER
  local out
  out="$(curl -s -o "$work/reset-body" -w '%{http_code} %{time_total}' -X POST \
    -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
    -d '{"new_password": "bench-new-password", "logout_devices": true}' \
    "$1/_synapse/admin/v1/reset_password/$3")"
  [[ ${out%% *} == 200 ]] || die "reset_password of $3 answered ${out%% *}: $(cat "$work/reset-body")"
  echo "${out#* }"
}

# homekey's hashing at the current cost: the median of N hashes (default 1; cold: one hash
# with no warm-up before it), in ms.
homekey_hash_ms() { # [N|cold]
  "$bin/examples/bench-bcrypt" "$cost" "${1:-1}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["median_ms"])'
}


# The reset rows' users: victim1..victimN with $devices devices and tokens each, on the
# homekey or Synapse server started last, whose SQLite database is DATABASE.
make_victims() { # homekey|synapse DATABASE
  local i
  for i in $(seq 1 "$resets"); do
    if [[ $1 == homekey ]]; then
      "$homekey" user create "victim$i" -p "$password" -c "$homekey_cfg" >/dev/null 2>&1
    else
      "$synapse_venv/bin/register_new_matrix_user" -u "victim$i" -p "$password" --no-admin \
        -k bench-shared-secret "$synapse_url" </dev/null >>"$work/synapse-victims.log" 2>&1
    fi
    seed_devices "$2" "@victim$i:example.com" "$devices" $((i * 1000000))
  done
}

# Resets every victim's password as ADMIN_TOKEN; prints the median, in ms. With HASH_MS (a
# command printing one hash's time in ms), one hash is timed right before each reset, and the
# median of each reset minus its hash follows: the part beyond the hash, paired so that the
# machine's drift falls on both. The hash is timed cold, like the server's after idle.
median_reset_ms() { # BASE_URL ADMIN_TOKEN [HASH_MS]
  local seconds=() hashes=() i
  for i in $(seq 1 "$resets"); do
    [[ -z ${3:-} ]] || hashes+=("$($3)")
    seconds+=("$(reset_seconds "$1" "$2" "@victim$i:example.com")")
  done
  python3 - "${seconds[*]}" "${hashes[*]}" <<'EOF'
import statistics, sys
resets = [float(s) * 1000 for s in sys.argv[1].split()]
hashes = [float(h) for h in sys.argv[2].split()]
beyond = [r - h for r, h in zip(resets, hashes)]
print(round(statistics.median(resets), 1), *([round(statistics.median(beyond), 1)] if beyond else []))
EOF
}

# Synapse's own hashing (synapse/handlers/auth.py: bcrypt.hashpw over NFKC(password) + pepper)
# in its venv: the median of N hashes (cold: one hash with no warm-up before it), in ms.
python_hash_ms() { # N|cold
  "$synapse_venv/bin/python" - "$cost" "$1" "$pepper" <<'EOF'
import statistics, sys, time, unicodedata
import bcrypt
cost, cold, pepper = int(sys.argv[1]), sys.argv[2] == "cold", sys.argv[3]
hashes = 1 if cold else int(sys.argv[2])
# Synapse's own hashing (synapse/handlers/auth.py): bcrypt.hashpw over NFKC(password) + pepper.
pw = (unicodedata.normalize("NFKC", "correct horse battery staple") + pepper).encode()
if not cold:
    bcrypt.hashpw(pw, bcrypt.gensalt(cost))
times = []
for _ in range(hashes):
    t = time.perf_counter(); bcrypt.hashpw(pw, bcrypt.gensalt(cost)); times.append(time.perf_counter() - t)
print(round(statistics.median(times) * 1000, 2))
EOF
}

# ============================================================================================
say "work folder $work; load average $(cut -d' ' -f1-3 /proc/loadavg); $cores cores"
record date "$(date -u +%Y-%m-%dT%H:%MZ)"
record cores "$cores"
record cost "$cost"
record mode "$($smoke && echo smoke || echo full)"

# --- the limit: one hash ---------------------------------------------------------------------
say "limit: one bcrypt hash at cost $cost"
record load.limit "$(load1)"
record hash_ms.homekey "$(homekey_hash_ms "$hashes")"
if [[ $with_synapse != false ]]; then
  record hash_ms.synapse "$(python_hash_ms "$hashes")"
fi

# --- servers for the HTTP rows ---------------------------------------------------------------
if wants login || wants whoami || wants rss || wants instructions || wants reset; then
  say "starting homekey serve (SQLite)"
  start_homekey homekey-sqlite "$(sqlite_db "$work/homekey-sqlite/homeserver.db")"
  record rss_idle.homekey "$(sleep 1; rss_mb "$homekey_pid")"
  homekey_admin_token="$(login_token "$homekey_url" benchadmin "$password")"
  homekey_alice_token="$(login_token "$homekey_url" alice "$password")"
  if [[ $with_synapse != false ]]; then
    say "starting Synapse (SQLite)"
    start_synapse synapse-sqlite "$synapse_venv" sqlite
    synapse_admin_token="$(login_token "$synapse_url" benchadmin "$password")"
    synapse_alice_token="$(login_token "$synapse_url" alice "$password")"
    sleep 2
    record rss_idle.synapse "$(rss_mb "$synapse_pid")"
  fi
  start_bare
  record rss_idle.bare "$(sleep 1; rss_mb "$bare_pid")"
fi

# --- login -----------------------------------------------------------------------------------
if wants login; then
  threads=$((login_clients < cores ? login_clients : cores))
  login_load() { # BASE_URL
    BENCH_LOGIN_USER=alice BENCH_LOGIN_PASSWORD="$password" BENCH_MAX_REQUESTS=$login_max \
      run_wrk "$1/_matrix/client/v3/login" "$login_seconds" "$login_clients" "$threads" login.lua
  }
  say "login: homekey, $login_clients clients, ${login_seconds} s"
  record load.login.homekey "$(load1)"
  # The limit this row is judged against: one hash timed right before and right after the
  # load (the machine's speed drifts within a run; the limit row is minutes away).
  hash_before="$(homekey_hash_ms 5)"
  line="$(login_load "$homekey_url")"
  record hash_ms.login "$(python3 -c 'import sys; print(round((float(sys.argv[1]) + float(sys.argv[2])) / 2, 1))' "$hash_before" "$(homekey_hash_ms 5)")"
  record login_rps.homekey "$(field rps "$line")"
  record login_p50_ms.homekey "$(field p50_ms "$line")"
  record login_p99_ms.homekey "$(field p99_ms "$line")"
  record login_count.homekey "$(field requests "$line")"
  if [[ $with_synapse != false ]]; then
    say "login: Synapse, $login_clients clients, ${login_seconds} s"
    record load.login.synapse "$(load1)"
    line="$(login_load "$synapse_url")"
    record login_rps.synapse "$(field rps "$line")"
    record login_p50_ms.synapse "$(field p50_ms "$line")"
    record login_p99_ms.synapse "$(field p99_ms "$line")"
    record login_count.synapse "$(field requests "$line")"
  fi
  record login_clients "$login_clients"
fi

# --- whoami, and RSS under it ----------------------------------------------------------------
whoami_load() { # BASE_URL TOKEN PID NAME
  run_wrk "$1/_matrix/client/v3/account/whoami" 1 16 1 whoami.lua -H "Authorization: Bearer $2" >/dev/null
  record "load.whoami.$4" "$(load1)"
  out="$(peak_rss_during "$3" run_wrk "$1/_matrix/client/v3/account/whoami" "$whoami_seconds" 16 1 \
    whoami.lua -H "Authorization: Bearer $2")"
  line="$(grep '^BENCH ' <<<"$out")"
  record "whoami_rps.$4" "$(field rps "$line")"
  record "whoami_p50_ms.$4" "$(field p50_ms "$line")"
  record "whoami_p99_ms.$4" "$(field p99_ms "$line")"
  record "rss_load.$4" "$(sed -n 's/^PEAK_RSS //p' <<<"$out")"
}
if wants whoami || wants rss; then
  # homekey and the bare route in alternating rounds: the ratio of the two is a target, and
  # the machine's speed drifts from one minute to the next (table.py takes the medians).
  for round in $(seq 1 "$whoami_rounds"); do
    say "whoami: homekey (SQLite), 16 connections, ${whoami_seconds} s (round $round of $whoami_rounds)"
    whoami_load "$homekey_url" "$homekey_alice_token" "$homekey_pid" homekey
    say "whoami: the bare axum route, 16 connections, ${whoami_seconds} s (round $round of $whoami_rounds)"
    whoami_load "$bare_url" none "$bare_pid" bare
  done
  if [[ $with_synapse != false ]]; then
    say "whoami: Synapse (SQLite), 16 connections, ${whoami_seconds} s"
    whoami_load "$synapse_url" "$synapse_alice_token" "$synapse_pid" synapse
  fi
fi

# --- whoami: instructions per request, under callgrind ---------------------------------------
# Requests per second follow this machine's speed, which drifts; the instructions a request
# takes in user space do not (the same count run after run, whatever else runs). A second
# homekey serve on the same database and the bare route, each under callgrind, counting only
# while the load runs. The kernel's share (the socket, SQLite's locks) is not in this count.
ir_per_request() { # NAME TOKEN COMMAND… ; records ir_per_request.NAME
  local name=$1 token=$2 pid url line total
  shift 2
  NO_COLOR=1 RUST_LOG=info valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$work/$name.callgrind" "$@" </dev/null >"$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  url="$(listening_on "$work/$name.log" "$pid")"
  run_wrk "$url/_matrix/client/v3/account/whoami" 2 16 1 whoami.lua -H "Authorization: Bearer $token" >/dev/null
  callgrind_control --instr=on "$pid" >/dev/null
  line="$(run_wrk "$url/_matrix/client/v3/account/whoami" "$whoami_seconds" 16 1 whoami.lua -H "Authorization: Bearer $token")"
  callgrind_control --instr=off "$pid" >/dev/null
  stop_pid "$pid"
  total="$(sed -n 's/^totals: *//p' "$work/$name.callgrind")"
  [[ -n $total ]] || die "callgrind wrote no totals for $name"
  record "ir_per_request.$name" "$((total / $(field requests "$line")))"
}
if wants instructions; then
  if ! command -v valgrind >/dev/null; then
    say "instructions: no valgrind (Debian: apt-get install valgrind); skipped"
  else
    say "instructions: whoami under callgrind, homekey and the bare route, ${whoami_seconds} s each"
    ir_per_request homekey "$homekey_alice_token" "$homekey" serve -c "$homekey_cfg"
    ir_per_request bare none "$bin/examples/bench-bare-route"
  fi
fi

# --- reset_password with 10,000 devices ------------------------------------------------------
if wants reset; then
  say "reset_password: $resets users with $devices devices and tokens each"
  record devices "$devices"
  make_victims homekey "$work/homekey-sqlite/homeserver.db"
  record load.reset.homekey "$(load1)"
  read -r reset beyond <<<"$(median_reset_ms "$homekey_url" "$homekey_admin_token" "homekey_hash_ms cold")"
  record reset_ms.homekey "$reset"
  record reset_beyond_ms.homekey "$beyond"
  left="$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM access_tokens WHERE user_id LIKE ?", ("@victim%",)).fetchone()[0])' "$work/homekey-sqlite/homeserver.db")"
  [[ $left == 0 ]] || die "homekey left $left tokens of the reset users"
  if [[ $with_synapse != false ]]; then
    make_victims synapse "$work/synapse-sqlite/homeserver.db"
    record load.reset.synapse "$(load1)"
    read -r reset beyond <<<"$(median_reset_ms "$synapse_url" "$synapse_admin_token" "python_hash_ms cold")"
    record reset_ms.synapse "$reset"
    record reset_beyond_ms.synapse "$beyond"
  fi
fi

# The HTTP servers are done with.
for pid in "${pids[@]}"; do stop_pid "$pid"; done
pids=()

# --- reset_password: the part beyond the hash, at bcrypt cost 4 ------------------------------
# At cost 12 that part is the difference of two figures that each swing by more than it (one
# hash, timed apart from the resets). Servers of both kinds at cost 4, where a hash takes
# about a millisecond, time the same resets with the hash no longer drowning the rest.
if wants reset; then
  say "reset_password beyond the hash: both servers at bcrypt cost 4, $resets users with $devices devices"
  full_cost=$cost
  cost=4
  start_homekey homekey-cost4 "$(sqlite_db "$work/homekey-cost4/homeserver.db")"
  admin4="$(login_token "$homekey_url" benchadmin "$password")"
  make_victims homekey "$work/homekey-cost4/homeserver.db"
  record load.reset4.homekey "$(load1)"
  record hash_ms.cost4 "$(homekey_hash_ms 50)"
  record reset4_ms.homekey "$(median_reset_ms "$homekey_url" "$admin4")"
  if [[ $with_synapse != false ]]; then
    start_synapse synapse-cost4 "$synapse_venv" sqlite
    admin4="$(login_token "$synapse_url" benchadmin "$password")"
    make_victims synapse "$work/synapse-cost4/homeserver.db"
    record load.reset4.synapse "$(load1)"
    record hash_ms.cost4_synapse "$(python_hash_ms 50)"
    record reset4_ms.synapse "$(median_reset_ms "$synapse_url" "$admin4")"
  fi
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
  cost=$full_cost
fi

# --- introspect: Synapse's question to homekey, against homekey's own whoami ----------------
# homekey beside a Synapse that is not there (its endpoint a closed port: introspection calls
# no Synapse), with $introspect_tokens live tokens of alice, each with its device, put in the
# database with SQL as that many logins would leave them. Both loads cycle through the same
# tokens, a different one at each request: POST /oauth2/introspect in Synapse's form with the
# shared secret, and GET whoami with the token as a client sends it; in alternating rounds,
# as the whoami row runs homekey and the bare route. And as many OAuth 2.0 sessions of alice
# (tokens kept as digests, each with its session's client and scope), introspected in the
# same rounds.
tokens_load() { # NAME URL whoami|introspect TOKENS-FILE ; records NAME's figures
  local name=$1 url=$2 mode=$3 tokens=$4 secret="" line
  [[ $mode == introspect ]] && secret="$(cat "$(synapse_secret_file)")"
  BENCH_MODE=$mode BENCH_TOKENS=$tokens BENCH_SECRET=$secret run_wrk "$url" 1 16 1 tokens.lua >/dev/null
  record "load.$name" "$(load1)"
  line="$(BENCH_MODE=$mode BENCH_TOKENS=$tokens BENCH_SECRET=$secret \
    run_wrk "$url" "$whoami_seconds" 16 1 tokens.lua)"
  record "${name}_rps" "$(field rps "$line")"
  record "${name}_p50_ms" "$(field p50_ms "$line")"
  record "${name}_p99_ms" "$(field p99_ms "$line")"
}

# What homekey answers about the first, a middle and the last of the tokens, and about one it
# does not know: a 200 with active true (false) would count as a success under wrk as well.
check_introspection() { # BASE_URL TOKENS-FILE
  python3 - "$1" "$2" "$(synapse_secret_file)" <<'EOF' || die "introspection did not answer as it should"
import json, sys, urllib.parse, urllib.request
url, tokens, secret = sys.argv[1], open(sys.argv[2]).read().split(), open(sys.argv[3]).read().strip()
def ask(token):
    request = urllib.request.Request(
        url + "/oauth2/introspect",
        urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode(),
        {"Authorization": "Bearer " + secret, "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)
for token in (tokens[0], tokens[len(tokens) // 2], tokens[-1]):
    answer = ask(token)
    assert answer.get("active") is True and answer.get("username") == "alice", answer
    if token.startswith("hka_"):
        assert answer.get("client_id") == "benchclient" and "expires_in" in answer, answer
assert ask("syt_bench_unknown") == {"active": False}
EOF
}

introspect_row() {
  local tokens="$work/introspect-tokens" oauth_tokens="$work/introspect-oauth-tokens" round
  say "introspect: homekey beside a Synapse that is not there, $introspect_tokens tokens of alice"
  start_homekey homekey-introspect "$(sqlite_db "$work/homekey-introspect/homeserver.db")" \
    "$(homekey_beside_synapse http://127.0.0.1:1)"
  seed_devices "$work/homekey-introspect/homeserver.db" @alice:example.com "$introspect_tokens" 1000000 "$tokens"
  seed_oauth_sessions "$work/homekey-introspect/homeserver.db" @alice:example.com "$introspect_tokens" 3000000 "$oauth_tokens"
  check_introspection "$homekey_url" "$tokens"
  check_introspection "$homekey_url" "$oauth_tokens"
  record introspect_tokens "$introspect_tokens"
  for round in $(seq 1 "$whoami_rounds"); do
    say "introspect: POST /oauth2/introspect, 16 connections, ${whoami_seconds} s (round $round of $whoami_rounds)"
    tokens_load introspect "$homekey_url/oauth2/introspect" introspect "$tokens"
    say "introspect: POST /oauth2/introspect, OAuth sessions' tokens, 16 connections, ${whoami_seconds} s (round $round of $whoami_rounds)"
    tokens_load introspect_oauth "$homekey_url/oauth2/introspect" introspect "$oauth_tokens"
    say "introspect: GET whoami, the same tokens, 16 connections, ${whoami_seconds} s (round $round of $whoami_rounds)"
    tokens_load introspect_whoami "$homekey_url/_matrix/client/v3/account/whoami" whoami "$tokens"
  done
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
}
if wants introspect; then introspect_row; fi

# --- refresh: the OAuth refresh grant against the legacy /refresh ---------------------------
# Both rotate a session's tokens in one transaction of the same kind (the old refresh token
# kept for a retry, its predecessor dropped), so the legacy /refresh of the same number of
# sessions is the OAuth grant's yardstick; the OAuth grant adds the session's client check
# and keeps digests. Sessions put in the database with SQL (OAuth: hkr_ tokens as digests
# with their homekey_oauth_sessions rows; legacy: syr_ tokens with Synapse's checksum), each
# refreshed once, 16 connections, in alternating rounds.
seed_refreshable() { # DATABASE USER COUNT FIRST-ID oauth|legacy TOKENS-FILE
  python3 - "$@" <<'EOF'
import base64, hashlib, secrets, sqlite3, sys, time, zlib
database, user, count, first, kind, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
now = int(time.time() * 1000)
local = user[1:].split(":")[0]
digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def base62(value):
    out = ""
    while value:
        out, value = digits[value % 62] + out, value // 62
    return out.rjust(6, "0")
def digest(token):
    raw = hashlib.sha256(token.encode()).digest()
    return "sha256:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
def legacy(i):
    base = f"syr_{base64.b64encode(local.encode()).decode().rstrip('=')}_{secrets.token_hex(10)}"
    return f"{base}_{base62(zlib.crc32(base.encode()))}"
plain = [f"hkr_bench{i}x{first}" if kind == "oauth" else legacy(i) for i in range(count)]
stored = [digest(t) if kind == "oauth" else t for t in plain]
device = lambda i: f"{kind.upper()}R{first}x{i}"
# BEGIN IMMEDIATE: the server writes beside (heartbeats); wait for the write lock up front.
conn = sqlite3.connect(database, timeout=60, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
if True:
    conn.executemany("INSERT INTO devices (user_id, device_id, display_name, last_seen, hidden) VALUES (?, ?, ?, ?, ?)",
                     [(user, device(i), f"refresh {i}", now, False) for i in range(count)])
    # The database numbers the rows: the rotations under load add rows between the seedings.
    for i in range(count):
        refresh_id = conn.execute("INSERT INTO refresh_tokens (user_id, device_id, token, expiry_ts) VALUES (?, ?, ?, ?)",
                                  (user, device(i), stored[i], now + 86_400_000)).lastrowid
        conn.execute("INSERT INTO access_tokens (user_id, device_id, token, valid_until_ms, last_validated, refresh_token_id, used) VALUES (?, ?, ?, ?, ?, ?, TRUE)",
                     (user, device(i), f"sha256:access{kind}{i}x{first}", now + 300_000, now, refresh_id))
    if kind == "oauth":
        scope = "urn:matrix:client:api:* urn:matrix:client:device:"
        conn.executemany("INSERT INTO homekey_oauth_sessions (user_id, device_id, client_id, scope, created_ms) VALUES (?, ?, ?, ?, ?)",
                         [(user, device(i), "benchclient", scope + device(i), now) for i in range(count)])
conn.execute("COMMIT")
conn.close()
with open(path, "w") as f:
    f.writelines(t + "\n" for t in plain)
EOF
}
refresh_row() {
  local db="$work/homekey-refresh/homeserver.db" round first=5000000 side line url
  say "refresh: homekey beside a Synapse that is not there, $refresh_tokens sessions per load"
  start_homekey homekey-refresh "$(sqlite_db "$db")" "$(homekey_beside_synapse http://127.0.0.1:1)"
  record refresh_sessions "$refresh_tokens"
  # Every load's sessions first, before any load: 32 more than are counted (a load stops
  # after $refresh_tokens answers, with up to 16 requests more in flight, each with a token
  # of its own). Nothing writes beside the loads.
  for round in $(seq 0 "$whoami_rounds"); do
    for side in oauth legacy; do
      seed_refreshable "$db" @alice:example.com "$((refresh_tokens + 32))" "$first" "$side" \
        "$work/refresh-$side-$round"
      first=$((first + refresh_tokens + 32))
    done
  done
  for round in $(seq 0 "$whoami_rounds"); do
    for side in oauth legacy; do
      url="$homekey_url/oauth2/token"
      [[ $side == legacy ]] && url="$homekey_url/_matrix/client/v3/refresh"
      [[ $round == 0 ]] || say "refresh: $side, $refresh_tokens sessions each refreshed once, 16 connections (round $round of $whoami_rounds)"
      record "load.refresh.$side" "$(load1)"
      line="$(BENCH_MODE=${side}_refresh BENCH_TOKENS="$work/refresh-$side-$round" BENCH_ONCE=1 \
        BENCH_MAX_REQUESTS="$refresh_tokens" run_wrk "$url" 60 16 1 tokens.lua)"
      [[ $round == 0 ]] && continue # a warm-up of each
      record "refresh_rps.$side" "$(field rps "$line")"
      record "refresh_p50_ms.$side" "$(field p50_ms "$line")"
    done
  done
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
}
if wants refresh; then refresh_row; fi

# --- exchange: the authorization code grant, against Synapse's upsert_device alone ----------
# Each exchange ends with homekey making the session's device in Synapse (POST
# /_synapse/mas/upsert_device) before it answers: that call is the grant's limit. homekey
# beside a Synapse delegating to it; $exchange_codes codes of 16 users (as the consent page
# leaves them: digests, one device each, one PKCE verifier) put in the database with SQL, each
# exchanged once, 16 connections; then Synapse's upsert_device alone, as homekey calls it, for
# as many new devices of one of those users; in alternating rounds.
seed_codes() { # DATABASE COUNT FIRST CODES-FILE
  python3 - "$@" <<'EOF'
import base64, hashlib, json, sqlite3, sys, time
database, count, first, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
now = int(time.time() * 1000)
def b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
verifier = "bench-verifier-0123456789-0123456789-0123456789"
challenge = b64(hashlib.sha256(verifier.encode()).digest())
metadata = {"application_type": "web", "client_name": "bench", "client_uri": "https://bench.example.org",
            "redirect_uris": ["https://bench.example.org/cb"], "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "token_endpoint_auth_method": "none"}
codes = [f"benchcode{first}x{i}" for i in range(count)]
conn = sqlite3.connect(database, timeout=60, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT INTO homekey_oauth_clients (client_id, metadata, metadata_digest, registered_ms, last_registered_ms, first_session_ms) "
             "VALUES ('benchclient', ?, 'bench', ?, ?, ?) ON CONFLICT DO NOTHING", (json.dumps(metadata), now, now, now))
scope = "urn:matrix:client:api:* urn:matrix:client:device:"
conn.executemany("INSERT INTO homekey_oauth_codes (code_digest, client_id, redirect_uri, code_challenge, user_id, scope, expires_ms) "
                 "VALUES (?, 'benchclient', 'https://bench.example.org/cb', ?, ?, ?, ?)",
                 [("sha256:" + b64(hashlib.sha256(c.encode()).digest()), challenge, f"@ex{i % 16}:example.com",
                   scope + f"EXCH{first}x{i}", now + 600_000)
                  for i, c in enumerate(codes)])
conn.execute("COMMIT")
conn.close()
with open(path, "w") as f:
    f.writelines(c + "\n" for c in codes)
EOF
}
exchange_row() {
  local db="$work/homekey-exchange/homeserver.db" synapse_port round first=1 side line
  local full_cost=$cost
  cost=4
  say "exchange: homekey and a Synapse delegating to it"
  synapse_port="$(free_port)"
  start_homekey homekey-exchange "$(sqlite_db "$db")" \
    "$(homekey_beside_synapse "http://127.0.0.1:$synapse_port")"
  start_synapse synapse-exchange "$synapse_venv" sqlite "$(synapse_delegating_to "$homekey_url")" "$synapse_port"
  # 16 users, so that the 16 connections' grants are mostly of different users: a user's
  # sessions are announced to Synapse one at a time (the user's lease). Each user's first
  # login makes it in Synapse (two such at once would race there).
  local user
  for user in $(seq 0 15); do
    "$homekey" user create "ex$user" -p "$password" -c "$work/homekey-exchange/users.yaml" \
      >/dev/null 2>&1 || die "creating ex$user failed"
    login_tokens "$homekey_url" "ex$user" "$password" 1 "$work/exchange-login"
  done
  record exchange_codes "$exchange_codes"
  local count=$((exchange_codes + 32)) # the load stops after $exchange_codes answers
  # Every load's codes first, before any load: nothing writes beside the loads.
  for round in $(seq 0 "$whoami_rounds"); do
    seed_codes "$db" "$count" "$first" "$work/exchange-codes-$round"
    python3 -c "import sys; [print(f'UPSERT{sys.argv[1]}x{i}') for i in range(int(sys.argv[2]))]" \
      "$first" "$count" >"$work/exchange-devices-$round"
    first=$((first + count))
  done
  for round in $(seq 0 "$whoami_rounds"); do
    for side in exchange upsert; do
      local url="$homekey_url/oauth2/token" tokens="$work/exchange-codes-$round"
      if [[ $side == upsert ]]; then
        url="$synapse_url/_synapse/mas/upsert_device" tokens="$work/exchange-devices-$round"
      fi
      [[ $round == 0 ]] || say "exchange: $side, $exchange_codes each once, 16 connections (round $round of $whoami_rounds)"
      record "load.exchange.$side" "$(load1)"
      line="$(BENCH_MODE=$side BENCH_TOKENS=$tokens BENCH_ONCE=1 BENCH_MAX_REQUESTS="$exchange_codes" \
        BENCH_SECRET="$(cat "$(synapse_secret_file)")" run_wrk "$url" 120 16 1 tokens.lua)"
      [[ $round == 0 ]] && continue # a warm-up of each
      record "exchange_rps.$side" "$(field rps "$line")"
      record "exchange_p50_ms.$side" "$(field p50_ms "$line")"
    done
  done
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
  cost=$full_cost
}
if wants exchange; then
  if [[ $with_synapse == false ]]; then
    say "exchange: needs Synapse; skipped"
  else
    exchange_row
  fi
fi

# --- first-request: a fresh token's first request through a delegating Synapse --------------
# Synapse asks its authentication service about every token it has not seen in 2 minutes; a
# client's first request with a new token waits for that. Two Synapses at once: one delegating
# to homekey (matrix_authentication_service), and one on its own auth. On each, $first_tokens
# tokens of alice per round, each used once (so Synapse's cache of answers never helps), by
# GET whoami, 16 connections, in alternating rounds. The tokens come from logins, at bcrypt
# cost 4, made before any load: through homekey's /login for the delegating Synapse (each
# makes its device in Synapse, /_synapse/mas/upsert_device), Synapse's own /login for the other.
first_load() { # NAME URL TOKENS-FILE COUNT ; records NAME's figures (COUNT 0: a warm-up)
  local name=$1 url=$2 line
  line="$(BENCH_MODE=whoami BENCH_TOKENS=$3 BENCH_ONCE=1 BENCH_MAX_REQUESTS=$(($4 > 0 ? $4 : 100)) \
    run_wrk "$url/_matrix/client/v3/account/whoami" "$first_seconds" 16 1 tokens.lua)"
  [[ $4 -gt 0 ]] || return 0
  record "first_rps.$name" "$(field rps "$line")"
  record "first_p50_ms.$name" "$(field p50_ms "$line")"
  record "first_p99_ms.$name" "$(field p99_ms "$line")"
  record "first_count.$name" "$(field requests "$line")"
}
first_request_row() {
  local full_cost=$cost synapse_port delegating_url own_url side round
  # Per round: the load stops itself after $first_tokens answers, with at most 16 requests
  # more in flight, each with a token of its own; then 100 for a warm-up of each server.
  local per_round=$((first_tokens + 32)) logins
  logins=$((100 + 32 + whoami_rounds * per_round))
  cost=4
  say "first-request: homekey and a Synapse delegating to it"
  synapse_port="$(free_port)"
  start_homekey homekey-delegated "$(sqlite_db "$work/homekey-delegated/homeserver.db")" \
    "$(homekey_beside_synapse "http://127.0.0.1:$synapse_port")"
  start_synapse synapse-delegating "$synapse_venv" sqlite "$(synapse_delegating_to "$homekey_url")" "$synapse_port"
  delegating_url=$synapse_url
  say "first-request: $logins logins through homekey, each making its device in Synapse"
  login_tokens "$homekey_url" alice "$password" "$logins" "$work/first-tokens.delegated"
  say "first-request: Synapse on its own auth, $logins logins"
  start_synapse synapse-own "$synapse_venv" sqlite
  own_url=$synapse_url
  login_tokens "$own_url" alice "$password" "$logins" "$work/first-tokens.synapse"
  record first_tokens "$first_tokens"
  for side in delegated synapse; do
    sed -n "1,132p" "$work/first-tokens.$side" >"$work/first-warm.$side"
  done
  first_load delegated "$delegating_url" "$work/first-warm.delegated" 0
  first_load synapse "$own_url" "$work/first-warm.synapse" 0
  for round in $(seq 1 "$whoami_rounds"); do
    for side in delegated synapse; do
      sed -n "$((133 + (round - 1) * per_round)),$((132 + round * per_round))p" \
        "$work/first-tokens.$side" >"$work/first-round.$side"
    done
    say "first-request: Synapse delegating to homekey, $first_tokens fresh tokens (round $round of $whoami_rounds)"
    record load.first.delegated "$(load1)"
    first_load delegated "$delegating_url" "$work/first-round.delegated" "$first_tokens"
    say "first-request: Synapse on its own auth, $first_tokens fresh tokens (round $round of $whoami_rounds)"
    record load.first.synapse "$(load1)"
    first_load synapse "$own_url" "$work/first-round.synapse" "$first_tokens"
  done
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
  cost=$full_cost
}
if wants first-request; then
  if [[ $with_synapse == false ]]; then
    say "first-request: needs Synapse; skipped"
  else
    first_request_row
  fi
fi

# --- login-nginx: password logins through nginx into a delegating Synapse -------------------
# What a user's client does beside Synapse: POST /login at the public proxy (the README's nginx
# config, as written), which sends it to homekey, which makes the device in Synapse before it
# answers; against Synapse alone on its own auth. Same bcrypt cost, alternating rounds.
nginx_url="" nginx="$(command -v nginx || echo /usr/sbin/nginx)"
start_nginx() { # NAME SYNAPSE-URL HOMEKEY-URL ; the README's config, its addresses replaced
  local dir="$work/$1" port
  port="$(free_port)"
  mkdir -p "$dir/logs"
  chmod 0755 "$work" "$dir" # its workers run as nobody when the bench runs as root
  python3 - "$repo/README.md" "${2#http://}" "${3#http://}" "$port" >"$dir/site.conf" <<'EOF' ||
import sys
readme, synapse, homekey, port = sys.argv[1:]
text = open(readme).read()
block = text.split("<!-- nginx-beside-synapse:start -->")[1].split("<!-- nginx-beside-synapse:end -->")[0]
conf = block.split("```nginx")[1].split("```")[0]
for old, new in (("127.0.0.1:8008", synapse), ("127.0.0.1:8081", homekey),
                 ("listen 80;", f"listen 127.0.0.1:{port};")):
    assert old in conf, old
    conf = conf.replace(old, new)
print(conf)
EOF
    die "the README's nginx config was not found"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/temp-body;
  proxy_temp_path $dir/temp-proxy;
  fastcgi_temp_path $dir/temp-fastcgi;
  uwsgi_temp_path $dir/temp-uwsgi;
  scgi_temp_path $dir/temp-scgi;
  include $dir/site.conf;
}
EOF
  "$nginx" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
    </dev/null >"$dir/logs/stderr.log" 2>&1 &
  pids+=("$!")
  nginx_url="http://127.0.0.1:$port"
  wait_for_url "$nginx_url/_matrix/client/versions" "$!" "$dir/logs/error.log"
}
login_nginx_row() {
  local synapse_port own_url round line side url threads
  [[ -x $nginx ]] || die "login-nginx needs nginx (Debian: apt-get install nginx-light)"
  threads=$((login_clients < cores ? login_clients : cores))
  synapse_port="$(free_port)"
  say "login-nginx: homekey, a Synapse delegating to it, and nginx in front"
  start_homekey homekey-nginx "$(sqlite_db "$work/homekey-nginx/homeserver.db")" \
    "$(homekey_beside_synapse "http://127.0.0.1:$synapse_port")"
  start_synapse synapse-behind-nginx "$synapse_venv" sqlite "$(synapse_delegating_to "$homekey_url")" "$synapse_port"
  start_nginx nginx "$synapse_url" "$homekey_url"
  # The first login alone: it makes alice in Synapse.
  login_token "$nginx_url" alice "$password" >/dev/null
  start_synapse synapse-alone "$synapse_venv" sqlite
  own_url=$synapse_url
  for round in $(seq 1 "$whoami_rounds"); do
    for side in delegated synapse; do
      url=$nginx_url
      [[ $side == synapse ]] && url=$own_url
      say "login-nginx: $side, $login_clients clients, ${login_seconds} s (round $round of $whoami_rounds)"
      record "load.login_nginx.$side" "$(load1)"
      line="$(BENCH_LOGIN_USER=alice BENCH_LOGIN_PASSWORD="$password" BENCH_MAX_REQUESTS=$login_max \
        run_wrk "$url/_matrix/client/v3/login" "$login_seconds" "$login_clients" "$threads" login.lua)"
      record "login_nginx_rps.$side" "$(field rps "$line")"
      record "login_nginx_p50_ms.$side" "$(field p50_ms "$line")"
    done
  done
  record login_nginx_clients "$login_clients"
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  pids=()
}
if wants login-nginx; then
  if [[ $with_synapse == false ]]; then
    say "login-nginx: needs Synapse; skipped"
  else
    login_nginx_row
  fi
fi

# --- hash_password as a whole process --------------------------------------------------------
paired_ms() { # RUNS YARDSTICK_NAME YARDSTICK_COMMAND [NAME COMMAND]… ; see paired.py
  python3 "$here/paired.py" "$@" >>"$results" || die "timing whole processes failed"
}
if wants hash; then
  say "hash_password: whole processes, $runs runs each"
  mkdir -p "$work/hash"
  homekey_config "$work/hash/homeserver.yaml" "$(sqlite_db "$work/hash/homeserver.db")"
  record load.hash "$(load1)"
  # Judged against one hash in a process of its own, timed in the same rounds (the limit
  # row's hash was timed minutes earlier, and the machine drifts).
  commands=(hash_once_ms "$bin/examples/bench-bcrypt $cost once"
    hash_process_ms.homekey "$bin/hash_password -c $work/hash/homeserver.yaml -p $password"
    hash_process_ms.homekey_cli "$homekey hash-password -c $work/hash/homeserver.yaml -p $password")
  if [[ $with_synapse != false ]]; then
    commands+=(hash_process_ms.synapse "$synapse_venv/bin/hash_password -c $work/hash/homeserver.yaml -p $password")
  fi
  paired_ms "$runs" "${commands[@]}"
fi

# --- import, then set-password on the imported database --------------------------------------
if wants import || wants set-password; then
  say "import: $import_users users with hashes given (SQLite)"
  record import_users "$import_users"
  mkdir -p "$work/import"
  import_cfg="$work/import/homeserver.yaml"
  homekey_config "$import_cfg" "$(sqlite_db "$work/import/homeserver.db")"
  given_hash="$("$homekey" hash-password -c "$import_cfg" -p "$password" 2>/dev/null)"
  python3 - "$work/import/users.csv" "$import_users" "$given_hash" <<'EOF'
import sys
path, count, hash_ = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("user,password_hash,displayname\n")
    for i in range(count):
        f.write(f"user{i:06d},{hash_},User {i}\n")
EOF
  "$homekey" migrate -c "$import_cfg" >/dev/null
  record load.import.sqlite "$(load1)"
  started=$(date +%s.%N)
  timeout 900 "$homekey" user import "$work/import/users.csv" -c "$import_cfg" >"$work/import.log" 2>&1 ||
    die "import failed: $(tail -n 3 "$work/import.log")"
  ended=$(date +%s.%N)
  record import_rate.sqlite "$(python3 -c 'import sys; print(round(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))' "$import_users" "$started" "$ended")"
  if wants set-password; then
    say "set-password: on the $import_users-user database, $runs runs"
    record load.set_password "$(load1)"
    commands=(set_password_hash_once_ms "$bin/examples/bench-bcrypt $cost once"
      set_password_ms.homekey "$homekey user set-password user$(printf %06d $((import_users / 2))) -p $password -c $import_cfg")
    if [[ $with_synapse != false ]]; then
      # The operator's way with Synapse's tools today: hash_password, then the UPDATE by hand.
      cat >"$work/import/by-hand.sh" <<EOF
hash="\$("$synapse_venv/bin/hash_password" -c "$import_cfg" -p "$password")"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("UPDATE users SET password_hash = ? WHERE name = ?", (sys.argv[2], sys.argv[3])); c.commit()' \
  "$work/import/homeserver.db" "\$hash" "@user$(printf %06d $((import_users / 3))):example.com"
EOF
      commands+=(set_password_ms.synapse "bash $work/import/by-hand.sh")
    fi
    paired_ms "$runs" "${commands[@]}"
  fi
fi

# --- PostgreSQL: whoami and import -----------------------------------------------------------
if wants pg; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    say "pg: no PostgreSQL at 127.0.0.1:5432; skipped"
  else
    suffix="$$_$RANDOM"
    db_homekey="homekey_bench_$suffix" db_import="homekey_bench_import_$suffix" db_synapse="synapse_bench_$suffix"
    for db in "$db_homekey" "$db_import"; do
      psql "$pg_url/postgres" -qAt -c "CREATE DATABASE $db" >/dev/null
      pg_dbs+=("$db")
    done
    say "pg: homekey serve on PostgreSQL"
    start_homekey homekey-pg "$(pg_db "$db_homekey")"
    token="$(login_token "$homekey_url" alice "$password")"
    whoami_load "$homekey_url" "$token" "$homekey_pid" homekey_pg
    stop_pid "$homekey_pid"
    if [[ $with_synapse != false ]] && "$synapse_pg_venv/bin/python" -c 'import synapse, psycopg2' 2>/dev/null; then
      # Synapse asks for a C-collated database.
      psql "$pg_url/postgres" -qAt -c "CREATE DATABASE $db_synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
      pg_dbs+=("$db_synapse")
      say "pg: Synapse on PostgreSQL"
      start_synapse synapse-pg "$synapse_pg_venv" "pg:$db_synapse"
      token="$(login_token "$synapse_url" alice "$password")"
      whoami_load "$synapse_url" "$token" "$synapse_pid" synapse_pg
      stop_pid "$synapse_pid"
    elif [[ $with_synapse != false ]]; then
      say "pg: no Synapse with psycopg2 in $synapse_pg_venv: Synapse's PostgreSQL column stays empty"
    fi
    if [[ -f $work/import/users.csv ]]; then
      say "pg: import of $import_users users"
      mkdir -p "$work/import-pg"
      homekey_config "$work/import-pg/homeserver.yaml" "$(pg_db "$db_import")"
      "$homekey" migrate -c "$work/import-pg/homeserver.yaml" >/dev/null
      record load.import.pg "$(load1)"
      started=$(date +%s.%N)
      timeout 900 "$homekey" user import "$work/import/users.csv" -c "$work/import-pg/homeserver.yaml" >"$work/import-pg.log" 2>&1 ||
        die "import on PostgreSQL failed: $(tail -n 3 "$work/import-pg.log")"
      ended=$(date +%s.%N)
      record import_rate.pg "$(python3 -c 'import sys; print(round(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))' "$import_users" "$started" "$ended")"
    fi
  fi
fi

# --- migrate: a Synapse database into homekey's (issue 17) ----------------------------------
# The real Synapse makes its schema, bench/synapse_db.py fills it (migrate_users users, 2
# devices and 2 access tokens each, a few refresh tokens; checked by a login on Synapse), then
# `homekey migrate-from-synapse` copies it into a new homekey database of the same kind, its
# wall clock timed; the rows homekey then has are counted. Synapse and homekey read configs
# with the same server_name, pepper and bcrypt_rounds.
pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
migrate_row() { # sqlite|pg
  local kind=$1 dir="$work/migrate-$1" venv=$synapse_venv suffix synapse_name homekey_name
  local synapse_database homekey_database counts expected line started ended
  mkdir -p "$dir/synapse" "$dir/homekey"
  if [[ $kind == sqlite ]]; then
    synapse_name="$dir/synapse/homeserver.db" homekey_name="$dir/homekey/homeserver.db"
    synapse_database="$(sqlite_db "$synapse_name")" homekey_database="$(sqlite_db "$homekey_name")"
  else
    venv=$synapse_pg_venv
    suffix="$$_$RANDOM"
    synapse_name="synapse_bench_migrate_$suffix" homekey_name="homekey_bench_migrate_$suffix"
    # Synapse asks for a C-collated database.
    psql "$pg_url/postgres" -qAt -c "CREATE DATABASE $synapse_name ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
    pg_dbs+=("$synapse_name")
    psql "$pg_url/postgres" -qAt -c "CREATE DATABASE $homekey_name" >/dev/null
    pg_dbs+=("$homekey_name")
    synapse_database="$(pg_db "$synapse_name")" homekey_database="$(pg_db "$homekey_name")"
  fi
  say "migrate ($kind): a Synapse database of $migrate_users users, made by Synapse and bench/synapse_db.py"
  synapse_config "$dir/synapse" "$(free_port)" "$synapse_database"
  line="$("$venv/bin/python" "$here/synapse_db.py" "$dir/synapse/homeserver.yaml" \
    --users "$migrate_users" --password "$password" --check 2>"$work/migrate-$kind-synapse-db.log")" ||
    die "making the Synapse database ($kind) failed"
  record "migrate_schema_s.$kind" "$(field schema_s "$line")"
  record "migrate_fill_s.$kind" "$(field fill_s "$line")"
  expected="$migrate_users $((2 * migrate_users)) $((2 * migrate_users)) $(field refresh_tokens "$line")"
  homekey_config "$dir/homekey/homeserver.yaml" "$homekey_database"
  "$homekey" migrate -c "$dir/homekey/homeserver.yaml" >/dev/null
  say "migrate ($kind): homekey migrate-from-synapse"
  record "load.migrate.$kind" "$(load1)"
  started=$(date +%s.%N)
  timeout 900 "$homekey" migrate-from-synapse --synapse-config "$dir/synapse/homeserver.yaml" \
    -c "$dir/homekey/homeserver.yaml" </dev/null >"$work/migrate-$kind.log" 2>&1 ||
    die "migrate-from-synapse ($kind) failed: $(tail -n 3 "$work/migrate-$kind.log")"
  ended=$(date +%s.%N)
  record "migrate_s.$kind" "$(python3 -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))' "$started" "$ended")"
  record "migrate_rate.$kind" "$(python3 -c 'import sys; print(round(int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))' "$migrate_users" "$started" "$ended")"
  # What homekey has now: the users, devices, access and refresh tokens Synapse had.
  local sql="SELECT (SELECT COUNT(*) FROM users) || ' ' || (SELECT COUNT(*) FROM devices) || ' ' || (SELECT COUNT(*) FROM access_tokens) || ' ' || (SELECT COUNT(*) FROM refresh_tokens)"
  if [[ $kind == sqlite ]]; then
    counts="$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$homekey_name" "$sql")"
  else
    counts="$(psql "$pg_url/$homekey_name" -qAt -c "$sql")"
  fi
  [[ $counts == "$expected" ]] ||
    die "migrate ($kind): homekey has users, devices, access and refresh tokens $counts; Synapse had $expected"
}
if wants migrate; then
  record migrate_users "$migrate_users"
  if [[ $with_synapse == false ]]; then
    say "migrate: needs Synapse; skipped"
  else
    migrate_row sqlite
    if ! pg_ready; then
      say "migrate: no PostgreSQL at 127.0.0.1:5432; the PostgreSQL half skipped"
    elif ! "$synapse_pg_venv/bin/python" -c 'import synapse, psycopg2' 2>/dev/null; then
      say "migrate: no Synapse with psycopg2 in $synapse_pg_venv (HOMEKEY_BENCH_SYNAPSE_PG); the PostgreSQL half skipped"
    else
      migrate_row pg
    fi
  fi
fi

# --- the table -------------------------------------------------------------------------------
out_file="${BENCH_RESULTS:-$here/results/latest.md}"
# A full run of some rows only keeps the other rows' figures of the results file it replaces:
# a figure this run recorded replaces all the earlier values of that name; the others stay,
# with the earlier run's date (earlier_date) for the table to say where they come from.
if ! $smoke && $some_rows && [[ -f $out_file ]]; then
  record rows "${rows[*]}"
  python3 - "$out_file" "$results" <<'EOF' || die "merging with the figures of $out_file failed"
import sys
old_file, new_file = sys.argv[1], sys.argv[2]
raw = open(old_file).read().partition("<summary>raw figures</summary>")[2].split("```")
old = [line.split("\t", 1) for line in (raw[1] if len(raw) > 1 else "").splitlines() if "\t" in line]
new = [line.rstrip("\n").split("\t", 1) for line in open(new_file)]
names = {name for name, _ in new}
# The old file's figures: its own run's, then (after earlier_date) those it kept in its turn.
split = next((i for i, (n, _) in enumerate(old) if n == "earlier_date"), len(old))
before = dict(old)
kept, dates = [], []
for part, date in ((old[:split], before.get("date", "?")), (old[split + 1:], before.get("earlier_date"))):
    part = [(n, v) for n, v in part if n not in names and n != "rows"]
    kept += part
    if part and date not in dates:
        dates.append(date)
earlier = " and ".join(dates)
with open(new_file, "w") as f:
    for name, value in new + ([("earlier_date", earlier)] if kept else []) + kept:
        f.write(f"{name}\t{value}\n")
EOF
fi
table="$(python3 "$here/table.py" "$results")"
echo "$table"
if ! $smoke; then
  mkdir -p "$(dirname "$out_file")"
  { echo "$table"; echo; echo '<details><summary>raw figures</summary>'; echo; echo '```'; cat "$results"; echo '```'; echo '</details>'; } >"$out_file"
  say "written to $out_file"
fi
