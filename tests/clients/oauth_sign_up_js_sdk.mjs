// matrix-js-sdk 43 (the library Element Web is built on) creating an account with the Matrix
// OAuth 2.0 API's `prompt=create`, as Element Web's "Create account" does, against a Synapse
// that delegates its authentication to homekey, both behind one reverse proxy. Run by
// tests/it/oauth_sign_up.rs, which starts Synapse, homekey (sign-up on), nginx, a throwaway
// HTTPS site for the client's redirect URI, and a headless Chromium that fills in homekey's
// sign-up page.
//
//   node oauth_sign_up_js_sdk.mjs SERVER_URL USER_ID REDIRECT_URI CALLBACK_DIR
//
// SERVER_URL is the proxy, which is also Synapse's and homekey's `public_baseurl`; USER_ID the
// account the browser will create. The script prints `AUTHORIZE 1 URL` and waits for the file
// CALLBACK_DIR/callback-1: the URL the browser landed on after signing up and allowing the
// client. HOMEKEY_JS_SDK_DIR names the node_modules folder holding matrix-js-sdk 43.
//
// Prints one line per step and "matrix-js-sdk: N passed, N failed, N skipped"; exits 1 if a
// step failed, 2 on bad usage.

import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const [serverUrl, userId, redirectUri, callbackDir] = process.argv.slice(2);
if (!serverUrl || !userId || !redirectUri || !callbackDir) {
    console.error("usage: node oauth_sign_up_js_sdk.mjs SERVER_URL USER_ID REDIRECT_URI CALLBACK_DIR");
    process.exit(2);
}
const baseUrl = serverUrl.replace(/\/$/, "");

const sdkRequire = createRequire(
    process.env.HOMEKEY_JS_SDK_DIR
        ? path.join(process.env.HOMEKEY_JS_SDK_DIR, "resolve-from-here.js")
        : import.meta.url,
);
const importSdk = (specifier) => import(pathToFileURL(sdkRequire.resolve(specifier)).href);
const sdk = await importSdk("matrix-js-sdk");
const { logger } = await importSdk("matrix-js-sdk/lib/logger.js");
logger.setLevel("silent");
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, getChild: () => quiet };
const createClient = (opts = {}) => sdk.createClient({ baseUrl, logger: quiet, ...opts });
const sdkVersion = sdkRequire("matrix-js-sdk/package.json").version;
const { OAuth2 } = sdk;

class Failure extends Error {}

function check(condition, message) {
    if (!condition) throw new Failure(message);
}

function describe(err) {
    if (err instanceof sdk.MatrixError) return `${err.httpStatus} ${err.errcode}`;
    if (err instanceof sdk.OAuth2HTTPError) return `${err.message}: ${err.httpStatus} ${err.error}`;
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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `room`'s live timeline holds a text message with `body`, after a first sync. */
function syncAndSee(client, roomId, body) {
    const has = () =>
        client
            .getRoom(roomId)
            ?.getLiveTimeline()
            .getEvents()
            .some((e) => e.getType() === "m.room.message" && e.getContent().body === body);
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Failure("the message did not sync back in 60 s")), 60_000);
        const done = () => {
            if (has()) {
                clearTimeout(timer);
                resolve();
            }
        };
        client.on(sdk.ClientEvent.Sync, (state, _previous, data) => {
            if (state === "ERROR") {
                clearTimeout(timer);
                reject(new Failure(`sync failed: ${describe(data?.error)}`));
            } else done();
        });
        client.on(sdk.RoomEvent.Timeline, done);
        client.startClient({ initialSyncLimit: 20 }).catch(reject);
    });
}

const state = {};
const message = "hello from a new account";

const steps = [
    {
        id: "a",
        title: "getAuthMetadata through Synapse offers prompt=create",
        async run() {
            const metadata = await expectOk("getAuthMetadata", () => createClient().getAuthMetadata());
            check(metadata.prompt_values_supported?.includes("create"),
                `prompt_values_supported: ${JSON.stringify(metadata.prompt_values_supported)}`);
            state.metadata = metadata;
        },
    },
    {
        id: "b",
        title: "OAuth2.registerClient as a web client",
        needs: ["a"],
        async run() {
            const origin = new URL(redirectUri).origin;
            state.clientId = await expectOk("registerClient", () =>
                OAuth2.registerClient(state.metadata, {
                    client_name: "homekey's js-sdk 43 sign-up test",
                    client_uri: `${origin}/`,
                    redirect_uris: [redirectUri],
                    application_type: "web",
                    tos_uri: `${origin}/terms`,
                    policy_uri: `${origin}/privacy`,
                }, quiet));
        },
    },
    {
        id: "c",
        title: "authorization URL with prompt=create; the browser signs up and allows; completeAuthorizationCodeGrant",
        needs: ["b"],
        async run() {
            const oauth = new OAuth2(state.metadata, { clientId: state.clientId }, quiet);
            const nonce = randomBytes(12).toString("hex");
            const url = await expectOk("generateAuthorizationCodeGrantUrl", () =>
                oauth.generateAuthorizationCodeGrantUrl(nonce, redirectUri, "fragment", "create"));
            check(new URL(url).searchParams.get("prompt") === "create", `no prompt=create in ${url}`);
            console.log(`AUTHORIZE 1 ${url}`);
            const file = path.join(callbackDir, "callback-1");
            const deadline = Date.now() + 120_000;
            while (!existsSync(file)) {
                check(Date.now() < deadline, "the browser did not come back in 120 s");
                await sleep(100);
            }
            const landed = new URL(readFileSync(file, "utf8").trim());
            const answer = new URLSearchParams(landed.hash.replace(/^#/, ""));
            check(!answer.has("error"), `${answer.get("error")} (${answer.get("error_description")})`);
            check(answer.get("state") === nonce, `state: expected ${nonce}, got ${answer.get("state")}`);
            const tokens = await expectOk("completeAuthorizationCodeGrant", () =>
                oauth.completeAuthorizationCodeGrant(answer.get("code"), redirectUri));
            check(tokens.access_token && tokens.refresh_token, "no tokens");
            state.tokens = tokens;
            state.deviceId = oauth.context.deviceId;
        },
    },
    {
        id: "d",
        title: "the new account: whoami, creates a room, sends a message, syncs it back",
        needs: ["c"],
        async run() {
            const client = createClient({
                userId,
                deviceId: state.deviceId,
                accessToken: state.tokens.access_token,
                refreshToken: state.tokens.refresh_token,
                oauthClientId: state.clientId,
                onTokenRefresh: () => {},
            });
            state.client = client;
            const whoami = await expectOk("whoami", () => client.whoami());
            check(whoami.user_id === userId && whoami.device_id === state.deviceId,
                `whoami: expected ${userId} ${state.deviceId}, got ${JSON.stringify(whoami)}`);
            const { room_id: roomId } = await expectOk("createRoom", () =>
                client.createRoom({ name: "Signed up with prompt=create" }));
            await expectOk("sendEvent", () => client.sendEvent(roomId, sdk.EventType.RoomMessage, {
                msgtype: sdk.MsgType.Text,
                body: message,
            }));
            await syncAndSee(client, roomId, message);
            client.stopClient();
        },
    },
];

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
    try {
        await step.run();
        outcome[step.id] = "ok";
        passed++;
        console.log(`ok   ${step.id}. ${step.title}`);
    } catch (err) {
        outcome[step.id] = "failed";
        failed++;
        console.log(`FAIL ${step.id}. ${step.title}\n     ${err instanceof Failure ? err.message : err?.stack ?? err}`);
    }
}
state.client?.stopClient();
console.log(`matrix-js-sdk: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
