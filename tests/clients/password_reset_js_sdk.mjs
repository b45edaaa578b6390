// The e-mail password reset of legacy clients through matrix-js-sdk's own calls, as Element
// Web's "Forgot password?" makes them: `requestPasswordEmailToken`, then `setPassword` with
// the e-mail stage's `threepid_creds` (refused until the mailed link is confirmed), against a
// running homekey. Driven by tests/it/email_reset.rs, which reads the mail and confirms the
// link in between.
//
//   node password_reset_js_sdk.mjs BASE_URL EMAIL CONFIRMED_FILE
//
// The new password is in HOMEKEY_NEW_PASSWORD. Prints "sid <sid>" once the mail is asked
// for, "refused before confirming <errcode>", then waits for CONFIRMED_FILE to exist and
// prints "reset" once `setPassword` succeeded. Exits 1 on any other outcome.
// HOMEKEY_JS_SDK_DIR names the node_modules folder holding matrix-js-sdk.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [baseUrl, email, confirmedFile] = process.argv.slice(2);
const newPassword = process.env.HOMEKEY_NEW_PASSWORD;
if (!baseUrl || !email || !confirmedFile || !newPassword) {
    console.error("usage: HOMEKEY_NEW_PASSWORD=… node password_reset_js_sdk.mjs BASE_URL EMAIL CONFIRMED_FILE");
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

const client = sdk.createClient({ baseUrl });
const clientSecret = client.generateClientSecret();
const { sid } = await client.requestPasswordEmailToken(email, clientSecret, 1);
console.log(`sid ${sid}`);

// Both spellings, as Element sends them.
const creds = { sid, client_secret: clientSecret };
const auth = { type: "m.login.email.identity", threepid_creds: creds, threepidCreds: creds };
try {
    await client.setPassword(auth, newPassword, true);
    console.log("setPassword succeeded before the link was confirmed");
    process.exit(1);
} catch (err) {
    if (err.httpStatus !== 401) {
        console.log(`unexpected refusal ${err.httpStatus} ${err.errcode}`);
        process.exit(1);
    }
    console.log(`refused before confirming ${err.data?.errcode ?? err.errcode}`);
}

const deadline = Date.now() + 30_000;
while (!existsSync(confirmedFile)) {
    if (Date.now() > deadline) {
        console.log("the link was never confirmed");
        process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
}
await client.setPassword(auth, newPassword, true);
console.log("reset");
