"""A big Synapse database for the migrate row of bench/run.sh (issue 17).

Run with the Python of a Synapse venv (it imports Synapse's YAML, its base62 and, on
PostgreSQL, psycopg2):

    VENV/bin/python bench/synapse_db.py HOMESERVER_YAML --users 100000 --password PW [--check]

HOMESERVER_YAML is a Synapse config (bench/run.sh's synapse_config) whose `database:` is an
empty SQLite file or an empty PostgreSQL database. The real Synapse is started on it once, so
that it creates its own schema (every table and delta of its version, as on a real server),
and stopped; then, Synapse stopped, its account tables are filled as Synapse itself fills them
(synapse/storage/databases/main/registration.py, devices.py, client_ips.py):

- `users`: @user000001:example.com … one a second of creation_ts (seconds, as Synapse), all
  with one bcrypt hash of PW made by Synapse's own `hash_password -c HOMESERVER_YAML` (so its
  `bcrypt_rounds` and `password_config.pepper`), admin 0, not a guest, approved, not
  shadow-banned; `profiles`: the display name Synapse gives at registration (the localpart);
- `devices`: 2 a user, IDs of 10 capital letters (Synapse's `random_string(10).upper()`), a
  display name, and the last_seen (milliseconds), ip and user_agent of client_ips' updates;
- `access_tokens`: 2 a user, one on each device, `syt_<base64 localpart>_<20 letters>_<crc>`
  as Synapse's `generate_access_token` makes them, ids from 1 up (Synapse's IdGenerator takes
  the largest on start), `last_validated` in milliseconds;
- `refresh_tokens`: one for every `--refresh-every` users (default 1,000), `syr_…`, with its
  access token (the user's second) pointing at it and expiring, as a refreshable login leaves
  them.

The random parts come from a seeded generator: the same database every run. SQLite: one
transaction of executemany; PostgreSQL: COPY, then VACUUM ANALYZE of the tables filled (as
autovacuum would have left a server's). `--check` starts Synapse again on the filled database
and checks that it answers whoami for a generated token and logs a generated user in with PW
(and out again: the counts stay those generated).
Prints one line on stdout: `SYNAPSE_DB users=… devices=… access_tokens=… refresh_tokens=…
schema_s=… fill_s=…`. Synapse listens on the config's listener (127.0.0.1), is stopped
(SIGTERM, SIGKILL after 30 s) whatever happens, and has 120 s to answer.
"""

import argparse
import base64
import io
import json
import os
import random
import signal
import sqlite3
import string
import subprocess
import sys
import time
import urllib.request
import zlib

import yaml
from synapse.util.stringutils import base62_encode

SERVER_NAME = "example.com"
# Loopback only, whatever the environment says about proxies.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def say(message):
    print(f"synapse_db: {message}", file=sys.stderr, flush=True)


def die(message):
    say(message)
    sys.exit(1)


