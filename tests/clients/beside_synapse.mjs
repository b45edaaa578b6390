// matrix-js-sdk (the library Element Web is built on) against a Synapse that delegates its
// authentication to homekey, both behind one reverse proxy: discovery, password login, a room,
// a message, sync. Every call goes through the library's own methods. Run by
// tests/it/synapse_proxy.rs, which starts Synapse, homekey and nginx.
//
//   HOMEKEY_ALICE_PASSWORD=… HOMEKEY_BOB_PASSWORD=… \
//     node beside_synapse.mjs PROXY_URL PUBLIC_BASEURL ALICE_ID BOB_ID
//
// PUBLIC_BASEURL (Synapse's `public_baseurl`, e.g. https://matrix.example.com/) is what the
// server announces; every request the library makes to it is sent to PROXY_URL instead, as if
// the name resolved to the proxy (no DNS or TLS on a test machine). The users must exist in
// homekey with those passwords. HOMEKEY_JS_SDK_DIR names the node_modules folder holding
// matrix-js-sdk (tests/clients/run.sh installs it outside the repository).
//
// Prints one line per step and "matrix-js-sdk: N passed, N failed, N skipped"; exits 1 if a
// step failed, 2 on bad usage. HOMEKEY_CLIENT_TRACE=1 prints each request (no bodies).

import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [proxyUrl, publicBaseurl, aliceId, bobId] = process.argv.slice(2);
const alicePassword = process.env.HOMEKEY_ALICE_PASSWORD;
const bobPassword = process.env.HOMEKEY_BOB_PASSWORD;
if (!proxyUrl || !publicBaseurl || !aliceId || !bobId || !alicePassword || !bobPassword) {
    console.error(
        "usage: HOMEKEY_ALICE_PASSWORD=… HOMEKEY_BOB_PASSWORD=… " +
            "node beside_synapse.mjs PROXY_URL PUBLIC_BASEURL ALICE_ID BOB_ID",
    );
    process.exit(2);
}
const localpart = (userId) => userId.replace(/^@/, "").split(":")[0];

const sdkRequire = createRequire(
    process.env.HOMEKEY_JS_SDK_DIR
        ? path.join(process.env.HOMEKEY_JS_SDK_DIR, "resolve-from-here.js")
        : import.meta.url,
);
const importSdk = (specifier) => import(pathToFileURL(sdkRequire.resolve(specifier)).href);
const sdk = await importSdk("matrix-js-sdk");
const { logger } = await importSdk("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.HOMEKEY_CLIENT_TRACE ? "debug" : "silent");
const sdkVersion = sdkRequire("matrix-js-sdk/package.json").version;

// ---------------------------------------------------------------- requests the library makes

const publicOrigin = new URL(publicBaseurl).origin;
const proxy = new URL(proxyUrl);
/** Every request: method, path (query names only), status. */
const requests = [];

/** The fetch the library is given: the public name sent to the proxy, and recorded. */
async function proxiedFetch(resource, init = {}) {
    const url = new URL(resource instanceof Request ? resource.url : String(resource));
    if (url.origin === publicOrigin) {
        url.protocol = proxy.protocol;
        url.host = proxy.host;
    }
    const query = [...url.searchParams.keys()].map((k) => `${k}=…`).join("&");
    const entry = {
        method: (init.method ?? "GET").toUpperCase(),
        path: url.pathname + (query ? `?${query}` : ""),
        status: null,
    };
    requests.push(entry);
    if (process.env.HOMEKEY_CLIENT_TRACE) console.error(`  -> ${entry.method} ${entry.path}`);
    const response = await fetch(resource instanceof Request ? new Request(url, resource) : url, init);
    entry.status = response.status;
    return response;
}
sdk.AutoDiscovery.setFetchFn(proxiedFetch);

// ---------------------------------------------------------------- assertions

class Failure extends Error {}

function check(condition, message) {
    if (!condition) throw new Failure(message);
}

function describe(err) {
    if (err instanceof sdk.MatrixError) {
        return `${err.httpStatus} ${err.errcode}${err.data?.error ? ` (${err.data.error})` : ""}`;
    }
    return `${err?.name ?? "error"}: ${err?.message ?? err}`;
}

async function expectOk(what, call) {
    try {
        return await call();
    } catch (err) {
        if (err instanceof Failure) throw err;
        throw new Failure(`${what}: ${describe(err)}`);
    }
}

/** Starts the client's sync loop and waits for its first complete sync. */
function syncOnce(client, what) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Failure(`${what}: no first sync in 60 s`)), 60_000);
        client.on(sdk.ClientEvent.Sync, (state, _previous, data) => {
            if (state === "PREPARED") {
                clearTimeout(timer);
                resolve();
            } else if (state === "ERROR") {
                clearTimeout(timer);
                reject(new Failure(`${what}: sync failed: ${describe(data?.error)}`));
            }
        });
        client.startClient({ initialSyncLimit: 20 }).catch(reject);
    });
}

