"""The SQL store on SQLite and PostgreSQL: migrations, events, outbox, multi-process writers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from services.store import db
from services.store.db import (
    DatabaseError,
    current_revision,
    head_revision,
    make_engine,
    transaction,
    upgrade,
)
from services.store.events import count_by_outcome, count_commands, recent_events, record_event, refused_users
from services.store.models import Base
from services.store.outbox import (
    MAX_ATTEMPTS,
    due,
    enqueue,
    get,
    mark_delivered,
    mark_failed,
    mark_sent_to,
    pending_count,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


# --- schema -------------------------------------------------------------------------------------


def test_upgrade_is_idempotent_and_records_head(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    tables = set(inspect(make_engine(db_url)).get_table_names())
    assert {"events", "outbox", "alembic_version"} <= tables

    started = time.perf_counter()
    upgrade(db_url)
    assert time.perf_counter() - started < 0.5  # the no-op path is one query, not an Alembic run
    assert current_revision(db_url) == head_revision()


def test_head_revision_agrees_with_alembic() -> None:
    assert head_revision() == db._alembic_head()


def test_models_match_the_migration(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_back(engine: Engine, db_url: str) -> None:
    from alembic import command

    with transaction(engine, write=True) as conn:
        cfg = db.alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not {"events", "outbox"} & set(inspect(engine).get_table_names())
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()


def test_concurrent_upgrades_on_a_fresh_database(db_url: str) -> None:
    code = """
        import sys
        from services.store.db import upgrade
        upgrade(sys.argv[1])
    """
    procs = [_python(code, db_url) for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert current_revision(db_url) == head_revision()


def test_sqlite_connections_use_wal_and_pragmas(sqlite_url: str) -> None:
    assert not Path(_sqlite_path(sqlite_url)).parent.exists()
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
        }
    assert pragma == {"journal_mode": "wal", "busy_timeout": 5000, "synchronous": 1, "foreign_keys": 1}


def test_make_engine_is_cached_and_rewrites_postgres_driver(sqlite_url: str) -> None:
    assert make_engine(sqlite_url) is make_engine(sqlite_url)
    assert make_engine("postgresql://u@127.0.0.1/x").url.drivername == "postgresql+psycopg"
    assert make_engine("postgres://u@127.0.0.1/x") is make_engine("postgresql+psycopg://u@127.0.0.1/x")


def test_unreachable_postgres_is_a_readable_database_error() -> None:
    url = "postgresql://aistack:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(DatabaseError) as info:
        upgrade(url)
    message = str(info.value)
    assert message.startswith(
        "cannot open database at postgresql+psycopg://aistack:***@127.0.0.1:1/nowhere: "
    )
    assert message.endswith("; check DATABASE_URL")
    assert "s3cret" not in message and "\n" not in message


def test_unopenable_sqlite_is_a_readable_database_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    pattern = r"^cannot open database at sqlite:///.*not-a-dir.*check DATABASE_URL$"
    with pytest.raises(DatabaseError, match=pattern):
        upgrade(f"sqlite:///{tmp_path / 'not-a-dir' / 'aistack.db'}")


# --- events -------------------------------------------------------------------------------------


def test_events_recorded_counted_and_listed(engine: Engine) -> None:
    record_event(engine, kind="command", command="help", outcome="ok", at=T0 - timedelta(days=2))  # too old
    first = record_event(engine, kind="command", command="status", outcome="ok", chat_id=-100123456789,
                         user_id=42, username="me", at=T0)
    record_event(engine, kind="command", command="status", outcome="ok", user_id=42,
                 at=T0 + timedelta(minutes=1))
    record_event(engine, kind="callback", command="restart", outcome="error", detail="boom",
                 at=T0 + timedelta(minutes=2))
    record_event(engine, kind="command", command="help", outcome="refused", user_id=7, username="eve",
                 at=T0 + timedelta(minutes=3))
    record_event(engine, kind="message", command="chat", outcome="refused", user_id=7, username="eve",
                 at=T0 + timedelta(minutes=4))
    record_event(engine, kind="command", command="help", outcome="refused", user_id=8,
                 at=T0 + timedelta(minutes=5))
    since = T0 - timedelta(days=1)

    assert count_by_outcome(engine, since) == {"ok": 2, "error": 1, "refused": 3}
    assert count_commands(engine, since) == [("status", 2), ("restart", 1)]
    assert refused_users(engine, since) == [(7, "eve", 2), (8, None, 1)]

    recent = recent_events(engine, limit=3)
    assert [e.command for e in recent] == ["help", "chat", "help"]
    assert recent[0].at == T0 + timedelta(minutes=5) and recent[0].at.tzinfo is not None
    errors = recent_events(engine, outcome="error")
    assert [(e.command, e.kind, e.detail) for e in errors] == [("restart", "callback", "boom")]
    status = next(e for e in recent_events(engine, limit=50) if e.id == first)
    assert (status.chat_id, status.user_id, status.username) == (-100123456789, 42, "me")


def test_event_defaults_and_validation(engine: Engine) -> None:
    event_id = record_event(engine, kind="command", command="x" * 500, outcome="ok", args="y" * 5000)
    (event,) = recent_events(engine, limit=1)
    assert event.id == event_id and event.command == "x" * 64 and event.args == "y" * 5000
    assert abs(event.at - datetime.now(UTC)) < timedelta(seconds=10)
    with pytest.raises(ValueError, match="outcome 'denied' is not one of ok, error, refused"):
        record_event(engine, kind="command", command="help", outcome="denied")


# --- outbox -------------------------------------------------------------------------------------


def test_outbox_enqueue_due_and_deliver(engine: Engine) -> None:
    item_id = enqueue(engine, "<b>deploy done</b>", source="hook", format="html",
                      buttons=[[("Logs", "logs:1"), ("Undo", "undo:1")], [["Ok", "ack"]]], now=T0)
    plain_id = enqueue(engine, "second", now=T0 + timedelta(seconds=1))
    assert item_id is not None and plain_id is not None
    assert pending_count(engine) == 2
    assert due(engine, now=T0 - timedelta(seconds=1)) == []

    items = due(engine, now=T0 + timedelta(seconds=5))
    assert [i.id for i in items] == [item_id, plain_id]
    first = items[0]
    assert (first.text, first.format, first.source) == ("<b>deploy done</b>", "html", "hook")
    assert first.attempts == 0
    assert first.buttons == [[("Logs", "logs:1"), ("Undo", "undo:1")], [("Ok", "ack")]]
    assert first.delivered_to == frozenset() and first.created_at == T0 and first.status == "pending"
    assert items[1].format == "text" and items[1].source == "cli" and items[1].buttons is None

    mark_sent_to(engine, item_id, 111)
    mark_sent_to(engine, item_id, 111)
    mark_sent_to(engine, item_id, -100222)
    item = get(engine, item_id)
    assert item is not None and item.delivered_to == frozenset({111, -100222})

    mark_delivered(engine, item_id, now=T0 + timedelta(seconds=6))
    item = get(engine, item_id)
    assert item is not None and item.status == "delivered" and item.delivered_at == T0 + timedelta(seconds=6)
    assert [i.id for i in due(engine, now=T0 + timedelta(days=1))] == [plain_id]
    assert pending_count(engine) == 1
    assert get(engine, 999_999) is None
    with pytest.raises(LookupError, match="outbox item 999999 does not exist"):
        mark_delivered(engine, 999_999)


def test_outbox_backoff_retry_after_and_dead(engine: Engine) -> None:
    item_id = enqueue(engine, "flaky", now=T0)
    assert item_id is not None
    delays = []
    now = T0
    for _ in range(10):
        next_at = mark_failed(engine, item_id, "network down", now=now)
        delays.append((next_at - now).total_seconds())
        assert due(engine, now=next_at - timedelta(milliseconds=1)) == []
        assert [i.id for i in due(engine, now=next_at)] == [item_id]
        now = next_at
    assert delays == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]

    next_at = mark_failed(engine, item_id, "Flood control exceeded", now=now, retry_after=37)
    assert next_at == now + timedelta(seconds=37)
    item = get(engine, item_id)
    assert item is not None
    assert (item.attempts, item.last_error, item.status) == (11, "Flood control exceeded", "pending")
    assert item.next_attempt_at == next_at

    for _ in range(MAX_ATTEMPTS - 11):
        mark_failed(engine, item_id, "x" * 5000, now=now)
    item = get(engine, item_id)
    assert item is not None and (item.attempts, item.status) == (MAX_ATTEMPTS, "dead")
    assert item.last_error is not None and len(item.last_error) == 1000
    assert due(engine, now=now + timedelta(days=365)) == []
    assert pending_count(engine) == 0


def test_outbox_dedupe_window(engine: Engine) -> None:
    hour = timedelta(hours=1)
    first = enqueue(engine, "stranger 7 knocked", dedupe_key="stranger:7", dedupe_window=hour, now=T0)
    assert first is not None
    minute = timedelta(minutes=1)
    assert enqueue(engine, "again", dedupe_key="stranger:7", dedupe_window=hour, now=T0 + 50 * minute) is None
    assert enqueue(engine, "other", dedupe_key="stranger:8", dedupe_window=hour, now=T0 + minute)
    later = enqueue(engine, "back", dedupe_key="stranger:7", dedupe_window=hour, now=T0 + 61 * minute)
    assert later is not None and later != first
    # Without a window the key is only stored, never used to drop a message.
    assert enqueue(engine, "no window", dedupe_key="stranger:7", now=T0 + timedelta(minutes=62)) is not None
    assert pending_count(engine) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "  "}, "outbox text is empty"),
        ({"text": "hi", "format": "markdown"}, "outbox format 'markdown' is not one of text, html"),
        ({"text": "hi", "buttons": [["just-a-label"]]}, "must be a \\[label, callback_data\\] pair"),
        ({"text": "hi", "buttons": [[("Go", "x" * 65)]]}, "longer than Telegram's 64 bytes"),
    ],
)
def test_outbox_rejects_bad_messages(sqlite_url: str, kwargs: dict[str, object], message: str) -> None:
    upgrade(sqlite_url)
    with pytest.raises(ValueError, match=message):
        enqueue(make_engine(sqlite_url), **kwargs)  # type: ignore[arg-type]


def test_raw_sql_insert_gets_database_defaults(engine: Engine) -> None:
    with transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            # The server default must be UTC whatever the session's time zone is.
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'Pacific/Auckland'")
        conn.execute(text("INSERT INTO outbox(source, text) VALUES ('hook', 'raw row')"))
    (item,) = due(engine)
    assert (item.text, item.source, item.format, item.status, item.attempts) == ("raw row", "hook", "text",
                                                                                  "pending", 0)
    assert item.delivered_to == frozenset() and item.buttons is None
    assert abs(item.created_at - datetime.now(UTC)) < timedelta(seconds=10)
    assert abs(item.next_attempt_at - datetime.now(UTC)) < timedelta(seconds=10)


def test_stdlib_sqlite3_writer_in_another_process(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    first = enqueue(engine, "from the CLI")  # the bot's engine holds the DB open meanwhile
    code = """
        import json, sqlite3, sys
        conn = sqlite3.connect(sys.argv[1], timeout=5)
        with conn:
            conn.execute(
                "INSERT INTO outbox(created_at, source, text, format, status, attempts, next_attempt_at,"
                " delivered_to) VALUES (datetime('now'), 'hook', ?, 'text', 'pending', 0,"
                " datetime('now'), '[]')",
                ("pushed to main",),
            )
            conn.execute(
                "INSERT INTO outbox(source, text, buttons) VALUES ('hook', ?, ?)",
                ("with buttons", json.dumps([[["Open", "open:1"]]])),
            )
        conn.close()
    """
    proc = _python(code, _sqlite_path(sqlite_url))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

    items = due(engine, now=datetime.now(UTC) + timedelta(seconds=1))
    assert [(i.text, i.source) for i in items] == [("from the CLI", "cli"), ("pushed to main", "hook"),
                                                  ("with buttons", "hook")]
    assert items[0].id == first
    hook = items[1]
    assert hook.created_at.tzinfo is UTC and abs(hook.created_at - datetime.now(UTC)) < timedelta(seconds=10)
    assert items[2].buttons == [[("Open", "open:1")]]


def test_two_processes_writing_at_once_lose_nothing(engine: Engine, db_url: str, tmp_path: Path) -> None:
    writes = 200
    code = """
        import sys, time
        from datetime import timedelta
        from pathlib import Path
        from services.store.db import make_engine
        from services.store.events import record_event
        from services.store.outbox import enqueue

        url, me, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
        engine = make_engine(url)
        with engine.connect():
            pass
        Path(f"{go}.{me}").touch()
        while not go.exists():
            time.sleep(0.005)
        for i in range(n):
            if i % 2:
                record_event(engine, kind="command", command=f"writer{me}", outcome="ok", args=str(i))
            else:  # read-then-write: the dedupe lookup must not be refused by the other writer's lock
                enqueue(engine, f"{me}-{i}", dedupe_key=f"{me}-{i}", dedupe_window=timedelta(hours=1))
    """
    go = tmp_path / "go"
    procs = [_python(code, db_url, str(me), str(writes), str(go)) for me in (1, 2)]
    deadline = time.monotonic() + 30
    while not all(Path(f"{go}.{me}").exists() for me in (1, 2)):
        alive = all(p.poll() is None for p in procs)
        assert alive and time.monotonic() < deadline, [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert "locked" not in err

    since = datetime.now(UTC) - timedelta(hours=1)
    assert dict(count_commands(engine, since)) == {"writer1": writes // 2, "writer2": writes // 2}
    assert pending_count(engine) == writes
