// A real Matrix client library, matrix-js-sdk (the library Element Web is built on), against a
// running homekey: log in, whoami, change the password through user-interactive auth, list and
// delete devices, log out. Every call goes through the library's own methods, and UIA through
// its own InteractiveAuth driver, as Element does. See README.md; run.sh sets everything up.
//
//   node account_flow.mjs BASE_URL USER_ID PASSWORD
//
// The user must exist with PASSWORD and no other session. The script changes the password
// twice. HOMEKEY_JS_SDK_DIR names the node_modules folder holding matrix-js-sdk (run.sh
// installs it outside the repository); without it, the usual resolution applies.
//
// Prints one line per step and a closing "matrix-js-sdk: N passed, N failed, N skipped";
// exits 1 if any step failed, 2 on bad usage. HOMEKEY_CLIENT_TRACE=1 prints each request as
// it is made (passwords and tokens redacted).

import { createRequire } from "node:module";
import { isDeepStrictEqual } from "node:util";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [baseUrl, userId, password1] = process.argv.slice(2);
if (!baseUrl || !userId || !password1) {
    console.error("usage: node account_flow.mjs BASE_URL USER_ID PASSWORD");
    process.exit(2);
}
const password2 = `${password1}-second`;
const password3 = `${password1}-third`;
const localpart = userId.replace(/^@/, "").split(":")[0];

// matrix-js-sdk is resolved from HOMEKEY_JS_SDK_DIR when given (run.sh installs it outside the
// repository), else from this folder as usual.
const sdkRequire = createRequire(
    process.env.HOMEKEY_JS_SDK_DIR
        ? path.join(process.env.HOMEKEY_JS_SDK_DIR, "resolve-from-here.js")
        : import.meta.url,
);
const importSdk = (specifier) => import(pathToFileURL(sdkRequire.resolve(specifier)).href);
const sdk = await importSdk("matrix-js-sdk");
const { logger } = await importSdk("matrix-js-sdk/lib/logger.js");
// The library logs its own view of every failed request; this script reports failures itself.
logger.setLevel(process.env.HOMEKEY_CLIENT_TRACE ? "debug" : "silent");
const sdkVersion = sdkRequire("matrix-js-sdk/package.json").version;

// ---------------------------------------------------------------- requests the library makes

/** Every request the library sent: method, path (query without values), status. */
const requests = [];
const REDACT = new Set(["password", "new_password", "access_token", "token"]);
const redact = (value) =>
    JSON.stringify(value, (key, v) => (REDACT.has(key) && typeof v === "string" ? "<redacted>" : v));

/** The fetch the library is given: the real one, recorded. */
async function recordingFetch(resource, init = {}) {
    const url = new URL(resource instanceof Request ? resource.url : String(resource));
    const query = [...url.searchParams.keys()].map((k) => `${k}=…`).join("&");
    const entry = {
        method: (init.method ?? "GET").toUpperCase(),
        path: url.pathname + (query ? `?${query}` : ""),
        body: typeof init.body === "string" ? JSON.parse(init.body) : undefined,
        status: null,
    };
    requests.push(entry);
    if (process.env.HOMEKEY_CLIENT_TRACE) {
        const body = entry.body === undefined ? "" : ` ${redact(entry.body)}`;
        console.error(`  -> ${entry.method} ${entry.path}${body}`);
    }
    const response = await fetch(resource, init);
    entry.status = response.status;
    if (process.env.HOMEKEY_CLIENT_TRACE) console.error(`  <- ${response.status}`);
    return response;
}

function newClient(opts = {}) {
    return sdk.createClient({
        baseUrl,
        fetchFn: recordingFetch,
        localTimeoutMs: 30_000,
        ...opts,
    });
}

/** A logged-in client made from a login response, as the library advises (not `login()`). */
function clientFor(login, opts = {}) {
    return newClient({
        userId: login.user_id,
        deviceId: login.device_id,
        accessToken: login.access_token,
        ...opts,
    });
}

// ---------------------------------------------------------------- assertions

class Failure extends Error {}

function fail(message) {
    throw new Failure(message);
}

function check(condition, message) {
    if (!condition) fail(message);
}

