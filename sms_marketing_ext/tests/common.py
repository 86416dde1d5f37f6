"""The addon's test kit (in the spirit of stock ``sms/tests/common.py``).

- constants shared by the test files (numbers, short-link base, user agents, prices);
- :class:`SmsMarketingUsersMixin`, :class:`SmsSenderMixin`, :class:`SmsMailingMixin`: users, senders,
  gateways, lists, mailings, traces and consent records, created the same way in every file;
- :class:`MockSmsGateway`: the gateway at the HTTP boundary (the ``requests`` call of
  ``tools/sms_gateway_api.SmsGatewayApi``) for fast unit tests of our logic, with per-number results,
  and :meth:`~MockSmsGateway.assertSmsTraces` / :meth:`~MockSmsGateway.assertSmsGatewaySent`;
- :class:`LocalGatewayMixin`: the project's real local gateway in a subprocess, for end-to-end tests.
"""
import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from unittest.mock import patch

import requests

from odoo.modules.module import get_module_path
from odoo.tests.common import BaseCase

from odoo.addons.mail.tests.common import mail_new_test_user

from ..tools import sms_audience, sms_gateway_api, sms_segments

# Numbers and places the tests share (valid numbers, as phonenumbers sees them).
NUMBER = "+33612345678"  # the French mobile of most single-recipient tests
NUMBER_BE = "+32470123456"
SHORT_BASE = "https://go.example.com"  # the companies' short-link domain in tests
# Prices of the test gateway accounts: credits per SMS part, per destination country.
DEFAULT_PRICE = 0.05
PRICES = {"FR": 0.05, "BE": 0.08}

# User agents: a person's phone, and a link preview (what iMessage sends for previews).
BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
PREVIEW = "facebookexternalhit/1.1 Facebot Twitterbot/1.0"
WHATSAPP = "WhatsApp/2.23.20.0 A"

# Webhook secret of test gateway records, not a credential.
WEBHOOK_SECRET = "webhook-secret-for-tests"  # noqa: S105
# Base URL of gateway records served by MockSmsGateway: nothing listens there (a test that forgets
# the mock fails with "Cannot reach", it never reaches a real gateway).
MOCK_GATEWAY_URL = "http://127.0.0.1:9"



