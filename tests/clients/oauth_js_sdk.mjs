// matrix-js-sdk 43 (the library Element Web is built on) signing in with the Matrix OAuth 2.0
// API, as Element Web does, against a Synapse that delegates its authentication to homekey,
// both behind one reverse proxy. Every OAuth call goes through the library's own `OAuth2`
// class and `createClient`. Run by tests/it/oauth_clients.rs, which starts Synapse, homekey,
// nginx, a throwaway HTTPS site for the client's redirect URI, and a headless Chromium.
//
//   HOMEKEY_ALICE_PASSWORD=… HOMEKEY_ALICE_NEW_PASSWORD=… HOMEKEY_ADMIN_TOKEN=… \
//     node oauth_js_sdk.mjs SERVER_URL USER_ID REDIRECT_URI CALLBACK_DIR
//
// SERVER_URL is the proxy, which is also Synapse's and homekey's `public_baseurl`. The user
// must exist in homekey with that password; an admin resets it to the new one half-way
// (step i); HOMEKEY_ADMIN_TOKEN is a server admin's token. REDIRECT_URI (https) is the web
// client's address: the client registers it (and its origin as `client_uri`). For each
// sign-in the script prints `AUTHORIZE N URL` and waits for the file CALLBACK_DIR/callback-N:
// the URL the browser landed on after the user allowed the client (the test drives the
// browser). For the device authorization grant it prints `DEVICE 1 USER_CODE DEVICE_ID URL`
// (URL the `verification_uri_complete`) and polls the token endpoint, as the library does,
// until the user has approved the code in the browser. HOMEKEY_JS_SDK_DIR names the
// node_modules folder holding matrix-js-sdk 43 (.ci/run installs it outside the repository;
// it needs Node 22).
//
// Prints one line per step and "matrix-js-sdk: N passed, N failed, N skipped"; exits 1 if a
// step failed, 2 on bad usage. HOMEKEY_CLIENT_TRACE=1 prints each request and the library's
// debug log.

import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const [serverUrl, userId, redirectUri, callbackDir] = process.argv.slice(2);
const password = process.env.HOMEKEY_ALICE_PASSWORD;
const newPassword = process.env.HOMEKEY_ALICE_NEW_PASSWORD;
const adminToken = process.env.HOMEKEY_ADMIN_TOKEN;
if (!serverUrl || !userId || !redirectUri || !callbackDir || !password || !newPassword || !adminToken) {
    console.error(
        "usage: HOMEKEY_ALICE_PASSWORD=… HOMEKEY_ALICE_NEW_PASSWORD=… HOMEKEY_ADMIN_TOKEN=… " +
            "node oauth_js_sdk.mjs SERVER_URL USER_ID REDIRECT_URI CALLBACK_DIR",
    );
    process.exit(2);
}
const localpart = userId.replace(/^@/, "").split(":")[0];
const baseUrl = serverUrl.replace(/\/$/, "");

const sdkRequire = createRequire(
    process.env.HOMEKEY_JS_SDK_DIR
        ? path.join(process.env.HOMEKEY_JS_SDK_DIR, "resolve-from-here.js")
        : import.meta.url,
);
const importSdk = (specifier) => import(pathToFileURL(sdkRequire.resolve(specifier)).href);
const sdk = await importSdk("matrix-js-sdk");
const { logger } = await importSdk("matrix-js-sdk/lib/logger.js");
logger.setLevel(process.env.HOMEKEY_CLIENT_TRACE ? "debug" : "silent");
// The library's child loggers (sync, …) log at debug whatever the root's level: the clients
// get a logger of their own, silent unless tracing.
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, getChild: () => quiet };
const clientLogger = process.env.HOMEKEY_CLIENT_TRACE ? logger : quiet;
/** A client of the server with `opts`. */
const createClient = (opts = {}) => sdk.createClient({ baseUrl, logger: clientLogger, ...opts });
const sdkVersion = sdkRequire("matrix-js-sdk/package.json").version;
const { OAuth2 } = sdk;

// ---------------------------------------------------------------- requests the library makes

