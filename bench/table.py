"""bench/run.sh's figures (one `name<TAB>value` a line) as the Markdown table of bench/README.md:
homekey's figure, Synapse's from the same run, the ratio, the target and whether it is met."""

import statistics
import sys

# A figure recorded more than once (the whoami rounds) has all its values, in order.
figures, recorded = {}, {}
for line in open(sys.argv[1]):
    name, _, value = line.rstrip("\n").partition("\t")
    figures[name] = value
    recorded.setdefault(name, []).append(value)


def values(name):
    try:
        return [float(v) for v in recorded.get(name, [])]
    except ValueError:
        return []


def num(name):
    """The figure; the median of its values if it was recorded more than once."""
    found = values(name)
    return statistics.median(found) if found else None


def fmt(value, digits=1):
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def load(*names):
    found = [", ".join(recorded[n]) for n in names if n in recorded]
    return " / ".join(found) if found else "–"


SMOKE = figures.get("mode") == "smoke"


def verdict(ok):
    if SMOKE:
        return "(smoke)"
    return "–" if ok is None else ("met" if ok else "**not met**")


rows = []


def row(measure, homekey, synapse, ratio, target, ok, load_avg, digits=1):
    rows.append(
        f"| {measure} | {fmt(homekey, digits)} | {fmt(synapse, digits)} | "
        f"{'–' if ratio is None else f'{ratio:.2f}×'} | {target} | {verdict(ok)} | {load_avg} |"
    )


def both(a, b, test):
    return None if a is None or b is None else test(a, b)


cores = int(figures.get("cores", "1"))
hash_ms = num("hash_ms.homekey")
limit_rps = cores * 1000 / hash_ms if hash_ms else None
clients = num("login_clients")

row(
    "one bcrypt hash, ms (Rust `bcrypt` / Python `bcrypt`, Synapse's)",
    hash_ms,
    num("hash_ms.synapse"),
    both(num("hash_ms.synapse"), hash_ms, lambda s, h: s / h),
    f"the limit: {fmt(limit_rps, 2)} logins/s on {cores} cores",
    None,
    load("load.limit"),
)

# The login rows are judged against the hash timed around the login load itself (the limit
# row's if there is none): the machine's speed drifts within a run.
login_hash = num("hash_ms.login") or hash_ms
login_limit = cores * 1000 / login_hash if login_hash else None
h, s = num("login_rps.homekey"), num("login_rps.synapse")
row(
    f"login, logins/s ({fmt(clients, 0)} clients)",
    h,
    s,
    both(h, s, lambda h, s: h / s),
    "≥ 97 % of the limit and ≥ Synapse"
    + (
        f" (homekey at {100 * h / login_limit:.1f} % of {fmt(login_limit, 2)}/s, the hash"
        f" timed around the load: {fmt(login_hash)} ms)"
        if h and login_limit
        else ""
    ),
    both(h, login_limit, lambda h, l: h >= 0.97 * l and (s is None or h >= s)),
    load("load.login.homekey", "load.login.synapse"),
    2,
)
h, s = num("login_p99_ms.homekey"), num("login_p99_ms.synapse")
bound = 2 * login_hash * clients / cores if login_hash and clients else None
row(
    "login p99 latency, ms",
    h,
    s,
    both(s, h, lambda s, h: s / h),
    f"≤ 2 × hash × clients ÷ cores = {fmt(bound, 0)} ms",
    both(h, bound, lambda h, b: h <= b),
    load("load.login.homekey", "load.login.synapse"),
    0,
)

h, s, bare = num("whoami_rps.homekey"), num("whoami_rps.synapse"), num("whoami_rps.bare")
row(
    "GET whoami, requests/s, SQLite, 16 connections",
    h,
    s,
    both(h, s, lambda h, s: h / s),
    "≥ 20 × Synapse",
    both(h, s, lambda h, s: h >= 20 * s),
    load("load.whoami.homekey", "load.whoami.synapse"),
    0,
)
# homekey and the bare route ran in alternating rounds: the ratio is the median of the
# rounds' ratios, each of two loads a few seconds apart.
rounds = [h_ / b_ for h_, b_ in zip(values("whoami_rps.homekey"), values("whoami_rps.bare"))]
row(
    f"GET whoami vs the bare axum route (Synapse column: the bare route; medians of {len(rounds)} alternating rounds)",
    h,
    bare,
    statistics.median(rounds) if rounds else None,
    "≥ 50 % of the bare route"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    statistics.median(rounds) >= 0.5 if rounds else None,
    load("load.whoami.homekey", "load.whoami.bare"),
    0,
)
h, bare_ir = num("ir_per_request.homekey"), num("ir_per_request.bare")
row(
    "GET whoami, instructions per request in user space, under callgrind (Synapse column: the bare route)",
    h,
    bare_ir,
    both(bare_ir, h, lambda b, h: b / h),
    "– (the row above's steady counterpart: it does not drift with the machine's speed)",
    None,
    "–",
    0,
)
h, s = num("whoami_p50_ms.homekey"), num("whoami_p50_ms.synapse")
row("GET whoami p50 latency, ms, SQLite", h, s, both(s, h, lambda s, h: s / h), "–", None,
    load("load.whoami.homekey", "load.whoami.synapse"), 2)
