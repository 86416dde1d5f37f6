#!/usr/bin/env python3
"""Local SMS gateway speaking the project's IAP-style gateway protocol (version 1).

A real HTTP server (standard library only) for demos and tests of ``sms_marketing_ext``:

* JSON-RPC 2.0 routes ``<base>/api/sms/1/balance``, ``/prices`` and ``/send``;
* accounts, balances and every received message persisted in SQLite (WAL), one transaction per batch;
* per-uuid idempotency (an accepted uuid is never charged twice) with a per-uuid ``presented_count``;
* signed delivery reports (``X-SMS-Signature``) posted by background workers, signed inbound messages on demand;
* fault injection (503s, lost responses, timeouts, latency, credit cap), changeable at runtime;
* loopback-only admin routes under ``/_admin/`` and a CLI working directly on the SQLite file.

Run ``python3 gateway/sms_gateway.py --help`` (or ``python3 -m gateway --help``) from the repository root.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import queue
import random
import re
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_logger = logging.getLogger("sms_gateway")

MAX_BATCH = 1000
MICRO = 1_000_000  # balances and charges are stored as integer micro-credits: no float drift
MAX_BODY_BYTES = 16 * 1024 * 1024
SIGNATURE_HEADER = "X-SMS-Signature"
API_ROUTES = ("balance", "prices", "send")
SMS_CLASSES = frozenset({"standard", "flash", "sim"})
REPORT_STATES = ("delivered", "undelivered", "expired", "rejected")
REPORT_MAX_ATTEMPTS = 5
REPORT_RETRY_BASE_SECONDS = 0.5
CALLBACK_TIMEOUT_SECONDS = 5.0
NUMBER_RE = re.compile(r"\+[0-9]{8,15}")
UUID_RE = re.compile(r"[0-9a-fA-F]{32}")

# E.164 country calling code -> ISO 3166 alpha-2. Calling codes are prefix-free, so the first match wins.
# fmt: off
COUNTRY_CODES = {
    "1": "US", "7": "RU", "20": "EG", "27": "ZA", "30": "GR", "31": "NL", "32": "BE", "33": "FR", "34": "ES",
    "36": "HU", "39": "IT", "40": "RO", "41": "CH", "43": "AT", "44": "GB", "45": "DK", "46": "SE", "47": "NO",
    "48": "PL", "49": "DE", "51": "PE", "52": "MX", "54": "AR", "55": "BR", "56": "CL", "57": "CO", "60": "MY",
    "61": "AU", "62": "ID", "63": "PH", "64": "NZ", "65": "SG", "66": "TH", "81": "JP", "82": "KR", "84": "VN",
    "86": "CN", "90": "TR", "91": "IN", "92": "PK", "212": "MA", "213": "DZ", "216": "TN", "221": "SN",
    "225": "CI", "234": "NG", "237": "CM", "254": "KE", "351": "PT", "352": "LU", "353": "IE", "354": "IS",
    "356": "MT", "358": "FI", "359": "BG", "370": "LT", "371": "LV", "372": "EE", "377": "MC", "380": "UA",
    "385": "HR", "386": "SI", "420": "CZ", "421": "SK", "852": "HK", "886": "TW", "966": "SA", "971": "AE",
    "972": "IL", "974": "QA",
}
# fmt: on

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION
MAX_BMP_CODE_POINT = 0xFFFF

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


# --------------------------------------------------------------------------------------------------------------
# Errors, small helpers
# --------------------------------------------------------------------------------------------------------------
class GatewayError(Exception):
    """A failure of a whole call, answered as a JSON-RPC error whose ``data.name`` is :attr:`name`."""

    name = "ServerError"


class AccessError(GatewayError):
    """Bad or missing account token."""

    name = "AccessError"


class InsufficientCreditError(GatewayError):
    """The account cannot pay for even the first message of the batch."""

    name = "InsufficientCreditError"


class ValidationError(GatewayError):
    """Malformed request or params."""

    name = "ValidationError"


def utc_now_iso() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds and a ``Z`` suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_micro(credits: float) -> int:
    """Convert a credit amount to integer micro-credits."""
    return round(float(credits) * MICRO)


def from_micro(micro: int) -> float:
    """Convert integer micro-credits back to a credit amount."""
    return micro / MICRO


def sign(secret: str, body: bytes) -> str:
    """Return the ``X-SMS-Signature`` value: hex HMAC-SHA256 of the raw body keyed with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def default_db_path() -> str:
    """Return the default SQLite path: ``$SMS_GATEWAY_DB``, else ``$SMS_EXT_STATE_DIR/gateway.sqlite3``."""
    if os.environ.get("SMS_GATEWAY_DB"):
        return os.environ["SMS_GATEWAY_DB"]
    state_dir = os.environ.get("SMS_EXT_STATE_DIR") or os.path.expanduser("~/.local/share/sms_marketing_ext")
    return os.path.join(state_dir, "gateway.sqlite3")


