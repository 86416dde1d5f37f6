"""End-to-end tests of the local SMS gateway.

The real server runs as a subprocess on a free loopback port with a temporary SQLite database; callbacks are
received by a tiny in-process HTTP server. Run from the repository root:

    python3 -m unittest discover -s gateway/tests -t .
"""

import contextlib
import hashlib
import hmac
import http.client
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gateway import protocol
from gateway.store import DEFAULT_RETRY_POLICY, FAST_RETRY_POLICY, RetryPolicy

GATEWAY_SCRIPT = Path(__file__).resolve().parents[1] / "sms_gateway.py"  # the documented launcher
REPO_ROOT = Path(__file__).resolve().parents[2]
SEGMENT_VECTORS = REPO_ROOT / "sms_marketing_ext" / "static" / "tests" / "sms_segments_vectors.json"
START_TIMEOUT = 15.0
HTTP_TIMEOUT = 15.0
SIGNING_KEY = "s3cret"  # webhook secret of the test accounts
LISTENING_RE = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def new_uuid() -> str:
    """Return a fresh message uuid (32 hex characters)."""
    return uuid.uuid4().hex


def sms(number="+33612345678", content="Hello", sender=None, sms_class="standard", message_uuid=None) -> dict:
    """Build one /send message."""
    return {
        "uuid": message_uuid or new_uuid(),
        "number": number,
        "content": content,
        "sender": sender,
        "sms_class": sms_class,
    }


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run_cli(db_path: str, command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one CLI subcommand against ``db_path``."""
    return subprocess.run(  # noqa: S603 - fixed argv built from this repository
        [sys.executable, str(GATEWAY_SCRIPT), command, "--db", db_path, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )


class GatewayProcess:
    """The real gateway server, started as a subprocess on a free loopback port."""

    def __init__(self, db_path: str, log_path: str, *options: str):
        """Remember how to start the server (``options`` are extra ``serve`` flags)."""
        self.db_path = db_path
        self.log_path = log_path
        self.options = options
        self.process = None
        self.port = None

    def start(self) -> "GatewayProcess":
        """Start the server and wait for its ``listening on`` line."""
        log_start = Path(self.log_path).stat().st_size if Path(self.log_path).exists() else 0
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv built from this repository
                [sys.executable, str(GATEWAY_SCRIPT), "serve", "--db", self.db_path, "--port", "0", *self.options],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        match = wait_until(
            lambda: self.process.poll() is not None or LISTENING_RE.search(self.log(), log_start), START_TIMEOUT
        )
        if not isinstance(match, re.Match):
            self.stop()
            raise AssertionError(f"gateway did not start:\n{self.log()}")
        self.port = int(match.group(1))
        return self

    def log(self) -> str:
        """Return everything the server printed so far."""
        return Path(self.log_path).read_text(encoding="utf-8")

    def stop(self) -> int:
        """Stop the server with SIGTERM (SIGKILL after 10 s) and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def request(self, method: str, path: str, payload=None, timeout: float = HTTP_TIMEOUT, raw: bytes | None = None):
        """Send one HTTP request; return ``(status, decoded JSON body)``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            body = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def rpc(self, route: str, params, timeout: float = HTTP_TIMEOUT):
        """Call ``/api/sms/1/<route>``; return ``(http status, JSON-RPC response)``."""
        envelope = {"jsonrpc": "2.0", "method": "call", "id": 17, "params": params}
        return self.request("POST", f"/api/sms/1/{route}", envelope, timeout=timeout)

    def admin(self, path: str, payload=None):
        """GET (no payload) or POST an admin route; return the decoded body, asserting HTTP 200."""
        status, body = self.request("GET" if payload is None else "POST", f"/_admin/{path}", payload)
        if status != 200:
            raise AssertionError(f"admin {path} answered {status}: {body}")
        return body


class CallbackReceiver:
    """Tiny local HTTP server standing in for Odoo's callback routes.

    It checks ``X-SMS-Signature`` and answers 403 when it is wrong; ``/flaky`` answers 500 to the first POST of
    each uuid. Every request is recorded as ``{"path", "valid", "payload", "status"}``.
    """

    def __init__(self, secret: str, port: int = 0):
        """Start listening on ``port`` of the loopback (0: a free one)."""
        self.secret = secret
        self.records = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(self.headers.get("X-SMS-Signature", ""), expected)
                payload = json.loads(body)
                with receiver._lock:
                    seen = any(r["payload"].get("uuid") == payload.get("uuid") for r in receiver.records)
                    status = 403 if not valid else 500 if self.path == "/flaky" and not seen else 200
                    receiver.records.append({"path": self.path, "valid": valid, "payload": payload, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this receiver."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def accepted(self, path: str | None = None) -> list:
        """Return the records answered 200 (optionally only for ``path``)."""
        with self._lock:
            return [r for r in self.records if r["status"] == 200 and (path is None or r["path"] == path)]

    def close(self):
        """Stop the receiver."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class PartsAndCountryTests(unittest.TestCase):
    """Pure functions: part counting and country detection."""

    def test_parts(self):
        cases = [
            ("", 1),
            ("a" * 160, 1),
            ("a" * 161, 2),
            ("a" * 306, 2),
            ("a" * 307, 3),
            ("€" * 80, 1),
            ("€" * 81, 2),
            ("a" * 152 + "€" + "a" * 10, 2),
            ("é" * 160, 1),
            ("ç" * 70, 1),
            ("ç" * 71, 2),
            ("😀" * 35, 1),
            ("😀" * 36, 2),
        ]
        for text, parts in cases:
            with self.subTest(text=text[:12], length=len(text)):
                self.assertEqual(protocol.sms_parts(text), parts)

    def test_parts_match_the_addon_vectors(self):
        if not SEGMENT_VECTORS.exists():
            self.skipTest(f"{SEGMENT_VECTORS} not found")
        for vector in json.loads(SEGMENT_VECTORS.read_text(encoding="utf-8")):
            with self.subTest(vector=vector["name"]):
                self.assertEqual(protocol.sms_parts(vector["text"]), max(1, vector["segments"]))

    def test_country(self):
        cases = {
            "+33612345678": "FR",
            "+12025550123": "US",
            "+351912345678": "PT",
            "+352621123456": "LU",
            "+212612345678": "MA",
            "+919812345678": "IN",
            "+999123456789": None,
        }
        for number, country in cases.items():
            with self.subTest(number=number):
                self.assertEqual(protocol.country_of(number), country)


class GatewayTestCase(unittest.TestCase):
    """Shares one running gateway per test class."""

    server_options: tuple = ("--report-delay", "0.2", "--seed", "42", "--fast-report-retries")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sms-gateway-test-")
        cls.db_path = str(Path(cls.tmp.name) / "gateway.sqlite3")
        cls.gateway = GatewayProcess(cls.db_path, str(Path(cls.tmp.name) / "server.log"), *cls.server_options)
        cls.gateway.start()

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        cls.tmp.cleanup()

    def make_account(self, credits=10.0, price=0.05, *options: str, signing_key: str = SIGNING_KEY) -> str:
        """Create an account through the CLI (the running server must see it); return its token."""
        token = f"tok-{new_uuid()[:12]}"
        self.cli("account-create", "--token", token, "--name", token, "--credits", str(credits), "--price", str(price),
                 "--webhook-secret", signing_key, *options)  # fmt: skip
        return token

    def cli(self, command: str, *args: str) -> subprocess.CompletedProcess:
        """Run a CLI subcommand on this class's database."""
        return run_cli(self.db_path, command, *args)

    def send(self, token: str, messages: list, **params) -> list:
        """Call /send and return its result, failing the test on a whole-call error."""
        status, body = self.gateway.rpc("send", {"account_token": token, "messages": messages, **params})
        self.assertEqual(status, 200, body)
        self.assertNotIn("error", body)
        return body["result"]

    def balance(self, token: str) -> float:
        """Return the balance the /balance route answers."""
        return self.gateway.rpc("balance", {"account_token": token})[1]["result"]["credits"]

    def messages(self, token: str) -> dict:
        """Return the admin view of the account's messages, by uuid."""
        return {m["uuid"]: m for m in self.gateway.admin(f"messages?token={token}")}

    def assert_rpc_error(self, route: str, params, name: str):
        """Assert that the call fails as a whole with JSON-RPC error ``name``."""
        status, body = self.gateway.rpc(route, params)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["error"]["code"], 200, body)
        self.assertEqual(body["error"]["data"]["name"], name, body)

    @contextlib.contextmanager
    def faults(self, **changes):
        """Apply runtime settings for the block, then restore the previous values."""
        previous = self.gateway.admin("faults")
        self.gateway.admin("faults", changes)
        try:
            yield
        finally:
            self.gateway.admin("faults", {name: previous[name] for name in changes})