def stop_process(process, grace, kill_wait=5):
    """Stop a subprocess the tests started: SIGTERM (a graceful shutdown), SIGKILL when it is
    still running after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(kill_wait)

class SmsMarketingUsersMixin:
    """Users of each profile the addon cares about, created once per test class."""

    @classmethod
    def _create_sms_users(cls):
        cls.user_marketing = mail_new_test_user(
            cls.env,
            login="sms_marketing_user",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_user",
            name="Mia Marketing",
            email="mia@example.com",
        )
        cls.user_sms_admin = mail_new_test_user(
            cls.env,
            login="sms_marketing_admin",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_admin",
            name="Adam SMS Admin",
            email="adam@example.com",
        )
        cls.user_employee = mail_new_test_user(
            cls.env,
            login="sms_employee",
            groups="base.group_user",
            name="Eve Employee",
        )
        cls.user_portal = mail_new_test_user(
            cls.env,
            login="sms_portal",
            groups="base.group_portal",
            name="Paul Portal",
        )


class SmsSenderMixin:
    """Senders in each state, for tests that need one."""

    JUSTIFICATION = base64.b64encode(b"%PDF-1.4 letterhead with a signed authorisation")

    @classmethod
    def _create_sender(cls, name, sender_type="alphanumeric", state="approved", company=None, **vals):
        # Only an approved sender can be a company's default: flagged once approved.
        is_default = vals.pop("is_default", False) if state == "approved" else vals.get("is_default")
        sender = (
            cls.env["sms.sender"]
            .sudo()
            .create(
                {
                    "name": name,
                    "sender_type": sender_type,
                    "description": f"{name} description",
                    "reason": "Promotions of the shop",
                    "justification_document": cls.JUSTIFICATION,
                    "justification_filename": "letterhead.pdf",
                    "company_id": (company or cls.env.company).id,
                    **vals,
                }
            )
        )
        if state != "draft":
            sender.action_submit()
        if state in ("approved", "refused"):
            sender.action_approve()
        if state == "refused":
            sender.refusal_reason = "Not your brand"
            sender.action_refuse()
        if is_default and state == "approved":
            sender.is_default = True
        return sender


class SmsMailingMixin:
    """Gateways, lists, mailings, traces and consent records, created the same way in every test file,
    and :meth:`assertSmsTraces`."""

    @classmethod
    def _create_sms_gateway(cls, name="Test gateway", base_url=MOCK_GATEWAY_URL, account_token="tok_test",  # noqa: S107
                            webhook_secret=WEBHOOK_SECRET, **vals):
        """A JSON-RPC gateway record, by default on :data:`MOCK_GATEWAY_URL` (for :class:`MockSmsGateway`)
        and checking callbacks with :data:`WEBHOOK_SECRET` (``webhook_secret=None``: a generated one)."""
        values = {"name": name, "provider": "jsonrpc", "base_url": base_url, "account_token": account_token}
        if webhook_secret:
            values["webhook_secret"] = webhook_secret
        return cls.env["sms.gateway"].create({**values, **vals})

    @classmethod
    def _create_sms_list(cls, name, contacts=()):
        """A mailing list with a contact per item of ``contacts``: ``(name, mobile)`` pairs or dicts of values."""
        mailing_list = cls.env["mailing.list"].create({"name": name})
        cls.env["mailing.contact"].create([
            {**(contact if isinstance(contact, dict) else {"name": contact[0], "mobile": contact[1]}),
             "list_ids": [(4, mailing_list.id)]}
            for contact in contacts
        ])
        return mailing_list

    @classmethod
    def _create_sms_mailing(cls, body="Hello", mailing_list=None, model=None, user=None, **vals):
        """An SMS mailing on ``mailing_list`` (a recordset of lists) or on ``model``, created as ``user``."""
        values = {"subject": "SMS mailing", "mailing_type": "sms", "body_plaintext": body}
        if mailing_list is not None:
            values["mailing_model_id"] = cls.env["ir.model"]._get_id("mailing.list")
            values["contact_list_ids"] = [(6, 0, mailing_list.ids)]
        elif model:
            values["mailing_model_id"] = cls.env["ir.model"]._get_id(model)
        Mailing = cls.env["mailing.mailing"]
        return (Mailing.with_user(user) if user else Mailing).create({**values, **vals})

    @classmethod
    def _create_sms_trace(cls, mailing, record, number=None, **vals):
        """An SMS trace of ``mailing`` to ``record`` (pending, to the record's mobile unless ``number``)."""
        return cls.env["mailing.trace"].create({
            "trace_type": "sms",
            "model": record._name,
            "res_id": record.id,
            "mass_mailing_id": mailing.id,
            "trace_status": "pending",
            "sms_number": record.mobile if number is None else number,
            **vals,
        })

    def _sms_traces(self, mailing, status=None):
        domain = [("mass_mailing_id", "=", mailing.id), ("trace_type", "=", "sms")]
        if status:
            domain.append(("trace_status", "=", status))
        return self.env["mailing.trace"].search(domain)

    def _sms_consent_events(self, number=NUMBER):
        return self.env["sms.consent.event"].search([("number", "=", number)], order="id")

    def _sms_blacklist_entry(self, number=NUMBER):
        return self.env["phone.blacklist"].with_context(active_test=False).search([("number", "=", number)])

    def _post_sms_webhook(self, gateway, kind, payload, secret=WEBHOOK_SECRET, signature=None):
        """POST ``payload`` (a dict, or raw bytes) to ``gateway``'s ``kind`` webhook as the gateway does:
        signed with ``secret`` unless ``signature`` is given (``secret=None``: unsigned). HttpCase only."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if signature is None and secret is not None:
            signature = sms_gateway_api.sign(secret, body)
        if signature is not None:
            headers[sms_gateway_api.SIGNATURE_HEADER] = signature
        return self.url_open(f"/sms_marketing_ext/webhook/{gateway.id}/{kind}", data=body, headers=headers)

    def assertSmsTraces(self, mailing, expected, content=None):
        """The SMS traces of ``mailing`` are, by number, ``expected``: ``{number: status}`` or
        ``{number: (status, failure_type)}``, or a list of those for a number with several traces
        (duplicates); ``False`` is the key of recipients without a number. A number missing from
        ``expected`` must have no trace.

        Under :meth:`MockSmsGateway.mockSmsGateway`, each accepted trace (pending or sent) was accepted
        once by the gateway, with its uuid, for the credits the trace records, and its message contains
        ``content`` when given.
        """
        actual = {}
        for trace in self._sms_traces(mailing):
            actual.setdefault(trace.sms_number or False, []).append(trace)
        self.assertEqual(set(actual), set(expected), f"numbers with a trace of {mailing.subject}")
        for number, expectation in expected.items():
            wanted = expectation if isinstance(expectation, list) else [expectation]
            got = [(trace.trace_status, trace.failure_type or False) for trace in actual[number]]
            remaining = list(got)
            for item in wanted:
                status, failure = (item, None) if isinstance(item, str) else item
                match = next(
                    (one for one in remaining if one[0] == status and (failure is None or one[1] == failure)), None
                )
                self.assertIsNotNone(match, f"{number}: no trace {item!r} among {got}")
                remaining.remove(match)
            self.assertFalse(remaining, f"{number}: unexpected traces {remaining} (expected {wanted})")
        gateway = getattr(self, "_sms_gateway", None)
        if gateway is None:
            return
        for trace in self._sms_traces(mailing).filtered(lambda t: t.trace_status in ("pending", "sent")):
            message = gateway.messages.get(trace.sms_uuid)
            self.assertTrue(message and message["state"] == "accepted",
                            f"{trace.sms_number}: the gateway did not accept uuid {trace.sms_uuid}")
            self.assertEqual(message["number"], trace.sms_number)
            self.assertEqual(message["accepted_count"], 1, f"{trace.sms_number}: accepted more than once")
            self.assertAlmostEqual(trace.sms_credits, message["credits"], msg=f"{trace.sms_number}: credits")
            if content is not None:
                self.assertIn(content, message["content"])


class _MockGatewayAccount:
    """The account of :class:`MockSmsGateway`: what the gateway knows and stores, changeable mid-test
    (``balance``, ``sim_error``, ``nbr_t_error``...)."""

    def __init__(self, balance, default_price, country_prices, senders, sim_error, nbr_t_error):
        self.balance = float(balance)
        self.default_price = default_price
        self.country_prices = dict(country_prices)
        self.senders = set(senders)
        self.sim_error = sim_error
        self.nbr_t_error = {
            number: list(states) if isinstance(states, list | tuple) else states
            for number, states in (nbr_t_error or {}).items()
        }
        self.requests = []  # every JSON-RPC call: {"url", "method", "params"}, in order
        self.messages = {}  # uuid -> the message as stored, with its state, credits and counts

    def forced_state(self, number):
        """The result chosen for ``number`` for this call: a state, a list of states (one per call
        that carries the number, the last one repeating) or None."""
        states = self.nbr_t_error.get(number)
        if isinstance(states, list):
            return states.pop(0) if len(states) > 1 else (states[0] if states else None)
        return states


class MockSmsGateway(BaseCase):
    """The SMS gateway at the HTTP boundary, for fast unit tests of our logic (the model is stock's
    ``MockSMS``): inside ``with self.mockSmsGateway(...)``, the HTTP POSTs of
    ``tools/sms_gateway_api.SmsGatewayApi`` to ``.../api/sms/1/<method>`` are answered here as the
    protocol says (``gateway-protocol.md``), so our client's own encoding, decoding and error mapping
    run. Other HTTP requests go through.

    The account charges ``parts x price`` of the destination country, keeps uuids idempotent (an
    accepted uuid answers ``accepted`` for 0 credits) and refuses messages it cannot pay
    (``insufficient_credit``; the whole call fails when the first cannot be paid), like the local
    gateway. ``nbr_t_error`` chooses the result per number (``{number: state}`` or a list of states,
    one per call):

    - a send state: ``accepted``, ``insufficient_credit``, ``wrong_number_format``, ``invalid_sender``,
      ``server_error``;
    - or, for the whole call carrying the number, ``sim_error`` values: ``transient`` (HTTP 503),
      ``lost`` (the gateway takes the batch, then answers HTTP 500: the answer is lost), ``timeout``,
      ``unreachable``, ``access`` / ``credit`` / ``server`` (JSON-RPC errors), ``html`` (not the protocol).

    ``self._sms_gateway`` is the account (requests received, messages stored, balance), kept after the
    ``with`` block for assertions.
    """

    CALL_ERRORS = ("transient", "lost", "timeout", "unreachable", "access", "credit", "server", "html")
    JSONRPC_ERRORS = {"access": "AccessError", "credit": "InsufficientCreditError", "server": "ServerError"}

    _sms_gateway = None

    def setUp(self):
        super().setUp()
        self._sms_gateway = None

    @contextmanager
    def mockSmsGateway(self, balance=1000.0, default_price=DEFAULT_PRICE, country_prices=None, senders=(),
                       sim_error=None, nbr_t_error=None):
        """Answer the gateway's HTTP calls from a fresh account; yield it."""
        self._sms_gateway = _MockGatewayAccount(
            balance, default_price, PRICES if country_prices is None else country_prices, senders, sim_error,
            nbr_t_error,
        )
        post_origin = requests.Session.post

        def _session_post(session, url, data=None, **kwargs):
            if f"{sms_gateway_api.API_PATH}/" not in url:
                return post_origin(session, url, data=data, **kwargs)
            return self._mock_sms_gateway_answer(url, json.loads(data))

        with patch.object(requests.Session, "post", autospec=True, side_effect=_session_post):
            yield self._sms_gateway

    # -- the mocked gateway's side ------------------------------------------------------------------------
    def _mock_sms_gateway_answer(self, url, payload):
        account = self._sms_gateway
        method = url.rstrip("/").rsplit("/", 1)[1]
        params = payload.get("params") or {}
        account.requests.append({"url": url, "method": method, "params": params})
        forced = {}
        for message in params.get("messages") or ():
            forced.setdefault(message["number"], account.forced_state(message["number"]))
        error = account.sim_error or next((state for state in forced.values() if state in self.CALL_ERRORS), None)
        if error == "timeout":
            raise requests.exceptions.ReadTimeout(f"mocked timeout of {url}")
        if error == "unreachable":
            raise requests.exceptions.ConnectionError(f"mocked connection refused by {url}")
        if error == "transient":
            return self._mock_http_response(503, b"Service Unavailable", "text/plain")
        if error == "html":
            return self._mock_http_response(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
        if error in self.JSONRPC_ERRORS:
            return self._mock_jsonrpc_error(payload, self.JSONRPC_ERRORS[error], f"mocked {error} error")
        if method == "balance":
            result = {"credits": account.balance}
        elif method == "prices":
            result = {"default": account.default_price, "countries": account.country_prices}
        elif method == "send":
            result = self._mock_sms_gateway_send(params["messages"], forced, params.get("webhook_url"))
            if result is None:
                return self._mock_jsonrpc_error(payload, "InsufficientCreditError", "cannot pay the first message")
        else:
            return self._mock_http_response(404, b"Not Found", "text/plain")
        if error == "lost":
            return self._mock_http_response(500, b"Internal Server Error", "text/plain")
        return self._mock_http_response(200, {"jsonrpc": "2.0", "id": payload.get("id"), "result": result})

    def _mock_sms_gateway_send(self, messages, forced, webhook_url):
        """The results of a send call, or None when the first message cannot be paid (nothing stored)."""
        account = self._sms_gateway
        results, stored, spent, out_of_credit = [], {}, 0.0, False
        for index, message in enumerate(messages):
            uuid = message["uuid"]
            previous = stored.get(uuid) or account.messages.get(uuid)
            if previous and previous["state"] == "accepted":
                stored[uuid] = dict(previous, presented_count=previous["presented_count"] + 1)
                results.append({"uuid": uuid, "state": "accepted", "credits": 0.0})
                continue
            country = _country_of(message["number"])
            cost = max(sms_segments.analyze(message["content"])["segments"], 1) * account.country_prices.get(
                country, account.default_price
            )
            state, charged = forced.get(message["number"]), 0.0
            if state in sms_gateway_api.SEND_STATES and state != "accepted":
                pass
            elif not country or not re.fullmatch(r"\+[0-9]{8,15}", message["number"]):
                state = "wrong_number_format"
            elif account.senders and message["sender"] is not None and message["sender"] not in account.senders:
                state = "invalid_sender"
            elif out_of_credit or cost > account.balance - spent + 1e-9:
                if index == 0:
                    return None
                out_of_credit, state = True, "insufficient_credit"
            else:
                state, charged = "accepted", cost
                spent += cost
            stored[uuid] = {
                **message, "country": country, "state": state, "credits": charged, "webhook_url": webhook_url,
                "presented_count": (previous or {}).get("presented_count", 0) + 1,
                "accepted_count": int(state == "accepted"),
            }
            results.append({"uuid": uuid, "state": state, "credits": charged})
        account.messages.update(stored)
        account.balance -= spent
        return results

    @staticmethod
    def _mock_http_response(status, body, content_type="application/json"):
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers["Content-Type"] = content_type
        response.encoding = "utf-8"
        return response

    def _mock_jsonrpc_error(self, payload, name, message):
        error = {"code": 200, "message": message, "data": {"name": name, "message": message}}
        return self._mock_http_response(200, {"jsonrpc": "2.0", "id": payload.get("id"), "error": error})

    # -- assertions ---------------------------------------------------------------------------------------
    def _sms_gateway_sent(self):
        """The messages the mocked gateway accepted, in the order it first received them."""
        return [message for message in self._sms_gateway.messages.values() if message["state"] == "accepted"]

    def assertSmsGatewaySent(self, numbers, content=None, exact=False, **values):
        """Each of ``numbers`` got a message accepted by the mocked gateway (order not checked), containing
        ``content`` when given, with ``values`` (``sender="MyShop"``, ``sms_class="flash"``...); with
        ``exact``, the gateway accepted exactly these messages (a number listed twice got two)."""
        sent = self._sms_gateway_sent()
        sent_numbers = [message["number"] for message in sent]
        if exact:
            self.assertEqual(sorted(sent_numbers), sorted(numbers), "numbers the gateway accepted")
        for number in numbers:
            self.assertIn(number, sent_numbers, "number not sent to the gateway")
            for message in (message for message in sent if message["number"] == number):
                if content is not None:
                    self.assertIn(content, message["content"])
                for name, value in values.items():
                    self.assertEqual(message[name], value, f"{name} of the message to {number}")


def _country_of(number):
    """ISO country of an E.164 number by its calling code (the gateway prices by it), or None."""
    codes = dict(sms_audience.calling_codes())
    digits = (number or "").lstrip("+")
    return next((codes[digits[:size]] for size in (1, 2, 3) if digits[:size] in codes), None)


class LocalGatewayMixin:
    """The project's real local SMS gateway (``gateway/sms_gateway.py`` next to the addon) run as a
    subprocess on a free loopback port with a throw-away SQLite database, for a whole test class.

    Call ``cls._start_local_gateway()`` in ``setUpClass`` (after ``super().setUpClass()``); it sets
    ``cls.gateway_url`` and ``cls.gateway_db`` and stops the server and removes its files at class
    cleanup. A missing gateway is an error, never a skip.
    """

    GATEWAY_START_TIMEOUT = 30.0
    GATEWAY_HTTP_TIMEOUT = 15.0
    _LISTENING_RE = re.compile(rb"listening on (http://\S+)")

    gateway_url = None
    gateway_db = None
    gateway_log = None

    @classmethod
    def _local_gateway_script(cls):
        addon_path = get_module_path("sms_marketing_ext")
        script = os.path.join(os.path.dirname(addon_path), "gateway", "sms_gateway.py")
        if not os.path.isfile(script):
            raise AssertionError(f"The local SMS gateway is missing: {script} must exist (the tests use the real one).")
        return script

    @classmethod
    def _start_local_gateway(cls, *serve_args):
        """Start ``sms_gateway.py serve`` (extra CLI options in ``serve_args``, e.g. ``"--report-delay",
        "0.2"``) and wait until it answers ``/_admin/health``; return its base URL."""
        script = cls._local_gateway_script()
        workdir = tempfile.mkdtemp(prefix="sms_gateway_test_")
        cls.addClassCleanup(shutil.rmtree, workdir, ignore_errors=True)
        cls.gateway_db = os.path.join(workdir, "gateway.sqlite3")
        cls.gateway_log = os.path.join(workdir, "gateway.log")
        log_file = open(cls.gateway_log, "wb")  # noqa: SIM115 - outlives this method, closed at class cleanup
        cls.addClassCleanup(log_file.close)
        process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, script, "serve", "--db", cls.gateway_db, "--host", "127.0.0.1", "--port", "0",
             *serve_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
        cls.addClassCleanup(cls._stop_local_gateway, process)
        cls.gateway_url = cls._wait_listening(process)
        cls._gateway_admin("/_admin/health")
        return cls.gateway_url

    @classmethod
    def _wait_listening(cls, process):
        deadline = time.monotonic() + cls.GATEWAY_START_TIMEOUT
        output = b""
        while time.monotonic() < deadline:
            match = cls._LISTENING_RE.search(output)
            if match:
                return match.group(1).decode()
            if process.poll() is not None:
                break
            ready, _w, _x = select.select([process.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk and process.poll() is not None:
                    break
                output += chunk
        raise AssertionError(
            f"The local SMS gateway did not start (exit code {process.poll()}): {output!r}\n{cls._gateway_log_tail()}"
        )

    @classmethod
    def _gateway_log_tail(cls, size=4000):
        if not cls.gateway_log or not os.path.exists(cls.gateway_log):
            return ""
        with open(cls.gateway_log, "rb") as log:
            return log.read()[-size:].decode(errors="replace")

    @staticmethod
    def _stop_local_gateway(process):
        stop_process(process, 15)
        if process.stdout:
            process.stdout.close()

    @classmethod
    def _gateway_cli(cls, *args):
        """Run ``sms_gateway.py <args> --db <the test database>``; return its standard output."""
        completed = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [sys.executable, cls._local_gateway_script(), *args, "--db", cls.gateway_db],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode:
            raise AssertionError(f"sms_gateway.py {' '.join(args)} failed: {completed.stderr or completed.stdout}")
        return completed.stdout

    @classmethod
    def _gateway_create_account(cls, token, balance, name=None, price=None, country_prices=None, senders=None,
                                webhook_secret=None, inbound_url=None):
        """Create (or reset) an account through the CLI; ``country_prices`` is ``{"FR": 0.045, ...}``."""
        args = ["account-create", "--token", token, "--name", name or token, "--credits", str(balance)]
        if price is not None:
            args += ["--price", str(price)]
        for code, country_price in (country_prices or {}).items():
            args += ["--country-price", f"{code}={country_price}"]
        for sender in senders or ():
            args += ["--sender", sender]
        if webhook_secret is not None:
            args += ["--webhook-secret", webhook_secret]
        if inbound_url is not None:
            args += ["--inbound-url", inbound_url]
        return cls._gateway_cli(*args)

    @classmethod
    def _gateway_admin(cls, path, payload=None):
        """Call an admin route of the running gateway (GET without ``payload``, else POST of it as JSON)
        and return the decoded JSON answer; a non-2xx answer fails with its body."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback http URL of the test gateway
            cls.gateway_url + path,
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=cls.GATEWAY_HTTP_TIMEOUT) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"gateway {path} answered HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def _gateway_set_faults(self, **settings):
        """Change the gateway's fault-injection settings (``fail_ratio``, ``latency_ms``...) for the current
        test only (the previous values come back at its cleanup); return all settings."""
        previous = self._gateway_admin("/_admin/faults")
        self.addCleanup(self._gateway_admin, "/_admin/faults", {name: previous[name] for name in settings})
        return self._gateway_admin("/_admin/faults", settings)
