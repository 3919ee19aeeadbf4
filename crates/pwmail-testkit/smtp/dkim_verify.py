"""Verifies a message's DKIM signature with dkimpy, an implementation
independent of pwmail's signer. The DNS answer is given on the command
line (the TXT record the operator would publish), so no DNS is asked.

    dkim_verify.py MESSAGE_FILE SELECTOR._domainkey.DOMAIN "v=DKIM1; k=...; p=..."

Prints "ok a=<algorithm> d=<domain> s=<selector> h=<headers>" and exits 0
when the signature verifies; prints dkimpy's reason and exits 1 when not.
"""

import logging
import sys

import dkim


def main():
    path, name, record = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, "rb") as f:
        message = f.read()

    def dns(qname, timeout=5):
        asked = qname.decode() if isinstance(qname, bytes) else qname
        if asked.rstrip(".") != name.rstrip("."):
            sys.stderr.write(f"asked for {asked}, not {name}\n")
            return None
        return record.encode()

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    verifier = dkim.DKIM(message, logger=logging.getLogger("dkimpy"))
    if not verifier.verify(dnsfunc=dns):
        print("failed (dkimpy's reasons are on stderr)")
        sys.exit(1)
    sig = dict(verifier.signature_fields)
    fields = {k.decode(): v.decode() for k, v in sig.items()}
    print(f"ok a={fields['a']} d={fields['d']} s={fields['s']} h={fields['h']}")


if __name__ == "__main__":
    main()
