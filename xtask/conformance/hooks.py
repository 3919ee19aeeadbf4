"""Schemathesis hooks for `cargo xtask conformance`.

Generated addresses almost never belong to a user, so nearly every valid
call would end in 404 and the success response would hardly be checked.
When a drawn body's `email` (or the status query's `email`) is itself a
valid address, three in four cases get the address of one of the users
the conformance run imported instead. A valid value is swapped for another
valid value, so which cases are valid and which are not is unchanged; the
fourth case keeps its drawn address and still exercises 404. The choice
is a function of the drawn address, so a fixed seed gives the same cases.
"""

import os
import re
import zlib

import schemathesis

PATTERN = re.compile(r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$")
USERS = int(os.environ.get("PWMAIL_CONFORMANCE_USERS", "0"))
TEMPLATE = os.environ.get("PWMAIL_CONFORMANCE_EMAIL", "user{}@conformance.example")


def _known(drawn):
    if USERS == 0 or not isinstance(drawn, str):
        return drawn
    if len(drawn) > 1024 or not PATTERN.fullmatch(drawn):
        return drawn
    pick = zlib.crc32(drawn.encode("utf-8", "surrogatepass"))
    if pick % 4 == 0:
        return drawn
    return TEMPLATE.format(pick % USERS)


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict) and "email" in body:
        body["email"] = _known(body["email"])
    return body


@schemathesis.hook
def map_query(ctx, query):
    if isinstance(query, dict) and "email" in query:
        query["email"] = _known(query["email"])
    return query
