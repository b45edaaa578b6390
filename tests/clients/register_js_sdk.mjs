// matrix-js-sdk's legacy sign-up (the user-interactive `POST /register` Element Web's "Create
// account" makes) against a Synapse that delegates its authentication to homekey, both behind
// one reverse proxy: the name checked, the registration token stage, the account, then the
// new user creates a room, sends a message and reads it back by sync. Every call goes through
// the library's own methods. Run by tests/it/sign_up_beside_synapse.rs.
//
//   HOMEKEY_NEW_PASSWORD=… HOMEKEY_REGISTRATION_TOKEN=… \
//     node register_js_sdk.mjs PROXY_URL PUBLIC_BASEURL USERNAME
//
// PUBLIC_BASEURL is what the server announces; every request to it is sent to PROXY_URL
// instead (no DNS or TLS on a test machine). HOMEKEY_JS_SDK_DIR names the node_modules folder
// holding matrix-js-sdk. Prints one line per step and "matrix-js-sdk: N passed, N failed";
// exits 1 if a step failed, 2 on bad usage.

import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [proxyUrl, publicBaseurl, username] = process.argv.slice(2);
const password = process.env.HOMEKEY_NEW_PASSWORD;
const registrationToken = process.env.HOMEKEY_REGISTRATION_TOKEN;
if (!proxyUrl || !publicBaseurl || !username || !password || !registrationToken) {
    console.error(
        "usage: HOMEKEY_NEW_PASSWORD=… HOMEKEY_REGISTRATION_TOKEN=… " +
            "node register_js_sdk.mjs PROXY_URL PUBLIC_BASEURL USERNAME",
    );
    process.exit(2);
}

const sdkRequire = createRequire(
    process.env.HOMEKEY_JS_SDK_DIR
        ? path.join(process.env.HOMEKEY_JS_SDK_DIR, "resolve-from-here.js")
        : import.meta.url,
);
const importSdk = (specifier) => import(pathToFileURL(sdkRequire.resolve(specifier)).href);
const sdk = await importSdk("matrix-js-sdk");
const { logger } = await importSdk("matrix-js-sdk/lib/logger.js");
logger.setLevel("silent");

const publicOrigin = new URL(publicBaseurl).origin;
const proxy = new URL(proxyUrl);
/** The fetch the library is given: the public name sent to the proxy. */
async function proxiedFetch(resource, init = {}) {
    const url = new URL(resource instanceof Request ? resource.url : String(resource));
    if (url.origin === publicOrigin) {
        url.protocol = proxy.protocol;
        url.host = proxy.host;
    }
    return fetch(resource instanceof Request ? new Request(url, resource) : url, init);
}

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
/** A user-interactive step that must answer 401 with more to do: its body. */
async function expectMoreStages(what, call) {
    try {
        await call();
    } catch (err) {
        if (err instanceof sdk.MatrixError && err.httpStatus === 401 && err.data?.session) {
            return err.data;
        }
        throw new Failure(`${what}: ${describe(err)}`);
    }
    throw new Failure(`${what}: expected 401 with more stages, got success`);
}
async function expectOk(what, call) {
    try {
        return await call();
    } catch (err) {
        if (err instanceof Failure) throw err;
        throw new Failure(`${what}: ${describe(err)}`);
    }
}

const base = sdk.createClient({ baseUrl: publicOrigin, fetchFn: proxiedFetch });
const state = {};
const message = `hello from ${username}, signed up with a token`;
const tokenStage = "m.login.registration_token";

const steps = [
    ["the name is available, then the first request lists the token stage first", async () => {
        const available = await expectOk("isUsernameAvailable", () => base.isUsernameAvailable(username));
        check(available === true, `isUsernameAvailable: expected true, got ${available}`);
        const first = await expectMoreStages("registerRequest", () => base.registerRequest({
            username,
            password,
            initial_device_display_name: "js-sdk sign-up",
        }));
        check(first.flows.some((f) => f.stages[0] === tokenStage),
            `flows: expected ${tokenStage} first, got ${JSON.stringify(first.flows)}`);
        state.session = first.session;
    }],
    ["the registration token completes its stage", async () => {
        const after = await expectMoreStages("token stage", () => base.registerRequest({
            auth: { type: tokenStage, token: registrationToken, session: state.session },
        }));
        check(JSON.stringify(after.completed) === JSON.stringify([tokenStage]),
            `completed: expected [${tokenStage}], got ${JSON.stringify(after.completed)}`);
    }],
    ["the dummy stage makes the account and its session", async () => {
        const done = await expectOk("dummy stage", () => base.registerRequest({
            auth: { type: "m.login.dummy", session: state.session },
        }));
        check(done.user_id?.startsWith(`@${username}:`), `user_id: got ${JSON.stringify(done)}`);
        check(typeof done.access_token === "string", "no access_token");
        state.client = sdk.createClient({
            baseUrl: publicOrigin,
            fetchFn: proxiedFetch,
            userId: done.user_id,
            deviceId: done.device_id,
            accessToken: done.access_token,
        });
        const whoami = await expectOk("whoami", () => state.client.whoami());
        check(whoami.user_id === done.user_id && whoami.device_id === done.device_id,
            `whoami: got ${JSON.stringify(whoami)}`);
    }],
    ["the new user creates a room, sends a message and reads it back by sync", async () => {
        const client = state.client;
        const { room_id: roomId } = await expectOk("createRoom", () =>
            client.createRoom({ name: "signed up" }));
        await expectOk("sendEvent", () => client.sendEvent(roomId, sdk.EventType.RoomMessage, {
            msgtype: sdk.MsgType.Text,
            body: message,
        }));
        await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Failure("no message by sync in 60 s")), 60_000);
            const seen = () => client.getRoom(roomId)?.getLiveTimeline().getEvents()
                .some((e) => e.getType() === "m.room.message" && e.getContent().body === message);
            client.on(sdk.RoomEvent.Timeline, () => {
                if (seen()) {
                    clearTimeout(timer);
                    resolve();
                }
            });
            client.on(sdk.ClientEvent.Sync, (syncState, _previous, data) => {
                if (syncState === "ERROR") reject(new Failure(`sync: ${describe(data?.error)}`));
                if (syncState === "PREPARED" && seen()) {
                    clearTimeout(timer);
                    resolve();
                }
            });
            client.startClient({ initialSyncLimit: 10 }).catch(reject);
        });
        client.stopClient();
    }],
];

let passed = 0;
let failed = 0;
for (const [title, run] of steps) {
    try {
        await run();
        passed += 1;
        console.log(`ok: ${title}`);
    } catch (err) {
        failed += 1;
        console.log(`FAILED: ${title}: ${err instanceof Failure ? err.message : describe(err)}`);
        break;
    }
}
console.log(`matrix-js-sdk ${sdkRequire("matrix-js-sdk/package.json").version}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
