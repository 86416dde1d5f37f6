"""SQLite persistence of the gateway: accounts, balances, received messages, the report queue, inbound traces.

One :class:`Store` per process (WAL, ``synchronous=NORMAL``, a pool of connections). Every ``/send``
batch is charged and stored in one transaction (:meth:`Store.send_batch`); the delivery-report queue
lives in the ``messages`` table (``report_status`` due / pending / sent / failed) so that it survives
restarts. The CLI commands use the same class directly on the file, server running or not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass

from .protocol import (
    NUMBER_RE,
    AccessError,
    InsufficientCreditError,
    OutgoingSms,
    ValidationError,
    country_of,
    from_micro,
    sms_parts,
    to_micro,
    utc_now_iso,
)

_logger = logging.getLogger("sms_gateway")



@dataclass(frozen=True)
class RetryPolicy:
    """When a delivery report whose POST failed is tried again: after ``base`` seconds, doubling at
    each attempt up to ``cap`` seconds between two attempts, and given up after ``max_attempts`` POSTs.

    The default spreads 12 attempts over about 5 hours (30 s, 1, 2, 4, 8, 16, 32 minutes, then hourly),
    so a receiver down for a restart or a maintenance window still gets its reports;
    :data:`FAST_RETRY_POLICY` (tests) gives up after about 7.5 seconds.

    >>> RetryPolicy().delays()[:4], round(RetryPolicy().window() / 3600, 1)
    ([30.0, 60.0, 120.0, 240.0], 5.1)
    >>> FAST_RETRY_POLICY.window()
    7.5
    """

    base: float = 30.0
    cap: float = 3600.0
    max_attempts: int = 12

    def __post_init__(self):
        if self.base <= 0 or self.cap < self.base or self.max_attempts < 1:
            raise ValueError("retry policy: need 0 < base <= cap and max_attempts >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.cap, self.base * 2 ** min(attempt - 1, 60))

    def delays(self) -> list[float]:
        """Every wait between two attempts."""
        return [self.delay(attempt) for attempt in range(1, self.max_attempts)]

    def window(self) -> float:
        """Seconds from the first attempt to the last one."""
        return sum(self.delays())


DEFAULT_RETRY_POLICY = RetryPolicy()
FAST_RETRY_POLICY = RetryPolicy(base=0.5, cap=0.5 * 2 ** 3, max_attempts=5)

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    token TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credits_micro INTEGER NOT NULL DEFAULT 0,
    default_price REAL NOT NULL DEFAULT 0.05,
    country_prices TEXT NOT NULL DEFAULT '{}',
    senders TEXT NOT NULL DEFAULT '[]',
    webhook_secret TEXT NOT NULL DEFAULT '',
    inbound_url TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    uuid TEXT PRIMARY KEY,
    account_token TEXT NOT NULL REFERENCES accounts(token),
    number TEXT NOT NULL,
    content TEXT NOT NULL,
    sender TEXT,
    sms_class TEXT NOT NULL,
    country TEXT,
    parts INTEGER NOT NULL,
    state TEXT NOT NULL,
    credits_micro INTEGER NOT NULL DEFAULT 0,
    presented_count INTEGER NOT NULL DEFAULT 1,
    repeat_count INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    webhook_url TEXT,
    report_status TEXT,
    report_due_at REAL,
    report_state TEXT,
    report_attempts INTEGER NOT NULL DEFAULT 0,
    report_count INTEGER NOT NULL DEFAULT 0,
    reported_at TEXT
);
CREATE INDEX IF NOT EXISTS messages_account ON messages(account_token);
CREATE INDEX IF NOT EXISTS messages_report_due ON messages(report_due_at) WHERE report_status = 'due';
CREATE TABLE IF NOT EXISTS inbound_messages (
    id INTEGER PRIMARY KEY,
    account_token TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_address TEXT NOT NULL,
    body TEXT NOT NULL,
    at TEXT NOT NULL,
    url TEXT NOT NULL,
    http_status INTEGER,
    error TEXT
);
"""