/** Waits until `room`'s live timeline holds a text message with `body`. */
function waitForMessage(client, roomId, body, what) {
    const has = () =>
        client
            .getRoom(roomId)
            ?.getLiveTimeline()
            .getEvents()
            .some((e) => e.getType() === "m.room.message" && e.getContent().body === body);
    return new Promise((resolve, reject) => {
        if (has()) return resolve();
        const timer = setTimeout(() => reject(new Failure(`${what}: the message did not arrive in 30 s`)), 30_000);
        client.on(sdk.RoomEvent.Timeline, () => {
            if (has()) {
                clearTimeout(timer);
                resolve();
            }
        });
    });
}

// ---------------------------------------------------------------- the steps

const state = {};
const message = `hello from ${localpart(aliceId)} through the proxy`;

const steps = [
    {
        id: "a",
        title: "discovery: /.well-known/matrix/client names the server and homekey's account page",
        async run() {
            const config = await expectOk("findClientConfig", () =>
                sdk.AutoDiscovery.findClientConfig(publicOrigin));
            const homeserver = config["m.homeserver"];
            check(homeserver.state === sdk.AutoDiscovery.SUCCESS,
                `m.homeserver: expected SUCCESS, got ${homeserver.state} (${homeserver.error})`);
            check(homeserver.base_url === publicOrigin,
                `m.homeserver.base_url: expected ${publicOrigin}, got ${homeserver.base_url}`);
            const auth = config["org.matrix.msc2965.authentication"] ?? {};
            const account = new URL("_homekey/account/", publicBaseurl).href;
            check(auth.account === account,
                `org.matrix.msc2965.authentication.account: expected ${account}, got ${JSON.stringify(auth)}`);
            state.homeserver = homeserver.base_url;
            state.account = auth.account;
        },
    },
    {
        id: "b",
        title: "auth_metadata names homekey's OAuth endpoints; /login offers the password; the account page opens",
        needs: ["a"],
        async run() {
            const client = sdk.createClient({ baseUrl: state.homeserver, fetchFn: proxiedFetch });
            // Synapse passes homekey's document on: the OAuth 2.0 sign-in (driven end to end by
            // matrix-js-sdk 43 elsewhere; this 37.x line cannot do it headless) beside /login.
            const metadata = await expectOk("GET /_matrix/client/v1/auth_metadata", () =>
                client.http.request(sdk.Method.Get, "/auth_metadata", undefined, undefined, {
                    prefix: "/_matrix/client/v1",
                }));
            check(metadata.account_management_uri === state.account,
                `auth_metadata.account_management_uri: expected ${state.account}, got ${metadata.account_management_uri}`);
            for (const [key, path] of [
                ["authorization_endpoint", "_homekey/oauth2/authorize"],
                ["token_endpoint", "oauth2/token"],
                ["registration_endpoint", "oauth2/registration"],
                ["revocation_endpoint", "oauth2/revoke"],
            ]) {
                check(metadata[key] === `${metadata.issuer}${path}`,
                    `auth_metadata.${key}: expected ${metadata.issuer}${path}, got ${metadata[key]}`);
            }
            const { flows } = await expectOk("loginFlows", () => client.loginFlows());
            check(flows.some((f) => f.type === "m.login.password"),
                `login flows: expected m.login.password in ${JSON.stringify(flows)}`);
            // homekey's page, the link a client shows as "Manage account", under the server's name.
            const page = await proxiedFetch(state.account);
            const text = await page.text();
            check(page.status === 200 && text.includes('id="service-name">example.com<') && text.includes("Sign in"),
                `account page: expected 200 with homekey's page, got ${page.status} ${JSON.stringify(text.slice(0, 80))}`);
        },
    },
    {
        id: "c",
        title: "alice logs in with her password, creates a room, sends a message, syncs",
        needs: ["a"],
        async run() {
            const base = sdk.createClient({ baseUrl: state.homeserver, fetchFn: proxiedFetch });
            const login = await expectOk("alice's login", () => base.loginRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: localpart(aliceId) },
                password: alicePassword,
                initial_device_display_name: "js-sdk beside Synapse",
            }));
            check(login.user_id === aliceId, `login: expected ${aliceId}, got ${login.user_id}`);
            const alice = sdk.createClient({
                baseUrl: state.homeserver,
                fetchFn: proxiedFetch,
                userId: login.user_id,
                deviceId: login.device_id,
                accessToken: login.access_token,
            });
            state.alice = alice;
            const whoami = await expectOk("alice's whoami", () => alice.whoami());
            check(whoami.user_id === aliceId && whoami.device_id === login.device_id,
                `whoami: expected ${aliceId} ${login.device_id}, got ${JSON.stringify(whoami)}`);
            const { room_id: roomId } = await expectOk("createRoom", () =>
                alice.createRoom({ preset: sdk.Preset.PublicChat, name: "beside Synapse" }));
            state.roomId = roomId;
            await expectOk("sendEvent", () => alice.sendEvent(roomId, sdk.EventType.RoomMessage, {
                msgtype: sdk.MsgType.Text,
                body: message,
            }));
            await syncOnce(alice, "alice");
            await waitForMessage(alice, roomId, message, "alice's sync");
        },
    },
    {
        id: "d",
        title: "bob logs in, joins the room and reads alice's message by sync",
        needs: ["c"],
        async run() {
            const base = sdk.createClient({ baseUrl: state.homeserver, fetchFn: proxiedFetch });
            const login = await expectOk("bob's login", () =>
                base.loginWithPassword(bobId, bobPassword));
            const bob = sdk.createClient({
                baseUrl: state.homeserver,
                fetchFn: proxiedFetch,
                userId: login.user_id,
                deviceId: login.device_id,
                accessToken: login.access_token,
            });
            state.bob = bob;
            await expectOk("joinRoom", () => bob.joinRoom(state.roomId));
            await syncOnce(bob, "bob");
            await waitForMessage(bob, state.roomId, message, "bob's sync");
        },
    },
    {
        id: "e",
        title: "both log out (homekey's /logout)",
        needs: ["c"],
        async run() {
            for (const client of [state.alice, state.bob].filter(Boolean)) {
                client.stopClient();
                const result = await expectOk(`${client.getUserId()}'s logout`, () => client.logout());
                check(JSON.stringify(result) === "{}", `logout: expected {}, got ${JSON.stringify(result)}`);
            }
        },
    },
];

// ---------------------------------------------------------------- run them

const outcome = {};
let passed = 0;
let failed = 0;
let skipped = 0;
console.log(`matrix-js-sdk ${sdkVersion} through ${proxyUrl} (as ${publicOrigin})`);
for (const step of steps) {
    const missing = (step.needs ?? []).filter((id) => outcome[id] !== "ok");
    if (missing.length) {
        outcome[step.id] = "skipped";
        skipped++;
        console.log(`skip ${step.id}. ${step.title} (needs ${missing.join(", ")})`);
        continue;
    }
    try {
        await step.run();
        outcome[step.id] = "ok";
        passed++;
        console.log(`ok   ${step.id}. ${step.title}`);
    } catch (err) {
        outcome[step.id] = "failed";
        failed++;
        const why = err instanceof Failure ? err.message : `unexpected: ${err?.stack ?? err}`;
        console.log(`FAIL ${step.id}. ${step.title}\n     ${why}`);
    }
}
for (const client of [state.alice, state.bob].filter(Boolean)) client.stopClient();

console.log("requests the library made:");
for (const r of requests) console.log(`  ${r.method} ${r.path} -> ${r.status ?? "no answer"}`);
console.log(`matrix-js-sdk: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
