#!/usr/bin/env bash
# The container image (deploy/container/Containerfile), built and run with podman.
#
#   bash tests/container/run.sh            # builds the release binaries (cargo build --release)
#   bash tests/container/run.sh --debug    # uses the debug ones `cargo test` built (what .ci/run does)
#
# Needs podman, runc and debootstrap (.ci/run installs them) and, for its second half, the
# machine's PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres). No registry is needed: the
# base image docker.io/library/debian:bookworm-slim is made by `debootstrap --variant=minbase
# bookworm` from Debian's packages (the mirror apt uses), cached as a tarball under
# ~/.cache/homekey-ci/, and imported under that name, so the Containerfile is unchanged.
#
# This sandbox's kernel refuses crun's cgroup handling and raising resource limits: every
# podman call here uses `--runtime runc --cgroup-manager=cgroupfs`, and every container gets
# explicit `--ulimit nofile=…` (the shell's hard limit) and `--ulimit nproc=4096`. Users of the
# image need none of that.
#
# Everything listens on loopback only. Containers, volumes and the PostgreSQL database made
# here are removed at exit, failed or not; the image (localhost/homekey:test) is kept.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

profile=release
case "${1:-}" in
  "") ;;
  --debug) profile=debug ;;
  *) echo "usage: $0 [--debug]" >&2; exit 2 ;;
esac

podman=(podman --runtime runc --cgroup-manager=cgroupfs)
# Without systemd (here), podman cannot time the image's health checks and says so at each
# start ("unable to get systemd connection to add healthchecks"): harmless, as `podman
# healthcheck run` still works; those lines are dropped.
exec 2> >(grep --line-buffered -v 'unable to get systemd connection to .* healthchecks' >&2)
# nproc: even the shell's own hard limit is refused here; 4096 is plenty for homekey.
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
image=localhost/homekey:test
base=docker.io/library/debian:bookworm-slim
cache="${HOMEKEY_CI_CACHE:-$HOME/.cache/homekey-ci}"
pg_url_base="${HOMEKEY_TEST_POSTGRES_ADMIN:-postgres://postgres@127.0.0.1:5432}"
tag="hkct$$"
sqlite_c="$tag-sqlite" pg_c="$tag-pg" probe_c="$tag-probe"
sqlite_v="$tag-data" pg_v="$tag-pgdata" beside_c="$tag-beside" beside_v="$tag-besidedata"
synapse_pid="" nginx_pid=""
pg_db="homekey_container_$$"
work="$(mktemp -d)"
passed=0 failed=0
started=$(date +%s)