h, s = num("whoami_rps.homekey_pg"), num("whoami_rps.synapse_pg")
row(
    "GET whoami, requests/s, PostgreSQL, 16 connections",
    h,
    s,
    both(h, s, lambda h, s: h / s),
    "≥ 5 × Synapse on PostgreSQL",
    both(h, s, lambda h, s: h >= 5 * s),
    load("load.whoami.homekey_pg", "load.whoami.synapse_pg"),
    0,
)

# The whole-process rows are judged on the time beyond one hash in a process of its own,
# timed in the same rounds (bench/paired.py): the median over the rounds of the difference.
def beyond_hash(measure, name, synapse, once_name, margin, load_name):
    h, extra, once = num(name), num(name + ".extra"), num(once_name)
    row(
        measure,
        h,
        synapse,
        both(synapse, h, lambda s, h: s / h),
        f"≤ one hash + {margin} ms"
        + ("" if extra is None else f" (one hash {fmt(once)} ms; this {extra:+.1f} ms beyond it)"),
        None if extra is None else extra <= margin,
        load(load_name),
    )


s = num("hash_process_ms.synapse")
beyond_hash("`hash_password -c homeserver.yaml` whole process, ms", "hash_process_ms.homekey", s,
            "hash_once_ms", 5, "load.hash")
beyond_hash("`homekey hash-password` whole process, ms", "hash_process_ms.homekey_cli", s,
            "hash_once_ms", 5, "load.hash")

h, s = num("rss_idle.homekey"), num("rss_idle.synapse")
row("RSS idle, MB", h, s, both(s, h, lambda s, h: s / h), "≤ 1/10 of Synapse's",
    both(h, s, lambda h, s: h <= s / 10), "–")
h, s = max(values("rss_load.homekey"), default=None), max(values("rss_load.synapse"), default=None)
row("RSS under the whoami load (peak), MB", h, s, both(s, h, lambda s, h: s / h),
    "≤ 1/10 of Synapse's", both(h, s, lambda h, s: h <= s / 10),
    load("load.whoami.homekey", "load.whoami.synapse"))

devices = figures.get("devices", "?")
h, s = num("reset_ms.homekey"), num("reset_ms.synapse")
# The part beyond the hash: the median of each reset minus one hash timed right before it
# (bench/run.sh's median_reset_ms), so that the machine's drift falls on both.
h_beyond, s_beyond = num("reset_beyond_ms.homekey"), num("reset_beyond_ms.synapse")
row(
    f"reset_password, {devices} devices + tokens, logout on, ms",
    h,
    s,
    both(s, h, lambda s, h: s / h),
    "≤ one hash + 30 ms"
    + ("" if h_beyond is None else f" (this {h_beyond:+.1f} ms beyond the hash timed before each)"),
    None if h_beyond is None else h_beyond <= 30,
    load("load.reset.homekey", "load.reset.synapse"),
)
# The same resets on servers at bcrypt cost 4, where the hash (about 1 ms) no longer drowns
# the rest: the figure the target is judged on when it was measured.
h4, s4 = num("reset4_ms.homekey"), num("reset4_ms.synapse")
h4_beyond = h4 - num("hash_ms.cost4") if h4 is not None and num("hash_ms.cost4") else None
s4_beyond = (
    s4 - num("hash_ms.cost4_synapse") if s4 is not None and num("hash_ms.cost4_synapse") else None
)
row(
    "… the part beyond the hash, ms (the median of each reset minus a hash timed right before it)",
    h_beyond,
    s_beyond,
    both(s_beyond, h_beyond, lambda s, h: s / h if h > 0 else float("inf")),
    "≥ 20 × faster than Synapse's" + (" (judged at cost 4, below)" if h4_beyond is not None else ""),
    None if h4_beyond is not None else both(h_beyond, s_beyond, lambda h, s: h * 20 <= s),
    load("load.reset.homekey", "load.reset.synapse"),
)
row(
    "… the part beyond the hash, ms, measured at bcrypt cost 4 (the reset minus one cost-4 hash)",
    h4_beyond,
    s4_beyond,
    both(s4_beyond, h4_beyond, lambda s, h: s / h if h > 0 else float("inf")),
    "≥ 20 × faster than Synapse's",
    both(h4_beyond, s4_beyond, lambda h, s: h * 20 <= s),
    load("load.reset4.homekey", "load.reset4.synapse"),
)

