"""The Twilio provider: its requests validated by Twilio's published OpenAPI description served
by Prism (a request the spec rejects is answered 422: the tests prove it), its signature checked
against Twilio's documented example and the ``twilio`` package's RequestValidator, and its
webhooks (status callbacks, inbound, OptOutType) through our routes.

Prism answers the spec's examples and keeps no state: delivery reports and inbound messages are
posted to our routes as Twilio does, signed as Twilio signs."""

import doctest
import email.utils
import http.server
import json
import threading
import time
import urllib.parse
import uuid as uuid_lib
from datetime import datetime, timedelta, timezone

import requests
from twilio.request_validator import RequestValidator

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import BaseCase, Form, HttpCase, TransactionCase, tagged
from odoo.tools import SQL, mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from ..tools.providers import twilio
from ..tools.providers.base import (
    GatewayAccessError,
    GatewayTransientError,
    GatewayUnsupportedError,
    GatewayValidationError,
)
from .common import SmsMarketingUsersMixin, SmsSenderMixin
from .prism_process import API_SPEC, PRICING_SPEC, PrismProcess

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-test-auth-token"  # noqa: S105 - the test account's throw-away token
OTHER_TOKEN = "another-account-token"  # noqa: S105
B_TOKEN = "company-b-token"  # noqa: S105
SM_SID = "SM" + "b" * 32
# Twilio's documented example of X-Twilio-Signature (twilio.com/docs/usage/security).
DOC_TOKEN = "12345"  # noqa: S105
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
# Twilio's 401 answer to bad credentials (twilio.com/docs/errors/20003).
TWILIO_401 = (b'{"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate",'
              b' "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}')


@tagged("post_install", "-at_install")
class TestSmsTwilioSignature(BaseCase):
    """X-Twilio-Signature as Twilio computes it."""

    def test_module_examples(self):
        result = doctest.testmod(twilio)
        self.assertEqual(result.failed, 0)
        self.assertGreater(result.attempted, 0)

    def test_documented_example(self):
        self.assertEqual(twilio.signature(DOC_TOKEN, DOC_URL, DOC_PARAMS), DOC_SIGNATURE)
        self.assertEqual(RequestValidator(DOC_TOKEN).compute_signature(DOC_URL, DOC_PARAMS), DOC_SIGNATURE)
        self.assertTrue(twilio.verify_signature(DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE))

    def test_tampering_fails(self):
        for token, url, params, given in (
            ("1234", DOC_URL, DOC_PARAMS, DOC_SIGNATURE),  # other token
            (DOC_TOKEN, DOC_URL.replace("foo=1", "foo=2"), DOC_PARAMS, DOC_SIGNATURE),  # other URL
            (DOC_TOKEN, DOC_URL, dict(DOC_PARAMS, Digits="1235"), DOC_SIGNATURE),  # other value
            (DOC_TOKEN, DOC_URL, dict(DOC_PARAMS, Extra=""), DOC_SIGNATURE),  # one more parameter
            (DOC_TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE[:-2]),
            (DOC_TOKEN, DOC_URL, DOC_PARAMS, ""), (DOC_TOKEN, DOC_URL, DOC_PARAMS, None),
            ("", DOC_URL, DOC_PARAMS, twilio.signature("", DOC_URL, DOC_PARAMS)),  # no token: never
        ):
            self.assertFalse(twilio.verify_signature(token, url, params, given), (token, url, given))

    def test_same_as_twilio_validator(self):
        """The twilio package's RequestValidator as the oracle, on what our callbacks carry."""
        cases = [
            ("https://erp.example.com/sms_marketing_ext/twilio/7/status?uuid=" + "a" * 32,
             {"MessageSid": SM_SID, "MessageStatus": "undelivered", "ErrorCode": "30003", "AccountSid": ACCOUNT_SID}),
            ("https://erp.example.com/sms_marketing_ext/twilio/7/inbound",
             {"Body": "Stop 🙏 ça suffit & merci=oui", "From": "+33612345678", "To": "+15005550006",
              "OptOutType": "STOP", "MessageSid": SM_SID, "AccountSid": ACCOUNT_SID, "NumMedia": "0"}),
            ("http://127.0.0.1:8069/x", {}),
        ]
        for url, params in cases:
            expected = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
            self.assertEqual(twilio.signature(AUTH_TOKEN, url, params), expected, url)
            self.assertTrue(RequestValidator(AUTH_TOKEN).validate(url, params, twilio.signature(AUTH_TOKEN, url,
                                                                                                params)))

    def test_status_mapping(self):
        self.assertEqual(twilio.report_state("delivered"), "delivered")
        self.assertEqual(twilio.report_state("undelivered", "30003"), "undelivered")
        self.assertEqual(twilio.report_state("undelivered", "30007"), "rejected")
        self.assertEqual(twilio.report_state("failed", "30036"), "expired")
        self.assertEqual(twilio.report_state("failed", "30008"), "undelivered")
        for status in ("queued", "sending", "sent", "accepted", "scheduled"):
            self.assertIsNone(twilio.report_state(status), status)


class _FakeTwilioHandler(http.server.BaseHTTPRequestHandler):
    """Answers like Twilio to bad credentials (mode "unauthorized"), or takes the request and
    answers too late (mode "slow"): what Prism, which keeps to the spec's examples, cannot do."""

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.posts.append(self.path)
        self._answer()

    def _answer(self):
        if self.server.mode == "slow":
            time.sleep(2.5)
            body, status = b'{"sid": "SM' + b"c" * 32 + b'", "status": "queued"}', 201
        elif self.server.mode == "refuse_after_first" and len(self.server.posts) == 1:
            body, status = b'{"sid": "SM' + b"c" * 32 + b'", "status": "queued"}', 201
        else:
            body, status = TWILIO_401, 401
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:  # the client gave up (timeout): what this mode is for
            self.server.aborted.append(exc)

    def log_message(self, *_args):
        pass


