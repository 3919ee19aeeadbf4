"""Schemathesis hooks for `cargo xtask conformance`.

Generated addresses almost never belong to a user, so nearly every valid
call would end in 404 and the success response would hardly be checked.
When a drawn body's `email` (or the status query's `email`) is itself a
valid address, three in four cases get the address of one of the users
the conformance run imported instead. A valid value is swapped for another
valid value, so which cases are valid and which are not is unchanged; the
fourth case keeps its drawn address and still exercises 404. The choice
is a function of the drawn address, so a fixed seed gives the same cases.

pwmail's own operation accepts less than its schema allows, by the
server's settings: a `return_to` under an allowed origin, a `ttl_secs` in
the configured range. A drawn value the schema accepts is mapped onto one
the server accepts (the run allows `RETURN_TO_ORIGIN`; the range is the
default 300..86400), and a value the schema refuses is left as drawn.
"""

import os
import re
import zlib

import schemathesis

PATTERN = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
USERS = int(os.environ.get("PWMAIL_CONFORMANCE_USERS", "0"))
TEMPLATE = os.environ.get("PWMAIL_CONFORMANCE_EMAIL", "user{}@conformance.example")
RETURN_TO_ORIGIN = os.environ.get("PWMAIL_CONFORMANCE_RETURN_TO", "https://app.conformance.example")
TTL_MIN, TTL_MAX = 300, 86400


def _known(drawn):
    if USERS == 0 or not isinstance(drawn, str):
        return drawn
    if len(drawn) > 1024 or not PATTERN.fullmatch(drawn):
        return drawn
    pick = zlib.crc32(drawn.encode("utf-8", "surrogatepass"))
    if pick % 4 == 0:
        return drawn
    return TEMPLATE.format(pick % USERS)


def _return_to(drawn):
    if not isinstance(drawn, str) or len(drawn) > 2048:
        return drawn
    return "{}/{}".format(RETURN_TO_ORIGIN, zlib.crc32(drawn.encode("utf-8", "surrogatepass")))


def _ttl(drawn):
    if isinstance(drawn, bool) or not isinstance(drawn, int) or not 300 <= drawn <= 604800:
        return drawn
    return TTL_MIN + (drawn - TTL_MIN) % (TTL_MAX - TTL_MIN + 1)


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict) and "email" in body:
        body["email"] = _known(body["email"])
    if isinstance(body, dict) and "return_to" in body:
        body["return_to"] = _return_to(body["return_to"])
    if isinstance(body, dict) and "ttl_secs" in body:
        body["ttl_secs"] = _ttl(body["ttl_secs"])
    return body


@schemathesis.hook
def map_query(ctx, query):
    if isinstance(query, dict) and "email" in query:
        query["email"] = _known(query["email"])
    return query
