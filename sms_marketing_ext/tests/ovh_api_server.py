"""A local stand-in for OVH's API (``/1.0``): the documented subset the ``ovh`` provider uses, with
OVH's request signature checked exactly as OVH does (no Odoo import; stdlib only).

Every authenticated call must carry ``X-Ovh-Application``, ``X-Ovh-Consumer``, ``X-Ovh-Timestamp``
and ``X-Ovh-Signature = "$1$" + sha1(secret + "+" + consumer + "+" + METHOD + "+" + full URL +
"+" + body + "+" + timestamp)``, with a timestamp within a few seconds of ``/auth/time``; else 403
with OVH's error shape ``{"errorCode": "INVALID_CREDENTIAL"|"INVALID_SIGNATURE"|..., "message"}``.

Routes (names, parameters and answers as OVH's API description of ``/sms`` has them):
``GET /auth/time``; ``GET /sms/rates/destinations?country=`` (no authentication, as at OVH);
``GET /sms/{service}`` (``creditsLeft``); ``GET|POST /sms/{service}/jobs``,
``GET /sms/{service}/jobs/{id}``; ``GET /sms/{service}/outgoing`` (filters ``tag``,
``deliveryReceipt``, ``ptt``, ``receiver``, ``sender``, ``creationDatetime.from|to``),
``GET /sms/{service}/outgoing/{id}``; ``GET /sms/{service}/incoming`` (filters ``sender``, ``tag``,
``creationDatetime.from|to``), ``GET|DELETE /sms/{service}/incoming/{id}``;
``GET /sms/{service}/blacklists`` (filters ``batchID``, ``smsOutgoingID``),
``GET|DELETE /sms/{service}/blacklists/{number}`` (``sms.Blacklist``: ``number``, ``dateCreation``,
``batchID``, ``smsOutgoingID``); ``GET|POST /sms/{service}/senders``, ``GET /sms/{service}/senders/{sender}``,
``POST /sms/{service}/senders/{sender}/documents`` (its ``putUrl`` takes the file by an unsigned
``PUT``, as OVH's storage does). A query parameter OVH does not document is refused (400).

Test hooks on :class:`OvhAccount`: ``deliver(tag, receipt, ptt)`` sets an outgoing SMS's receipt,
``receive(sender, message)`` adds a reply, ``blacklist_number(number)`` puts a number on OVH's
STOP blacklist, ``queue_jobs`` keeps accepted jobs queued (not yet
outgoing), ``lose_answers`` (a count) takes a job and then drops the connection unanswered,
``drop_jobs`` (a count) drops the connection of a job before taking it.
"""

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED_SKEW = 30
# OVH answers dates in Paris time with their offset.
PARIS = timezone(timedelta(hours=2))
OUTGOING_FILTERS = {"batchID", "creationDatetime.from", "creationDatetime.to", "deliveryReceipt", "differedDelivery",
                    "messageID", "ptt", "receiver", "sender", "tag"}
INCOMING_FILTERS = {"creationDatetime.from", "creationDatetime.to", "sender", "tag"}
BLACKLIST_FILTERS = {"batchID", "smsOutgoingID"}


def ovh_now():
    return datetime.now(PARIS).replace(microsecond=0)


class OvhAccount:
    def __init__(self, app_key, app_secret, consumer_key, service, credits=100.0):  # pylint: disable=redefined-builtin
        self.app_key, self.app_secret, self.consumer_key = app_key, app_secret, consumer_key
        self.service, self.credits = service, credits
        self.jobs, self.senders, self.sender_requests = [], {}, []
        self.outgoing, self.queued, self.incoming = {}, {}, {}
        self.documents, self.uploads, self.rates = {}, {}, {}
        self.blacklist = {}  # number -> sms.Blacklist
        self.queue_jobs, self.lose_answers, self.drop_jobs = False, 0, 0
        self.calls = []  # (method, route, query) of every authenticated call
        self.next_id = 1000
        self.lock = threading.Lock()

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def deliver(self, tag, receipt, ptt=0, delivered_at=None):
        """Set the receipt of the outgoing SMS tagged ``tag`` (1 delivered, 2 not, 16 refused)."""
        with self.lock:
            for outgoing in self.outgoing.values():
                if outgoing["tag"] == tag:
                    outgoing.update(deliveryReceipt=receipt, ptt=ptt)
                    if receipt == 1:
                        outgoing["deliveredAt"] = (delivered_at or ovh_now()).isoformat()

    def release_jobs(self):
        """The queued jobs go out: they become outgoing SMS."""
        with self.lock:
            self.outgoing.update(self.queued)
            self.queued.clear()

    def blacklist_number(self, number, at=None, outgoing_id=None):
        """OVH blacklists ``number`` (its owner sent STOP to the short number of OVH's STOP mention)."""
        with self.lock:
            self.blacklist[number] = {"number": number, "dateCreation": (at or ovh_now()).isoformat(),
                                      "batchID": None, "smsOutgoingID": outgoing_id}

    def receive(self, sender, message, at=None):
        with self.lock:
            incoming_id = self.new_id()
            self.incoming[incoming_id] = {"id": incoming_id, "sender": sender, "message": message, "tag": "",
                                          "credits": 0.0, "creationDatetime": (at or ovh_now()).isoformat()}
            return incoming_id


