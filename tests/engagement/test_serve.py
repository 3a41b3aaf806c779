"""Door 1 of SPEC 10 end to end on real parts: emails sent through the aiosmtpd sink, their
pixel, click and unsubscribe URLs hit over sockets on ``sequencer serve`` (uvicorn, its own
process), the spool ingested into a DuckDB file, and the effect at the next send."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from pipelines.channels.tracking import EPOCH_DAY, Tracker
from pipelines.db import connect
from pipelines.engagement.spool import SPOOL_DIR, load_spool
from pipelines.outbox.send import send_due
from pipelines.workspace import load_workspace
from tests.delivery_fixtures import (
    ENV,
    SECRET,
    action_rows,
    add_action,
    seed_contacts,
    write_workspace,
)

T0 = dt.datetime(2026, 3, 2, 14, 30)
TODAY = int(time.time()) // EPOCH_DAY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(root: Path, env: dict[str, str]):
    """``sequencer serve`` in its own process; yields an httpx client bound to it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--project", str(root),
         "--port", str(port)],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {proc.communicate()[1].decode()}")
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            client.port, client.proc = port, proc
            yield client
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=10)


def path_of(url: str) -> str:
    return urlsplit(html.unescape(url)).path


def links(message) -> dict[str, str]:
    """The tracking URLs of a received email, as paths (the sink knows no tracking host)."""
    markup = message.get_body(("html",)).get_content()
    return {
        "open": path_of(re.search(r'<img src="([^"]+/o/[^"]+)"', markup).group(1)),
        "click": path_of(re.search(r'href="([^"]+/c/[^"]+)"', markup).group(1)),
        "unsubscribe": path_of(message["List-Unsubscribe"].strip("<>")),
    }


def stored(con) -> list[tuple]:
    return con.execute(
        "select contact_id, type, sequence, step, message_id, detail from activities"
        " where type <> 'email_sent' order by type"
    ).fetchall()


@pytest.fixture
def sent(tmp_path, smtp_sink):
    """One email sent to c1 through the sink (step ``intro`` tracks opens and clicks and has
    the unsubscribe link); the database file, workspace and received message."""
    con = connect(tmp_path / "db.duckdb")
    seed_contacts(con)
    root = write_workspace(tmp_path / "ws", smtp_sink.port)
    ws = load_workspace(root)
    add_action(con, "c1", "intro", T0)
    assert send_due(con, ws, T0 + dt.timedelta(hours=1), env=ENV, backoff=lambda a: 0).sent == 1
    [received] = smtp_sink.messages
    yield con, ws, root, received.message
    con.close()