MESSAGE_UPSERT = """
INSERT INTO messages (uuid, account_token, number, content, sender, sms_class, country, parts, state,
                      credits_micro, received_at, webhook_url, report_status, report_due_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(uuid) DO UPDATE SET
    number = excluded.number, content = excluded.content, sender = excluded.sender,
    sms_class = excluded.sms_class, country = excluded.country, parts = excluded.parts, state = excluded.state,
    credits_micro = excluded.credits_micro, received_at = excluded.received_at,
    webhook_url = excluded.webhook_url, report_status = excluded.report_status,
    report_due_at = excluded.report_due_at, report_state = NULL, report_attempts = 0, report_count = 0,
    reported_at = NULL, presented_count = messages.presented_count + 1
WHERE messages.state != 'accepted'
"""

LIST_MESSAGES = """
SELECT uuid, account_token, number, content, sender, sms_class, country, parts, state, credits_micro,
       presented_count, repeat_count, received_at, webhook_url, report_status, report_state, report_attempts,
       report_count, reported_at
FROM messages WHERE ?1 IS NULL OR account_token = ?1 ORDER BY rowid DESC LIMIT ?2
"""


@dataclass(frozen=True)
class ReportJob:
    """One delivery report to post (``attempt`` counts from 1)."""

    uuid: str
    url: str
    secret: str
    state: str
    copies: int
    attempt: int


@dataclass(frozen=True)
class ReportResult:
    """Outcome of one report job: ``posted`` successful POSTs (0 means this attempt failed)."""

    uuid: str
    posted: int
    attempt: int
    at: str
    error: str | None


def _account_dict(row: sqlite3.Row) -> dict:
    return {
        "token": row["token"],
        "name": row["name"],
        "credits": from_micro(row["credits_micro"]),
        "default_price": row["default_price"],
        "country_prices": json.loads(row["country_prices"]),
        "senders": json.loads(row["senders"]),
        "webhook_secret": row["webhook_secret"],
        "inbound_url": row["inbound_url"],
        "created_at": row["created_at"],
    }


def _message_dict(row: sqlite3.Row) -> dict:
    message = dict(row)
    message["credits"] = from_micro(message.pop("credits_micro"))
    return message


