"""A local stand-in for OVH's API (``/1.0``): the documented subset the ``ovh`` provider uses, with
OVH's request signature checked exactly as OVH does (no Odoo import; stdlib only).

Every authenticated call must carry ``X-Ovh-Application``, ``X-Ovh-Consumer``, ``X-Ovh-Timestamp``
and ``X-Ovh-Signature = "$1$" + sha1(secret + "+" + consumer + "+" + METHOD + "+" + full URL +
"+" + body + "+" + timestamp)``, with a timestamp within a few seconds of ``/auth/time``; else 403
with OVH's error shape ``{"errorCode": "INVALID_CREDENTIAL"|"INVALID_SIGNATURE"|..., "message"}``.

Routes: ``GET /auth/time``, ``GET /sms/{service}`` (``creditsLeft``), ``POST /sms/{service}/jobs``,
``GET|POST /sms/{service}/senders``, ``GET /sms/{service}/senders/{sender}``.
"""

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED_SKEW = 30


class OvhAccount:
    def __init__(self, app_key, app_secret, consumer_key, service, credits=100.0):  # pylint: disable=redefined-builtin
        self.app_key, self.app_secret, self.consumer_key = app_key, app_secret, consumer_key
        self.service, self.credits = service, credits
        self.jobs, self.senders, self.sender_requests = [], {}, []
        self.lock = threading.Lock()


class OvhApiServer:
    """``with OvhApiServer(account) as server: server.url`` (``http://127.0.0.1:PORT/1.0``)."""

    def __init__(self, account):
        self.account = account
        handler = type("Handler", (_Handler,), {"account": account})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/1.0"
        handler.base = self.url
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    start, stop = __enter__, __exit__


def signature(secret, consumer, method, url, body, timestamp):
    text = "+".join([secret, consumer, method.upper(), url, body, timestamp])
    return "$1$" + hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - OVH's scheme


class _Handler(BaseHTTPRequestHandler):
    account = None
    base = ""

    def log_message(self, *args):
        pass

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status, code, message):
        self._answer(status, {"errorCode": code, "httpCode": f"{status}", "message": message})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith("/1.0/"):
            return self._error(404, "NOT_FOUND", "no such API version")
        route = path[len("/1.0"):]
        if route == "/auth/time" and method == "GET":
            return self._answer(200, int(time.time()))
        account = self.account
        if self.headers.get("X-Ovh-Application") != account.app_key:
            return self._error(403, "INVALID_KEY", "Invalid application key")
        if self.headers.get("X-Ovh-Consumer") != account.consumer_key:
            return self._error(403, "INVALID_CREDENTIAL", "This credential does not exist")
        timestamp = self.headers.get("X-Ovh-Timestamp") or ""
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > ALLOWED_SKEW:
            return self._error(400, "QUERY_TIME_OUT", "Query out of time")
        expected = signature(account.app_secret, account.consumer_key, method, self.base + self.path[len("/1.0"):],
                             body, timestamp)
        if not hmac.compare_digest(expected, self.headers.get("X-Ovh-Signature") or ""):
            return self._error(400, "INVALID_SIGNATURE", "Invalid signature")
        parts = [urllib.parse.unquote(p) for p in route.strip("/").split("/")]
        if len(parts) < 2 or parts[0] != "sms" or parts[1] != account.service:
            return self._error(404, "NOT_FOUND", f"The requested object (serviceName = {parts[1:2]}) does not exist")
        data = json.loads(body) if body else None
        with account.lock:
            return self._route(method, parts[2:], data)

    def _route(self, method, rest, data):
        account = self.account
        if not rest and method == "GET":
            return self._answer(200, {"name": account.service, "creditsLeft": account.credits,
                                      "status": "enable", "description": ""})
        if rest == ["jobs"] and method == "POST":
            return self._job(data)
        if rest == ["senders"] and method == "GET":
            return self._answer(200, sorted(account.senders))
        if rest == ["senders"] and method == "POST":
            sender = (data or {}).get("sender")
            if not sender or sender in account.senders:
                return self._error(400, "BAD_PARAMETERS", f"Sender {sender!r} already exists or is empty")
            account.senders[sender] = {"sender": sender, "status": "waitingValidation", "type": "alpha",
                                       "description": data.get("description", ""), "comment": ""}
            account.sender_requests.append(data)
            return self._answer(200, None)
        if len(rest) == 2 and rest[0] == "senders" and method == "GET":
            if rest[1] not in account.senders:
                return self._error(404, "NOT_FOUND", "no such sender")
            return self._answer(200, account.senders[rest[1]])
        return self._error(404, "NOT_FOUND", "Got an invalid (or empty) URL")

    def _job(self, data):
        account = self.account
        required = ("message", "receivers")
        if not isinstance(data, dict) or any(key not in data for key in required):
            return self._error(400, "BAD_PARAMETERS", "Missing parameter message or receivers")
        if data.get("class", "phoneDisplay") not in ("flash", "phoneDisplay", "sim", "toolkit"):
            return self._error(400, "BAD_PARAMETERS", "Invalid class")
        if data.get("coding", "7bit") not in ("7bit", "8bit"):
            return self._error(400, "BAD_PARAMETERS", "Invalid coding")
        sender = data.get("sender")
        if sender and account.senders.get(sender, {}).get("status") != "enable":
            return self._error(400, "BAD_PARAMETERS", f"The sender {sender} does not exist or is not enabled")
        valid = [r for r in data["receivers"] if isinstance(r, str) and r.startswith("+") and r[1:].isdigit()]
        invalid = [r for r in data["receivers"] if r not in valid]
        cost = float(len(valid))
        if cost > account.credits:
            return self._error(400, "BAD_PARAMETERS", "Not enough credits")
        account.credits -= cost
        ids = []
        for receiver in valid:
            ids.append(len(account.jobs) + 1)
            account.jobs.append({**data, "receiver": receiver, "id": ids[-1]})
        return self._answer(200, {"ids": ids, "validReceivers": valid, "invalidReceivers": invalid,
                                  "totalCreditsRemoved": cost, "tag": data.get("tag")})