class RunningSynapse:
    """Synapse on CONFIG, started and waited for; stopped on leaving the `with`."""

    def __init__(self, config_path, config, log_name):
        self.config_path = config_path
        self.dir = os.path.dirname(os.path.abspath(config_path))
        self.port = config["listeners"][0]["port"]
        self.log_path = os.path.join(self.dir, log_name)
        self.proc = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", self.config_path],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                with OPENER.open(self.url("/_matrix/client/versions"), timeout=2):
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                self.__exit__()
                die(f"Synapse exited ({self.proc.returncode}) before answering:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.__exit__()
                die(f"Synapse did not answer within 120 s:\n{self.log_tail()}")
            time.sleep(0.2)

    def __exit__(self, *_):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-30:])

    def request(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url(path), data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with OPENER.open(req, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")


def synapse_hash(config_path, password):
    """One hash of PASSWORD by Synapse's own hash_password (its bcrypt_rounds, its pepper)."""
    script = os.path.join(os.path.dirname(sys.executable), "hash_password")
    out = subprocess.run([script, "-c", config_path, "-p", password],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or not out.stdout.startswith("$2"):
        die(f"hash_password failed: {out.stderr.strip()}")
    return out.stdout.strip()


def token(prefix, b64local, random_part):
    """Synapse's generate_access_token / generate_refresh_token, its random part given."""
    base = f"{prefix}_{b64local}_{random_part}"
    return f"{base}_{base62_encode(zlib.crc32(base.encode('ascii')), minwidth=6)}"


USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Element/1.11.85 Chrome/130.0.6723.191 Electron/33.4.0 Safari/537.36",
    "Element/1.6.28 (Android 14; Pixel 8; Flavour GooglePlay; MatrixAndroidSdk2 1.6.28)",
    "Element/1.11.91 (iPhone; iOS 18.1; Scale/3.00)",
    "matrix-nio/0.25.2",
]
DEVICE_NAMES = ["Element Desktop: Linux", "Element Android", "Element iOS", "matrix-nio"]
MONTH_MS = 30 * 86_400_000


def letters(rng, count, alphabet):
    """COUNT random letters of ALPHABET in one string (random bytes, mapped: fast)."""
    table = bytes(ord(alphabet[b % len(alphabet)]) for b in range(256))
    return rng.randbytes(count).translate(table).decode("ascii")


def rows(users, password_hash, refresh_every, now_ms):
    """The rows of each table, as lists of tuples in the column order of COLUMNS."""
    rng = random.Random(17)
    now_s = now_ms // 1000
    out = {table: [] for table in COLUMNS}
    # Per user: 2 device IDs of 10 capitals; 2 access tokens' (and maybe a refresh token's)
    # 20 random letters.
    device_letters = letters(rng, users * 20, string.ascii_uppercase)
    token_letters = letters(rng, users * 60, string.ascii_letters)
    access_id = refresh_id = 0
    for i in range(1, users + 1):
        localpart = f"user{i:06d}"
        name = f"@{localpart}:{SERVER_NAME}"
        b64local = base64.b64encode(localpart.encode()).decode().rstrip("=")
        out["users"].append((name, password_hash, now_s - (users - i), 0, 0, 0, 1, 0))
        out["profiles"].append((name, localpart, localpart))
        at = (i - 1) * 20
        devices = (device_letters[at:at + 10], device_letters[at + 10:at + 20])
        if devices[0] == devices[1]:  # one chance in 26**10, and the seed is fixed
            die(f"{name}'s two device IDs are the same: change the seed")
        randoms = [token_letters[(i - 1) * 60 + k * 20:(i - 1) * 60 + (k + 1) * 20] for k in range(3)]
        refresh = refresh_every > 0 and i % refresh_every == 0
        for n, device in enumerate(devices):
            r = rng.getrandbits(64)
            last_seen = now_ms - r % MONTH_MS
            kind = (r >> 48) % len(USER_AGENTS)
            ip = f"10.{(r >> 32) & 255}.{(r >> 40) & 255}.{1 + (r >> 56) % 254}"
            out["devices"].append((name, device, DEVICE_NAMES[kind], last_seen, ip, USER_AGENTS[kind], 0))
            access_id += 1
            refresh_token_id = valid_until_ms = None
            if refresh and n == 1:
                refresh_id += 1
                out["refresh_tokens"].append(
                    (refresh_id, name, device, token("syr", b64local, randoms[2]), None, None, None))
                refresh_token_id, valid_until_ms = refresh_id, now_ms + 5 * 60_000
            out["access_tokens"].append(
                (access_id, name, device, token("syt", b64local, randoms[n]), valid_until_ms, None,
                 last_seen, refresh_token_id, 0))
    return out


COLUMNS = {
    # What _register_user inserts (shadow_banned False, approved True: no approval required).
    "users": ("name", "password_hash", "creation_ts", "admin", "is_guest", "deactivated",
              "approved", "shadow_banned"),
    "profiles": ("full_user_id", "user_id", "displayname"),
    # store_device, then client_ips' batched update of last_seen, ip and user_agent.
    "devices": ("user_id", "device_id", "display_name", "last_seen", "ip", "user_agent", "hidden"),
    "refresh_tokens": ("id", "user_id", "device_id", "token", "next_token_id", "expiry_ts",
                       "ultimate_session_expiry_ts"),
    "access_tokens": ("id", "user_id", "device_id", "token", "valid_until_ms", "puppets_user_id",
                      "last_validated", "refresh_token_id", "used"),
}


def fill_sqlite(path, data):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # this connection only: the fill, not Synapse
    with conn:
        for table, columns in COLUMNS.items():
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                             data[table])
    conn.close()


def pg_connect(args):
    import psycopg2

    keys = {"user", "password", "host", "port", "dbname", "database"}
    params = {k: v for k, v in args.items() if k in keys}
    if "database" in params:
        params["dbname"] = params.pop("database")
    return psycopg2.connect(**params)


def fill_postgres(args, data):
    conn = pg_connect(args)
    with conn, conn.cursor() as cur:
        for table, columns in COLUMNS.items():
            buf = io.StringIO()
            for row in data[table]:
                buf.write("\t".join(r"\N" if v is None else str(v) for v in row))
                buf.write("\n")
            buf.seek(0)
            cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in COLUMNS:
            cur.execute(f"VACUUM ANALYZE {table}")
    conn.close()


def check(config_path, config, data, password):
    """Synapse on the filled database: a generated token's whoami, a generated user's login."""
    _, user, device, access_token, *_ = data["access_tokens"][0]
    last_user = data["users"][-1][0]
    with RunningSynapse(config_path, config, "synapse-check.log") as synapse:
        status, body = synapse.request("GET", "/_matrix/client/v3/account/whoami", token=access_token)
        if status != 200 or body.get("user_id") != user or body.get("device_id") != device:
            die(f"Synapse's whoami for a generated token: {status} {body}")
        status, body = synapse.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": last_user},
            "password": password,
        })
        if status != 200 or body.get("user_id") != last_user:
            die(f"Synapse's login of {last_user}: {status} {body}")
        # Its device and token go again: the counts stay those generated.
        status, body = synapse.request("POST", "/_matrix/client/v3/logout", {},
                                       token=body["access_token"])
        if status != 200:
            die(f"Synapse's logout of {last_user}: {status} {body}")
    say(f"checked on Synapse: whoami of {user}'s token, login of {last_user}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="Synapse's homeserver.yaml, its database empty")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--password", required=True, help="every user's password")
    parser.add_argument("--refresh-every", type=int, default=1000,
                        help="one refresh token for every this many users (0: none)")
    parser.add_argument("--check", action="store_true",
                        help="start Synapse on the result: whoami with a token, a login")
    args = parser.parse_args()
    with open(args.config) as f:
        config = yaml.safe_load(f)
    database = config["database"]
    if config.get("server_name") != SERVER_NAME:
        die(f"the config's server_name must be {SERVER_NAME}")

    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "synapse.app.homeserver", "--generate-keys", "-c", args.config],
        cwd=os.path.dirname(os.path.abspath(args.config)), capture_output=True, text=True,
        timeout=120)
    if out.returncode != 0:
        die(f"generating Synapse's keys failed: {out.stderr.strip()}")
    say("Synapse makes its schema")
    with RunningSynapse(args.config, config, "synapse-schema.log"):
        pass
    schema_s = time.monotonic() - started

    started = time.monotonic()
    password_hash = synapse_hash(args.config, args.password)
    data = rows(args.users, password_hash, args.refresh_every, int(time.time() * 1000))
    say(f"{args.users} users: rows made in {time.monotonic() - started:.1f} s")
    if database["name"] == "sqlite3":
        fill_sqlite(database["args"]["database"], data)
    elif database["name"] == "psycopg2":
        fill_postgres(database["args"], data)
    else:
        die(f"unknown database name {database['name']}")
    fill_s = time.monotonic() - started
    say(f"filled in {fill_s:.1f} s")
    if args.check:
        check(args.config, config, data, args.password)
    counts = " ".join(f"{table}={len(data[table])}" for table in ("users", "devices", "access_tokens", "refresh_tokens"))
    print(f"SYNAPSE_DB {counts} schema_s={schema_s:.1f} fill_s={fill_s:.1f}")


if __name__ == "__main__":
    main()
