"""A real SMTP server for homekey's mail tests (tests/it/mail.rs): aiosmtpd on loopback.

Every message received is written to DIR as <n>.eml (the bytes as received), with <n>.json
holding the envelope (MAIL FROM, RCPT TO), the headers, the MIME types of the parts and the
text and HTML parts decoded by Python's own mail parser. A recipient at refused.invalid is
refused (550). Prints "ready" once it listens; runs until killed.

    python smtp_server.py --port PORT --dir DIR [--starttls CERT KEY] [--auth USER:PASSWORD]
"""

import argparse
import email
import email.policy
import json
import os
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@refused.invalid"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            name = os.path.join(self.directory, str(self.count))
        message = email.message_from_bytes(
            envelope.original_content, policy=email.policy.default
        )
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        parsed = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "headers": {name: str(value) for name, value in message.items()},
            "types": [part.get_content_type() for part in message.walk()],
            "charsets": [part.get_content_charset() for part in message.walk()],
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        with open(name + ".json", "w") as f:
            json.dump(parsed, f)
        # Written last, under a temporary name: a test that sees <n>.eml sees all of it.
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(name + ".tmp", name + ".eml")
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth")
    args = parser.parse_args()

    options = {}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        options["tls_context"] = context
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            # handled=False: aiosmtpd answers 535 itself on a failure.
            return AuthResult(success=ok, handled=False)

        options["authenticator"] = authenticator
        options["auth_require_tls"] = False
    controller = Controller(
        Store(args.dir), hostname="127.0.0.1", port=args.port, **options
    )
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