class ApiTests(GatewayTestCase):
    """The protocol routes, against one running server."""

    def test_balance_and_prices(self):
        token = self.make_account(12.5, 0.07, "--country-price", "FR=0.045", "--country-price", "be=0.06")
        self.assertEqual(self.balance(token), 12.5)
        status, body = self.gateway.rpc("prices", {"account_token": token})
        self.assertEqual(status, 200)
        self.assertEqual(
            body, {"jsonrpc": "2.0", "id": 17, "result": {"default": 0.07, "countries": {"FR": 0.045, "BE": 0.06}}}
        )

    def test_send_charges_per_part_and_country(self):
        token = self.make_account(10, 0.05, "--country-price", "FR=0.045", "--country-price", "DE=0.08")
        batch = [
            sms("+33612345678", "a" * 160),  # FR, 1 part
            sms("+33612345678", "a" * 161),  # FR, 2 parts
            sms("+4915112345678", "€" * 81, sms_class="flash"),  # DE, extension chars count 2: 162 -> 2 parts
            sms("+4915112345678", "ç" * 71),  # DE, UCS-2: 71 -> 2 parts
            sms("+999123456789", "hi"),  # unknown prefix: default price
        ]
        result = self.send(token, batch)
        self.assertEqual([r["uuid"] for r in result], [m["uuid"] for m in batch])
        self.assertEqual({r["state"] for r in result}, {"accepted"})
        expected = [0.045, 0.09, 0.16, 0.16, 0.05]
        for entry, credits in zip(result, expected, strict=True):
            self.assertAlmostEqual(entry["credits"], credits, places=9)
        self.assertAlmostEqual(self.balance(token), 10 - sum(expected), places=9)
        stored = self.messages(token)
        self.assertEqual([stored[m["uuid"]]["parts"] for m in batch], [1, 2, 2, 2, 1])
        self.assertEqual([stored[m["uuid"]]["country"] for m in batch], ["FR", "FR", "DE", "DE", None])
        self.assertEqual(stored[batch[2]["uuid"]]["sms_class"], "flash")

    def test_idempotent_resend(self):
        token = self.make_account(10, 0.05)
        batch = [sms(), sms("+32470123456")]
        first = self.send(token, batch)
        self.assertEqual([r["credits"] for r in first], [0.05, 0.05])
        second = self.send(token, batch)
        self.assertEqual(second, [{"uuid": m["uuid"], "state": "accepted", "credits": 0.0} for m in batch])
        self.assertAlmostEqual(self.balance(token), 9.9, places=9)
        stored = self.messages(token)
        self.assertEqual([stored[m["uuid"]]["presented_count"] for m in batch], [2, 2])
        stats = self.gateway.admin(f"stats?token={token}")
        self.assertEqual(stats["by_state"], {"accepted": 2})
        self.assertEqual(stats["duplicate_accept_attempts"], 2)
        self.assertEqual(stats["presented_total"], 4)

    def test_same_uuid_twice_in_one_batch_is_charged_once(self):
        token = self.make_account(10, 0.05)
        message = sms()
        result = self.send(token, [message, message])
        self.assertEqual([r["credits"] for r in result], [0.05, 0.0])
        self.assertEqual(self.messages(token)[message["uuid"]]["presented_count"], 2)

    def test_insufficient_credit_part_way(self):
        token = self.make_account(0.1, 0.04)
        batch = [sms() for _index in range(5)]
        result = self.send(token, batch)
        self.assertEqual([r["state"] for r in result], ["accepted"] * 2 + ["insufficient_credit"] * 3)
        self.assertEqual([r["credits"] for r in result], [0.04, 0.04, 0.0, 0.0, 0.0])
        self.assertAlmostEqual(self.balance(token), 0.02, places=9)
        # After a top-up the same batch is retried: the refused ones go through, the accepted ones cost 0.
        self.gateway.admin("topup", {"token": token, "credits": 1})
        retry = self.send(token, batch)
        self.assertEqual({r["state"] for r in retry}, {"accepted"})
        self.assertEqual([r["credits"] for r in retry], [0.0, 0.0, 0.04, 0.04, 0.04])
        self.assertAlmostEqual(self.balance(token), 0.9, places=9)

    def test_insufficient_credit_for_the_first_message(self):
        token = self.make_account(0.03, 0.04)
        self.assert_rpc_error("send", {"account_token": token, "messages": [sms(), sms()]}, "InsufficientCreditError")
        self.assertEqual(self.messages(token), {})
        self.assertAlmostEqual(self.balance(token), 0.03, places=9)

    def test_bad_or_missing_token(self):
        for route in ("balance", "prices", "send"):
            with self.subTest(route=route):
                self.assert_rpc_error(route, {"account_token": "nope", "messages": [sms()]}, "AccessError")
                self.assert_rpc_error(route, {"messages": [sms()]}, "AccessError")

    def test_validation_errors(self):
        token = self.make_account()
        bad_params = {
            "messages not a list": {"messages": {"uuid": new_uuid()}},
            "messages missing": {},
            "more than 1000": {"messages": [sms() for _index in range(1001)]},
            "missing uuid": {"messages": [{"number": "+33612345678", "content": "x"}]},
            "uuid not hex": {"messages": [sms(message_uuid="not-a-uuid")]},
            "missing number": {"messages": [{"uuid": new_uuid(), "content": "x"}]},
            "missing content": {"messages": [{"uuid": new_uuid(), "number": "+33612345678"}]},
            "bad sms_class": {"messages": [sms(sms_class="loud")]},
            "bad sender type": {"messages": [sms(sender=42)]},
            "bad webhook_url": {"messages": [sms()], "webhook_url": "ftp://example"},
        }
        for label, params in bad_params.items():
            with self.subTest(label):
                self.assert_rpc_error("send", {"account_token": token, **params}, "ValidationError")
        self.assert_rpc_error("send", ["not", "an", "object"], "ValidationError")
        status, body = self.gateway.request("POST", "/api/sms/1/send", raw=b"{not json")
        self.assertEqual((status, body["error"]["data"]["name"]), (200, "ValidationError"))
        self.assertEqual(self.messages(token), {})
        self.assertEqual(self.send(token, []), [])

    def test_wrong_number_format(self):
        token = self.make_account(10, 0.05)
        numbers = ["0612345678", "+33 6 12 34 56 78", "+1234567", "+1234567890123456", "33612345678", "+12345678"]
        result = self.send(token, [sms(number) for number in numbers])
        self.assertEqual([r["state"] for r in result], ["wrong_number_format"] * 5 + ["accepted"])
        self.assertEqual([r["credits"] for r in result], [0.0] * 5 + [0.05])

    def test_invalid_sender(self):
        token = self.make_account(10, 0.05, "--sender", "MyShop", "--sender", "12345")
        result = self.send(token, [sms(sender="Other"), sms(sender="MyShop"), sms(sender=None), sms(sender="12345")])
        self.assertEqual([r["state"] for r in result], ["invalid_sender", "accepted", "accepted", "accepted"])
        open_token = self.make_account(10, 0.05)
        self.assertEqual(self.send(open_token, [sms(sender="Anything")])[0]["state"], "accepted")

    def test_cli_changes_are_seen_by_the_running_server(self):
        token = self.make_account(1, 0.05)
        self.cli("topup", "--token", token, "--credits", "2.5")
        self.assertEqual(self.balance(token), 3.5)
        self.cli("account-create", "--token", token, "--name", "renamed", "--credits", "7", "--price", "0.1")
        self.assertEqual(self.balance(token), 7)
        self.assertEqual(self.send(token, [sms()])[0]["credits"], 0.1)

    def test_credit_cap(self):
        token = self.make_account(10, 0.05)
        with self.faults(credit_cap=0.1):
            self.assertEqual(self.balance(token), 0.1)
            result = self.send(token, [sms(), sms(), sms()])
        self.assertEqual([r["state"] for r in result], ["accepted", "accepted", "insufficient_credit"])
        self.assertAlmostEqual(self.balance(token), 9.9, places=9)

    def test_admin_routes(self):
        self.assertEqual(self.gateway.admin("health"), {"ok": True})
        self.assertIn("fail_ratio", self.gateway.admin("faults"))
        status, body = self.gateway.request("POST", "/_admin/faults", {"fail_ratio": 2})
        self.assertEqual(status, 400, body)
        status, _body = self.gateway.request("GET", "/_admin/nothing")
        self.assertEqual(status, 404)
        status, _body = self.gateway.request("POST", "/api/sms/1/nothing", {})
        self.assertEqual(status, 404)