class _StatefulTwilioHandler(http.server.BaseHTTPRequestHandler):
    """A Twilio that remembers the messages it created, for what Prism (stateless) cannot show:
    ``Messages.json`` creates one (``server.messages``, newest last), ``Messages/{Sid}.json`` and
    ``Messages.json?To=`` read them back, ``Balance.json`` pays. ``server.mode``: ``"ok"``;
    ``"slow"``: the message is created, the answer comes after the client's timeout; ``"lost"``: the
    connection is held without creating anything (a request that never reached Twilio's API)."""

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        self.server.gets.append(url.path)
        prefix = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
        if self.server.fail_gets_after is not None and len(self.server.gets) > self.server.fail_gets_after:
            return self._answer(503, {"code": 20503, "message": "Service Unavailable", "status": 503})
        if url.path == f"{prefix}/Balance.json":
            return self._answer(200, {"balance": "100.0", "currency": "USD", "account_sid": ACCOUNT_SID})
        if url.path == f"{prefix}/Messages.json":
            to = urllib.parse.parse_qs(url.query).get("To", [None])[0]
            page = [m for m in reversed(self.server.messages) if to is None or m["to"] == to]
            return self._answer(200, {"messages": page, "page": 0, "page_size": 50, "next_page_uri": None})
        if url.path.startswith(f"{prefix}/Messages/") and url.path.endswith(".json"):
            sid = url.path.rsplit("/", 1)[1][:-5]
            for message in self.server.messages:
                if message["sid"] == sid:
                    return self._answer(200, message)
            return self._answer(404, {"code": 20404, "message": f"The requested resource {url.path} was not found",
                                      "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})
        return self._answer(404, {"code": 20404, "message": "not found", "status": 404})

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        self.server.posts.append(form)
        if self.server.mode == "lost":
            time.sleep(2.5)
            return self._answer(500, {"code": 20500, "message": "Internal Server Error", "status": 500})
        message = {
            "sid": "SM" + uuid_lib.uuid4().hex, "account_sid": ACCOUNT_SID, "to": form["To"][0],
            "from": form.get("From", [None])[0], "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
            "body": form["Body"][0], "status": "queued", "error_code": None, "direction": "outbound-api",
            "date_created": email.utils.format_datetime(datetime.now(timezone.utc)),
            "date_updated": email.utils.format_datetime(datetime.now(timezone.utc)), "date_sent": None,
        }
        self.server.messages.append(message)
        if self.server.mode == "slow":
            time.sleep(2.5)
        return self._answer(201, message)

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:  # the client gave up (timeout): what slow modes are for
            self.server.aborted.append(exc)

    def log_message(self, *_args):
        pass


@tagged("post_install", "-at_install", "sms_twilio")
class TestSmsTwilioPrism(SmsMarketingUsersMixin, SmsSenderMixin, TransactionCase):
    """Our client against Twilio's OpenAPI description served by Prism in validation mode."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.api = PrismProcess(API_SPEC)
        cls.pricing = PrismProcess(PRICING_SPEC, errors=False)
        cls.addClassCleanup(cls.api.stop)
        cls.addClassCleanup(cls.pricing.stop)
        cls.api.start()
        cls.pricing.start()
        cls.env["ir.config_parameter"].sudo().set_param("web.base.url", "http://127.0.0.1:8069")
        cls.env.company.country_id = cls.env.ref("base.fr")
        cls.env["sms.gateway"].search([("company_id", "=", cls.env.company.id)]).write({"is_default": False})
        cls.gateway = cls.env["sms.gateway"].create({
            "name": "Twilio", "provider": "twilio", "twilio_api_base": cls.api.url,
            "twilio_pricing_base": cls.pricing.url, "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN, "twilio_from": "+15005550006", "twilio_price_countries": "FR, BE",
            "twilio_callback_base_url": "https://erp.example.com/", "batch_size": 1, "is_default": True,
        })
        cls.sender = cls._create_sender("MyShop", is_default=True)

    def _client(self, **kwargs):
        return twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, api_base=self.api.url,
                                   pricing_base=self.pricing.url, **kwargs)

    def test_prism_rejects_what_the_spec_rejects(self):
        """Validation is real: the same call without To, or without credentials, is refused."""
        url = f"{self.api.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        valid = {"To": "+33612345678", "From": "+15005550006", "Body": "Hi"}
        self.assertEqual(requests.post(url, data=valid, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10).status_code, 201)
        missing_to = requests.post(url, data={"From": "+15005550006", "Body": "Hi"}, auth=(ACCOUNT_SID, AUTH_TOKEN),
                                   timeout=10)
        self.assertEqual(missing_to.status_code, 422)
        self.assertIn("'To'", missing_to.text)
        self.assertEqual(requests.post(url, data=valid, timeout=10).status_code, 401)
        pricing = f"{self.pricing.url}/v1/Messaging/Countries/FR"
        self.assertEqual(requests.get(pricing, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10).status_code, 200)
        self.assertEqual(requests.get(pricing, timeout=10).status_code, 401)
        # Our client turns such a refusal into a clear error (a form Prism finds invalid).
        with self._client(sender="+15005550006") as client, self.assertRaises(GatewayValidationError) as caught:
            client._call("POST", url, data={"Body": "no recipient"})
        self.assertIn("'To'", caught.exception.message)

    def test_client_requests_pass_the_spec(self):
        before = self.api.validated() + self.pricing.validated()
        with self._client(sender="+15005550006", price_countries=["FR", "US"]) as client:
            self.assertEqual(client.check_connection(), 0.05)
            results = client.send([
                {"uuid": "a" * 32, "number": "+33612345678", "content": "Soldes: -20% ✨", "sms_class": "standard"},
                {"uuid": "b" * 32, "number": "+32470123456", "content": "Hi", "sender": "MyShop"},
            ], webhook_url="https://erp.example.com/sms_marketing_ext/twilio/1/status")
            self.assertEqual([(r["uuid"], r["state"], r["provider_ref"]) for r in results],
                             [("a" * 32, "accepted", "SM" + "a" * 32), ("b" * 32, "accepted", "SM" + "a" * 32)])
            self.assertEqual(client.prices(), {"default": 0.05, "countries": {"FR": 0.05, "US": 0.05}})
        with twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, api_base=self.api.url,
                                 messaging_service_sid="MG" + "1" * 32) as client:
            self.assertEqual(client.send([{"uuid": "c" * 32, "number": "+33612345678", "content": "Hi"}])[0]["state"],
                             "accepted")
        # Balance, 3 messages, 2 prices: each one passed Prism's validation.
        self.assertEqual(self.api.validated() + self.pricing.validated() - before, 6, "balance, 3 messages, 2 prices")

    def test_form_names_sender_and_callback(self):
        client = self._client(sender="+15005550006")
        message = {"uuid": "d" * 32, "number": "+33612345678", "content": "Hi"}
        self.assertEqual(client.message_form(message, "https://erp.example.com/cb"), {
            "To": "+33612345678", "Body": "Hi", "From": "+15005550006",
            "StatusCallback": "https://erp.example.com/cb?uuid=" + "d" * 32,
        })
        self.assertEqual(client.message_form(dict(message, sender="MyShop"))["From"], "MyShop")
        service = self._client(sender="+15005550006", messaging_service_sid="MG" + "1" * 32)
        form = service.message_form(dict(message, sender="MyShop"))
        self.assertEqual((form.get("From"), form["MessagingServiceSid"]), (None, "MG" + "1" * 32))

    def test_mailing_end_to_end(self):
        """A small mailing through Prism: every message accepted, each trace with its Twilio SID and
        our status callback URL; Prism's example balance (0.05) pays one message per cron run, so
        sending pauses for credit and resumes on the next run, as with a real small balance."""
        contacts = self.env["mailing.contact"].create([
            {"name": f"C{index}", "mobile": f"+33 6 30 00 00 0{index}"} for index in range(3)
        ])
        mailing_list = self.env["mailing.list"].create({"name": "Twilio", "contact_ids": [(6, 0, contacts.ids)]})
        mailing = self.env["mailing.mailing"].with_user(self.user_marketing).create({
            "subject": "Twilio", "mailing_type": "sms", "body_plaintext": "Nouvelle collection en boutique",
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"), "sms_allow_unsubscribe": True,
            "contact_list_ids": [(6, 0, mailing_list.ids)],
        })
        before, received_before = self.api.validated(), len(self.api.received())
        warning = mailing.action_put_in_queue()
        self.assertEqual(warning["res_model"], "mailing.sms.audience", "the balance does not cover 3 messages")
        self.assertEqual(mailing.state, "draft")
        mailing.with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        for _run in range(10):
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            if mailing.state == "done":
                break
            self.env.cr.execute(SQL("UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s",
                                    mailing.id))
        self.assertEqual(mailing.state, "done", self.api.tail())
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(len(traces), 3)
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"}, "accepted by Twilio, no report yet")
        self.assertEqual(set(traces.mapped("sms_provider_ref")), {"SM" + "a" * 32}, "the SID Prism's example answers")
        self.assertEqual(traces.sms_gateway_id, self.gateway)
        self.assertFalse(any(traces.mapped("sms_unknown")))
        for trace in traces:
            self.assertAlmostEqual(trace.sms_credits, 0.05, msg="Pricing API price of FR")
        self.assertEqual(self.gateway.price_ids.mapped("country_code"), ["BE", "FR"])
        received = self.api.received()[received_before:]
        messages_path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        self.assertEqual(received.count(("post", messages_path)), 3, received)
        self.assertIn(("get", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Balance.json"), received)
        self.assertEqual(self.api.validated() - before, len(received), "every request passed the spec's validation")

    def test_refresh_balance_and_prices(self):
        self.gateway.with_user(self.user_sms_admin).action_refresh_balance()
        self.assertEqual(self.gateway.balance, 0.05)
        self.assertTrue(self.gateway.balance_date)
        self.assertEqual({line.country_code: line.price for line in self.gateway.price_ids}, {"BE": 0.05, "FR": 0.05})
        self.assertEqual(self.gateway.price_default, 0.05)
        action = self.gateway.with_user(self.user_sms_admin).action_test_connection()
        self.assertIn("0.05 credits available", action["params"]["message"])
        # Capabilities as the form shows them.
        self.assertTrue(self.gateway.cap_balance and self.gateway.cap_prices and self.gateway.cap_delivery_reports
                        and self.gateway.cap_inbound and self.gateway.cap_status_query)
        self.assertFalse(self.gateway.cap_idempotent_send)

    def test_bad_credentials_clear_message(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeTwilioHandler)
        server.mode, server.posts, server.aborted = "unauthorized", [], []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.gateway.twilio_api_base = f"http://127.0.0.1:{server.server_address[1]}"
        with self.assertRaises(GatewayAccessError):
            self.gateway._get_api().check_connection()
        with mute_logger("odoo.addons.sms_marketing_ext.models.sms_gateway"), self.assertRaises(UserError) as caught:
            self.gateway.with_user(self.user_sms_admin).action_test_connection()
        self.assertIn("Twilio refused the credentials of gateway Twilio", str(caught.exception))
        self.assertIn("Account SID and the auth token", str(caught.exception))
        self.assertIn("AccountSid or AuthToken was incorrect", str(caught.exception))
        self.assertNotIn(AUTH_TOKEN, str(caught.exception))

    def _fake_twilio(self, mode):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeTwilioHandler)
        server.mode, server.posts, server.aborted = mode, [], []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server

    def test_refusal_mid_batch_keeps_what_was_accepted(self):
        """Twilio takes the first message, then refuses the credentials: the batch does not fail
        as a whole (that would send the first one again), the rest waits."""
        server = self._fake_twilio("refuse_after_first")
        client = twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, sender="+15005550006",
                                     api_base=f"http://127.0.0.1:{server.server_address[1]}")
        messages = [{"uuid": char * 32, "number": "+33612345678", "content": "Hi"} for char in "abc"]
        with mute_logger("odoo.addons.sms_marketing_ext.tools.providers.twilio"):
            results = client.send(messages)
        self.assertEqual([result["state"] for result in results], ["accepted", "server_error", "server_error"])
        self.assertEqual(results[0]["provider_ref"], "SM" + "c" * 32)
        self.assertEqual(len(server.posts), 2, "the third one is not tried after a refusal")
        with self.assertRaises(GatewayAccessError):  # refused from the first message: the whole call
            client.send(messages[1:])

    def test_lost_answer_is_never_resent(self):
        """Twilio takes the message but its answer comes after our timeout: the trace waits as
        outcome unknown; later cron runs do not send it again."""
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeTwilioHandler)
        server.mode, server.posts, server.aborted = "slow", [], []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.gateway.write({"twilio_api_base": f"http://127.0.0.1:{server.server_address[1]}", "timeout": 1,
                            "twilio_price_countries": False})
        contact = self.env["mailing.contact"].create({"name": "Slow", "mobile": "+33 6 30 00 00 09"})
        mailing_list = self.env["mailing.list"].create({"name": "Slow", "contact_ids": [(6, 0, contact.ids)]})
        mailing = self.env["mailing.mailing"].create({
            "subject": "Slow", "mailing_type": "sms", "body_plaintext": "Bonjour",
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"), "sms_allow_unsubscribe": True,
            "contact_list_ids": [(6, 0, mailing_list.ids)],
        })
        mailing.with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        with mute_logger("odoo.addons.sms_marketing_ext.models.mailing_mailing_delivery_results",
                         "odoo.addons.sms_marketing_ext.tools.providers.twilio"):
            for _run in range(3):
                self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
                self.env.cr.execute(SQL("UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s",
                                        mailing.id))
        trace = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(len(server.posts), 1, "sent once, never again blindly")
        self.assertTrue(trace.sms_unknown)
        self.assertEqual(trace.trace_status, "pending")

    def test_status_query_passes_the_spec(self):
        """The settle cron's status query against Prism: GET Messages/{Sid}.json for a message with
        its SID, GET Messages.json?To= for one whose send answer was lost; every request valid.
        Prism's examples: the fetched message is "sent" (not final); the list holds an outbound
        message to +18182008801 from +12019235161 created Fri, 24 May 2019 17:44:46 +0000, of
        Messaging Service MGaaaa..., and an inbound one. The list's example contradicts its own
        schema (relative page URIs where it says "uri"): a Prism without ``--errors`` serves it,
        still validating our requests."""
        lenient = PrismProcess(API_SPEC, errors=False)
        self.addCleanup(lenient.stop)
        lenient.start()
        before, received_before = self.api.validated(), len(self.api.received())
        lost_at = datetime(2019, 5, 24, 17, 44, 50)  # when we recorded the send whose answer was lost
        with self._client(sender="+15005550006") as client:
            self.assertEqual(client.status_of([{"uuid": "a" * 32, "provider_ref": "SM" + "a" * 32}]),
                             {"a" * 32: {"state": "pending", "at": None}})
            with self.assertRaises(GatewayUnsupportedError):
                client.status(["a" * 32])
        self.assertEqual(self.api.received()[received_before:],
                         [("get", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{'SM' + 'a' * 32}.json")])
        self.assertEqual(self.api.validated() - before, 1)
        example = {"number": "+18182008801", "sent_at": lost_at, "provider_ref": None}
        with twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, api_base=lenient.url,
                                 sender="+15005550006") as client:
            answers = client.status_of([
                dict(example, uuid="b" * 32, sender="+12019235161"),
                dict(example, uuid="c" * 32, sender="MyShop"),  # not from our sender
                dict(example, uuid="d" * 32, sender="+12019235161", sent_at=lost_at + timedelta(hours=1)),
            ])
        self.maxDiff = None
        self.assertEqual(answers, {
            "b" * 32: {"state": "pending", "at": None, "provider_ref": "SMded05904ccb347238880ca9264e8fe1c"},
            "c" * 32: {"state": "pending", "at": None},
            "d" * 32: {"state": "pending", "at": None},  # created an hour before: not ours
        })
        with twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, api_base=lenient.url,
                                 messaging_service_sid="MG" + "a" * 32) as client:
            found = client.find_message("+18182008801", lost_at, sender="MyShop")
        self.assertEqual(found["sid"], "SMded05904ccb347238880ca9264e8fe1c", "the service's message, whatever From")
        self.assertEqual(lenient.received(), [("get", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")] * 4)
        self.assertEqual(lenient.validated(), 4, "every request passed the spec's validation")

    def _stateful_twilio(self, mode="ok"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatefulTwilioHandler)
        server.mode, server.posts, server.gets, server.messages, server.fail_gets_after = mode, [], [], [], None
        server.aborted = []
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.gateway.write({"twilio_api_base": f"http://127.0.0.1:{server.server_address[1]}", "timeout": 1,
                            "batch_size": 50})
        return server

    def _send_mailing(self, numbers, name):
        contacts = self.env["mailing.contact"].create([
            {"name": f"{name} {index}", "mobile": number} for index, number in enumerate(numbers)])
        mailing_list = self.env["mailing.list"].create({"name": name, "contact_ids": [(6, 0, contacts.ids)]})
        mailing = self.env["mailing.mailing"].create({
            "subject": name, "mailing_type": "sms", "body_plaintext": f"Bonjour {name}",
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"), "sms_allow_unsubscribe": True,
            "contact_list_ids": [(6, 0, mailing_list.ids)],
        })
        mailing.with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        for _run in range(3):
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            if mailing.state == "done":
                break
        self.assertEqual(mailing.state, "done")
        return self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)]).sorted("sms_number")

    def _settle(self, hours_later):
        return self.env["sms.gateway"]._cron_sms_settle(
            time_budget=60, now=fields.Datetime.now() + timedelta(hours=hours_later), gateways=self.gateway)

    def test_settle_cron_asks_twilio_by_sid(self):
        """Issue 12 §5: the settle cron asks Twilio the state of each message still pending, by the
        SID kept on its trace, and reads statuses and error codes as the status callback does."""
        server = self._stateful_twilio()
        numbers = [f"+3363000010{index}" for index in range(8)]
        traces = self._send_mailing(numbers, "Settle")
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"})
        by_number = {message["to"]: message for message in server.messages}
        self.assertEqual(traces.mapped("sms_provider_ref"), [by_number[number]["sid"] for number in numbers])
        for number, (status, code) in zip(numbers, [
            ("delivered", None), ("undelivered", 30003), ("failed", 30036), ("undelivered", 30007),
            ("sent", None), ("canceled", None), ("read", None), (None, None),
        ], strict=True):
            if status is None:  # its log deleted at Twilio since: 404
                server.messages.remove(by_number[number])
                continue
            by_number[number].update(status=status, error_code=code,
                                     date_updated="Fri, 24 May 2024 17:18:28 +0000")
        charged = traces.mapped("sms_credits")
        self.assertEqual(self._settle(1)["queried"], 0, "not before the gateway's settle after")
        server.gets.clear()
        counts = self._settle(5)
        self.assertEqual((counts["queried"], counts["settled"], counts["expired"]), (8, 6, 0))
        self.assertEqual(sorted(server.gets), sorted(
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json" for sid in traces.mapped("sms_provider_ref")))
        self.assertEqual([(t.trace_status, t.failure_type or False) for t in traces], [
            ("sent", False), ("error", "sms_not_delivered"), ("error", "sms_expired"), ("bounce", "sms_rejected"),
            ("pending", False), ("error", "sms_not_delivered"), ("sent", False), ("pending", False),
        ])
        self.assertEqual(traces[0].sms_report_date, datetime(2024, 5, 24, 17, 18, 28), "Twilio's date_updated")
        self.assertEqual(traces.mapped("sms_credits"), charged, "credits as charged")
        # The two still pending are asked again later, then given up at the horizon.
        self.assertEqual(self._settle(6)["queried"], 0)
        self.assertEqual(self._settle(10)["queried"], 2)
        self.assertEqual(self._settle(73)["expired"], 2)
        self.assertEqual(set(traces[4].mapped("failure_type") + traces[7].mapped("failure_type")), {"sms_expired"})

    def test_lost_answer_waits_then_found_by_lookup(self):
        """Issue 12 §1 for Twilio (no idempotency key): a send whose answer was lost is never sent
        again; it waits as outcome unknown. The settle cron looks it up by recipient: found (a single
        outbound message from our sender, created when we sent), it takes Twilio's state and SID;
        not found, nothing is concluded (Twilio takes no key of ours): it waits for its callback,
        then the horizon records it as expired, credits kept."""
        server = self._stateful_twilio("slow")
        with mute_logger("odoo.addons.sms_marketing_ext.models.mailing_mailing_delivery_results",
                         "odoo.addons.sms_marketing_ext.tools.providers.twilio"):
            found = self._send_mailing(["+33630000201"], "Slow")
            server.mode = "lost"
            missing = self._send_mailing(["+33630000202"], "Lost")
            for _run in range(2):  # later runs send nothing again
                self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        self.assertEqual(len(server.posts), 2, "each sent once, never again blindly")
        self.assertEqual(len(server.messages), 1, "Twilio created the first, never got the second")
        for trace in found | missing:
            self.assertEqual((trace.trace_status, trace.sms_unknown, trace.sms_provider_ref), ("pending", True, False))
        server.messages[0].update(status="delivered", date_updated=server.messages[0]["date_created"])
        server.gets.clear()
        counts = self._settle(5)
        self.assertEqual((counts["queried"], counts["settled"]), (2, 1))
        self.assertEqual(server.gets, [f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"] * 2)
        self.assertEqual((found.trace_status, found.sms_unknown, found.sms_provider_ref),
                         ("sent", False, server.messages[0]["sid"]))
        self.assertAlmostEqual(found.sms_credits, 0.05, msg="counted as sent at the Pricing API's price, kept")
        self.assertEqual((missing.trace_status, missing.sms_unknown, missing.sms_provider_ref),
                         ("pending", True, False), "not found proves nothing: it keeps waiting")
        charged = missing.sms_credits
        self.assertAlmostEqual(charged, 0.05)
        self.assertEqual(self._settle(73)["expired"], 1)
        self.assertEqual((missing.trace_status, missing.failure_type), ("error", "sms_expired"))
        self.assertIn("answer to the send was lost", missing.failure_reason)
        self.assertEqual(missing.sms_credits, charged)
        self.assertEqual(len(server.posts), 2)

    def test_lookup_never_guesses(self):
        """Two messages to the number around that time, or none from our sender: no match."""
        server = self._stateful_twilio()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        client = twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, api_base=base, sender="+15005550006")
        message = {"uuid": "e" * 32, "number": "+33612345678", "content": "Hi"}
        client.send([message])
        sent_at = fields.Datetime.now()
        self.assertEqual(client.find_message("+33612345678", sent_at)["sid"], server.messages[0]["sid"])
        self.assertIsNone(client.find_message("+33612345678", sent_at, sender="MyShop"), "another From")
        self.assertIsNone(client.find_message("+33612345679", sent_at), "another number")
        client.send([dict(message, uuid="f" * 32)])
        with self.assertLogs("odoo.addons.sms_marketing_ext.tools.providers.twilio", "WARNING"):
            self.assertIsNone(client.find_message("+33612345678", sent_at), "two candidates: none taken")

    def test_status_query_failures(self):
        """A failure of the first question fails the query (the settle cron asks later, nothing
        marked); a later one ends it with what was learnt (the rest is asked later)."""
        server = self._stateful_twilio()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        client = twilio.TwilioClient(ACCOUNT_SID, ACCOUNT_SID, AUTH_TOKEN, api_base=base, sender="+15005550006")
        client.send([{"uuid": char * 32, "number": f"+3361234567{index}", "content": "Hi"}
                     for index, char in enumerate("ef")])
        sids = [message["sid"] for message in server.messages]
        server.messages[0]["status"] = "delivered"
        asked = [{"uuid": "e" * 32, "provider_ref": sids[0]}, {"uuid": "f" * 32, "provider_ref": sids[1]},
                 {"uuid": "0" * 32, "provider_ref": None}]
        server.gets.clear()
        server.fail_gets_after = 0
        with self.assertRaises(GatewayTransientError):
            client.status_of(asked)
        server.gets.clear()
        server.fail_gets_after = 1
        with self.assertLogs("odoo.addons.sms_marketing_ext.tools.providers.twilio", "WARNING"):
            answers = client.status_of(asked)
        self.assertEqual(answers, {"e" * 32: {"state": "delivered", "at": answers["e" * 32]["at"]}},
                         "the answer learnt before the failure; the others left out")
        self.assertTrue(answers["e" * 32]["at"])
        server.fail_gets_after = None
        self.assertEqual(client.status_of(asked)["0" * 32], {"state": "pending", "at": None}, "nothing to ask by")
        self.assertEqual(client.status_of([]), {})

    def test_form_configures_twilio_quickly(self):
        """The gateway form: choosing Twilio shows its fields only; four values typed (name, Account
        SID, auth token, From), then Test connection and Refresh work; the webhook URLs to copy."""
        admin = self.user_sms_admin
        with Form(self.env["sms.gateway"].with_user(admin)) as form:
            form.name = "Twilio FR"
            form.provider = "twilio"
            for name in ("twilio_account_sid", "twilio_auth_token", "twilio_from", "twilio_messaging_service_sid",
                         "twilio_price_countries"):
                self.assertFalse(form._get_modifier(name, "invisible"), name)
            for name in ("base_url", "account_token", "kannel_sendsms_url", "kannel_username", "kannel_password"):
                self.assertTrue(form._get_modifier(name, "invisible"), name)
            self.assertTrue(form._get_modifier("twilio_account_sid", "required"))
            self.assertEqual(form.twilio_api_base, "https://api.twilio.com")
            form.twilio_account_sid = ACCOUNT_SID
            form.twilio_auth_token = AUTH_TOKEN
            form.twilio_from = "+15005550006"
        gateway = form.record
        gateway.write({"twilio_api_base": self.api.url, "twilio_pricing_base": self.pricing.url})
        self.assertIn("0.05 credits available", gateway.with_user(admin).action_test_connection()["params"]["message"])
        gateway.with_user(admin).action_refresh_balance()
        self.assertEqual(gateway.price_ids.mapped("country_code"), ["FR"], "the company's country by default")
        self.assertEqual(gateway.with_user(admin).twilio_status_url,
                         f"http://127.0.0.1:8069/sms_marketing_ext/twilio/{gateway.id}/status")
        with Form(self.env["sms.gateway"].with_user(admin)) as form:
            form.name = "Kannel"
            form.provider = "kannel"
            form.kannel_sendsms_url = "http://127.0.0.1:9"
            form.kannel_username = "u"
            self.assertTrue(form._get_modifier("twilio_account_sid", "invisible"))
            self.assertFalse(form._get_modifier("twilio_account_sid", "required"))

    def test_configuration_checked(self):
        for vals in ({"twilio_account_sid": "AC123"}, {"twilio_api_key_sid": "SKnope"},
                     {"twilio_messaging_service_sid": "MG12"}, {"twilio_price_countries": "France"},
                     {"twilio_api_base": "ftp://x"}, {"twilio_callback_base_url": "erp.example.com"}):
            with self.assertRaises(ValidationError, msg=vals), self.env.cr.savepoint():
                self.gateway.write(vals)
        # An API key authenticates the calls instead of the auth token (which still checks signatures).
        self.gateway.write({"twilio_api_key_sid": "SK" + "2" * 32, "twilio_api_key_secret": "key-secret"})
        with self.gateway._get_api() as client:
            self.assertEqual(client.session.auth, ("SK" + "2" * 32, "key-secret"))
            self.assertEqual(client.check_connection(), 0.05, "Prism takes the API key's Basic credentials")
        # The auth token is for SMS administrators only.
        with self.assertRaises(AccessError):
            self.gateway.with_user(self.user_marketing).read(["twilio_auth_token"])


@tagged("post_install", "-at_install", "sms_twilio")
class TestSmsTwilioWebhooks(SmsMarketingUsersMixin, SmsSenderMixin, HttpCase):
    """Status callbacks and inbound messages posted to our routes as Twilio posts them."""

    PUBLIC = "https://erp.example.com"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env["ir.config_parameter"].sudo().set_param("web.base.url", cls.base_url())
        Gateway = cls.env["sms.gateway"]
        common = {"provider": "twilio", "twilio_from": "+15005550006", "twilio_callback_base_url": cls.PUBLIC}
        cls.gateway = Gateway.create(dict(common, name="Twilio A", twilio_account_sid=ACCOUNT_SID,
                                          twilio_auth_token=AUTH_TOKEN))
        cls.other = Gateway.create(dict(common, name="Twilio A2", twilio_account_sid="AC" + "f" * 32,
                                        twilio_auth_token=OTHER_TOKEN))
        cls.company_b = cls.env["res.company"].create({"name": "Company B"})
        cls.gateway_b = Gateway.create(dict(common, name="Twilio B", twilio_account_sid="AC" + "e" * 32,
                                            twilio_auth_token=B_TOKEN, company_id=cls.company_b.id))
        cls.mailing = cls.env["mailing.mailing"].create({
            "subject": "Twilio", "mailing_type": "sms", "body_plaintext": "Hi", "sms_gateway_id": cls.gateway.id,
            "mailing_model_id": cls.env["ir.model"]._get_id("res.partner"),
        })
        partner = cls.env["res.partner"].create({"name": "P", "mobile": "+33612345678"})
        cls.trace = cls.env["mailing.trace"].create({
            "trace_type": "sms", "mass_mailing_id": cls.mailing.id, "model": "res.partner", "res_id": partner.id,
            "sms_number": "+33612345678", "sms_uuid": "a" * 32, "trace_status": "pending",
            "sms_gateway_id": cls.gateway.id, "sms_provider_ref": SM_SID,
        })

    def _post(self, gateway, kind, form, query="", token=AUTH_TOKEN, signed_url=None):
        path = f"/sms_marketing_ext/twilio/{gateway.id}/{kind}" + (f"?{query}" if query else "")
        headers = {}
        if token is not None:
            headers[twilio.SIGNATURE_HEADER] = twilio.signature(token, signed_url or self.PUBLIC + path, form)
        return self.url_open(path, data=form, headers=headers)

    def _status(self, status="delivered", error_code=None, uuid="a" * 32, account=ACCOUNT_SID):
        form = {"MessageSid": SM_SID, "SmsSid": SM_SID, "MessageStatus": status, "SmsStatus": status,
                "AccountSid": account, "From": "+15005550006", "To": "+33612345678", "ApiVersion": "2010-04-01"}
        if error_code:
            form["ErrorCode"] = error_code
        return form, f"uuid={uuid}"

    def test_status_signed_moves_the_trace(self):
        form, query = self._status("sent")
        self.assertEqual(self._post(self.gateway, "status", form, query).status_code, 200)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "pending", "'sent' is not final")
        form, query = self._status("undelivered", "30007")
        response = self._post(self.gateway, "status", form, query)
        self.assertEqual(response.status_code, 200, response.text)
        self.trace.invalidate_recordset()
        self.assertEqual((self.trace.trace_status, self.trace.failure_type), ("bounce", "sms_rejected"))
        self.assertTrue(self.trace.sms_report_date)

    def test_status_delivered_and_expired(self):
        form, query = self._status("delivered")
        self.assertEqual(self._post(self.gateway, "status", form, query).status_code, 200)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "sent")
        trace2 = self.trace.copy({"sms_uuid": "b" * 32, "trace_status": "pending", "sms_number": "+33612345679"})
        form, query = self._status("failed", "30036", uuid="b" * 32)
        self.assertEqual(self._post(self.gateway, "status", form, query).status_code, 200)
        trace2.invalidate_recordset()
        self.assertEqual((trace2.trace_status, trace2.failure_type), ("error", "sms_expired"))

    def test_status_unsigned_or_forged_refused(self):
        form, query = self._status("delivered")
        path = f"/sms_marketing_ext/twilio/{self.gateway.id}/status?{query}"
        with mute_logger("odoo.addons.sms_marketing_ext.controllers.twilio"):
            for token, signed_url in ((None, None), (OTHER_TOKEN, None), ("", None),
                                      # the URL Odoo sees, not the public one Twilio called: refused
                                      (AUTH_TOKEN, self.base_url() + path),
                                      # another uuid than the one signed
                                      (AUTH_TOKEN, self.PUBLIC + path.replace("a" * 32, "b" * 32))):
                response = self._post(self.gateway, "status", form, query, token=token, signed_url=signed_url)
                self.assertEqual(response.status_code, 403, (token, signed_url))
            # Form values changed after signing.
            headers = {twilio.SIGNATURE_HEADER: twilio.signature(AUTH_TOKEN, self.PUBLIC + path, form)}
            response = self.url_open(path, data=dict(form, MessageStatus="undelivered"), headers=headers)
            self.assertEqual(response.status_code, 403)
            # Signed for the Kannel-style route of another provider's gateway id.
            jsonrpc = self.env["sms.gateway"].create({"name": "J", "provider": "jsonrpc", "base_url": "http://x"})
            self.assertEqual(self._post(jsonrpc, "status", form, query).status_code, 403)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "pending")

    def test_status_of_another_gateway_ignored(self):
        """Gateway A2 signs correctly with its own token, for A's message: nothing moves."""
        form, query = self._status("delivered", account="AC" + "f" * 32)
        with mute_logger("odoo.addons.sms_marketing_ext.controllers.twilio"):
            self.assertEqual(self._post(self.other, "status", form, query, token=OTHER_TOKEN).status_code, 200)
            # A's own account SID in a callback of A2's route: not A2's account, refused.
            form_a, _query = self._status("delivered")
            self.assertEqual(self._post(self.other, "status", form_a, query, token=OTHER_TOKEN).status_code, 400)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "pending")

    def test_status_malformed_400(self):
        with mute_logger("odoo.addons.sms_marketing_ext.controllers.twilio"):
            for form, query, reason in (
                (dict(self._status()[0], MessageSid="nope"), "uuid=" + "a" * 32, "MessageSid"),
                (self._status()[0], "uuid=zz", "uuid"),
                (self._status()[0], "", "uuid"),
                (dict(self._status()[0], MessageStatus="exploded"), "uuid=" + "a" * 32, "MessageStatus"),
                (dict(self._status()[0], ErrorCode="x1"), "uuid=" + "a" * 32, "ErrorCode"),
                (dict(self._status()[0], AccountSid=ACCOUNT_SID + "\x00"), "uuid=" + "a" * 32, "NUL"),
            ):
                response = self._post(self.gateway, "status", form, query)
                self.assertEqual(response.status_code, 400, (form, query))
                self.assertIn(reason, response.text)

    def _inbound(self, body, sid=SM_SID, opt_out=None, number="+33612345678"):
        form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "From": number,
                "To": "+15005550006", "Body": body, "NumMedia": "0", "NumSegments": "1"}
        if opt_out:
            form["OptOutType"] = opt_out
        return self._post(self.gateway, "inbound", form)

    def _blacklisted(self, number="+33612345678"):
        return bool(self.env["phone.blacklist"].with_context(active_test=True).search_count(
            [("number", "=", number)]))

    def test_inbound_stop_start(self):
        response = self._inbound("Stop svp", sid="SM" + "1" * 32)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertIn("<Response>", response.text)
        self.assertTrue(self._blacklisted())
        event = self.env["sms.consent.event"].search([("number", "=", "+33612345678")], order="id desc", limit=1)
        self.assertEqual((event.source, event.action), ("reply", "optout"))
        # Twilio retries the same message: applied once.
        self.assertEqual(self._inbound("Stop svp", sid="SM" + "1" * 32).status_code, 200)
        self.assertEqual(self.env["sms.consent.event"].search_count([("number", "=", "+33612345678")]), 1)
        self.assertEqual(self._inbound("START", sid="SM" + "2" * 32).status_code, 200)
        self.assertFalse(self._blacklisted())

    def test_inbound_opt_out_type_wins(self):
        """Twilio recognised a keyword our list lacks (its own opt-out keywords are configurable)."""
        self.assertEqual(self._inbound("ARRET", sid="SM" + "3" * 32, opt_out="STOP").status_code, 200)
        self.assertTrue(self._blacklisted())
        self.assertEqual(self._inbound("je reviens", sid="SM" + "4" * 32, opt_out="START").status_code, 200)
        self.assertFalse(self._blacklisted())
        self.assertEqual(self._inbound("INFO", sid="SM" + "5" * 32, opt_out="HELP").status_code, 200)
        self.assertEqual(self._inbound("Merci", sid="SM" + "6" * 32).status_code, 200)
        self.assertFalse(self._blacklisted(), "HELP and a plain reply change nothing")
        self.assertEqual(self.env["sms.consent.event"].search_count([("number", "=", "+33612345678")]), 2)

    def test_inbound_refused_unsigned_or_malformed(self):
        form = {"MessageSid": SM_SID, "AccountSid": ACCOUNT_SID, "From": "+33612345678", "To": "+1500",
                "Body": "STOP"}
        with mute_logger("odoo.addons.sms_marketing_ext.controllers.twilio",
                         "odoo.addons.sms_marketing_ext.controllers.main"):
            self.assertEqual(self._post(self.gateway, "inbound", form, token=None).status_code, 403)
            self.assertEqual(self._post(self.gateway, "inbound", form, token=OTHER_TOKEN).status_code, 403)
            self.assertEqual(self._post(self.gateway, "inbound", dict(form, From="")).status_code, 400)
            self.assertEqual(self._post(self.gateway, "inbound", dict(form, AccountSid="AC" + "f" * 32)).status_code,
                             400)
            self.assertEqual(self._post(self.gateway, "inbound", {k: v for k, v in form.items() if k != "Body"}
                                        ).status_code, 400)
            self.assertEqual(self._post(self.gateway, "inbound", dict(form, From="12")).status_code, 400)
        self.assertFalse(self._blacklisted())

    def test_webhook_urls_and_multi_company(self):
        self.assertEqual(self.gateway.twilio_status_url,
                         f"{self.PUBLIC}/sms_marketing_ext/twilio/{self.gateway.id}/status")
        self.assertEqual(self.gateway._report_url(), self.gateway.twilio_status_url)
        self.assertEqual(self.gateway.twilio_inbound_url,
                         f"{self.PUBLIC}/sms_marketing_ext/twilio/{self.gateway.id}/inbound")
        admin_b = mail_new_test_user(
            self.env, login="tw_admin_b", groups="base.group_user,sms_marketing_ext.group_sms_marketing_admin",
            name="Bea", company_id=self.company_b.id, company_ids=[(6, 0, self.company_b.ids)],
        )
        Gateway = self.env["sms.gateway"].with_user(admin_b)
        self.assertEqual(Gateway.search([("provider", "=", "twilio")]), self.gateway_b)
        with self.assertRaises(AccessError):
            self.gateway.with_user(admin_b).read(["twilio_auth_token"])
        # Company B's gateway, signed with B's token, for A's message: A's trace does not move.
        form, query = self._status("delivered", account="AC" + "e" * 32)
        with mute_logger("odoo.addons.sms_marketing_ext.controllers.twilio"):
            self.assertEqual(self._post(self.gateway_b, "status", form, query, token=B_TOKEN).status_code,
                             200)
            # B's token on A's route: refused.
            form_a, _query = self._status("delivered")
            self.assertEqual(self._post(self.gateway, "status", form_a, query, token=B_TOKEN).status_code,
                             403)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "pending")

    def test_form_urls_are_the_routes(self):
        """The URLs the gateway form shows (generic Callbacks tab, ``_get_webhook_urls``) are the ones
        our routes serve: a status callback and an inbound message posted there, signed for them
        as Twilio signs, are applied."""
        with Form(self.gateway.with_user(self.user_marketing)) as form:
            self.assertFalse(form._get_modifier("status_webhook_url", "invisible"))
            status_url, inbound_url = form.status_webhook_url, form.inbound_webhook_url
        self.assertEqual(status_url, self.gateway._report_url())
        for url in (status_url, inbound_url):
            self.assertTrue(url.startswith(self.PUBLIC + "/"), url)
        form_data, query = self._status("delivered")
        path = urllib.parse.urlsplit(status_url).path
        signed = f"{status_url}?{query}"
        response = self.url_open(f"{path}?{query}", data=form_data, headers={
            twilio.SIGNATURE_HEADER: twilio.signature(AUTH_TOKEN, signed, form_data)})
        self.assertEqual(response.status_code, 200, response.text)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "sent")
        inbound = {"MessageSid": "SM" + "7" * 32, "AccountSid": ACCOUNT_SID, "From": "+33612345670",
                   "To": "+15005550006", "Body": "STOP"}
        response = self.url_open(urllib.parse.urlsplit(inbound_url).path, data=inbound, headers={
            twilio.SIGNATURE_HEADER: twilio.signature(AUTH_TOKEN, inbound_url, inbound)})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertTrue(self._blacklisted("+33612345670"))

    def test_callback_url_follows_web_base_url_without_public_base(self):
        self.gateway.twilio_callback_base_url = False
        form, query = self._status("delivered")
        path = f"/sms_marketing_ext/twilio/{self.gateway.id}/status?{query}"
        response = self._post(self.gateway, "status", form, query, signed_url=self.base_url() + path)
        self.assertEqual(response.status_code, 200)
        self.trace.invalidate_recordset()
        self.assertEqual(self.trace.trace_status, "sent")
        self.assertEqual(urllib.parse.urlsplit(self.gateway.twilio_status_url).netloc,
                         urllib.parse.urlsplit(self.base_url()).netloc)
