"""The HTTP side: JSON-RPC API routes (``<base>/api/sms/1/balance|prices|send``) and loopback-only admin routes.

:class:`Gateway` is the behaviour independent of HTTP (RPC methods, counters); :class:`GatewayHandler`
adds HTTP/1.1 keep-alive, injected faults (503, lost responses, timeouts, latency) and the ``/_admin/``
routes; :class:`GatewayServer` is the threading server carrying both.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import logging
import socket
import sqlite3
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .callbacks import send_inbound
from .protocol import (
    API_ROUTES,
    GatewayError,
    ValidationError,
    require_params,
    require_token,
    rpc_error,
    validate_send_params,
    validate_status_params,
)
from .settings import RuntimeSettings
from .store import Store

_logger = logging.getLogger("sms_gateway")

MAX_BODY_BYTES = 16 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` (a peer IP address) is a loopback address, IPv4-mapped IPv6 included."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


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
        """Run RPC ``method`` (balance, prices, send or status) with ``params``; raise GatewayError on whole-call
        failure."""
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
        if method == "status":
            return self.store.status(token, validate_status_params(params))
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