# Synapse's question about a token, beside Synapse, against homekey's own whoami with the same
# tokens, in alternating rounds (the ratio: the median of the rounds' ratios).
tokens = fmt(num("introspect_tokens"), 0)
h, w = num("introspect_rps"), num("introspect_whoami_rps")
row(
    f"POST /oauth2/introspect, requests/s, SQLite, {tokens} tokens, a different one each request, "
    "16 connections (Synapse column: none)",
    h,
    None,
    None,
    "≥ 20,000/s on SQLite",
    None if h is None else h >= 20000,
    load("load.introspect"),
    0,
)
rounds = [i / w_ for i, w_ in zip(values("introspect_rps"), values("introspect_whoami_rps"))]
row(
    "POST /oauth2/introspect vs homekey's own GET whoami with the same tokens (Synapse column: "
    f"whoami; medians of {len(rounds)} alternating rounds)",
    h,
    w,
    statistics.median(rounds) if rounds else None,
    "≥ 50 % of whoami"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    statistics.median(rounds) >= 0.5 if rounds else None,
    load("load.introspect", "load.introspect_whoami"),
    0,
)
o = num("introspect_oauth_rps")
rounds = [o_ / i for o_, i in zip(values("introspect_oauth_rps"), values("introspect_rps"))]
row(
    f"POST /oauth2/introspect of OAuth 2.0 sessions' tokens (kept as digests), {tokens} sessions, "
    "vs the same of legacy tokens (Synapse column: legacy tokens; medians of "
    f"{len(rounds)} alternating rounds)",
    o,
    h,
    statistics.median(rounds) if rounds else None,
    "≥ 0.8 × legacy and ≥ 20,000/s on SQLite"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    statistics.median(rounds) >= 0.8 and o >= 20000 if rounds and o else None,
    load("load.introspect_oauth", "load.introspect"),
    0,
)
h, w = num("introspect_p50_ms"), num("introspect_whoami_p50_ms")
row("POST /oauth2/introspect p50 latency, ms (Synapse column: homekey's whoami)", h, w,
    both(w, h, lambda w, h: w / h), "–", None, load("load.introspect", "load.introspect_whoami"), 2)

# The OAuth refresh grant against the legacy /refresh, the same rotation (alternating rounds).
sessions = fmt(num("refresh_sessions"), 0)
h, l = num("refresh_rps.oauth"), num("refresh_rps.legacy")
rounds = [o / g for o, g in zip(values("refresh_rps.oauth"), values("refresh_rps.legacy"))]
row(
    f"POST /oauth2/token refresh grant, refreshes/s, SQLite, {sessions} sessions each refreshed "
    "once, 16 connections (Synapse column: homekey's legacy /refresh, the same rotation; medians "
    f"of {len(rounds)} alternating rounds)",
    h,
    l,
    statistics.median(rounds) if rounds else None,
    "≥ 0.8 × the legacy /refresh"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    statistics.median(rounds) >= 0.8 if rounds else None,
    load("load.refresh.oauth", "load.refresh.legacy"),
    0,
)

# The code grant against its limit, Synapse's upsert_device alone (alternating rounds).
codes = fmt(num("exchange_codes"), 0)
h, u = num("exchange_rps.exchange"), num("exchange_rps.upsert")
rounds = [e / u_ for e, u_ in zip(values("exchange_rps.exchange"), values("exchange_rps.upsert"))]
row(
    f"POST /oauth2/token authorization code grant, exchanges/s, SQLite, {codes} codes each once, "
    "16 connections, beside a delegating Synapse (Synapse column: its "
    "/_synapse/mas/upsert_device alone, which each exchange calls; medians of "
    f"{len(rounds)} alternating rounds)",
    h,
    u,
    statistics.median(rounds) if rounds else None,
    "– (the limit: Synapse's upsert_device)"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    None,
    load("load.exchange.exchange", "load.exchange.upsert"),
    0,
)
h, u = num("exchange_p50_ms.exchange"), num("exchange_p50_ms.upsert")
row("authorization code grant p50 latency, ms (Synapse column: upsert_device alone)", h, u,
    both(u, h, lambda u, h: u / h), "–", None, load("load.exchange.exchange", "load.exchange.upsert"), 1)