/** "404 M_UNRECOGNIZED (Unrecognized request)" for a library error; never the URL (tokens). */
function describe(err) {
    if (err instanceof sdk.MatrixError) {
        const detail = err.data?.error ? ` (${err.data.error})` : "";
        return `${err.httpStatus ?? "no status"} ${err.errcode ?? "without errcode"}${detail}`;
    }
    if (err?.httpStatus) return `${err.httpStatus} (not a Matrix error body: ${err.message})`;
    return `${err?.name ?? "error"}: ${err?.message ?? err}`;
}

/** Runs `call` (a library call); on a library error, fails with `what: expected …, got …`. */
async function expectOk(what, expected, call) {
    try {
        return await call();
    } catch (err) {
        if (err instanceof Failure) throw err;
        fail(`${what}: expected ${expected}, got ${describe(err)}`);
    }
}

/** Runs `call`, which must be refused with exactly `status` and `errcode`. */
async function expectError(what, status, errcode, call) {
    let result;
    try {
        result = await call();
    } catch (err) {
        if (err instanceof sdk.MatrixError && err.httpStatus === status && err.errcode === errcode) {
            return err;
        }
        fail(`${what}: expected ${status} ${errcode}, got ${describe(err)}`);
    }
    fail(`${what}: expected ${status} ${errcode}, got success ${JSON.stringify(result)}`);
}