class OvhApiServer:
    """``with OvhApiServer(account) as server: server.url`` (``http://127.0.0.1:PORT/1.0``)."""

    def __init__(self, account):
        self.account = account
        handler = type("Handler", (_Handler,), {"account": account})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/1.0"
        handler.base = self.url
        handler.root = self.url[:-len("/1.0")]
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
    base = root = ""

    def log_message(self, *args):
        pass

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self):
        """Cut the connection without an answer (the client sees it closed: maybe sent)."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)

    def _error(self, status, code, message):
        self._answer(status, {"errorCode": code, "httpCode": f"{status}", "message": message})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_PUT(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urllib.parse.urlsplit(self.path).path
        document_id = path.rpartition("/")[2]
        if not path.startswith("/upload/") or document_id not in self.account.documents:
            return self._error(404, "NOT_FOUND", "no such upload URL")
        with self.account.lock:
            self.account.uploads[document_id] = body
            self.account.documents[document_id]["size"] = len(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _handle(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        split = urllib.parse.urlsplit(self.path)
        path, query = split.path, dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if not path.startswith("/1.0/"):
            return self._error(404, "NOT_FOUND", "no such API version")
        route = path[len("/1.0"):]
        if route == "/auth/time" and method == "GET":
            return self._answer(200, int(time.time()))
        account = self.account
        if route == "/sms/rates/destinations" and method == "GET":  # noAuthentication at OVH
            return self._rates(query)
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
            account.calls.append((method, "/".join(parts[2:]), query))
            return self._route(method, parts[2:], data, query)

    def _rates(self, query):
        if set(query) - {"country", "billingCountry"} or not query.get("country"):
            return self._error(400, "BAD_PARAMETERS", "Invalid parameters: country is required")
        code = query["country"]
        if code not in self.account.rates:
            return self._error(400, "BAD_PARAMETERS", f"Invalid value for country: {code}")
        return self._answer(200, {"country": code.upper(), "countryCode": code, "credit": self.account.rates[code],
                                  "price": {"currencyCode": "EUR", "text": "0.07 €", "value": 0.07}})

    def _route(self, method, rest, data, query):
        allowed = {("outgoing",): OUTGOING_FILTERS, ("incoming",): INCOMING_FILTERS,
                   ("blacklists",): BLACKLIST_FILTERS}.get(tuple(rest), set())
        if method == "GET" and set(query) - allowed:
            return self._error(400, "BAD_PARAMETERS", f"Unknown parameters {sorted(set(query) - allowed)}")
        if rest and rest[0] in ("outgoing", "jobs", "incoming") and not (rest == ["jobs"] and method == "POST"):
            return self._route_messages(method, rest, query)
        if rest and rest[0] == "blacklists":
            return self._route_blacklists(method, rest, query)
        return self._route_account(method, rest, data)

    def _route_messages(self, method, rest, query):
        """Outgoing SMS, queued jobs and incoming SMS."""
        account = self.account
        if rest == ["outgoing"] and method == "GET":
            return self._answer(200, _filtered(account.outgoing, query))
        if len(rest) == 2 and rest[0] == "outgoing" and method == "GET":
            found = account.outgoing.get(_int(rest[1]))
            return self._answer(200, found) if found else self._error(404, "NOT_FOUND", "no such SMS")
        if rest == ["jobs"] and method == "GET":
            return self._answer(200, sorted(account.queued))
        if len(rest) == 2 and rest[0] == "jobs" and method == "GET":
            found = account.queued.get(_int(rest[1]))
            if not found:
                return self._error(404, "NOT_FOUND", "no such job")
            return self._answer(200, {key: value for key, value in found.items() if key != "tag"})
        if rest == ["incoming"] and method == "GET":
            return self._answer(200, _filtered(account.incoming, query))
        if len(rest) == 2 and rest[0] == "incoming" and method in ("GET", "DELETE"):
            found = account.incoming.get(_int(rest[1]))
            if not found:
                return self._error(404, "NOT_FOUND", "no such SMS")
            if method == "DELETE":
                del account.incoming[found["id"]]
                return self._answer(200, None)
            return self._answer(200, found)
        return self._error(404, "NOT_FOUND", "Got an invalid (or empty) URL")

    def _route_blacklists(self, method, rest, query):
        """OVH's STOP blacklist of the service: the numbers, and each one's ``sms.Blacklist``."""
        account = self.account
        if rest == ["blacklists"] and method == "GET":
            return self._answer(200, [number for number, entry in sorted(account.blacklist.items())
                                      if all(str(entry.get(name)) == value for name, value in query.items())])
        if len(rest) == 2 and method in ("GET", "DELETE"):
            found = account.blacklist.get(rest[1])
            if not found:
                return self._error(404, "NOT_FOUND", "This number is not blacklisted")
            if method == "DELETE":
                del account.blacklist[rest[1]]
                return self._answer(200, None)
            return self._answer(200, found)
        return self._error(404, "NOT_FOUND", "Got an invalid (or empty) URL")

    def _route_account(self, method, rest, data):
        """The service, its jobs (POST) and its senders."""
        account = self.account
        if len(rest) == 3 and rest[0] == "senders" and rest[2] == "documents" and method == "POST":
            if rest[1] not in account.senders or not (data or {}).get("name"):
                return self._error(400, "BAD_PARAMETERS", "no such sender, or no document name")
            document_id = f"doc-{account.new_id()}"
            document = {"documentID": document_id, "name": data["name"], "description": data.get("description"),
                        "createdAt": ovh_now().isoformat(), "size": 0, "sender": rest[1],
                        "getUrl": f"{self.root}/download/{document_id}", "putUrl": f"{self.root}/upload/{document_id}"}
            account.documents[document_id] = document
            return self._answer(200, {key: value for key, value in document.items() if key != "sender"})
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
        if account.drop_jobs:
            account.drop_jobs -= 1
            return self._drop()
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
        now = ovh_now().isoformat()
        for receiver in valid:
            ids.append(account.new_id())
            account.jobs.append({**data, "receiver": receiver, "id": ids[-1]})
            record = {"id": ids[-1], "tag": data.get("tag") or "", "receiver": receiver,
                      "sender": data.get("sender") or "", "message": data["message"], "creationDatetime": now,
                      "sentAt": now, "deliveredAt": None, "deliveryReceipt": 0, "ptt": 0, "credits": 1.0,
                      "differedDelivery": data.get("differedPeriod") or 0, "messageLength": len(data["message"]),
                      "numberOfSms": 1, "batchID": None, "messageID": None, "tariffCode": ""}
            (account.queued if account.queue_jobs else account.outgoing)[ids[-1]] = record
        if account.lose_answers:
            account.lose_answers -= 1
            return self._drop()  # taken, never answered
        return self._answer(200, {"ids": ids, "validReceivers": valid, "invalidReceivers": invalid,
                                  "totalCreditsRemoved": cost, "tag": data.get("tag")})


def _int(text):
    return int(text) if text.isdigit() else None


def _filtered(records, query):
    """The ids of ``records`` matching OVH's list filters (``=`` on a property, ``.from`` / ``.to``
    bounds on creationDatetime)."""
    def keep(record):
        for name, value in query.items():
            if name.startswith("creationDatetime."):
                created = datetime.fromisoformat(record["creationDatetime"])
                bound = datetime.fromisoformat(value)
                if (name.endswith(".from") and created < bound) or (name.endswith(".to") and created > bound):
                    return False
            elif str(record.get(name)) != value:
                return False
        return True
    return sorted(record_id for record_id, record in records.items() if keep(record))