def _is_astral(char: str) -> bool:
    return ord(char) > MAX_BMP_CODE_POINT


def sms_parts(content: str) -> int:
    """Count the SMS parts ``content`` is charged for (3GPP TS 23.038, same rules as the addon's sms_segments).

    GSM-7 when every character is in the basic or extension table (an extension character costs 2 septets),
    else UCS-2 in UTF-16 units (a character outside the BMP costs 2). One part holds 160 septets / 70 units;
    longer texts use parts of 153 / 67 and a 2-unit item is never split across two parts. An empty text is
    charged as one part.
    """
    if set(content) <= GSM7_ALL:
        single, multi, is_double = 160, 153, GSM7_EXTENSION.__contains__
        doubles = sum(content.count(char) for char in GSM7_EXTENSION)
    else:
        single, multi, is_double = 70, 67, _is_astral
        doubles = len(content.encode("utf-16-le")) // 2 - len(content)
    length = len(content) + doubles
    if length <= single:
        return 1
    if not doubles:
        return -(-length // multi)
    parts, used = 1, 0
    for char in content:
        cost = 2 if is_double(char) else 1
        if used + cost > multi:
            parts, used = parts + 1, 0
        used += cost
    return parts


def country_of(number: str) -> str | None:
    """ISO country code of an E.164 number (``+33...`` -> ``FR``), or None when the prefix is unknown."""
    digits = number[1:]
    for size in (1, 2, 3):
        country = COUNTRY_CODES.get(digits[:size])
        if country:
            return country
    return None


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` (a peer IP address) is a loopback address, IPv4-mapped IPv6 included."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


# --------------------------------------------------------------------------------------------------------------
# Request validation
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutgoingSms:
    """One validated message of a /send batch."""

    uuid: str
    number: str
    content: str
    sender: str | None
    sms_class: str


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


def require_params(params) -> dict:
    """Check that JSON-RPC params are an object."""
    if not isinstance(params, dict):
        raise ValidationError("params must be a JSON object")
    return params


def require_token(params: dict) -> str:
    """Return ``params.account_token`` or raise AccessError when it is missing (existence is checked later)."""
    token = params.get("account_token")
    if not isinstance(token, str) or not token:
        raise AccessError("missing account_token")
    return token


def validate_send_params(params: dict) -> tuple[str | None, list[OutgoingSms]]:
    """Validate /send params and return ``(webhook_url, messages)``; raise ValidationError when malformed."""
    webhook_url = params.get("webhook_url")
    if webhook_url is not None and (
        not isinstance(webhook_url, str) or not webhook_url.startswith(("http://", "https://"))
    ):
        raise ValidationError("webhook_url must be null or an http(s) URL")
    messages = params.get("messages")
    if not isinstance(messages, list):
        raise ValidationError("messages must be a list")
    if len(messages) > MAX_BATCH:
        raise ValidationError(f"a batch holds at most {MAX_BATCH} messages, got {len(messages)}")
    validated = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ValidationError(f"{where} must be an object")
        uuid = message.get("uuid")
        if not isinstance(uuid, str) or not UUID_RE.fullmatch(uuid):
            raise ValidationError(f"{where}.uuid must be 32 hex characters")
        number, content, sender = message.get("number"), message.get("content"), message.get("sender")
        if not isinstance(number, str):
            raise ValidationError(f"{where}.number must be a string")
        if not isinstance(content, str):
            raise ValidationError(f"{where}.content must be a string")
        if sender is not None and not isinstance(sender, str):
            raise ValidationError(f"{where}.sender must be a string or null")
        sms_class = message.get("sms_class") or "standard"
        if sms_class not in SMS_CLASSES:
            raise ValidationError(f"{where}.sms_class must be one of {sorted(SMS_CLASSES)}")
        validated.append(OutgoingSms(uuid, number, content, sender or None, sms_class))
    return webhook_url, validated


# --------------------------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------------------------
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

    def __init__(self, path: str):
        """Open (creating if needed) the database at ``path`` and make sure the schema exists."""
        self.path = path
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
            elif result.attempt >= REPORT_MAX_ATTEMPTS:
                failed.append((result.uuid,))
                _logger.warning(
                    "giving up on delivery report %s after %d attempts: %s", result.uuid, result.attempt, result.error
                )
            else:
                retry.append((now + REPORT_RETRY_BASE_SECONDS * 2 ** (result.attempt - 1), result.uuid))
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


# --------------------------------------------------------------------------------------------------------------
# Outgoing signed callbacks
# --------------------------------------------------------------------------------------------------------------
class CallbackClient:
    """Posts signed JSON bodies, keeping one keep-alive connection per (scheme, host, port)."""

    def __init__(self, timeout: float = CALLBACK_TIMEOUT_SECONDS):
        """Create a client whose connects and reads time out after ``timeout`` seconds."""
        self.timeout = timeout
        self._connections: dict[tuple, http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes, secret: str) -> int:
        """POST ``body`` to ``url`` with its ``X-SMS-Signature``; return the HTTP status.

        Raises OSError or http.client.HTTPException on connection problems. A stale kept-alive connection
        is replaced by a fresh one once.
        """
        target = urllib.parse.urlsplit(url)
        if target.scheme not in ("http", "https") or not target.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
        key = (target.scheme, target.hostname, target.port)
        if key in self._connections:
            try:
                return self._request(key, path, body, headers)
            except (OSError, http.client.HTTPException):
                self._drop(key)
        connection_class = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        self._connections[key] = connection_class(target.hostname, target.port, timeout=self.timeout)
        try:
            return self._request(key, path, body, headers)
        except (OSError, http.client.HTTPException):
            self._drop(key)
            raise

    def _request(self, key: tuple, path: str, body: bytes, headers: dict) -> int:
        connection = self._connections[key]
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.will_close:
            self._drop(key)
        return response.status

    def _drop(self, key: tuple) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close every kept-alive connection."""
        for key in list(self._connections):
            self._drop(key)


def send_inbound(store: Store, token: str | None, from_number: str, to_address: str, body: str) -> dict:
    """POST a signed inbound-message callback to the account's inbound URL; record and return the outcome."""
    for label, value in (("from", from_number), ("to", to_address), ("body", body)):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"inbound '{label}' must be a non-empty string")
    account = store.inbound_account(token, to_address)
    url = account["inbound_url"]
    if not url:
        raise ValidationError(f"account {account['name']!r} has no inbound URL (account-create --inbound-url)")
    payload = {"from": from_number, "to": to_address, "body": body, "at": utc_now_iso()}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    client = CallbackClient()
    status, error = None, None
    try:
        status = client.post(url, raw, account["webhook_secret"])
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    store.record_inbound(account["token"], payload, url, status, error)
    return {
        "ok": status is not None and 200 <= status < 300,
        "url": url,
        "status": status,
        "error": error,
        "payload": payload,
    }


# --------------------------------------------------------------------------------------------------------------
# Runtime settings (fault injection + report behaviour)
# --------------------------------------------------------------------------------------------------------------
def _ratio(value) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _non_negative(value) -> float:
    value = float(value)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _optional_non_negative(value) -> float | None:
    return None if value is None else _non_negative(value)


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


SETTING_PARSERS = {
    "fail_ratio": _ratio,
    "accept_then_fail_ratio": _ratio,
    "timeout_ratio": _ratio,
    "timeout_seconds": _non_negative,
    "latency_ms": _non_negative,
    "credit_cap": _optional_non_negative,
    "report_delay": _non_negative,
    "delivered_ratio": _ratio,
    "duplicate_reports": _ratio,
    "seed": _optional_int,
}


class RuntimeSettings:
    """Thread-safe fault-injection and report settings, with seeded random draws."""

    def __init__(self, **values):
        """Create settings from keyword values (names of :data:`SETTING_PARSERS`); unknown names are refused."""
        self._lock = threading.Lock()
        self._values = {
            "fail_ratio": 0.0,
            "accept_then_fail_ratio": 0.0,
            "timeout_ratio": 0.0,
            "timeout_seconds": 30.0,
            "latency_ms": 0.0,
            "credit_cap": None,
            "report_delay": 2.0,
            "delivered_ratio": 0.95,
            "duplicate_reports": 0.0,
            "seed": None,
        }
        self._fault_rng = random.Random()  # noqa: S311 - simulation draws, not cryptography
        self._report_rng = random.Random()  # noqa: S311 - simulation draws, not cryptography
        self.update(values)

    def update(self, changes: dict) -> dict:
        """Validate and apply ``changes`` atomically (a new ``seed`` reseeds the RNGs); return all settings."""
        if not isinstance(changes, dict):
            raise ValidationError("settings must be a JSON object")
        parsed = {}
        for name, value in changes.items():
            if name not in SETTING_PARSERS:
                raise ValidationError(f"unknown setting {name!r}; known: {sorted(SETTING_PARSERS)}")
            try:
                parsed[name] = SETTING_PARSERS[name](value)
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"bad value for {name}: {exc}") from exc
        with self._lock:
            self._values.update(parsed)
            if "seed" in parsed:
                seed = parsed["seed"]
                self._fault_rng.seed(seed)
                self._report_rng.seed(None if seed is None else seed + 1)
            return dict(self._values)

    def snapshot(self) -> dict:
        """Return a copy of every setting."""
        with self._lock:
            return dict(self._values)

    def chance(self, ratio_name: str) -> bool:
        """Draw a fault: True with the probability held by setting ``ratio_name``."""
        with self._lock:
            ratio = self._values[ratio_name]
            return ratio > 0 and (ratio >= 1 or self._fault_rng.random() < ratio)

    def draw_report(self) -> tuple[str, int]:
        """Draw ``(delivery state, number of copies to post)`` for one delivery report."""
        with self._lock:
            delivered = self._values["delivered_ratio"]
            roll = self._report_rng.random()
            if roll < delivered or delivered >= 1:
                state = "delivered"
            else:
                state = REPORT_STATES[1 + min(int((roll - delivered) / (1 - delivered) * 3), 2)]
            copies = 2 if self._report_rng.random() < self._values["duplicate_reports"] else 1
            return state, copies


# --------------------------------------------------------------------------------------------------------------
# Delivery-report dispatcher
# --------------------------------------------------------------------------------------------------------------
class ReportDispatcher:
    """Polls the store for due delivery reports and posts them with a small pool of worker threads.

    Claims and results are written in batches (one transaction per poll), never one commit per report.
    """

    def __init__(self, store: Store, settings: RuntimeSettings, workers: int = 4, poll_interval: float = 0.1):
        """Prepare (without starting) a dispatcher with ``workers`` posting threads."""
        self.store = store
        self.settings = settings
        self.poll_interval = poll_interval
        self.max_queued = 2000
        self._jobs: queue.Queue[ReportJob] = queue.Queue()
        self._results: collections.deque[ReportResult] = collections.deque()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._schedule_loop, name="reports-scheduler", daemon=True)]
        self._threads += [
            threading.Thread(target=self._post_loop, name=f"reports-worker-{index}", daemon=True)
            for index in range(workers)
        ]

    def start(self) -> None:
        """Requeue reports left pending by a previous run and start the threads."""
        requeued = self.store.requeue_pending_reports()
        if requeued:
            _logger.info("requeued %d delivery reports left pending by a previous run", requeued)
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (waiting at most ``timeout`` seconds overall) and record the last results.

        Reports still queued stay ``pending`` in the database and are requeued by the next :meth:`start`.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._flush_results()

    def _schedule_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._flush_results()
                room = self.max_queued - self._jobs.qsize()
                if room > 0:
                    for job in self.store.claim_due_reports(time.time(), room, self.settings.draw_report):
                        self._jobs.put(job)
            except sqlite3.Error:
                _logger.exception("delivery-report scheduler: database error, retrying")
            self._stop.wait(self.poll_interval)

    def _flush_results(self) -> None:
        batch = []
        while self._results and len(batch) < 10_000:
            batch.append(self._results.popleft())
        if batch:
            self.store.record_report_results(batch)

    def _post_loop(self) -> None:
        client = CallbackClient()
        try:
            while not self._stop.is_set():
                try:
                    job = self._jobs.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._results.append(self._post(client, job))
        finally:
            client.close()

    @staticmethod
    def _post(client: CallbackClient, job: ReportJob) -> ReportResult:
        at = utc_now_iso()
        body = json.dumps({"uuid": job.uuid, "state": job.state, "at": at}, separators=(",", ":")).encode()
        posted, error = 0, None
        for _copy in range(job.copies):
            try:
                status = client.post(job.url, body, job.secret)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if not 200 <= status < 300:
                error = f"HTTP {status}"
                break
            posted += 1
        if posted == 0:
            _logger.info("delivery report %s to %s failed (attempt %d): %s", job.uuid, job.url, job.attempt, error)
        return ReportResult(job.uuid, posted, job.attempt, at, error)


# --------------------------------------------------------------------------------------------------------------
# JSON-RPC application and HTTP server
# --------------------------------------------------------------------------------------------------------------
def rpc_error(rpc_id, error: GatewayError) -> dict:
    """Build the JSON-RPC error envelope of the protocol (code 200, ``data.name`` = the error name)."""
    message = str(error) or error.name
    return {
        "jsonrpc": "2.0",
        "id": rpc_id,
        "error": {"code": 200, "message": message, "data": {"name": error.name, "message": message}},
    }


class Gateway:
    """The gateway's behaviour, independent of HTTP: RPC methods, settings, counters."""

    def __init__(self, store: Store, settings: RuntimeSettings):
        """Bind the gateway to its store and runtime settings."""
        self.store = store
        self.settings = settings
        self._counters: collections.Counter[str] = collections.Counter()
        self._counters_lock = threading.Lock()

    def count(self, name: str) -> None:
        """Increment the in-memory counter ``name`` (reported by ``/_admin/stats`` under ``server``)."""
        with self._counters_lock:
            self._counters[name] += 1

    def counters(self) -> dict:
        """Return a copy of the in-memory counters."""
        with self._counters_lock:
            return dict(self._counters)

    def call(self, method: str, params) -> object:
        """Run RPC ``method`` (balance, prices or send) with ``params``; raise GatewayError on whole-call failure."""
        params = require_params(params)
        token = require_token(params)
        settings = self.settings.snapshot()
        if method == "balance":
            balance = self.store.account(token)["credits"]
            if settings["credit_cap"] is not None:
                balance = min(balance, settings["credit_cap"])
            return {"credits": balance}
        if method == "prices":
            account = self.store.account(token)
            return {"default": account["default_price"], "countries": account["country_prices"]}
        webhook_url, messages = validate_send_params(params)
        return self.store.send_batch(token, messages, webhook_url, settings["credit_cap"], settings["report_delay"])


class GatewayServer(ThreadingHTTPServer):
    """Threading HTTP server carrying the :class:`Gateway` its handlers use."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog: many Odoo workers may connect at once

    def __init__(self, address: tuple[str, int], gateway: Gateway):
        """Bind to ``address`` (IPv6 when the host contains ':')."""
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.gateway = gateway
        super().__init__(address, GatewayHandler)


class GatewayHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive) handler for the API routes and the loopback-only admin routes."""

    protocol_version = "HTTP/1.1"
    server_version = "sms-marketing-ext-gateway/1"
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: GatewayServer

    def log_message(self, fmt: str, *args) -> None:
        """Send access logs to the module logger at DEBUG level (``serve --verbose``)."""
        _logger.debug("%s %s", self.address_string(), fmt % args)

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _send_json(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            _logger.debug("client went away before the response was written")

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._send_json(411, {"error": "Content-Length required"})
            return None
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send_json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(length)

    def _route(self) -> tuple[str, dict]:
        target = urllib.parse.urlsplit(self.path)
        return target.path.rstrip("/") or "/", urllib.parse.parse_qs(target.query)

    def do_GET(self) -> None:
        """Serve the admin GET routes."""
        path, query = self._route()
        if path.startswith("/_admin/"):
            self._admin("GET", path, query, b"")
        else:
            self._send_json(404 if self._api_method(path) is None else 405, {"error": f"no GET route {path}"})

    def do_POST(self) -> None:
        """Serve the JSON-RPC API routes and the admin POST routes."""
        body = self._read_body()
        if body is None:
            return
        path, query = self._route()
        if path.startswith("/_admin/"):
            self._admin("POST", path, query, body)
            return
        method = self._api_method(path)
        if method is None:
            self._send_json(404, {"error": f"no route {path}"})
        else:
            self._api(method, body)

    @staticmethod
    def _api_method(path: str) -> str | None:
        """``<any base>/api/sms/1/<method>`` -> method name, so the gateway works under any base path."""
        head, _sep, method = path.rpartition("/")
        return method if head.endswith("/api/sms/1") and method in API_ROUTES else None

    # -- API ----------------------------------------------------------------------------------------------------
    def _api(self, method: str, body: bytes) -> None:
        gateway = self.server.gateway
        gateway.count(f"calls.{method}")
        settings = gateway.settings.snapshot()
        if settings["latency_ms"]:
            time.sleep(settings["latency_ms"] / 1000)
        if method == "send" and gateway.settings.chance("fail_ratio"):
            gateway.count("injected.fail_503")
            self._send_json(503, rpc_error(None, GatewayError("injected failure: service unavailable")))
            return
        try:
            request = json.loads(body)
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            self._send_json(200, rpc_error(None, ValidationError(f"invalid JSON: {exc}")))
            return
        rpc_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict):
                raise ValidationError("the request must be a JSON-RPC object")
            result = gateway.call(method, request.get("params"))
        except GatewayError as exc:
            gateway.count(f"errors.{exc.name}")
            self._send_json(200, rpc_error(rpc_id, exc))
            return
        except sqlite3.Error as exc:
            _logger.exception("database error during %s", method)
            self._send_json(200, rpc_error(rpc_id, GatewayError(f"database error: {exc}")))
            return
        if method == "send":
            if gateway.settings.chance("accept_then_fail_ratio"):
                gateway.count("injected.accept_then_fail_500")
                self._send_json(500, rpc_error(rpc_id, GatewayError("injected failure after the batch was stored")))
                return
            if gateway.settings.chance("timeout_ratio"):
                gateway.count("injected.timeout")
                time.sleep(settings["timeout_seconds"])
        self._send_json(200, {"jsonrpc": "2.0", "id": rpc_id, "result": result})

    # -- admin ------------------------------------------------------------------------------------------------
    def _admin(self, verb: str, path: str, query: dict, body: bytes) -> None:
        if not is_loopback(self.client_address[0]):
            self._send_json(403, {"error": "admin routes answer loopback clients only"})
            return
        gateway = self.server.gateway
        handlers = {
            ("GET", "/_admin/health"): lambda data: {"ok": True},
            ("GET", "/_admin/messages"): lambda data: gateway.store.list_messages(
                _first(query, "token"), int(_first(query, "limit") or 1000)
            ),
            ("GET", "/_admin/stats"): lambda data: {
                **gateway.store.stats(_first(query, "token")),
                "server": gateway.counters(),
                "settings": gateway.settings.snapshot(),
            },
            ("GET", "/_admin/faults"): lambda data: gateway.settings.snapshot(),
            ("POST", "/_admin/faults"): gateway.settings.update,
            ("POST", "/_admin/topup"): lambda data: {
                "token": data.get("token"),
                "credits": gateway.store.topup(data.get("token"), float(data.get("credits"))),
            },
            ("POST", "/_admin/inbound"): lambda data: send_inbound(
                gateway.store, data.get("token"), data.get("from"), data.get("to"), data.get("body")
            ),
        }
        handler = handlers.get((verb, path))
        if handler is None:
            self._send_json(404, {"error": f"no admin route {verb} {path}"})
            return
        try:
            data = json.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValidationError("the body must be a JSON object")
            self._send_json(200, handler(data))
        except GatewayError as exc:
            self._send_json(400, {"error": exc.name, "message": str(exc)})
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"error": "ValidationError", "message": str(exc)})


def _first(query: dict, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


# --------------------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------------------
def _print_table(headers: list[str], rows: list[list]) -> None:
    cells = [headers] + [["-" if value is None else str(value) for value in row] for row in rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    for row in cells:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def _country_price(text: str) -> tuple[str, float]:
    code, sep, price = text.partition("=")
    if not sep or len(code.strip()) != 2:
        raise argparse.ArgumentTypeError(f"expected CC=PRICE (e.g. FR=0.045), got {text!r}")
    return code.strip().upper(), float(price)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP server until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    store = Store(args.db)
    settings = RuntimeSettings(
        fail_ratio=args.fail_ratio,
        accept_then_fail_ratio=args.accept_then_fail_ratio,
        timeout_ratio=args.timeout_ratio,
        timeout_seconds=args.timeout_seconds,
        latency_ms=args.latency_ms,
        credit_cap=args.credit_cap,
        report_delay=args.report_delay,
        delivered_ratio=args.delivered_ratio,
        duplicate_reports=args.duplicate_reports,
        seed=args.seed,
    )
    server = GatewayServer((args.host, args.port), Gateway(store, settings))
    dispatcher = ReportDispatcher(store, settings, workers=args.report_workers)
    dispatcher.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    serve_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http")
    serve_thread.start()
    host, port = server.server_address[:2]
    shown_host = f"[{host}]" if ":" in host else host
    _logger.info("database %s", os.path.abspath(args.db))
    print(f"listening on http://{shown_host}:{port}", flush=True)
    while not stop.wait(0.5):
        pass
    _logger.info("shutting down")
    server.shutdown()
    serve_thread.join(10)
    server.server_close()
    dispatcher.stop()
    store.close()
    _logger.info("stopped")
    return 0


def cmd_account_create(args: argparse.Namespace) -> int:
    """Create or update an account."""
    senders = [] if args.any_sender else (args.sender or None)
    account, created = Store(args.db).upsert_account(
        args.token,
        args.name,
        args.credits,
        price=args.price,
        country_prices=dict(args.country_price) if args.country_price else None,
        senders=senders,
        webhook_secret=args.webhook_secret,
        inbound_url=args.inbound_url,
    )
    print(f"{'created' if created else 'updated'} account {account['name']!r}")
    print(json.dumps(account, indent=2))
    return 0


def cmd_accounts(args: argparse.Namespace) -> int:
    """List accounts with their balances."""
    accounts = Store(args.db).list_accounts()
    if args.json:
        print(json.dumps(accounts, indent=2))
        return 0
    _print_table(
        ["TOKEN", "NAME", "CREDITS", "PRICE", "COUNTRY PRICES", "SENDERS", "INBOUND URL"],
        [
            [
                account["token"],
                account["name"],
                f"{account['credits']:.6g}",
                account["default_price"],
                ",".join(f"{code}={price}" for code, price in sorted(account["country_prices"].items())) or None,
                ",".join(account["senders"]) or "(any)",
                account["inbound_url"],
            ]
            for account in accounts
        ],
    )
    return 0


def cmd_topup(args: argparse.Namespace) -> int:
    """Add credits to an account."""
    balance = Store(args.db).topup(args.token, args.credits)
    print(f"{args.token}: {balance:.6g} credits")
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    """List the messages the gateway received, newest first."""
    messages = Store(args.db).list_messages(args.token, args.limit)
    if args.json:
        print(json.dumps(messages, indent=2))
        return 0
    _print_table(
        ["UUID", "NUMBER", "STATE", "PARTS", "CREDITS", "PRESENTED", "REPORT", "RECEIVED AT"],
        [
            [
                message["uuid"],
                message["number"],
                message["state"],
                message["parts"],
                f"{message['credits']:.6g}",
                message["presented_count"],
                f"{message['report_state'] or '?'} ({message['report_status']})" if message["report_status"] else None,
                message["received_at"],
            ]
            for message in messages
        ],
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Print counts by state, credits charged and duplicate-accept attempts."""
    print(json.dumps(Store(args.db).stats(args.token), indent=2))
    return 0


def cmd_inbound(args: argparse.Namespace) -> int:
    """POST a signed inbound message to the account's inbound URL."""
    outcome = send_inbound(Store(args.db), args.token, args.from_number, args.to, args.body)
    print(json.dumps(outcome, indent=2))
    return 0 if outcome["ok"] else 1


def _add_serve_parser(commands, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[common], help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8070, help="port, 0 = any free port (default: %(default)s)")
    serve.add_argument("--report-delay", type=float, default=2.0, help="seconds before a delivery report is sent")
    serve.add_argument("--delivered-ratio", type=float, default=0.95, help="share of 'delivered' reports")
    serve.add_argument("--duplicate-reports", type=float, default=0.0, help="share of reports posted twice")
    serve.add_argument("--report-workers", type=_positive_int, default=4, help="threads posting delivery reports")
    serve.add_argument("--fail-ratio", type=float, default=0.0, help="share of /send answered 503 untouched")
    serve.add_argument(
        "--accept-then-fail-ratio", type=float, default=0.0, help="share of /send stored+charged then answered 500"
    )
    serve.add_argument("--timeout-ratio", type=float, default=0.0, help="share of /send answered late")
    serve.add_argument("--timeout-seconds", type=float, default=30.0, help="delay of a late /send answer")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every API call")
    serve.add_argument("--credit-cap", type=float, default=None, help="usable balance never exceeds this")
    serve.add_argument("--seed", type=int, default=None, help="seed of the fault / report random draws")
    serve.add_argument("--verbose", action="store_true", help="log every HTTP request")
    serve.set_defaults(handler=cmd_serve)


def _add_account_create_parser(commands, common: argparse.ArgumentParser) -> None:
    create = commands.add_parser("account-create", parents=[common], help="create or update an account")
    create.add_argument("--token", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--credits", type=float, required=True, help="balance to set")
    create.add_argument("--price", type=float, default=None, help="default credits per SMS part (new: 0.05)")
    create.add_argument("--country-price", type=_country_price, action="append", metavar="CC=PRICE", help="repeatable")
    create.add_argument("--sender", action="append", help="allowed sender id, repeatable (none = any sender)")
    create.add_argument("--any-sender", action="store_true", help="clear the allowed-senders list")
    create.add_argument("--webhook-secret", default=None, help="callback signing secret (new: random)")
    create.add_argument("--inbound-url", default=None, help="where inbound messages are POSTed")
    create.set_defaults(handler=cmd_account_create)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=default_db_path(), help="SQLite file (default: %(default)s)")
    parser = argparse.ArgumentParser(
        prog="sms_gateway", description="Local SMS gateway (IAP-style protocol v1) for sms_marketing_ext."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve_parser(commands, common)
    _add_account_create_parser(commands, common)

    accounts = commands.add_parser("accounts", parents=[common], help="list accounts and balances")
    accounts.add_argument("--json", action="store_true")
    accounts.set_defaults(handler=cmd_accounts)

    topup = commands.add_parser("topup", parents=[common], help="add credits to an account")
    topup.add_argument("--token", required=True)
    topup.add_argument("--credits", type=float, required=True)
    topup.set_defaults(handler=cmd_topup)

    messages = commands.add_parser("messages", parents=[common], help="list received messages, newest first")
    messages.add_argument("--token", default=None)
    messages.add_argument("--limit", type=int, default=50)
    messages.add_argument("--json", action="store_true")
    messages.set_defaults(handler=cmd_messages)

    stats = commands.add_parser("stats", parents=[common], help="counts by state, credits, duplicates, reports")
    stats.add_argument("--token", default=None)
    stats.set_defaults(handler=cmd_stats)

    inbound = commands.add_parser("inbound", parents=[common], help="POST a signed inbound message")
    inbound.add_argument("--from", dest="from_number", required=True, help="sender number, e.g. +33612345678")
    inbound.add_argument("--to", required=True, help="sender id or short number it was sent to")
    inbound.add_argument("--body", required=True)
    inbound.add_argument("--token", default=None, help="account (default: the one allowing --to, or the only one)")
    inbound.set_defaults(handler=cmd_inbound)
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except GatewayError as exc:
        print(f"error: {exc.name}: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
