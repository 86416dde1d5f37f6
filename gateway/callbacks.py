"""Outgoing signed callbacks: the keep-alive HTTP client and the inbound-message callback.

Every callback body is JSON signed with the account's webhook secret (``X-SMS-Signature``, see
:func:`gateway.protocol.sign`). Delivery reports use :class:`CallbackClient` from
:mod:`gateway.reports`; an inbound message is posted on demand by :func:`send_inbound` (CLI command
``inbound`` and admin route ``POST /_admin/inbound``).
"""

from __future__ import annotations

import http.client
import json
import urllib.parse

from .protocol import SIGNATURE_HEADER, ValidationError, sign, utc_now_iso
from .store import Store

CALLBACK_TIMEOUT_SECONDS = 5.0


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