/** Every request: method, path (query names only), status, and an OAuth refusal's `error`. */
const requests = [];
const realFetch = globalThis.fetch;
// The library's OAuth2 class calls the global fetch; the clients get it too.
globalThis.fetch = async (resource, init = {}) => {
    const url = new URL(resource instanceof Request ? resource.url : String(resource));
    const query = [...url.searchParams.keys()].map((k) => `${k}=…`).join("&");
    const entry = {
        method: (init.method ?? (resource instanceof Request ? resource.method : "GET")).toUpperCase(),
        path: url.pathname + (query ? `?${query}` : ""),
        status: null,
    };
    requests.push(entry);
    if (process.env.HOMEKEY_CLIENT_TRACE) console.error(`  -> ${entry.method} ${entry.path}`);
    const response = await realFetch(resource, init);
    entry.status = response.status;
    if (response.status >= 400 && url.pathname.startsWith("/oauth2/")) {
        entry.error = await response.clone().json().then((body) => body?.error, () => undefined);
    }
    return response;
};

// ---------------------------------------------------------------- assertions

class Failure extends Error {}

function check(condition, message) {
    if (!condition) throw new Failure(message);
}

function describe(err) {
    if (err instanceof sdk.MatrixError) {
        return `${err.httpStatus} ${err.errcode}${err.data?.error ? ` (${err.data.error})` : ""}`;
    }
    if (err instanceof sdk.OAuth2HTTPError) {
        return `${err.message}: ${err.httpStatus} ${err.error}` +
            `${err.error_description ? ` (${err.error_description})` : ""}`;
    }
    if (err instanceof sdk.HTTPError) return `${err.message}: ${err.httpStatus}`;
    const cause = err?.cause ? ` (cause: ${err.cause?.message ?? err.cause})` : "";
    return `${err?.name ?? "error"}: ${err?.message ?? err}${cause}`;
}

async function expectOk(what, call) {
    try {
        return await call();
    } catch (err) {
        if (err instanceof Failure) throw err;
        throw new Failure(`${what}: ${describe(err)}`);
    }
}

/** The call must fail with a Matrix error `errcode` and HTTP `status`. */
async function expectMatrixError(what, status, errcode, call) {
    let result;
    try {
        result = await call();
    } catch (err) {
        check(err instanceof sdk.MatrixError && err.httpStatus === status && err.errcode === errcode,
            `${what}: expected ${status} ${errcode}, got ${describe(err)}`);
        return;
    }
    throw new Failure(`${what}: expected ${status} ${errcode}, got ${JSON.stringify(result)}`);
}

