"""Bench scenario d: every reset link in MAIL_DIR submitted at once.

usage: reset_storm.py HOST:PORT MAIL_DIR COUNT

Waits until COUNT links are in MAIL_DIR's .eml files, opens one connection
per link, sends every POST before reading any answer, and prints JSON: how
many got 200 (password set) and 503 (hash queue full), the time until the
last answer, hashes per second and per-request latency percentiles.
Standard library only.
"""

import asyncio
import email
import email.policy
import json
import pathlib
import re
import secrets
import sys
import time

LINK = re.compile(r"/reset/([A-Za-z0-9_-]{20,})")


def links(mail_dir: pathlib.Path) -> list[str]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        match = LINK.search(body.get_content() if body else "")
        if match:
            found.append(match.group(1))
    return found


async def submit(host: str, port: int, token: str) -> tuple[int, float]:
    password = f"lantern-{secrets.token_hex(6)}-quasar"
    form = f"password={password}&password_confirm={password}".encode()
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    writer.write(
        (
            f"POST /reset/{token} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(form)}\r\n\r\n"
        ).encode()
        + form
    )
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()  # until the server closes
    elapsed = time.monotonic() - started
    writer.close()
    return int(status_line.split()[1]), elapsed


async def main() -> None:
    address, mail_dir, count = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + 120
    tokens = links(mail_dir)
    while len(tokens) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        tokens = links(mail_dir)
    if len(tokens) < count:
        sys.exit(f"only {len(tokens)} of {count} links arrived")
    started = time.monotonic()
    results = await asyncio.gather(*(submit(host, int(port), t) for t in tokens[:count]))
    total = time.monotonic() - started
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies = sorted(elapsed for _, elapsed in results)
    done = statuses.get("200", 0)
    print(
        json.dumps(
            {
                "submissions": count,
                "statuses": statuses,
                "password_set": done,
                "busy_503": statuses.get("503", 0),
                "all_answered_secs": total,
                "hashes_per_sec": done / total,
                "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
            }
        )
    )


asyncio.run(main())