def test_pixel_click_and_unsubscribe_become_activities_and_the_next_email_is_suppressed(sent):
    con, ws, root, msg = sent
    urls = links(msg)
    with server(root, ENV) as http:
        pixel = http.get(urls["open"], headers={"User-Agent": "Mozilla/5.0 (Windows) Outlook"})
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
        assert http.get(urls["open"], headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
        click = http.get(urls["click"], follow_redirects=False)
        assert click.status_code == 302
        assert click.headers["location"] == "https://acme.example/deck?a=1&b=2"
        page = http.get(urls["unsubscribe"])  # the page: a button, nothing recorded yet
        assert page.status_code == 200 and '<form method="post">' in page.text
        assert "<script" not in page.text.lower()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        one_click = http.post(
            urls["unsubscribe"], content=b"List-Unsubscribe=One-Click", headers=form
        )
        assert one_click.status_code == 200
    [result] = load_spool(con, root)
    assert (result.loaded, result.quarantined) == (4, 0)
    rows = stored(con)
    mid = msg["Message-ID"]
    assert [r[:5] for r in rows] == [
        ("c1", "email_clicked", "outbound", "intro", mid),
        ("c1", "email_opened", "outbound", "intro", mid),
        ("c1", "email_opened", "outbound", "intro", mid),
        ("c1", "unsubscribed", "outbound", "intro", mid),
    ]
    details = [json.loads(r[5]) for r in rows]
    assert details[0]["url"] == "https://acme.example/deck?a=1&b=2"
    assert sorted(d.get("machine", False) for d in details[1:3]) == [False, True]
    assert details[3]["one_click"] is True
    assert load_spool(con, root) == []  # loaded exactly once: nothing new
    assert len(stored(con)) == 4
    # the unsubscribe (stamped now by the server's clock) has its effect: the next email to
    # c1 due after it is not sent
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    later = add_action(con, "c1", "bump", now, day=3)
    send_due(con, ws, now + dt.timedelta(minutes=5), env=ENV, backoff=lambda a: 0)
    assert action_rows(con)[later]["status"] == "skipped"


def test_a_token_works_only_for_its_purpose_and_forgeries_record_nothing(sent):
    con, ws, root, msg = sent
    urls = links(msg)
    pixel_token = urls["open"].removeprefix("/o/").removesuffix(".gif")
    unsub_token = urls["unsubscribe"].removeprefix("/u/")
    body, sig = unsub_token.split(".")
    forged = Tracker("", b"guessed-secret", "c1", "<x@y>", "outbound", "intro", TODAY)
    with server(root, ENV) as http:
        misuse = [
            http.post(f"/u/{pixel_token}"),  # the pixel URL cannot unsubscribe
            http.get(f"/u/{pixel_token}"),
            http.get(f"/o/{unsub_token}.gif"),
            http.get(f"/c/{pixel_token}", follow_redirects=False),
            http.post(f"/u/{body}x.{sig}"),  # altered payload
            http.post(f"/u/{body}.{sig[:-2]}"),  # altered signature
            http.post(forged.unsubscribe_url()),  # signed with another secret
            http.get("/c/<script>alert(1)</script>"),
        ]
        assert [r.status_code for r in misuse] == [404] * len(misuse)
        assert all("script" not in r.text for r in misuse)
        # HEAD answers like GET and records nothing (link checkers, prefetchers)
        assert http.head(urls["open"]).status_code == 200
        assert http.head(urls["click"]).status_code == 302
        assert http.get("/healthz").json()["events_written"] == 0
    assert load_spool(con, root) == []  # nothing was spooled
    assert stored(con) == []


def test_rotation_accepts_the_previous_secret_and_an_expired_pixel_records_nothing(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "users.yaml").write_text(
        'tracking: {base_url: "https://t.example", secret_env: [NEW_SECRET, OLD_SECRET]}\n'
    )
    env = {"NEW_SECRET": "new", "OLD_SECRET": "old"}
    old = Tracker("", b"old", "c1", "<m1@x>", "s", "e1", TODAY)
    new = Tracker("", b"new", "c2", "<m2@x>", "s", "e1", TODAY)
    gone = Tracker("", b"other", "c3", "<m3@x>", "s", "e1", TODAY)
    stale = Tracker("", b"new", "c4", "<m4@x>", "s", "e1", TODAY - 401)
    with server(root, env) as http:
        assert http.post(old.unsubscribe_url()).status_code == 200
        assert http.post(new.unsubscribe_url()).status_code == 200
        assert http.post(gone.unsubscribe_url()).status_code == 404
        assert http.get(stale.open_url()).status_code == 200  # still a GIF, not recorded
        assert http.post(stale.unsubscribe_url()).status_code == 200  # unsubscribe: years
    con = connect(tmp_path / "db.duckdb")
    load_spool(con, root)
    assert con.execute(
        "select contact_id, type from activities order by contact_id"
    ).fetchall() == [("c1", "unsubscribed"), ("c2", "unsubscribed"), ("c4", "unsubscribed")]


def test_the_spool_loads_complete_lines_only_and_each_once(tmp_path):
    """A line without its newline (an unanswered request) waits; what follows loads once."""
    spool = tmp_path / SPOOL_DIR
    spool.mkdir(parents=True)
    row = {"contact_id": "c1", "type": "email_opened", "occurred_at": "2026-03-02T10:00:00Z"}
    lines = [json.dumps({**row, "activity_id": f"srv:{i}"}) for i in range(3)]
    (spool / "events-1.jsonl").write_text(lines[0] + "\n" + lines[1][:20])
    con = connect(tmp_path / "db.duckdb")
    assert [r.loaded for r in load_spool(con, tmp_path)] == [1]
    with (spool / "events-1.jsonl").open("a") as f:
        f.write(lines[1][20:] + "\n" + "not json\n" + lines[2] + "\n")
    [again] = load_spool(con, tmp_path)
    assert (again.loaded, again.quarantined) == (2, 1)
    assert con.execute("select line, reason from quarantine").fetchall() == [
        (3, "invalid JSON")
    ]  # the line number counts the lines loaded before
    assert load_spool(con, tmp_path) == []
    assert con.execute("select count(*) from activities").fetchone() == (3,)


@pytest.mark.slow
def test_killing_the_server_mid_load_loses_no_acknowledged_event(tmp_path):
    """20 clients unsubscribe distinct contacts as fast as they can; once 300 are answered the
    server is SIGKILLed with requests in flight (its disk made slow, so some are written and
    not yet answered). Every request answered 200 must be in the
    spool and load (bounded: at most 5000 requests, a 2 s timeout each)."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "users.yaml").write_text(
        'tracking: {base_url: "https://t.example", secret_env: TRACKING_SECRET}\n'
    )
    acked: set[str] = set()
    tried = iter(range(5000))

    async def hammer(http) -> None:
        async with httpx.AsyncClient(base_url=str(http.base_url), timeout=2) as client:

            async def worker() -> None:
                for i in tried:
                    t = Tracker("", SECRET.encode(), f"c{i}", f"<m{i}@x>", "s", "e1", TODAY)
                    try:
                        response = await client.post(t.unsubscribe_url())
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 200:
                        acked.add(f"c{i}")
                    if len(acked) == 300:
                        os.kill(http.proc.pid, signal.SIGKILL)

            await asyncio.gather(*(worker() for _ in range(20)))

    slow_disk = {"TRACKING_SECRET": SECRET, "SEQUENCER_SPOOL_FSYNC_DELAY": "0.01"}
    with server(root, slow_disk) as http:
        asyncio.run(hammer(http))
        assert http.proc.wait(timeout=10) == -signal.SIGKILL
    assert 300 <= len(acked) < 5000
    con = connect(tmp_path / "db.duckdb")
    load_spool(con, root)
    loaded = {c for (c,) in con.execute("select contact_id from activities").fetchall()}
    assert acked <= loaded
    assert con.execute("select count(*) from quarantine").fetchone() == (0,)