class CallbackTests(GatewayTestCase):
    """Delivery reports and inbound messages reach a local receiver, signed."""

    def setUp(self):
        self.receiver = CallbackReceiver(SIGNING_KEY)
        self.addCleanup(self.receiver.close)

    def test_delivery_reports_are_signed(self):
        token = self.make_account(10, 0.05)
        batch = [sms() for _index in range(5)]
        self.send(token, batch, webhook_url=self.receiver.url("/sms/report"))
        reports = wait_until(lambda: len(self.receiver.accepted()) >= 5 and self.receiver.accepted(), 10)
        self.assertEqual(len(reports), 5, self.receiver.records)
        self.assertTrue(all(r["valid"] for r in self.receiver.records))
        self.assertEqual({r["payload"]["uuid"] for r in reports}, {m["uuid"] for m in batch})
        for report in reports:
            self.assertEqual(set(report["payload"]), {"uuid", "state", "at"})
            self.assertIn(report["payload"]["state"], protocol.REPORT_STATES)
            self.assertRegex(report["payload"]["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        stored = wait_until(
            lambda: all(m["report_status"] == "sent" for m in self.messages(token).values()) and self.messages(token), 5
        )
        self.assertTrue(stored)
        for report in reports:
            self.assertEqual(stored[report["payload"]["uuid"]]["report_state"], report["payload"]["state"])

    def test_status_follows_the_reports(self):
        token, other = self.make_account(10, 0.05), self.make_account(10, 0.05)
        batch = [sms() for _index in range(3)]
        never_sent, foreign = new_uuid(), sms()
        self.send(other, [foreign])
        self.send(token, batch, webhook_url=self.receiver.url("/sms/report"))
        wait_until(lambda: len(self.receiver.accepted()) >= 3, 10)
        stored = wait_until(
            lambda: all(m["report_status"] == "sent" for m in self.messages(token).values()) and self.messages(token), 5
        )
        uuids = [m["uuid"] for m in batch] + [never_sent, foreign["uuid"]]
        status, body = self.gateway.rpc("status", {"account_token": token, "uuids": [u.upper() for u in uuids]})
        self.assertEqual(status, 200, body)
        answer = body["result"]
        self.assertEqual([item["uuid"] for item in answer], uuids, "one item per uuid, in order, lower case")
        for item, message in zip(answer[:3], batch, strict=True):
            self.assertEqual(item["state"], stored[message["uuid"]]["report_state"])
            self.assertEqual(item["at"], stored[message["uuid"]]["reported_at"])
            self.assertIn(item["state"], protocol.REPORT_STATES)
        self.assertEqual([item["state"] for item in answer[3:]], ["unknown", "unknown"],
                         "never sent, or sent by another account: unknown to this one")
        self.assert_rpc_error("status", {"account_token": token, "uuids": ["nope"]}, "ValidationError")
        self.assert_rpc_error("status", {"account_token": "tok-nobody", "uuids": []}, "AccessError")

    def test_status_pending_until_reported(self):
        token, message = self.make_account(10, 0.05), sms()
        self.send(token, [message])  # no webhook_url: never reported
        status, body = self.gateway.rpc("status", {"account_token": token, "uuids": [message["uuid"]]})
        self.assertEqual(body["result"], [{"uuid": message["uuid"], "state": "pending", "at": None}])

    def test_wrong_secret_is_refused_by_the_receiver(self):
        token = self.make_account(10, 0.05, signing_key="other")
        self.send(token, [sms()], webhook_url=self.receiver.url("/sms/report"))
        self.assertTrue(wait_until(lambda: self.receiver.records, 10))
        self.assertFalse(self.receiver.records[0]["valid"])
        self.assertEqual(self.receiver.accepted(), [])

    def test_duplicate_reports(self):
        token = self.make_account(10, 0.05)
        batch = [sms(), sms()]
        with self.faults(duplicate_reports=1.0):
            self.send(token, batch, webhook_url=self.receiver.url("/sms/report"))
            reports = wait_until(lambda: len(self.receiver.accepted()) >= 4 and self.receiver.accepted(), 10)
        self.assertEqual(sorted(r["payload"]["uuid"] for r in reports), sorted([m["uuid"] for m in batch] * 2))
        stored = wait_until(lambda: all(m["report_count"] == 2 for m in self.messages(token).values()), 5)
        self.assertTrue(stored)

    def test_failed_report_is_retried(self):
        token = self.make_account(10, 0.05)
        message = sms()
        self.send(token, [message], webhook_url=self.receiver.url("/flaky"))
        self.assertTrue(wait_until(lambda: self.receiver.accepted("/flaky"), 10), self.receiver.records)
        self.assertEqual([r["status"] for r in self.receiver.records], [500, 200])
        stored = wait_until(lambda: self.messages(token)[message["uuid"]]["report_status"] == "sent", 5)
        self.assertTrue(stored)

    def test_inbound_via_admin_route_and_cli(self):
        inbound_url = self.receiver.url("/sms/inbound")
        token = self.make_account(10, 0.05, "--inbound-url", inbound_url, "--sender", "MyShop")
        inbound = {"token": token, "from": "+33612345678", "to": "MyShop", "body": "STOP"}
        outcome = self.gateway.admin("inbound", inbound)
        self.assertTrue(outcome["ok"], outcome)
        self.cli("inbound", "--token", token, "--from", "+33612345679", "--to", "MyShop", "--body", "START")
        records = self.receiver.accepted("/sms/inbound")
        self.assertEqual([r["payload"]["body"] for r in records], ["STOP", "START"])
        self.assertTrue(all(r["valid"] for r in records))
        self.assertEqual(set(records[0]["payload"]), {"from", "to", "body", "at"})
        self.assertEqual((records[0]["payload"]["from"], records[0]["payload"]["to"]), ("+33612345678", "MyShop"))
        self.assertEqual(self.gateway.admin(f"stats?token={token}")["inbound"], 2)


class FaultInjectionTests(GatewayTestCase):
    """Lost responses and timeouts: the retry with the same uuids is charged 0."""

    def test_accept_then_fail_then_retry_charges_zero(self):
        token = self.make_account(10, 0.05)
        batch = [sms(), sms(), sms()]
        with self.faults(accept_then_fail_ratio=1.0):
            status, body = self.gateway.rpc("send", {"account_token": token, "messages": batch})
        self.assertEqual(status, 500, body)
        self.assertAlmostEqual(self.balance(token), 9.85, places=9)
        retry = self.send(token, batch)
        self.assertEqual([(r["state"], r["credits"]) for r in retry], [("accepted", 0.0)] * 3)
        self.assertAlmostEqual(self.balance(token), 9.85, places=9)
        self.assertEqual({m["presented_count"] for m in self.messages(token).values()}, {2})

    def test_timeout_then_retry_charges_zero(self):
        token = self.make_account(10, 0.05)
        batch = [sms()]
        with self.faults(timeout_ratio=1.0, timeout_seconds=1.0), self.assertRaises(TimeoutError):
            self.gateway.rpc("send", {"account_token": token, "messages": batch}, timeout=0.3)
        retry = self.send(token, batch)
        self.assertEqual(retry[0]["credits"], 0.0)
        self.assertAlmostEqual(self.balance(token), 9.95, places=9)

    def test_concurrent_retries_are_charged_once(self):
        token = self.make_account(10, 0.05)
        batch = [sms() for _index in range(50)]
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.send(token, batch))) for _index in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(len(results), 4)
        charged = [sum(entry["credits"] for entry in result) for result in results]
        self.assertEqual(sorted(round(credits, 9) for credits in charged), [0.0, 0.0, 0.0, 2.5])
        self.assertAlmostEqual(self.balance(token), 7.5, places=9)
        self.assertEqual({m["presented_count"] for m in self.messages(token).values()}, {4})

    def test_fail_ratio_at_runtime(self):
        token = self.make_account(10, 0.05)
        with self.faults(fail_ratio=1.0):
            status, body = self.gateway.rpc("send", {"account_token": token, "messages": [sms()]})
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["data"]["name"], "ServerError")
        self.assertEqual(self.messages(token), {})
        self.assertEqual(self.balance(token), 10)


