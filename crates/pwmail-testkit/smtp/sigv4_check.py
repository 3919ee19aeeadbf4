"""Recomputes the SigV4 signature of a request moto recorded, with
botocore's signer (independent of the aws-sigv4 crate pwmail signs with).

    sigv4_check.py RECORDING_LINE_JSON ACCESS_KEY_ID SECRET_KEY REGION

Signs the same method, URL, body and the headers the request's
SignedHeaders lists, at its X-Amz-Date, and prints "match" and the
signature, or "mismatch" with both signatures (exit status 1).
"""

import base64
import json
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main():
    entry = json.loads(sys.argv[1])
    key_id, secret, region = sys.argv[2], sys.argv[3], sys.argv[4]
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    body = entry.get("body") or ""
    body = base64.b64decode(body) if entry.get("body_encoded") else body.encode()

    authorization = headers["authorization"]
    parts = dict(
        p.strip().split("=", 1) for p in authorization.split(" ", 1)[1].split(",")
    )
    signed = parts["SignedHeaders"].split(";")
    sent_signature = parts["Signature"]

    url = entry["url"]
    if url.startswith("/"):
        url = f"http://{headers['host']}{url}"
    request = AWSRequest(
        method=entry["method"],
        url=url,
        data=body,
        headers={name: headers[name] for name in signed},
    )
    auth = SigV4Auth(Credentials(key_id, secret), "ses", region)
    request.context["timestamp"] = headers["x-amz-date"]
    # botocore chooses the headers it signs; it must choose the same ones.
    chosen = auth.signed_headers(auth.headers_to_sign(request))
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    expected = auth.signature(string_to_sign, request)
    if expected == sent_signature and chosen == parts["SignedHeaders"]:
        print(f"match {expected}")
        return
    print(f"mismatch: sent {sent_signature} over {parts['SignedHeaders']}, "
          f"botocore {expected} over {chosen}\n{canonical}")
    sys.exit(1)


if __name__ == "__main__":
    main()