/** A client with only an access token: nothing refreshes it, so Synapse's answer shows. */
function bare(accessToken) {
    return createClient({ accessToken });
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a failure if it has not settled in `ms`. */
function within(ms, what, promise) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Failure(`${what}: no answer in ${ms / 1000} s`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Sends the user to `url` (the test's browser signs in and allows the client) and returns the
 * code from the fragment of the URL the browser lands on, after checking the state.
 */
async function authorizeInBrowser(n, url, state) {
    console.log(`AUTHORIZE ${n} ${url}`);
    const file = path.join(callbackDir, `callback-${n}`);
    const deadline = Date.now() + 120_000;
    while (!existsSync(file)) {
        check(Date.now() < deadline, `sign-in ${n}: the browser did not come back in 120 s`);
        await sleep(100);
    }
    const landed = new URL(readFileSync(file, "utf8").trim());
    check(landed.origin + landed.pathname === redirectUri,
        `sign-in ${n}: the browser landed on ${landed.origin}${landed.pathname}, not ${redirectUri}`);
    check(!landed.searchParams.has("code") && !landed.searchParams.has("state"),
        `sign-in ${n}: fragment mode asked, but the query holds ${landed.search}`);
    const answer = new URLSearchParams(landed.hash.replace(/^#/, ""));
    check(!answer.has("error"),
        `sign-in ${n}: ${answer.get("error")} (${answer.get("error_description")})`);
    check(answer.get("state") === state,
        `sign-in ${n}: state: expected ${state}, got ${answer.get("state")}`);
    const code = answer.get("code");
    check(code, `sign-in ${n}: no code in the fragment ${landed.hash.length} characters long`);
    return code;
}

/** A new sign-in of the registered client: authorization URL, browser, code exchange. */
async function signIn(n) {
    const oauth = new OAuth2(state.metadata, { clientId: state.clientId }, clientLogger);
    const nonce = randomBytes(12).toString("hex");
    const url = await expectOk("generateAuthorizationCodeGrantUrl", () =>
        oauth.generateAuthorizationCodeGrantUrl(nonce, redirectUri, "fragment"));
    const asked = new URL(url);
    check(url.startsWith(state.metadata.authorization_endpoint),
        `authorization URL: expected it at ${state.metadata.authorization_endpoint}, got ${url}`);
    check(asked.searchParams.get("response_mode") === "fragment",
        `authorization URL: response_mode ${asked.searchParams.get("response_mode")}`);
    const code = await authorizeInBrowser(n, url, nonce);
    const tokens = await expectOk("completeAuthorizationCodeGrant", () =>
        oauth.completeAuthorizationCodeGrant(code, redirectUri));
    checkTokens(tokens, oauth.context.deviceId, "token answer");
    return { oauth, tokens, deviceId: oauth.context.deviceId };
}

/** The token answer holds both tokens, `Bearer`, `expires_in`, the API and `deviceId`'s scope. */
function checkTokens(tokens, deviceId, what) {
    const deviceScope = `urn:matrix:client:device:${deviceId}`;
    check(tokens.access_token && tokens.refresh_token && tokens.token_type === "Bearer",
        `${what}: ${JSON.stringify(Object.keys(tokens))} token_type ${tokens.token_type}`);
    check(tokens.scope?.split(" ").includes(deviceScope) && tokens.scope.split(" ").includes("urn:matrix:client:api:*"),
        `${what}: scope ${tokens.scope}, expected the API and ${deviceScope}`);
    check(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0,
        `${what}: expires_in ${tokens.expires_in}`);
}

/** A device ID as QR login makes them: unpadded base64, a `+` and a `/` among its characters. */
function qrLoginDeviceId() {
    for (;;) {
        const id = randomBytes(24).toString("base64");
        if (id.includes("+") && id.includes("/")) return id;
    }
}

/** `client.logout()`: `{}`, after exactly two revocations (access and refresh token), each 200. */
async function logOut(client, what) {
    const before = requests.length;
    const result = await expectOk(`${what}: logout`, () => client.logout(true));
    check(JSON.stringify(result) === "{}", `${what}: logout: expected {}, got ${JSON.stringify(result)}`);
    const revocations = requests.slice(before).filter((r) => r.path === "/oauth2/revoke");
    check(revocations.length === 2 && revocations.every((r) => r.method === "POST" && r.status === 200),
        `${what}: revocations: ${JSON.stringify(revocations)}`);
}

/** The revoked `refreshToken` gets 400 `invalid_grant`: what the library takes for "logged out". */
async function refreshRefused(oauth, refreshToken, what) {
    let refused;
    try {
        await oauth.performRefreshTokenGrant(refreshToken);
    } catch (err) {
        refused = err;
    }
    check(refused instanceof sdk.OAuth2HTTPError && refused.httpStatus === 400 &&
        refused.error === "invalid_grant",
        `${what}: expected 400 invalid_grant, got ${refused ? describe(refused) : "new tokens"}`);
}

async function whoamiIs(client, deviceId, what) {
    const whoami = await expectOk(`${what}: whoami`, () => client.whoami());
    check(whoami.user_id === userId && whoami.device_id === deviceId,
        `${what}: whoami: expected ${userId} ${deviceId}, got ${JSON.stringify(whoami)}`);
}

// ---------------------------------------------------------------- the steps

const state = {};
const message = "hello from an OAuth session";
const deviceGrant = "urn:ietf:params:oauth:grant-type:device_code";

const steps = [
    {
        id: "a",
        title: "getAuthMetadata through Synapse: homekey's endpoints (the device's too), fragment and S256",
        async run() {
            const client = createClient();
            const metadata = await expectOk("getAuthMetadata", () => client.getAuthMetadata());
            check(metadata.issuer === `${baseUrl}/`, `issuer: expected ${baseUrl}/, got ${metadata.issuer}`);
            for (const [key, at] of [
                ["authorization_endpoint", "_homekey/oauth2/authorize"],
                ["token_endpoint", "oauth2/token"],
                ["registration_endpoint", "oauth2/registration"],
                ["revocation_endpoint", "oauth2/revoke"],
                ["device_authorization_endpoint", "oauth2/device"],
            ]) {
                check(metadata[key] === `${metadata.issuer}${at}`,
                    `${key}: expected ${metadata.issuer}${at}, got ${metadata[key]}`);
            }
            // So registerClient asks for the device grant too.
            check(metadata.grant_types_supported.includes(deviceGrant),
                `grant_types_supported: ${JSON.stringify(metadata.grant_types_supported)}`);
            check(requests.some((r) => r.path === "/_matrix/client/v1/auth_metadata" && r.status === 200),
                "the metadata did not come from Synapse's /_matrix/client/v1/auth_metadata");
            state.metadata = metadata;
        },
    },
    {
        id: "b",
        title: "OAuth2.registerClient as a web client, with the device grant (twice: the same client_id)",
        needs: ["a"],
        async run() {
            const origin = new URL(redirectUri).origin;
            const metadata = {
                client_name: "homekey's js-sdk 43 test",
                client_uri: `${origin}/`,
                redirect_uris: [redirectUri],
                application_type: "web",
                tos_uri: `${origin}/terms`,
                policy_uri: `${origin}/privacy`,
            };
            const before = requests.length;
            state.clientId = await expectOk("registerClient", () =>
                OAuth2.registerClient(state.metadata, metadata, clientLogger));
            check(typeof state.clientId === "string" && state.clientId.length > 0, "no client_id");
            check(requests.slice(before).some((r) => r.path === "/oauth2/registration" && r.status === 201),
                `registration: ${JSON.stringify(requests.slice(before))}`);
            const again = await expectOk("registerClient again", () =>
                OAuth2.registerClient(state.metadata, metadata, clientLogger));
            check(again === state.clientId, `registered again: ${again}, first ${state.clientId}`);
        },
    },
    {
        id: "c",
        title: "authorization URL in fragment mode; the browser signs in and allows; completeAuthorizationCodeGrant",
        needs: ["b"],
        async run() {
            state.first = await signIn(1);
        },
    },
    {
        id: "d",
        title: "a client with those tokens: whoami, creates a room, sends a message, syncs it back",
        needs: ["c"],
        async run() {
            const { tokens, deviceId } = state.first;
            const client = createClient({
                userId,
                deviceId,
                accessToken: tokens.access_token,
                refreshToken: tokens.refresh_token,
                oauthClientId: state.clientId,
                onTokenRefresh: () => {},
            });
            state.client = client;
            await whoamiIs(client, deviceId, "first session");
            const { room_id: roomId } = await expectOk("createRoom", () =>
                client.createRoom({ name: "OAuth 2.0 sign-in" }));
            state.roomId = roomId;
            await expectOk("sendEvent", () => client.sendEvent(roomId, sdk.EventType.RoomMessage, {
                msgtype: sdk.MsgType.Text,
                body: message,
            }));
            await syncOnce(client, "first session");
            await waitForMessage(client, roomId, message, "first session's sync");
            client.stopClient();
        },
    },
    {
        id: "e",
        title: "performRefreshTokenGrant: new tokens that work",
        needs: ["d"],
        async run() {
            const { oauth, tokens, deviceId } = state.first;
            const fresh = await expectOk("performRefreshTokenGrant", () =>
                oauth.performRefreshTokenGrant(tokens.refresh_token));
            check(fresh.access_token && fresh.access_token !== tokens.access_token,
                "refresh: no new access token");
            check(fresh.refresh_token && fresh.refresh_token !== tokens.refresh_token,
                "refresh: no new refresh token");
            const client = createClient({
                userId,
                deviceId,
                accessToken: fresh.access_token,
                refreshToken: fresh.refresh_token,
                oauthClientId: state.clientId,
                onTokenRefresh: () => {},
            });
            await whoamiIs(client, deviceId, "refreshed session");
            await expectOk("sendEvent after the refresh", () =>
                client.sendEvent(state.roomId, sdk.EventType.RoomMessage, {
                    msgtype: sdk.MsgType.Text,
                    body: `${message}, refreshed`,
                }));
            state.refreshed = { client, tokens: fresh };
        },
    },
    {
        id: "f",
        title: "logout() revokes both tokens (200 each); Synapse refuses the access token at once",
        needs: ["e"],
        async run() {
            const { client, tokens } = state.refreshed;
            await logOut(client, "first session");
            await expectMatrixError("whoami with the revoked access token", 401, "M_UNKNOWN_TOKEN",
                () => bare(tokens.access_token).whoami());
            await expectMatrixError("whoami with the first access token", 401, "M_UNKNOWN_TOKEN",
                () => bare(state.first.tokens.access_token).whoami());
            await refreshRefused(state.first.oauth, tokens.refresh_token,
                "refresh with the revoked refresh token");
        },
    },
    {
        id: "g",
        title: "the legacy password login (loginRequest m.login.password) still works",
        async run() {
            const login = await expectOk("loginRequest", () => createClient().loginRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: localpart },
                password,
                initial_device_display_name: "js-sdk 43 password login",
            }));
            check(login.user_id === userId, `login: expected ${userId}, got ${login.user_id}`);
            await whoamiIs(bare(login.access_token), login.device_id, "password login");
            state.legacy = login;
        },
    },
    {
        id: "h",
        title: "a second OAuth session (the browser is still signed in: consent only)",
        needs: ["b"],
        async run() {
            state.second = await signIn(2);
            await whoamiIs(bare(state.second.tokens.access_token), state.second.deviceId, "second session");
        },
    },
    {
        id: "i",
        title: "an Admin API reset through homekey ends the second OAuth session and the password login",
        needs: ["h"],
        async run() {
            const admin = createClient({ accessToken: adminToken });
            const result = await expectOk("POST /_synapse/admin/v1/reset_password", () =>
                admin.http.authedRequest(sdk.Method.Post, `/reset_password/${encodeURIComponent(userId)}`,
                    undefined, { new_password: newPassword, logout_devices: true },
                    { prefix: "/_synapse/admin/v1" }));
            check(JSON.stringify(result) === "{}", `reset: expected {}, got ${JSON.stringify(result)}`);
            await expectMatrixError("whoami with the second session's token", 401, "M_UNKNOWN_TOKEN",
                () => bare(state.second.tokens.access_token).whoami());
            if (state.legacy) {
                await expectMatrixError("whoami with the password login's token", 401, "M_UNKNOWN_TOKEN",
                    () => bare(state.legacy.access_token).whoami());
            }
            const login = await expectOk("loginRequest with the new password", () =>
                createClient().loginRequest({
                    type: "m.login.password",
                    identifier: { type: "m.id.user", user: localpart },
                    password: newPassword,
                }));
            check(login.user_id === userId, `login: expected ${userId}, got ${login.user_id}`);
        },
    },
    {
        id: "j",
        title: "the device authorization grant for a QR-login device ID (+ and /): " +
            "startDeviceAuthorizationGrant, the code approved in the browser, waitForDeviceAuthorizationGrant",
        needs: ["b"],
        async run() {
            const deviceId = qrLoginDeviceId();
            const oauth = new OAuth2(state.metadata, { clientId: state.clientId, deviceId }, clientLogger);
            const before = requests.length;
            const session = await expectOk("startDeviceAuthorizationGrant", () =>
                oauth.startDeviceAuthorizationGrant());
            const asked = requests.slice(before);
            check(asked.length === 1 && asked[0].method === "POST" && asked[0].path === "/oauth2/device" &&
                asked[0].status === 200, `device authorization: ${JSON.stringify(asked)}`);
            const page = `${baseUrl}/_homekey/device/`;
            check(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(session.user_code),
                `user_code: ${session.user_code}`);
            check(session.verification_uri === page,
                `verification_uri: expected ${page}, got ${session.verification_uri}`);
            check(session.verification_uri_complete === `${page}?user_code=${session.user_code}`,
                `verification_uri_complete: ${session.verification_uri_complete}`);
            check(session.interval === 5, `interval: ${session.interval}`);
            check(Number.isInteger(session.expires_in) && session.expires_in > 0 && session.expires_in <= 600,
                `expires_in: ${session.expires_in}`);
            console.log(`DEVICE 1 ${session.user_code} ${deviceId} ${session.verification_uri_complete}`);
            const polling = requests.length;
            const tokens = await within(120_000, "waitForDeviceAuthorizationGrant",
                expectOk("waitForDeviceAuthorizationGrant", () => oauth.waitForDeviceAuthorizationGrant(session)));
            check(!("error" in tokens),
                `waitForDeviceAuthorizationGrant: ${tokens.error}${
                    tokens.error_description ? ` (${tokens.error_description})` : ""}`);
            checkTokens(tokens, deviceId, "the device's tokens");
            // The library waits the interval between polls: never too fast for homekey.
            const polls = requests.slice(polling).filter((r) => r.path === "/oauth2/token");
            check(polls.length >= 1 && polls.at(-1).status === 200 &&
                polls.slice(0, -1).every((r) => r.status === 400 && r.error === "authorization_pending"),
                `polls: ${JSON.stringify(polls)}`);
            const client = createClient({
                userId,
                deviceId,
                accessToken: tokens.access_token,
                refreshToken: tokens.refresh_token,
                oauthClientId: state.clientId,
                onTokenRefresh: () => {},
            });
            await whoamiIs(client, deviceId, "the device");
            // Its ID in a path (`/` as %2F): the README's proxy rules pass it to Synapse.
            const device = await expectOk("getDevice", () => client.getDevice(deviceId));
            check(device.device_id === deviceId, `getDevice: ${JSON.stringify(device)}`);
            state.device = { oauth, tokens, client };
        },
    },
    {
        id: "k",
        title: "the device's logout() revokes both tokens (200 each); Synapse refuses its access token at once",
        needs: ["j"],
        async run() {
            const { oauth, tokens, client } = state.device;
            await logOut(client, "the device");
            await expectMatrixError("whoami with the device's revoked access token", 401, "M_UNKNOWN_TOKEN",
                () => bare(tokens.access_token).whoami());
            await refreshRefused(oauth, tokens.refresh_token, "refresh with the device's revoked refresh token");
        },
    },
];

// ---------------------------------------------------------------- run them

const outcome = {};
let passed = 0;
let failed = 0;
let skipped = 0;
console.log(`matrix-js-sdk ${sdkVersion} on Node ${process.version} through ${baseUrl}`);
for (const step of steps) {
    const missing = (step.needs ?? []).filter((id) => outcome[id] !== "ok");
    if (missing.length) {
        outcome[step.id] = "skipped";
        skipped++;
        console.log(`skip ${step.id}. ${step.title} (needs ${missing.join(", ")})`);
        continue;
    }
    const started = Date.now();
    try {
        await step.run();
        outcome[step.id] = "ok";
        passed++;
        console.log(`ok   ${step.id}. ${step.title} (${Date.now() - started} ms)`);
    } catch (err) {
        outcome[step.id] = "failed";
        failed++;
        const why = err instanceof Failure ? err.message : `unexpected: ${err?.stack ?? err}`;
        console.log(`FAIL ${step.id}. ${step.title}\n     ${why}`);
    }
}
state.client?.stopClient();

console.log("requests the library made:");
for (const r of requests) {
    console.log(`  ${r.method} ${r.path} -> ${r.status ?? "no answer"}${r.error ? ` ${r.error}` : ""}`);
}
console.log(`matrix-js-sdk: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