# A fresh token's first request on Synapse: delegating to homekey (homekey's column) or on
# its own auth (Synapse's), each token used once, in alternating rounds.
tokens = fmt(num("first_tokens"), 0)
h, s = num("first_rps.delegated"), num("first_rps.synapse")
rounds = [d / o for d, o in zip(values("first_rps.delegated"), values("first_rps.synapse"))]
row(
    f"first request of a fresh token, GET whoami on Synapse, requests/s, {tokens} tokens each used "
    "once, 16 connections (homekey column: Synapse delegating to homekey; Synapse column: Synapse "
    f"on its own auth; medians of {len(rounds)} alternating rounds)",
    h,
    s,
    statistics.median(rounds) if rounds else None,
    "– (reported)"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    None,
    load("load.first.delegated", "load.first.synapse"),
    0,
)
h, s = num("first_p50_ms.delegated"), num("first_p50_ms.synapse")
rounds = [o / d for d, o in zip(values("first_p50_ms.delegated"), values("first_p50_ms.synapse"))]
row(
    "… its p50 latency, ms (the same columns)",
    h,
    s,
    statistics.median(rounds) if rounds else None,
    "– (reported)",
    None,
    load("load.first.delegated", "load.first.synapse"),
    2,
)

# Password logins through nginx into a Synapse delegating to homekey (homekey's column)
# against Synapse alone on its own auth, same bcrypt cost, alternating rounds.
h, s = num("login_nginx_rps.delegated"), num("login_nginx_rps.synapse")
rounds = [d / o for d, o in zip(values("login_nginx_rps.delegated"), values("login_nginx_rps.synapse"))]
row(
    f"POST /login through nginx (the README's config) into a Synapse delegating to homekey, "
    f"logins/s, {fmt(num('login_nginx_clients'), 0)} clients (Synapse column: Synapse alone on its "
    f"own auth; medians of {len(rounds)} alternating rounds)",
    h,
    s,
    statistics.median(rounds) if rounds else None,
    "≥ Synapse's"
    + (f" (the rounds: {', '.join(f'{r:.2f}×' for r in rounds)})" if len(rounds) > 1 else ""),
    statistics.median(rounds) >= 1.0 if rounds else None,
    load("load.login_nginx.delegated", "load.login_nginx.synapse"),
    1,
)
h, s = num("login_nginx_p50_ms.delegated"), num("login_nginx_p50_ms.synapse")
row("… its p50 latency, ms (the same columns)", h, s, both(h, s, lambda h, s: s / h), "–", None,
    load("load.login_nginx.delegated", "load.login_nginx.synapse"), 1)

beyond_hash(
    f"`homekey user set-password`, {fmt(num('import_users'), 0)}-user SQLite database, whole process, ms "
    "(Synapse: its `hash_password`, then the UPDATE by hand)",
    "set_password_ms.homekey",
    num("set_password_ms.synapse"),
    "set_password_hash_once_ms",
    20,
    "load.set_password",
)
for db, name in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
    h = num(f"import_rate.{db}")
    row(
        f"`homekey user import` of {fmt(num('import_users'), 0)} users, hashes given, users/s, "
        f"{name} (Synapse has no import)",
        h,
        None,
        None,
        "≥ 20,000 users/s",
        None if h is None else h >= 20000,
        load(f"load.import.{db}"),
        0,
    )

# A Synapse database (bench/synapse_db.py) into homekey's: the whole command's wall clock.
migrate_users = num("migrate_users")
for db, name in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
    h, took = num(f"migrate_rate.{db}"), num(f"migrate_s.{db}")
    row(
        f"`homekey migrate-from-synapse` of a Synapse database of {fmt(migrate_users, 0)} users, "
        f"2 devices and 2 access tokens each, users/s, {name} to {name} (Synapse column: none)",
        h,
        None,
        None,
        "≥ 20,000 users/s" + ("" if took is None else f" ({fmt(took, 2)} s, whole process)"),
        None if h is None else h >= 20000,
        load(f"load.migrate.{db}"),
        0,
    )

print(
    f"Run of {figures.get('date', '?')} ({figures.get('mode', '?')}), {cores} cores, "
    f"bcrypt cost {figures.get('cost', '?')}. Load: the 1-minute load average when each "
    "measurement started (homekey / peer)."
    + (
        f" Rows measured in this run: {figures['rows']} (and the limit); the other rows' figures "
        f"are those of the run of {figures['earlier_date']}."
        if "rows" in figures and "earlier_date" in figures
        else ""
    )
)
print()
print("| measure | homekey | Synapse | homekey ahead by | target | | load |")
print("| --- | ---: | ---: | ---: | --- | --- | --- |")
print("\n".join(rows))