class LifecycleTests(unittest.TestCase):
    """Servers started for one test: startup flags, restart, graceful shutdown."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="sms-gateway-test-")
        self.addCleanup(tmp.cleanup)
        self.db_path = str(Path(tmp.name) / "gateway.sqlite3")
        self.log_path = str(Path(tmp.name) / "server.log")
        run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop", "--credits", "10", "--price", "0.05")

    def start(self, *options: str) -> GatewayProcess:
        gateway = GatewayProcess(self.db_path, self.log_path, *options).start()
        self.addCleanup(gateway.stop)
        return gateway

    def test_fail_ratio_flag_answers_503(self):
        gateway = self.start("--fail-ratio", "1.0", "--seed", "1")
        params = {"account_token": "T", "messages": [sms()]}
        for _attempt in range(3):
            self.assertEqual(gateway.rpc("send", params)[0], 503)
        self.assertEqual(gateway.admin("stats")["messages"], 0)
        self.assertEqual(gateway.admin("stats")["server"]["injected.fail_503"], 3)
        gateway.admin("faults", {"fail_ratio": 0})
        status, body = gateway.rpc("send", params)
        self.assertEqual((status, body["result"][0]["state"]), (200, "accepted"))

    def test_persistence_across_restart(self):
        gateway = self.start("--report-delay", "0")
        batch = [sms(), sms("+41791234567")]
        status, body = gateway.rpc("send", {"account_token": "T", "messages": batch})
        self.assertEqual(status, 200, body)
        self.assertEqual(gateway.stop(), 0)
        self.assertIn("stopped", gateway.log())
        gateway = self.start()
        self.assertAlmostEqual(gateway.rpc("balance", {"account_token": "T"})[1]["result"]["credits"], 9.9, places=9)
        status, body = gateway.rpc("send", {"account_token": "T", "messages": batch})
        self.assertEqual([r["credits"] for r in body["result"]], [0.0, 0.0])
        self.assertEqual({m["presented_count"] for m in gateway.admin("messages")}, {2})


    def test_reports_wait_for_a_receiver_down_across_a_gateway_restart(self):
        """Issue 12: Odoo restarting during delivery reports lost them all. A report whose receiver is
        down is retried with backoff, stays queued in SQLite when the gateway itself restarts, and
        reaches the receiver once it is back."""
        receiver = CallbackReceiver(SIGNING_KEY)
        port = receiver.server.server_address[1]
        receiver.close()  # the receiver is down: connections are refused
        run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop", "--credits", "10",
                "--webhook-secret", SIGNING_KEY)  # fmt: skip
        retry = ("--report-delay", "0", "--report-retry-base", "0.2", "--report-retry-cap", "0.4",
                 "--report-max-attempts", "1000")  # fmt: skip
        gateway = self.start(*retry)
        batch = [sms(), sms("+41791234567")]
        url = f"http://127.0.0.1:{port}/sms/report"
        status, body = gateway.rpc("send", {"account_token": "T", "messages": batch, "webhook_url": url})
        self.assertEqual(status, 200, body)
        tried = wait_until(lambda: all(m["report_attempts"] >= 2 for m in gateway.admin("messages")), 10)
        self.assertTrue(tried, gateway.admin("messages"))
        self.assertEqual({m["report_status"] for m in gateway.admin("messages")} - {"due", "pending"}, set())
        self.assertEqual(gateway.stop(), 0)
        receiver = CallbackReceiver(SIGNING_KEY, port)
        self.addCleanup(receiver.close)
        gateway = self.start(*retry)
        delivered = wait_until(lambda: len(receiver.accepted("/sms/report")) >= 2, 10)
        self.assertTrue(delivered, gateway.log())
        self.assertEqual({r["payload"]["uuid"] for r in receiver.accepted()}, {m["uuid"] for m in batch})
        sent = wait_until(lambda: {m["report_status"] for m in gateway.admin("messages")} == {"sent"}, 5)
        self.assertTrue(sent, gateway.admin("messages"))

    def test_retry_window_options(self):
        gateway = self.start("--report-retry-base", "60", "--report-retry-cap", "600", "--report-max-attempts", "3")
        self.assertIn("delivery reports retried 3 times over 180 seconds", gateway.log())
        self.assertEqual(gateway.stop(), 0)
        bad = subprocess.run(  # noqa: S603 - fixed argv built from this repository
            [sys.executable, str(GATEWAY_SCRIPT), "serve", "--db", self.db_path, "--port", "0",
             "--report-retry-base", "10", "--report-retry-cap", "5"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("0 < base <= cap", bad.stderr)


class RetryPolicyTests(unittest.TestCase):
    """The delivery-report retry window (docs/gateway-protocol.md 1.2: at least 4 hours)."""

    def test_default_window_covers_hours(self):
        delays = DEFAULT_RETRY_POLICY.delays()
        self.assertEqual(len(delays), DEFAULT_RETRY_POLICY.max_attempts - 1)
        self.assertEqual(delays[:3], [30.0, 60.0, 120.0])
        self.assertEqual(max(delays), 3600.0)
        self.assertEqual(delays, sorted(delays))
        self.assertGreaterEqual(DEFAULT_RETRY_POLICY.window(), 4 * 3600)

    def test_fast_policy_for_tests(self):
        self.assertEqual(FAST_RETRY_POLICY.window(), 7.5)

    def test_invalid_policies(self):
        for args in ((0, 10, 3), (10, 5, 3), (1, 10, 0)):
            with self.subTest(args=args), self.assertRaises(ValueError):
                RetryPolicy(*args)


class CliTests(unittest.TestCase):
    """The CLI works on the SQLite file, with or without a running server."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="sms-gateway-test-")
        self.addCleanup(tmp.cleanup)
        self.db_path = str(Path(tmp.name) / "gateway.sqlite3")

    def test_account_lifecycle(self):
        created = run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop", "--credits", "5",
                          "--country-price", "FR=0.045", "--sender", "MyShop")  # fmt: skip
        self.assertIn("created account 'Shop'", created.stdout)
        updated = run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop 2", "--credits", "6")
        self.assertIn("updated account 'Shop 2'", updated.stdout)
        run_cli(self.db_path, "topup", "--token", "T", "--credits", "1.5")
        accounts = json.loads(run_cli(self.db_path, "accounts", "--json").stdout)
        self.assertEqual(len(accounts), 1)
        account = accounts[0]
        self.assertEqual((account["name"], account["credits"]), ("Shop 2", 7.5))
        self.assertEqual((account["country_prices"], account["senders"]), ({"FR": 0.045}, ["MyShop"]))
        self.assertEqual(len(account["webhook_secret"]), 32)
        self.assertIn("Shop 2", run_cli(self.db_path, "accounts").stdout)
        run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop 2", "--credits", "6", "--any-sender")
        self.assertEqual(json.loads(run_cli(self.db_path, "accounts", "--json").stdout)[0]["senders"], [])

    def test_messages_and_stats_without_server(self):
        run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop", "--credits", "5")
        self.assertIn("UUID", run_cli(self.db_path, "messages").stdout)
        stats = json.loads(run_cli(self.db_path, "stats").stdout)
        self.assertEqual((stats["messages"], stats["duplicate_accept_attempts"]), (0, 0))

    def test_errors_exit_non_zero(self):
        failed = run_cli(self.db_path, "topup", "--token", "missing", "--credits", "1", check=False)
        self.assertEqual(failed.returncode, 1)
        self.assertIn("AccessError", failed.stderr)
        run_cli(self.db_path, "account-create", "--token", "T", "--name", "Shop", "--credits", "5")
        failed = run_cli(self.db_path, "inbound", "--from", "+33612345678", "--to", "X", "--body", "STOP", check=False)
        self.assertEqual(failed.returncode, 1)
        self.assertIn("no inbound URL", failed.stderr)

    def test_both_entry_points_from_any_directory(self):
        # The launcher script works from another directory; ``python3 -m gateway`` from the repository root.
        created = subprocess.run(  # noqa: S603 - fixed argv built from this repository
            [sys.executable, str(GATEWAY_SCRIPT), "account-create", "--db", self.db_path, "--token", "T",
             "--name", "Shop", "--credits", "5"],
            capture_output=True, text=True, timeout=30, check=True, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        self.assertIn("created account 'Shop'", created.stdout)
        listed = subprocess.run(  # noqa: S603 - fixed argv built from this repository
            [sys.executable, "-m", "gateway", "accounts", "--json", "--db", self.db_path],
            capture_output=True, text=True, timeout=30, check=True, cwd=REPO_ROOT,
        )  # fmt: skip
        self.assertEqual([account["token"] for account in json.loads(listed.stdout)], ["T"])


class ThroughputTests(GatewayTestCase):
    """20 batches of 1000 on one keep-alive connection; prints msgs/s, asserts exactly-once acceptance."""

    server_options = ("--seed", "3")
    batches = 20
    batch_size = 1000

    def test_twenty_batches_of_1000(self):
        token = self.make_account(10_000, 0.01)
        batches = [
            [sms(f"+336{index:08d}", f"Promo {index}: -20% on everything this weekend!") for index in range(1000)]
            for _batch in range(self.batches)
        ]
        connection = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=60)
        self.addCleanup(connection.close)
        results = []
        started = time.perf_counter()
        for batch in batches:
            params = {"account_token": token, "messages": batch}
            envelope = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}
            connection.request("POST", "/api/sms/1/send", json.dumps(envelope), {"Content-Type": "application/json"})
            response = connection.getresponse()
            self.assertEqual(response.status, 200)
            results.extend(json.loads(response.read())["result"])
        elapsed = time.perf_counter() - started
        total = self.batches * self.batch_size
        print(f"\n[gateway throughput] {total} SMS in {elapsed:.2f} s = {total / elapsed:,.0f} msgs/s", file=sys.stderr)
        self.assertEqual(len(results), total)
        self.assertEqual({(r["state"], r["credits"]) for r in results}, {("accepted", 0.01)})
        stats = self.gateway.admin(f"stats?token={token}")
        self.assertEqual(stats["by_state"], {"accepted": total})
        self.assertEqual((stats["presented_total"], stats["duplicate_accept_attempts"]), (total, 0))
        self.assertAlmostEqual(self.balance(token), 10_000 - total * 0.01, places=6)


if __name__ == "__main__":
    unittest.main()
