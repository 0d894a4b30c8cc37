#!/usr/bin/env python3
"""A real SMTP server for the email sink's end-to-end test (aiosmtpd).

Listens on 127.0.0.1:PORT; requires STARTTLS (with the given certificate
and key) before anything else, and a login (AUTH PLAIN or LOGIN, only
after STARTTLS) as the one user given, before MAIL. Each accepted message
is written to OUT as NNNNN.eml (the exact bytes received) and NNNNN.json
({"mail_from", "rcpt_tos", "at_ms"}: the envelope and when it arrived),
the .json last and by rename, so a reader that sees it sees both whole.
Prints READY on stdout once listening; stops on SIGTERM or SIGINT.

    python3 server.py --port 2525 --cert cert.pem --key key.pem \
        --user forewarn --password secret --out /tmp/mail
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    """Writes each accepted message and its envelope into a directory."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()
        self.count = len([f for f in os.listdir(out) if f.endswith(".json")])

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.out, "%05d" % n)
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "at_ms": int(time.time() * 1000),
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        # handled=False: aiosmtpd answers the refusal (535) itself.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(a.cert, a.key)
    controller = Controller(
        Store(a.out),
        hostname="127.0.0.1",
        port=a.port,
        server_hostname="smtp.forewarn.test",
        tls_context=tls,
        require_starttls=True,
        auth_require_tls=True,
        auth_required=True,
        authenticator=authenticator(a.user, a.password),
    )
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("READY", flush=True)
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
