"""A real SMTP server (aiosmtpd) for pwmail's tests.

Delivers into a Maildir. Knobs: TLS mode (none, starttls, tls) with a test CA
made by trustme, AUTH with one user, a script of replies for the first
DATA commands (e.g. "451,451" refuses twice, then delivers; "550" refuses),
recipients refused at RCPT (--refuse-rcpt PREFIX), and whether EHLO offers
PIPELINING (as real relays do; aiosmtpd reads pipelined commands either way,
and logs "pipelined MAIL" when RCPT had arrived with MAIL).
Listens on --port (0: a free port, bound here and kept, so no other
process can take it between choosing and binding) and writes the port it
listens on to --ready-file once it accepts connections.
"""

import argparse
import asyncio
import os
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


# How long a scripted stall (reply 0) keeps a DATA command unanswered.
STALL_SECS = 60


class ScriptedMailbox(Mailbox):
    def __init__(self, maildir, script, pipelining, refuse_rcpt):
        super().__init__(maildir)
        self.script = list(script)
        self.attempts = 0
        self.pipelining = pipelining
        self.refuse_rcpt = refuse_rcpt

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # What the client wrote after MAIL before waiting for its reply.
        if b"RCPT" in bytes(server._reader._buffer):
            sys.stderr.write("pipelined MAIL\n")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt and address.startswith(self.refuse_rcpt):
            sys.stderr.write(f"refused RCPT {address}\n")
            return f"550 5.1.1 scripted refusal of {address}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.script:
            reply = self.script.pop(0)
            if reply == "0":
                # No answer: the client's timeout must give up on us.
                sys.stderr.write(f"scripted stall on attempt {self.attempts}\n")
                await asyncio.sleep(STALL_SECS)
                return "451 scripted stall"
            sys.stderr.write(f"scripted reply {reply} to attempt {self.attempts}\n")
            return f"{reply} scripted reply {reply}"
        return await super().handle_DATA(server, session, envelope)


class BoundController(Controller):
    """A Controller serving a socket already bound (and kept bound)."""

    def __init__(self, handler, sock, **kwargs):
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        # handled=False makes aiosmtpd answer 535 itself.
        return AuthResult(success=ok, handled=False)

    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--tls-mode", choices=["none", "starttls", "tls"], default="none")
    p.add_argument("--ca-out", help="where to write the test CA (PEM)")
    p.add_argument("--auth", help="USER:PASSWORD required to send")
    p.add_argument("--script", default="", help="comma-separated replies for the first DATA commands")
    p.add_argument("--no-pipelining", action="store_true", help="EHLO does not offer PIPELINING")
    p.add_argument("--refuse-rcpt", default="", help="refuse recipients starting with this (550)")
    p.add_argument("--ready-file", required=True)
    args = p.parse_args()

    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
    script = [s for s in args.script.split(",") if s]
    handler = ScriptedMailbox(args.maildir, script, not args.no_pipelining, args.refuse_rcpt)

    kwargs = {}
    if args.tls_mode != "none":
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        ca.cert_pem.write_to_path(args.ca_out)
        if args.tls_mode == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
    if args.auth:
        user, password = args.auth.split(":", 1)
        kwargs.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=args.tls_mode != "none",
        )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", args.port))
    controller = BoundController(handler, sock, **kwargs)
    controller.start()
    with open(args.ready_file + ".tmp", "w") as f:
        f.write(str(controller.port))
    os.replace(args.ready_file + ".tmp", args.ready_file)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