cleanup() {
  [[ -z "$synapse_pid" ]] || { kill "$synapse_pid" 2>/dev/null; wait "$synapse_pid" 2>/dev/null; } || true
  [[ -z "$nginx_pid" ]] || { kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null; } || true
  "${podman[@]}" rm -f -t 2 "$sqlite_c" "$pg_c" "$probe_c" "$beside_c" >/dev/null 2>&1 || true
  "${podman[@]}" volume rm -f "$sqlite_v" "$pg_v" "$beside_v" >/dev/null 2>&1 || true
  psql -q "$pg_url_base/postgres" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '== %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check "what" command…: the command's success is the check
  local what="$1"; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
quiet() { "$@" >/dev/null; }
die() { printf 'container: %s\n' "$*" >&2; echo "container: $passed passed, $((failed + 1)) failed"; exit 1; }

# --- the base image -------------------------------------------------------------------------
if ! "${podman[@]}" image exists "$base"; then
  tarball="$cache/debian-bookworm-minbase.tar.gz"
  if [[ ! -s "$tarball" ]]; then
    mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
    mirror="${mirror:-http://deb.debian.org/debian}"
    say "debootstrap --variant=minbase bookworm from $mirror"
    mkdir -p "$cache"
    root="$work/rootfs"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    # What debian:bookworm-slim leaves out too: the downloaded packages, the lists, docs.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
    tar -C "$root" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  say "importing $tarball as $base"
  "${podman[@]}" import --quiet --change 'CMD ["bash"]' "$tarball" "$base" >/dev/null
fi

# --- the binaries and the image -------------------------------------------------------------
target="${CARGO_TARGET_DIR:-$repo/target}"
t0=$(date +%s)
if [[ $profile == release ]]; then
  say "cargo build --release --bins"
  cargo build --quiet --release --bins
else
  say "cargo build --bins (debug; a no-op after cargo test)"
  cargo build --quiet --bins
fi
build_secs=$(($(date +%s) - t0))
ctx="$work/context"
mkdir -p "$ctx/bin" "$ctx/deploy/container"
cp deploy/container/Containerfile deploy/container/entrypoint.sh "$ctx/deploy/container/"
for b in homekey hash_password register_new_matrix_user; do
  cp "$target/$profile/$b" "$ctx/bin/$b"
done
# The debug binaries carry some 200 MB of debug info each: not what an image is for.
strip_note=""
[[ $profile == release ]] || { strip "$ctx"/bin/*; strip_note=", stripped"; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
t0=$(date +%s)
say "podman build --target prebuilt ($profile binaries)"
"${podman[@]}" build --quiet --format docker "${limits[@]}" -f "$ctx/deploy/container/Containerfile" \
  --target prebuilt --build-arg BIN_DIR=bin --build-arg VERSION="$version" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$image" "$ctx" >/dev/null || die "podman build failed"
image_secs=$(($(date +%s) - t0))
size_bytes="$("${podman[@]}" image inspect --format '{{.Size}}' "$image")"
base_bytes="$("${podman[@]}" image inspect --format '{{.Size}}' "$base")"

label() { "${podman[@]}" image inspect --format "{{index .Labels \"org.opencontainers.image.$1\"}}" "$image"; }
check "OCI labels: version $version, licence Apache-2.0, a source" \
  test "$(label version)" = "$version" -a "$(label licenses)" = Apache-2.0 -a -n "$(label source)"
check "the image runs as the user homekey, not root" \
  test "$("${podman[@]}" image inspect --format '{{.Config.User}}' "$image")" = homekey
check "the image has a health check" \
  grep -q versions <<<"$("${podman[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$image")"
check "the three binaries are in /usr/local/bin" \
  quiet "${podman[@]}" run --rm "${limits[@]}" --entrypoint ls "$image" \
  /usr/local/bin/homekey /usr/local/bin/hash_password /usr/local/bin/register_new_matrix_user
# No secret baked in: the image holds no homeserver.yaml, and /data is empty.
check "no config and nothing in /data in the image" \
  test -z "$("${podman[@]}" run --rm "${limits[@]}" --entrypoint bash "$image" -c \
    'find / -xdev -name "homeserver*.yaml" 2>/dev/null; ls -A /data')"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    port_free "$p" && { echo "$p"; return; }
  done
  die "no free port"
}
wait_versions() { # url: wait until /versions answers 200
  for _ in $(seq 1 60); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1/_matrix/client/versions")" == 200 ]] && return 0
    sleep 0.5
  done
  return 1
}
login() { # url user password: prints the HTTP status; the password goes on stdin, not argv
  printf '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"%s"},"password":"%s"}' "$2" "$3" |
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- "$1/_matrix/client/v3/login"
}
pw() { head -c 18 /dev/urandom | base64 | tr '+/' 'Aa'; } # passwords made here, never printed

# accounts_and_restart container url: the checks both databases share.
accounts_and_restart() {
  local c="$1" url="$2" db="$3" first second third hash
  first="$(pw)" second="$(pw)" third="$(pw)"
  check "$db: /_matrix/client/versions answers 200" wait_versions "$url"
  check "$db: podman healthcheck run reports healthy" quiet "${podman[@]}" healthcheck run "$c"
  check "$db: the server (PID 1, homekey) runs as uid 991, not root" \
    test "$("${podman[@]}" exec "$c" bash -c 'echo $(cat /proc/1/comm) $(awk "/^Uid:/ {print \$2}" /proc/1/status)')" = "homekey 991"
  check "$db: podman exec homekey user create (password on stdin)" \
    bash -c 'printf "%s\n" "$1" | "${@:2}" >/dev/null' _ "$first" \
    "${podman[@]}" exec -i "$c" homekey user create alice --password-stdin
  check "$db: alice logs in over HTTP" test "$(login "$url" alice "$first")" = 200
  check "$db: podman exec homekey user set-password --logout-devices (stdin)" \
    bash -c 'printf "%s\n" "$1" | "${@:2}" >/dev/null 2>&1' _ "$second" \
    "${podman[@]}" exec -i "$c" homekey user set-password alice --password-stdin --logout-devices
  check "$db: the new password logs in" test "$(login "$url" alice "$second")" = 200
  check "$db: the old one is refused (403)" test "$(login "$url" alice "$first")" = 403
  # The seed's command, with the password on stdin instead of a terminal.
  hash="$(printf '%s\n' "$third" | "${podman[@]}" exec -i "$c" /usr/local/bin/hash_password -c /data/homeserver.yaml)" || hash=""
  check "$db: podman exec -i … /usr/local/bin/hash_password -c /data/homeserver.yaml prints a bcrypt hash" \
    test "${#hash}" -eq 60 -a "${hash:0:4}" = '$2b$'
  printf '{"user":"bob","password_hash":"%s"}\n' "$hash" |
    "${podman[@]}" exec -i "$c" bash -c 'cat >/tmp/u.jsonl && homekey user import /tmp/u.jsonl' >/dev/null 2>&1 || true
  check "$db: homekey takes that hash (user import) and bob logs in with the password" \
    test "$(login "$url" bob "$third")" = 200
  local t0
  t0=$(date +%s)
  "${podman[@]}" stop -t 10 "$c" >/dev/null
  check "$db: podman stop ends it on SIGTERM (exit 0, before the 10 s kill)" \
    test "$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$c")" = 0 -a $(($(date +%s) - t0)) -lt 10
  "${podman[@]}" start "$c" >/dev/null
  check "$db: stopped and started again, it answers" wait_versions "$url"
  check "$db: ... and alice still logs in with the new password" test "$(login "$url" alice "$second")" = 200
  check "$db: ... and bob too" test "$(login "$url" bob "$third")" = 200
}

# --- SQLite in a volume ---------------------------------------------------------------------
say "SQLite in the volume $sqlite_v"
"${podman[@]}" volume create "$sqlite_v" >/dev/null
out="$("${podman[@]}" run --rm "${limits[@]}" -v "$sqlite_v:/data" "$image" 2>&1)" && rc=0 || rc=$?
check "first start without /data/homeserver.yaml fails and says how to make one" \
  bash -c '[[ $1 != 0 && $2 == *"podman run"*"generate-config"* ]]' _ "$rc" "$out"
check "... and creates nothing in /data" \
  test -z "$("${podman[@]}" run --rm "${limits[@]}" -v "$sqlite_v:/data" --entrypoint ls "$image" -A /data)"
check "podman run … generate-config writes /data/homeserver.yaml (0600, owned by homekey)" \
  bash -c '"$@" >/dev/null' _ "${podman[@]}" run --rm "${limits[@]}" -v "$sqlite_v:/data" "$image" \
  generate-config --server-name example.com -c /data/homeserver.yaml --listen 0.0.0.0:8008
check "... which is 0600 and owned by homekey" test "$("${podman[@]}" run --rm "${limits[@]}" -v "$sqlite_v:/data" \
  --entrypoint stat "$image" -c '%a %U' /data/homeserver.yaml)" = "600 homekey"
port="$(pick_port)"
"${podman[@]}" run -d --name "$sqlite_c" "${limits[@]}" -p "127.0.0.1:$port:8008" -v "$sqlite_v:/data" "$image" >/dev/null
accounts_and_restart "$sqlite_c" "http://127.0.0.1:$port" sqlite
# The seed's command as typed, on a terminal (script(1) gives it one): two prompts, no echo.
pw_tty="$(pw)"
tty_out="$( (sleep 2; printf '%s\n' "$pw_tty"; sleep 1; printf '%s\n' "$pw_tty"; sleep 1) |
  script -qec "${podman[*]} exec -it $sqlite_c /usr/local/bin/hash_password -c /data/homeserver.yaml" /dev/null |
  tr -d '\r')" || true
check "sqlite: podman exec -it … hash_password -c /data/homeserver.yaml prompts twice, echoes nothing, prints a hash" \
  bash -c '[[ $1 == *"Password:"*"Confirm password:"* && $1 != *"$2"* ]] && grep -qE "^\\\$2b\\\$12\\\$.{53}$" <<<"$1"' _ "$tty_out" "$pw_tty"
check "sqlite: the database is in the volume" \
  "${podman[@]}" exec "$sqlite_c" test -s /data/homekey-data/homeserver.db
check "sqlite: the container's log holds no password or secret" \
  bash -c '! "$@" 2>&1 | grep -qiE "pepper|shared_secret|macaroon|\\\$2b\\\$"' _ "${podman[@]}" logs "$sqlite_c"
"${podman[@]}" rm -f -t 2 "$sqlite_c" >/dev/null

# --- PostgreSQL on the host's network -------------------------------------------------------
say "PostgreSQL: the database $pg_db, host network"
if ! psql -q "$pg_url_base/postgres" -c "CREATE DATABASE $pg_db" >/dev/null 2>&1; then
  if [[ "${CI:-}" == true ]]; then
    bad "postgres: no PostgreSQL at $pg_url_base (required under CI=true)"
  else
    echo "SKIPPED postgres: no PostgreSQL at $pg_url_base"
  fi
else
  pg_port="$(pick_port)"
  "${podman[@]}" volume create "$pg_v" >/dev/null
  "${podman[@]}" run --rm "${limits[@]}" -v "$pg_v:/data" "$image" \
    generate-config --server-name example.com -c /data/homeserver.yaml --listen "127.0.0.1:$pg_port" >/dev/null
  # The operator's edit: the database: section for PostgreSQL.
  "${podman[@]}" run --rm "${limits[@]}" -v "$pg_v:/data" "$image" bash -c "sed -i '/^database:/,/^    database:/c\\
database:\\
  name: psycopg2\\
  args:\\
    user: postgres\\
    host: 127.0.0.1\\
    port: 5432\\
    dbname: $pg_db' /data/homeserver.yaml"
  "${podman[@]}" run -d --name "$pg_c" "${limits[@]}" --network host -e HOMEKEY_HEALTH_PORT="$pg_port" -v "$pg_v:/data" "$image" >/dev/null
  accounts_and_restart "$pg_c" "http://127.0.0.1:$pg_port" postgres
  check "postgres: the accounts are in PostgreSQL" \
    test "$(psql -qtA "$pg_url_base/$pg_db" -c "SELECT count(*) FROM users WHERE name IN ('@alice:example.com','@bob:example.com')")" = 2
  check "postgres: nothing but the config in /data (no SQLite made)" \
    test "$("${podman[@]}" exec "$pg_c" ls -A /data)" = homeserver.yaml
fi

# --- beside the real Synapse, through the README's nginx config ----------------------------
# Synapse 1.163.2 from the test suite's venv ($HOMEKEY_TEST_SYNAPSE) and Debian's nginx on the
# host (no Synapse image without a registry), homekey's container on the host network.
synapse_venv="${HOMEKEY_TEST_SYNAPSE:-}"
nginx="${HOMEKEY_TEST_NGINX:-/usr/sbin/nginx}"
if [[ -z "$synapse_venv" || ! -x "$synapse_venv/bin/python" || ! -x "$nginx" ]]; then
  if [[ "${CI:-}" == true ]]; then
    bad "beside Synapse: needs \$HOMEKEY_TEST_SYNAPSE and nginx (required under CI=true)"
  else
    echo "SKIPPED beside Synapse: set HOMEKEY_TEST_SYNAPSE to a venv with matrix-synapse, and install nginx"
  fi
else
  say "beside Synapse ($synapse_venv), through nginx"
  syn_port="$(pick_port)" hk_port="$(pick_port)" ng_port="$(pick_port)"
  sd="$work/synapse"
  mkdir -p "$sd" "$work/nginx/logs"
  "${podman[@]}" volume create "$beside_v" >/dev/null
  # homekey's config, as the README's "Setting it up" makes it, in the container's volume.
  "${podman[@]}" run --rm "${limits[@]}" -v "$beside_v:/data" "$image" generate-config \
    --server-name example.com --for-synapse "http://127.0.0.1:$syn_port/" \
    --public-baseurl https://matrix.example.com/ --listen "127.0.0.1:$hk_port" \
    -c /data/homeserver.yaml >/dev/null
  # The README's testing advice: rc_login raised (every login here comes from 127.0.0.1).
  "${podman[@]}" run --rm "${limits[@]}" -v "$beside_v:/data" "$image" bash -c 'cat >>/data/homeserver.yaml <<YAML
rc_login:
  address: {per_second: 10, burst_count: 100}
  account: {per_second: 10, burst_count: 100}
  failed_attempts: {per_second: 10, burst_count: 100}
YAML'
  # Synapse reads the same secret: a copy of the file, never printed.
  (umask 077 && "${podman[@]}" run --rm "${limits[@]}" -v "$beside_v:/data" "$image" \
    bash -c 'cat /data/*.synapse-secret' >"$sd/homekey.synapse-secret")
  cat >"$sd/homeserver.yaml" <<YAML
server_name: example.com
public_baseurl: https://matrix.example.com/
pid_file: $sd/homeserver.pid
listeners:
  - {port: $syn_port, tls: false, type: http, x_forwarded: true, bind_addresses: ['127.0.0.1'], resources: [{names: [client], compress: false}]}
database: {name: sqlite3, args: {database: $sd/homeserver.db}}
media_store_path: $sd/media_store
signing_key_path: $sd/example.com.signing.key
log_config: $sd/log.yaml
report_stats: false
suppress_key_server_warning: true
trusted_key_servers: []
enable_registration: false
password_config: {enabled: false}
matrix_authentication_service:
  enabled: true
  endpoint: http://127.0.0.1:$hk_port/
  secret_path: $sd/homekey.synapse-secret
YAML
  cat >"$sd/log.yaml" <<YAML
version: 1
formatters: {f: {format: '%(asctime)s %(name)s %(levelname)s %(message)s'}}
handlers: {file: {class: logging.FileHandler, filename: $sd/synapse.log, formatter: f}}
root: {level: INFO, handlers: [file]}
disable_existing_loggers: false
YAML
  (cd "$sd" && env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY NO_PROXY=127.0.0.1 \
    "$synapse_venv/bin/python" -m synapse.app.homeserver --generate-keys -c "$sd/homeserver.yaml" >/dev/null 2>&1)
  (cd "$sd" && exec env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY NO_PROXY=127.0.0.1 \
    "$synapse_venv/bin/python" -m synapse.app.homeserver -c "$sd/homeserver.yaml" >"$sd/stderr.log" 2>&1) &
  synapse_pid=$!
  "${podman[@]}" run -d --name "$beside_c" "${limits[@]}" --network host \
    -e HOMEKEY_HEALTH_PORT="$hk_port" -v "$beside_v:/data" "$image" >/dev/null
  # The README's nginx config as written, but for its addresses and port.
  awk '/<!-- nginx-beside-synapse:end -->/ {on = 0} on && !/^```/ {print} /<!-- nginx-beside-synapse:start -->/ {on = 1}' \
    README.md | sed -e "s/127\.0\.0\.1:8008/127.0.0.1:$syn_port/" -e "s/127\.0\.0\.1:8081/127.0.0.1:$hk_port/" \
    -e "s/listen 80;/listen 127.0.0.1:$ng_port;/" >"$work/nginx/site.conf"
  n="$work/nginx"
  chmod 755 "$work" "$n"
  cat >"$n/nginx.conf" <<NGINX
worker_processes 1;
pid $n/nginx.pid;
error_log $n/logs/error.log;
events { worker_connections 256; }
http {
  access_log $n/logs/access.log;
  client_body_temp_path $n/temp-body; proxy_temp_path $n/temp-proxy;
  fastcgi_temp_path $n/temp-fastcgi; uwsgi_temp_path $n/temp-uwsgi; scgi_temp_path $n/temp-scgi;
  include $n/site.conf;
}
NGINX
  "$nginx" -p "$n" -e "$n/logs/error.log" -c "$n/nginx.conf" -g 'daemon off;' </dev/null >/dev/null 2>"$n/logs/stderr.log" &
  nginx_pid=$!
  check "beside Synapse: Synapse answers /versions" wait_versions "http://127.0.0.1:$syn_port"
  check "beside Synapse: homekey's container answers /versions" wait_versions "http://127.0.0.1:$hk_port"
  check "beside Synapse: nginx answers /versions (Synapse's)" wait_versions "http://127.0.0.1:$ng_port"
  check "beside Synapse: the container's health check" quiet "${podman[@]}" healthcheck run "$beside_c"
  first="$(pw)" second="$(pw)"
  check "beside Synapse: podman exec homekey user create carol" \
    bash -c 'printf "%s\n" "$1" | "${@:2}" >/dev/null 2>&1' _ "$first" \
    "${podman[@]}" exec -i "$beside_c" homekey user create carol --password-stdin
  token_login() { # url user password: the access token of a login, or nothing
    printf '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"%s"},"password":"%s"}' "$2" "$3" |
      curl -s -H 'Content-Type: application/json' --data-binary @- "$1/_matrix/client/v3/login" |
      sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
  }
  token="$(token_login "http://127.0.0.1:$ng_port" carol "$first")"
  check "beside Synapse: carol logs in through nginx (homekey's login)" test -n "$token"
  whoami="$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$ng_port/_matrix/client/v3/account/whoami")"
  check "beside Synapse: her token works on Synapse through nginx (whoami)" \
    grep -q '"user_id":"@carol:example.com"' <<<"$whoami"
  check "beside Synapse: podman exec homekey user set-password --logout-devices" \
    bash -c 'printf "%s\n" "$1" | "${@:2}" >/dev/null 2>&1' _ "$second" \
    "${podman[@]}" exec -i "$beside_c" homekey user set-password carol --password-stdin --logout-devices
  check "beside Synapse: her old token is refused by Synapse now (401)" test "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $token" "http://127.0.0.1:$ng_port/_matrix/client/v3/account/whoami")" = 401
  check "beside Synapse: the old password is refused through nginx (403)" \
    test "$(login "http://127.0.0.1:$ng_port" carol "$first")" = 403
  token="$(token_login "http://127.0.0.1:$ng_port" carol "$second")"
  check "beside Synapse: the new password logs in through nginx, and Synapse takes the token" \
    grep -q '"user_id":"@carol:example.com"' <<<"$(curl -s -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$ng_port/_matrix/client/v3/account/whoami")"
  if ((failed)); then tail -20 "$sd/synapse.log" "$n/logs/error.log" >&2 || true; fi
fi

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "image $image: $(mb "$size_bytes") ($profile binaries${strip_note}; the base $(mb "$base_bytes"))"
echo "times: cargo build $build_secs s, podman build $image_secs s, whole run $(($(date +%s) - started)) s"
echo "container: $passed passed, $failed failed"
((failed == 0))