function withTimeout(what, promise, ms = 60_000) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Failure(`${what}: no answer within ${ms / 1000} s`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Drives one user-interactive-auth request with the library's InteractiveAuth, answering the
 * m.login.password stage with `password`. `makeRequest(auth)` is the library call (auth is
 * null on a first request the library makes itself). With `authData` (the body of a 401 the
 * caller already got) the library starts from it, as Element's device deletion does.
 * Returns the final response and every UIA round trip the driver made.
 */
async function interactiveAuth(what, client, makeRequest, password, authData) {
    const rounds = [];
    let submitted = 0;
    let settle;
    const abandoned = new Promise((_, reject) => (settle = reject));
    const auth = new sdk.InteractiveAuth({
        matrixClient: client,
        authData,
        async doRequest(authDict) {
            const round = { auth: authDict ?? null };
            rounds.push(round);
            try {
                round.result = await makeRequest(authDict ?? null);
                return round.result;
            } catch (err) {
                round.error = err;
                throw err;
            }
        },
        stateUpdated(stage, status) {
            submitted++;
            if (submitted > 1 && !status.errcode) {
                const last = rounds.at(-1)?.error;
                settle(new Failure(`${what}: the server asked for the ${stage} stage again after it was ` +
                    `answered: ${last ? describe(last) : "?"} ${JSON.stringify(last?.data ?? null)}`));
                return;
            }
            if (status.errcode || status.error) {
                settle(new Failure(`${what}: the ${stage} stage was refused: ${status.errcode} (${status.error})`));
                return;
            }
            if (stage !== sdk.AuthType.Password) {
                settle(new Failure(`${what}: the library chose the stage ${stage}, expected m.login.password`));
                return;
            }
            auth.submitAuthDict({
                type: sdk.AuthType.Password,
                identifier: { type: "m.id.user", user: client.getUserId() },
                password,
            }).catch((err) => settle(err));
        },
        requestEmailToken() {
            settle(new Failure(`${what}: the library was asked for an email token`));
            return Promise.reject(new Error("no email here"));
        },
    });
    let result;
    try {
        result = await withTimeout(what, Promise.race([auth.attemptAuth(), abandoned]));
    } catch (err) {
        if (err instanceof Failure) throw err;
        if (err instanceof sdk.NoAuthFlowFoundError) {
            fail(`${what}: no flow the library can complete with a password: flows ${JSON.stringify(err.flows)}`);
        }
        const first = rounds[0];
        if (!authData && rounds.length === 1 && first.error) {
            fail(`${what}: expected 401 with a UIA session and flows, got ${describe(first.error)}`);
        }
        fail(`${what}: ${describe(err)} (after ${rounds.length} request(s))`);
    }
    return { result, rounds, sessionId: auth.getSessionId() };
}

/** The checks every first UIA answer must pass: 401, a session, a password flow. */
function checkUiaChallenge(what, data) {
    check(typeof data?.session === "string" && data.session.length > 0,
        `${what}: the 401 has no session: ${JSON.stringify(data)}`);
    const flows = Array.isArray(data.flows) ? data.flows : [];
    check(flows.some((flow) => Array.isArray(flow.stages) && flow.stages.includes("m.login.password")),
        `${what}: the 401's flows lack m.login.password: ${JSON.stringify(data.flows)}`);
}

// ---------------------------------------------------------------- the steps

const state = {};
const passwordLogin = (user, password, deviceName) => ({
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password,
    initial_device_display_name: deviceName,
});

const steps = [
    {
        id: "a",
        title: "log in with the password (two sessions)",
        async run() {
            const login = await expectOk("login by localpart", "200 with an access token", () =>
                newClient().loginRequest(passwordLogin(localpart, password1, "homekey interop A")));
            check(login.user_id === userId, `login: user_id is ${login.user_id}, expected ${userId}`);
            check(typeof login.device_id === "string" && login.device_id, `login: no device_id: ${redact(login)}`);
            check(typeof login.access_token === "string" && login.access_token, "login: no access_token");
            state.a = clientFor(login);
            state.aLogin = login;

            // A second session from another client instance, with the library's deprecated
            // loginWithPassword (top-level `user`, the full ID) and the token in the query
            // string (useAuthorizationHeader: false), as older clients do.
            const b = newClient({ useAuthorizationHeader: false });
            const loginB = await expectOk("second login (legacy `user`)", "200 with an access token", () =>
                b.loginWithPassword(userId, password1));
            check(loginB.user_id === userId, `second login: user_id is ${loginB.user_id}`);
            check(loginB.device_id && loginB.device_id !== login.device_id,
                `second login: device_id ${loginB.device_id} is not a new device`);
            state.b = b;
            state.bDevice = loginB.device_id;
            const whoB = await expectOk("whoami of the second session (?access_token=)", "200", () => b.whoami());
            check(whoB.user_id === userId, `whoami of the second session: user_id ${whoB.user_id}`);
        },
    },
    {
        id: "b",
        title: "whoami",
        needs: ["a"],
        async run() {
            const who = await expectOk("whoami", "200", () => state.a.whoami());
            check(who.user_id === userId, `whoami: user_id is ${who.user_id}, expected ${userId}`);
            check(who.device_id === state.aLogin.device_id,
                `whoami: device_id is ${who.device_id}, expected ${state.aLogin.device_id}`);
        },
    },
    {
        id: "c",
        title: "change the password with user-interactive auth (InteractiveAuth, setPassword)",
        needs: ["a"],
        async run() {
            const what = "password change";
            // logout_devices is left out: it defaults to true.
            const { result, rounds } = await interactiveAuth(what, state.a,
                (auth) => state.a.setPassword(auth, password2), password1);
            const first = rounds[0];
            check(first.error, `${what}: succeeded without user-interactive auth`);
            check(first.error.httpStatus === 401,
                `${what}: expected 401 with a UIA session, got ${describe(first.error)}`);
            checkUiaChallenge(what, first.error.data);
            check(rounds.length === 2, `${what}: took ${rounds.length} requests, expected 2`);
            check(rounds[1].auth?.session === first.error.data.session,
                `${what}: the library did not send the session back`);
            check(isDeepStrictEqual(result, {}), `${what}: expected 200 {}, got ${JSON.stringify(result)}`);

            await expectError("after the password change, the other session's whoami", 401, "M_UNKNOWN_TOKEN",
                () => state.b.whoami());
            const who = await expectOk("after the password change, the changing session's whoami",
                "200 (logout_devices keeps the requester's own session)", () => state.a.whoami());
            check(who.user_id === userId, `whoami after the change: user_id ${who.user_id}`);
        },
    },
    {
        id: "d",
        title: "log in with the new password; the old one is refused",
        needs: ["c"],
        async run() {
            const login = await expectOk("login with the new password", "200", () =>
                newClient().loginRequest(passwordLogin(userId, password2, "homekey interop C")));
            check(login.user_id === userId, `login with the new password: user_id ${login.user_id}`);
            state.c = clientFor(login);
            state.cDevice = login.device_id;
            await expectError("login with the old password", 403, "M_FORBIDDEN", () =>
                newClient().loginRequest(passwordLogin(localpart, password1)));
        },
    },
    {
        id: "e",
        title: "list devices; delete one with user-interactive auth (deleteMultipleDevices)",
        needs: ["d"],
        async run() {
            const listed = await expectOk("devices", "200 with a device list", () => state.a.getDevices());
            check(Array.isArray(listed?.devices), `devices: no devices array: ${JSON.stringify(listed)}`);
            const ids = listed.devices.map((d) => d.device_id).sort();
            const expected = [state.aLogin.device_id, state.cDevice].sort();
            check(isDeepStrictEqual(ids, expected),
                `devices: expected ${JSON.stringify(expected)} (the password change deletes the other ` +
                `session's device ${state.bDevice}, as Synapse does), got ${JSON.stringify(ids)}`);
            const mine = listed.devices.find((d) => d.device_id === state.aLogin.device_id);
            check(mine.display_name === "homekey interop A",
                `devices: display_name of this device is ${JSON.stringify(mine.display_name)}`);

            // Element's way: ask without auth, then hand the 401 to InteractiveAuth.
            const what = "device deletion";
            const del = (auth) => state.a.deleteMultipleDevices([state.cDevice], auth ?? undefined);
            let challenge;
            try {
                const result = await del(undefined);
                fail(`${what}: succeeded without user-interactive auth: ${JSON.stringify(result)}`);
            } catch (err) {
                if (err instanceof Failure) throw err;
                check(err instanceof sdk.MatrixError && err.httpStatus === 401,
                    `${what}: expected 401 with a UIA session, got ${describe(err)}`);
                challenge = err.data;
            }
            checkUiaChallenge(what, challenge);
            const { result, rounds } = await interactiveAuth(what, state.a, del, password2, challenge);
            check(rounds.length === 1 && rounds[0].auth?.session === challenge.session,
                `${what}: expected one request carrying the session, got ${rounds.length}`);
            check(isDeepStrictEqual(result, {}), `${what}: expected 200 {}, got ${JSON.stringify(result)}`);

            await expectError("whoami of the deleted device", 401, "M_UNKNOWN_TOKEN", () => state.c.whoami());
            const after = await expectOk("devices after the deletion", "200", () => state.a.getDevices());
            const left = after.devices.map((d) => d.device_id);
            check(isDeepStrictEqual(left, [state.aLogin.device_id]),
                `devices after the deletion: expected only ${state.aLogin.device_id}, got ${JSON.stringify(left)}`);
        },
    },
    {
        id: "g",
        title: "change the password as Element Web's settings do (one request, no session)",
        needs: ["d"],
        async run() {
            // Element Web's ChangePassword sends the password stage at once, with no session
            // and the deprecated top-level `user` beside `identifier`; Synapse accepts that.
            const what = "one-shot password change";
            const result = await expectOk(what, "200 {}", () => state.a.setPassword({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: userId },
                user: userId,
                password: password2,
            }, password3, false));
            check(isDeepStrictEqual(result, {}), `${what}: expected 200 {}, got ${JSON.stringify(result)}`);
            await expectOk(`${what}: the session's whoami after it`, "200", () => state.a.whoami());
            const d = newClient();
            const login = await expectOk(`${what}: login with the newest password`, "200", () =>
                d.loginRequest(passwordLogin(localpart, password3)));
            const client = clientFor(login);
            await expectOk(`${what}: logout of that login`, "200", () => client.logout());
        },
    },
    {
        id: "f",
        title: "log out; the token is then refused",
        needs: ["a"],
        async run() {
            const result = await expectOk("logout", "200 {}", () => state.a.logout());
            check(isDeepStrictEqual(result, {}), `logout: expected {}, got ${JSON.stringify(result)}`);
            await expectError("whoami with the logged-out token", 401, "M_UNKNOWN_TOKEN",
                () => state.a.whoami());
        },
    },
];

// ---------------------------------------------------------------- run them

const outcome = {};
let passed = 0;
let failed = 0;
let skipped = 0;
console.log(`matrix-js-sdk ${sdkVersion} against ${baseUrl} as ${userId}`);
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
        const message = err instanceof Failure ? err.message : `unexpected: ${err?.stack ?? err}`;
        console.log(`FAIL ${step.id}. ${step.title}\n     ${message}`);
    }
}

console.log("requests the library made:");
for (const r of requests) console.log(`  ${r.method} ${r.path} -> ${r.status ?? "no answer"}`);
console.log(`matrix-js-sdk: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