class Store:
    """SQLite persistence (WAL, ``synchronous=NORMAL``) over a pool of connections.

    A connection serves one thread at a time (:meth:`connection`); the pool grows to the peak number of
    concurrent users and its connections are reused, never one per HTTP connection.
    """

    def __init__(self, path: str, retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY):
        """Open (creating if needed) the database at ``path`` and make sure the schema exists.
        ``retry_policy`` says when failed delivery-report POSTs are tried again."""
        self.path = path
        self.retry_policy = retry_policy
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        with self.connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=15, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=15000")
        with self._all_lock:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def connection(self):
        """Lend a pooled connection (autocommit mode) for the block; use :meth:`transaction` to write."""
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield conn
        finally:
            self._pool.put(conn)

    @contextlib.contextmanager
    def transaction(self, mode: str = "IMMEDIATE"):
        """Run the block in one transaction; commit on success, roll back on error.

        ``IMMEDIATE`` (the default) takes the write lock at once; ``DEFERRED`` suits consistent reads.
        """
        if mode not in ("IMMEDIATE", "DEFERRED"):
            raise ValueError(f"unknown transaction mode {mode!r}")
        with self.connection() as conn:
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every connection opened by this store."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._pool = queue.LifoQueue()

    # -- accounts ---------------------------------------------------------------------------------------------
    @staticmethod
    def _account_row(conn: sqlite3.Connection, token: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM accounts WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise AccessError("unknown account token")
        return row

    def account(self, token: str) -> dict:
        """Return one account as a dict; raise AccessError when the token is unknown."""
        with self.connection() as conn:
            return _account_dict(self._account_row(conn, token))

    def upsert_account(
        self,
        token: str,
        name: str,
        credits: float,
        price: float | None = None,
        country_prices: dict | None = None,
        senders: list | None = None,
        webhook_secret: str | None = None,
        inbound_url: str | None = None,
    ) -> tuple[dict, bool]:
        """Create the account or update it (name and credits always; other fields only when given).

        Returns ``(account, created)``. A new account without ``webhook_secret`` gets a random one.
        """
        with self.transaction() as conn:
            row = conn.execute("SELECT * FROM accounts WHERE token = ?", (token,)).fetchone()
            created = row is None
            if created:
                conn.execute(
                    "INSERT INTO accounts (token, name, credits_micro, default_price, country_prices, senders, "
                    "webhook_secret, inbound_url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        token,
                        name,
                        to_micro(credits),
                        0.05 if price is None else price,
                        json.dumps(country_prices or {}),
                        json.dumps(senders or []),
                        secrets.token_hex(16) if webhook_secret is None else webhook_secret,
                        inbound_url,
                        utc_now_iso(),
                    ),
                )
            else:
                conn.execute(
                    "UPDATE accounts SET name = ?, credits_micro = ?, default_price = ?, country_prices = ?, "
                    "senders = ?, webhook_secret = ?, inbound_url = ? WHERE token = ?",
                    (
                        name,
                        to_micro(credits),
                        row["default_price"] if price is None else price,
                        row["country_prices"] if country_prices is None else json.dumps(country_prices),
                        row["senders"] if senders is None else json.dumps(senders),
                        row["webhook_secret"] if webhook_secret is None else webhook_secret,
                        row["inbound_url"] if inbound_url is None else inbound_url,
                        token,
                    ),
                )
            account = _account_dict(self._account_row(conn, token))
        return account, created

    def topup(self, token: str, credits: float) -> float:
        """Add ``credits`` (may be negative) to the account balance and return the new balance."""
        with self.transaction() as conn:
            self._account_row(conn, token)
            conn.execute(
                "UPDATE accounts SET credits_micro = credits_micro + ? WHERE token = ?", (to_micro(credits), token)
            )
            return from_micro(self._account_row(conn, token)["credits_micro"])

    def list_accounts(self) -> list[dict]:
        """Return every account, oldest first."""
        with self.connection() as conn:
            rows = conn.execute("SELECT * FROM accounts ORDER BY created_at, token").fetchall()
        return [_account_dict(row) for row in rows]

    # -- sending ----------------------------------------------------------------------------------------------
    def send_batch(
        self,
        token: str,
        messages: list[OutgoingSms],
        webhook_url: str | None,
        credit_cap: float | None,
        report_delay: float,
    ) -> list[dict]:
        """Charge and store one batch in a single transaction; return the per-message results (same order).

        Already-accepted uuids answer ``accepted`` with 0 credits; other previously seen uuids are re-evaluated.
        Once one message cannot be paid, every later chargeable message is ``insufficient_credit``; when that
        happens to the batch's first message the whole call fails with InsufficientCreditError (nothing stored).
        """
        received_at, now = utc_now_iso(), time.time()
        report_status = "due" if webhook_url else None
        report_due_at = now + report_delay if webhook_url else None
        with self.transaction() as conn:
            account = self._account_row(conn, token)
            balance = account["credits_micro"]
            available = balance if credit_cap is None else min(balance, to_micro(credit_cap))
            default_price = to_micro(account["default_price"])
            country_prices = {code: to_micro(price) for code, price in json.loads(account["country_prices"]).items()}
            allowed_senders = set(json.loads(account["senders"]))
            known = self._known_uuids(conn, [message.uuid for message in messages])
            results, upserts, repeats = [], [], []
            accepted_now: set[str] = set()
            spent, out_of_credit = 0, False
            for index, message in enumerate(messages):
                previous = known.get(message.uuid)
                if previous is not None and previous[0] != token:
                    raise ValidationError(f"uuid {message.uuid} belongs to another account")
                if message.uuid in accepted_now or (previous is not None and previous[1] == "accepted"):
                    repeats.append((message.uuid,))
                    results.append({"uuid": message.uuid, "state": "accepted", "credits": 0.0})
                    continue
                parts = sms_parts(message.content)
                valid_number = NUMBER_RE.fullmatch(message.number) is not None
                country = country_of(message.number) if valid_number else None
                cost = parts * country_prices.get(country, default_price)
                charged = 0
                if not valid_number:
                    state = "wrong_number_format"
                elif allowed_senders and message.sender is not None and message.sender not in allowed_senders:
                    state = "invalid_sender"
                elif out_of_credit or cost > available - spent:
                    if index == 0:
                        raise InsufficientCreditError(
                            f"balance {from_micro(available)} cannot pay {from_micro(cost)} for the first message"
                        )
                    out_of_credit, state = True, "insufficient_credit"
                else:
                    state, charged = "accepted", cost
                    spent += cost
                    accepted_now.add(message.uuid)
                accepted = state == "accepted"
                upserts.append(
                    (
                        message.uuid,
                        token,
                        message.number,
                        message.content,
                        message.sender,
                        message.sms_class,
                        country,
                        parts,
                        state,
                        charged,
                        received_at,
                        webhook_url,
                        report_status if accepted else None,
                        report_due_at if accepted else None,
                    )
                )
                results.append({"uuid": message.uuid, "state": state, "credits": from_micro(charged)})
            conn.executemany(MESSAGE_UPSERT, upserts)
            conn.executemany(
                "UPDATE messages SET presented_count = presented_count + 1, repeat_count = repeat_count + 1 "
                "WHERE uuid = ?",
                repeats,
            )
            if spent:
                conn.execute("UPDATE accounts SET credits_micro = credits_micro - ? WHERE token = ?", (spent, token))
        return results

    @staticmethod
    def _known_uuids(conn: sqlite3.Connection, uuids: list[str]) -> dict[str, tuple[str, str]]:
        """Map each already-stored uuid of ``uuids`` to ``(account_token, state)``."""
        rows = conn.execute(
            "SELECT uuid, account_token, state FROM messages WHERE uuid IN (SELECT value FROM json_each(?))",
            (json.dumps(uuids),),
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    def status(self, token: str, uuids: list[str]) -> list[dict]:
        """The ``status`` method: ``{"uuid", "state", "at"}`` per uuid, in order. ``unknown``: this account
        never accepted the uuid; ``pending``: accepted, no report yet; else the report's state and date."""
        with self.transaction("DEFERRED") as conn:
            self._account_row(conn, token)
            rows = conn.execute(
                "SELECT uuid, state, report_state, reported_at FROM messages "
                "WHERE account_token = ? AND uuid IN (SELECT value FROM json_each(?))",
                (token, json.dumps(uuids)),
            ).fetchall()
        by_uuid = {row["uuid"].lower(): row for row in rows}
        answer = []
        for uuid in uuids:
            row = by_uuid.get(uuid)
            if row is None or row["state"] != "accepted":
                answer.append({"uuid": uuid, "state": "unknown", "at": None})
            elif row["report_state"]:
                answer.append({"uuid": uuid, "state": row["report_state"], "at": row["reported_at"]})
            else:
                answer.append({"uuid": uuid, "state": "pending", "at": None})
        return answer

    # -- reading ----------------------------------------------------------------------------------------------
    def list_messages(self, token: str | None = None, limit: int = 50) -> list[dict]:
        """Return the most recently stored messages (newest first), optionally for one account."""
        with self.connection() as conn:
            return [_message_dict(row) for row in conn.execute(LIST_MESSAGES, (token, limit))]

    def stats(self, token: str | None = None) -> dict:
        """Return counts by state, credits charged, presentations, duplicate-accept attempts and report counters."""
        with self.transaction("DEFERRED") as conn:  # one consistent snapshot for the three queries
            by_state = conn.execute(
                "SELECT state, COUNT(*), SUM(credits_micro), SUM(presented_count), SUM(repeat_count) FROM messages "
                "WHERE ?1 IS NULL OR account_token = ?1 GROUP BY state",
                (token,),
            ).fetchall()
            reports = conn.execute(
                "SELECT COALESCE(report_status, 'none'), report_state, COUNT(*), SUM(report_count) FROM messages "
                "WHERE ?1 IS NULL OR account_token = ?1 GROUP BY 1, 2",
                (token,),
            ).fetchall()
            inbound = conn.execute(
                "SELECT COUNT(*) FROM inbound_messages WHERE ?1 IS NULL OR account_token = ?1", (token,)
            ).fetchone()[0]
        report_status, report_state = {}, {}
        for status, state, count, _posts in reports:
            report_status[status] = report_status.get(status, 0) + count
            if state and status == "sent":
                report_state[state] = report_state.get(state, 0) + count
        return {
            "messages": sum(row[1] for row in by_state),
            "by_state": {row[0]: row[1] for row in by_state},
            "credits_charged": from_micro(sum(row[2] for row in by_state)),
            "presented_total": sum(row[3] for row in by_state),
            "duplicate_accept_attempts": sum(row[4] for row in by_state),
            "reports": {
                "by_status": report_status,
                "delivered_states": report_state,
                "posts": sum(row[3] for row in reports),
            },
            "inbound": inbound,
        }

    # -- delivery reports -------------------------------------------------------------------------------------
    def requeue_pending_reports(self) -> int:
        """Make reports claimed by a previous run (and never recorded) due again; return how many."""
        with self.transaction() as conn:
            return conn.execute("UPDATE messages SET report_status = 'due' WHERE report_status = 'pending'").rowcount

    def claim_due_reports(self, now: float, limit: int, draw) -> list[ReportJob]:
        """Mark up to ``limit`` due reports as pending and return them as jobs.

        ``draw()`` returns ``(state, copies)``; the state is kept only the first time a report is claimed, so a
        retried report keeps the state it was first given.
        """
        with self.connection() as conn:
            due = conn.execute(
                "SELECT 1 FROM messages WHERE report_status = 'due' AND report_due_at <= ? LIMIT 1", (now,)
            ).fetchone()
        if due is None:  # the common idle case takes no write lock
            return []
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT m.uuid, m.webhook_url, a.webhook_secret, m.report_state, m.report_attempts FROM messages m "
                "JOIN accounts a ON a.token = m.account_token "
                "WHERE m.report_status = 'due' AND m.report_due_at <= ? ORDER BY m.report_due_at, m.uuid LIMIT ?",
                (now, limit),
            ).fetchall()
            jobs = []
            for uuid, url, secret, previous_state, attempts in rows:
                state, copies = draw()
                jobs.append(ReportJob(uuid, url, secret, previous_state or state, copies, attempts + 1))
            conn.executemany(
                "UPDATE messages SET report_status = 'pending', report_state = ? WHERE uuid = ?",
                [(job.state, job.uuid) for job in jobs],
            )
        return jobs

    def record_report_results(self, results: list[ReportResult]) -> None:
        """Store the outcome of report POSTs: sent, due again later (with backoff) or failed for good."""
        now = time.time()
        sent, retry, failed = [], [], []
        for result in results:
            if result.posted:
                sent.append((result.at, result.posted, result.uuid))
            elif result.attempt >= self.retry_policy.max_attempts:
                failed.append((result.uuid,))
                _logger.warning(
                    "giving up on delivery report %s after %d attempts: %s", result.uuid, result.attempt, result.error
                )
            else:
                retry.append((now + self.retry_policy.delay(result.attempt), result.uuid))
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE messages SET report_status = 'sent', reported_at = ?, report_count = report_count + ?, "
                "report_attempts = report_attempts + 1 WHERE uuid = ?",
                sent,
            )
            conn.executemany(
                "UPDATE messages SET report_status = 'due', report_due_at = ?, report_attempts = report_attempts + 1 "
                "WHERE uuid = ?",
                retry,
            )
            conn.executemany(
                "UPDATE messages SET report_status = 'failed', report_attempts = report_attempts + 1 WHERE uuid = ?",
                failed,
            )

    # -- inbound ----------------------------------------------------------------------------------------------
    def inbound_account(self, token: str | None, to_address: str) -> dict:
        """Pick the account an inbound message is for.

        That is the account of ``token`` when given, else the one allowing sender ``to_address``, else the only one.
        """
        if token:
            return self.account(token)
        accounts = self.list_accounts()
        matching = [account for account in accounts if to_address in account["senders"]]
        candidates = matching or accounts
        if len(candidates) != 1:
            raise ValidationError("cannot tell which account the inbound message is for: give its token")
        return candidates[0]

    def record_inbound(self, token: str, payload: dict, url: str, http_status: int | None, error: str | None):
        """Keep a trace of one inbound callback."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO inbound_messages (account_token, from_number, to_address, body, at, url, http_status, "
                "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (token, payload["from"], payload["to"], payload["body"], payload["at"], url, http_status, error),
            )
