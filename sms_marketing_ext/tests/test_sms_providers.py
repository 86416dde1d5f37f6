import doctest
import socket
import threading
import uuid
from datetime import datetime, timezone

from odoo.tests import tagged
from odoo.tests.common import BaseCase, TransactionCase
from odoo.tools import SQL

from ..tools import sms_gateway_api
from ..tools.providers import base, jsonrpc, kannel, odoo_iap
from ..tools.providers.base import Capabilities, GatewayTransientError, SmsProvider
from ..tools.providers.jsonrpc import SmsGatewayApi
from ..tools.providers.kannel import KannelClient
from .common import LocalGatewayMixin, SmsMarketingUsersMixin, SmsSenderMixin

TOKEN = "tok_sms_providers"  # noqa: S105 - account of the throw-away local gateway


def sms(number="+33612345678", content="Hello", sender=None, sms_class="standard"):
    return {"uuid": uuid.uuid4().hex, "number": number, "content": content, "sender": sender, "sms_class": sms_class}


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BlackHole:
    """A TCP server that accepts connections and reads requests but never answers: a call to it
    reaches the other side and its answer is lost (as when an operator's reply times out)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = []
        self.connections = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _address = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)
            try:
                self.requests.append(connection.recv(65536))
            except OSError:
                return

    def close(self):
        self.sock.close()
        for connection in self.connections:
            connection.close()


@tagged("at_install", "sms_providers")
class TestSmsProviderClients(BaseCase):
    """The providers' pure clients (tools/providers), without a database."""

    def test_doctests(self):
        for module in (base, jsonrpc, kannel, odoo_iap):
            with self.subTest(module=module.__name__):
                result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
                self.assertEqual(result.failed, 0)

    def test_one_interface_and_the_old_import_path(self):
        for client in (SmsGatewayApi, KannelClient):
            self.assertTrue(issubclass(client, SmsProvider))
            self.assertIsInstance(client.CAPABILITIES, Capabilities)
        self.assertIs(sms_gateway_api.SmsGatewayApi, SmsGatewayApi, "tools/sms_gateway_api.py still works")
        self.assertIs(sms_gateway_api.GatewayError, base.GatewayError)
        self.assertTrue(SmsGatewayApi.CAPABILITIES.idempotent_send)
        self.assertTrue(SmsGatewayApi.CAPABILITIES.status_query)
        self.assertFalse(KannelClient.CAPABILITIES.idempotent_send, "Kannel takes no idempotency key")
        self.assertFalse(KannelClient.CAPABILITIES.balance or KannelClient.CAPABILITIES.prices)
        self.assertFalse(odoo_iap.CAPABILITIES.idempotent_send)
        with self.assertRaises(base.GatewayUnsupportedError):
            KannelClient("http://kannel:13013", "u", "p").status(["a" * 32])

    def test_kannel_sendsms_parameters(self):
        client = KannelClient("http://kannel:13013/", "odoo", "pw", smsc="smpp-orange", validity=120)
        self.assertEqual(client.url, "http://kannel:13013/cgi-bin/sendsms")
        message = sms(content="Prix 5€ [ok]", sender="MyShop", sms_class="flash")
        params = client.sendsms_params(message, "https://odoo.example.com/sms_marketing_ext/kannel/3/dlr?secret=s3")
        self.assertEqual(
            {key: params[key] for key in ("username", "password", "from", "to", "text", "charset", "coding",
                                          "mclass", "validity", "smsc", "dlr-mask")},
            {"username": "odoo", "password": "pw", "from": "MyShop", "to": "+33612345678", "text": "Prix 5€ [ok]",
             "charset": "UTF-8", "coding": 0, "mclass": 0, "validity": 120, "smsc": "smpp-orange", "dlr-mask": 19},
        )
        self.assertEqual(
            params["dlr-url"],
            f"https://odoo.example.com/sms_marketing_ext/kannel/3/dlr?secret=s3&uuid={message['uuid']}"
            "&type=%d&at=%T&reply=%A",
        )
        unicode_params = KannelClient("http://kannel:13013", "odoo", "pw").sendsms_params(
            sms(content="Merci 😀", sms_class="standard"))
        self.assertEqual(unicode_params["coding"], 2)
        self.assertFalse({"mclass", "validity", "smsc", "from", "dlr-url"} & set(unicode_params))
        self.assertEqual(client.sendsms_params(sms(sms_class="sim"))["mclass"], 2)

    def test_kannel_reports_and_replies(self):
        uuid_hex = uuid.uuid4().hex
        self.assertEqual(kannel.parse_dlr({"uuid": uuid_hex, "type": "1", "at": "1700000000"}),
                         (uuid_hex, "delivered", datetime(2023, 11, 14, 22, 13, 20)))
        self.assertEqual(kannel.parse_dlr({"uuid": uuid_hex, "type": "16"})[1], "rejected")
        self.assertEqual(kannel.parse_dlr({"uuid": uuid_hex, "type": "2", "reply": "id:9 stat:EXPIRED"})[1],
                         "expired")
        self.assertIsNone(kannel.parse_dlr({"uuid": uuid_hex, "type": "8", "reply": "ACK/"})[1], "not final")
        self.assertIsNone(kannel.parse_dlr({"uuid": uuid_hex, "type": "4"})[1], "buffered: not final")
        for bad in ({"uuid": "x", "type": "1"}, {"uuid": uuid_hex, "type": "one"}, {"uuid": uuid_hex}):
            with self.assertRaises(ValueError):
                kannel.parse_dlr(bad)
        before = datetime.now(timezone.utc).replace(tzinfo=None)
        inbound = kannel.parse_mo({"from": "+33612345678", "to": "36180", "text": "STOP", "at": "x"})
        self.assertEqual({key: inbound[key] for key in ("from", "to", "body")},
                         {"from": "+33612345678", "to": "36180", "body": "STOP"})
        self.assertLessEqual(before, inbound["at"], "a reply without %T is dated on arrival")
        self.assertEqual(kannel.parse_mo({"from": "+33612345678", "text": "STOP", "at": "1700000000"})["at"],
                         datetime(2023, 11, 14, 22, 13, 20))
        for bad in ({"text": "STOP"}, {"from": "+33612345678", "text": "STOP", "at": "1"},
                    {"from": "+33612345678", "text": "STOP\x00"}):
            with self.assertRaises(ValueError):
                kannel.parse_mo(bad)

    def test_refused_connection_sent_nothing(self):
        client = KannelClient(f"http://127.0.0.1:{closed_port()}", "odoo", "pw-secret", timeout=2)
        with self.assertRaises(GatewayTransientError) as caught:
            client.send([sms(), sms()], "http://odoo/sms_marketing_ext/kannel/1/dlr?secret=cb-secret")
        self.assertFalse(caught.exception.maybe_sent, "nothing reached Kannel: safe to send again")
        self.assertNotIn("pw-secret", caught.exception.message, "the password never reaches logs or traces")
        self.assertNotIn("cb-secret", caught.exception.message)
        self.assertNotIn("+33612345678", caught.exception.message, "nor the numbers and texts of the query")
        self.assertIn("Connection refused", caught.exception.message, "what went wrong is still said")

    def test_lost_answer_is_unknown_and_stops_the_batch(self):
        hole = BlackHole()
        self.addCleanup(hole.close)
        client = KannelClient(hole.url, "odoo", "pw", timeout=0.5)
        self.addCleanup(client.close)
        results = client.send([sms(), sms(), sms()])
        self.assertEqual([result["state"] for result in results], ["unknown", "server_error", "server_error"],
                         "the first call may have been taken: unknown; the others were never tried")
        self.assertEqual(len(hole.requests), 1)
        with self.assertRaises(GatewayTransientError) as caught:
            SmsGatewayApi(hole.url, TOKEN, timeout=0.5).balance()
        self.assertTrue(caught.exception.maybe_sent)


@tagged("post_install", "-at_install", "sms_providers")
class TestSmsProviders(LocalGatewayMixin, SmsMarketingUsersMixin, SmsSenderMixin, TransactionCase):
    """The gateway record's providers: capability table, credit budget, status query and what a lost
    answer does to a message at a provider without idempotent send."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls._start_local_gateway("--report-delay", "0.1", "--seed", "3")
        cls._gateway_create_account(TOKEN, 100, price=0.05)
        cls.env.company.country_id = cls.env.ref("base.fr")
        cls.env["sms.gateway"].search([("company_id", "=", cls.env.company.id)]).write({"is_default": False})
        cls.jsonrpc = cls.env["sms.gateway"].create(
            {"name": "Local", "provider": "jsonrpc", "base_url": cls.gateway_url, "account_token": TOKEN}
        )
        cls.kannel = cls.env["sms.gateway"].create({
            "name": "Kannel", "provider": "kannel", "kannel_sendsms_url": "http://127.0.0.1:9",
            "kannel_username": "odoo", "kannel_password": "pw", "balance": 10.0, "price_default": 0.07,
            "price_ids": [(0, 0, {"country_code": "FR", "price": 0.04})], "is_default": True, "timeout": 1,
        })
        cls._create_sender("MyShop", is_default=True)
        cls.mailing_list = cls.env["mailing.list"].create({"name": "Three"})
        cls.env["mailing.contact"].create([
            {"name": f"C{index}", "mobile": f"+33 6 30 00 00 0{index}", "list_ids": [(4, cls.mailing_list.id)]}
            for index in range(3)
        ])

    def test_capability_table(self):
        self.assertEqual(
            {name: self.kannel[f"cap_{name}"] for name in Capabilities._fields},
            KannelClient.CAPABILITIES._asdict(),
        )
        self.assertTrue(self.jsonrpc.cap_balance and self.jsonrpc.cap_idempotent_send and self.jsonrpc.cap_status_query)
        iap = self.env["sms.gateway"].create({"name": "IAP", "provider": "odoo_iap"})
        self.assertTrue(iap.cap_balance)
        self.assertFalse(iap.cap_idempotent_send)
        self.assertIn("secret=", self.kannel.kannel_dlr_url)
        self.assertIn(self.kannel.webhook_secret, self.kannel.kannel_service_config)
        self.assertNotIn(self.kannel.webhook_secret, self.kannel.status_webhook_url or "")

    def test_webhook_urls_per_provider(self):
        """Issue 12 §6: each provider lists the URLs it must be given (``_get_webhook_urls``); the form
        shows those without a secret to everyone, Kannel's (carrying the secret) to administrators only."""
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", "https://odoo.example.com")
        self.jsonrpc.invalidate_recordset()
        base = f"https://odoo.example.com/sms_marketing_ext/webhook/{self.jsonrpc.id}"
        self.assertEqual([(e["kind"], e["url"]) for e in self.jsonrpc._get_webhook_urls()],
                         [("status", f"{base}/status"), ("inbound", f"{base}/inbound")])
        self.assertEqual((self.jsonrpc.status_webhook_url, self.jsonrpc.inbound_webhook_url),
                         (f"{base}/status", f"{base}/inbound"))
        self.assertFalse(self.jsonrpc.webhook_base_url_local)
        self.assertIn("inbound URL", self.jsonrpc.webhook_urls_note)
        # Kannel: both URLs carry the secret, so none is in the fields every user reads.
        kannel_urls = self.kannel._get_webhook_urls()
        self.assertEqual({e["kind"] for e in kannel_urls}, {"status", "inbound"})
        self.assertTrue(all(e["secret"] and self.kannel.webhook_secret in e["url"] for e in kannel_urls))
        self.kannel.invalidate_recordset()
        self.assertEqual((self.kannel.status_webhook_url, self.kannel.inbound_webhook_url), (False, False))
        self.assertEqual(self.kannel.kannel_dlr_url, next(e["url"] for e in kannel_urls if e["kind"] == "status"))
        marketer_view = self.kannel.with_user(self.user_marketing).read(["status_webhook_url", "inbound_webhook_url"])
        self.assertNotIn(self.kannel.webhook_secret, str(marketer_view))
        # Odoo IAP: stock's route, told to IAP with each message.
        iap = self.env["sms.gateway"].create({"name": "IAP", "provider": "odoo_iap"})
        self.assertEqual(iap.status_webhook_url, "https://odoo.example.com/sms/status")
        self.assertFalse(iap.inbound_webhook_url)
        # Twilio: signed calls, no secret in the URLs: in the generic fields, on its public base URL.
        twilio_gateway = self.env["sms.gateway"].create({
            "name": "Twilio", "provider": "twilio", "twilio_account_sid": "AC" + "0" * 32,
            "twilio_callback_base_url": "https://public.example.com/",
        })
        twilio_base = f"https://public.example.com/sms_marketing_ext/twilio/{twilio_gateway.id}"
        self.assertEqual([(e["kind"], e["url"], bool(e.get("secret"))) for e in twilio_gateway._get_webhook_urls()],
                         [("status", f"{twilio_base}/status", False), ("inbound", f"{twilio_base}/inbound", False)])
        self.assertEqual(
            twilio_gateway.with_user(self.user_marketing).read(["status_webhook_url", "inbound_webhook_url"])[0],
            {"id": twilio_gateway.id, "status_webhook_url": f"{twilio_base}/status",
             "inbound_webhook_url": f"{twilio_base}/inbound"}, "every user of the form sees them")
        self.assertEqual(twilio_gateway._report_url(), twilio_gateway.status_webhook_url, "what each message carries")
        self.assertIn("A message comes in", twilio_gateway.webhook_urls_note)
        self.assertFalse(twilio_gateway.webhook_base_url_local)
        # A web.base.url on this machine: the form warns that no gateway can call back; not for
        # Twilio while its public callback base URL is set, which its URLs follow.
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", "http://localhost:8069")
        (self.jsonrpc | twilio_gateway).invalidate_recordset()
        self.assertTrue(self.jsonrpc.webhook_base_url_local)
        self.assertFalse(twilio_gateway.webhook_base_url_local)
        twilio_gateway.twilio_callback_base_url = False
        self.assertEqual(twilio_gateway.inbound_webhook_url,
                         f"http://localhost:8069/sms_marketing_ext/twilio/{twilio_gateway.id}/inbound")
        self.assertTrue(twilio_gateway.webhook_base_url_local)

    def test_refresh_balance_says_what_it_found(self):
        notification = self.jsonrpc.action_refresh_balance()
        self.assertEqual(notification["tag"], "display_notification")
        balance = f"{self.jsonrpc.balance:,.2f}"
        balance = balance[:-3] if balance.endswith(".00") else balance.rstrip("0")
        self.assertIn(f"{balance} credits available", notification["params"]["message"])
        self.assertNotRegex(notification["params"]["message"], r"\d\.\d{5}", "no float noise")
        kannel_message = self.kannel.action_refresh_balance()["params"]["message"]
        self.assertIn("publishes neither balance nor prices", kannel_message)

    def test_budget_without_balance_api(self):
        """Kannel tells no balance: the record's budget and local prices are used, nothing is fetched."""
        self.assertEqual(self.kannel._refresh_from_gateway(), 10.0, "the budget, without a call to Kannel")
        self.assertAlmostEqual(self.kannel._price_for("FR"), 0.04)
        self.kannel._spend_budget(0.5)
        self.assertAlmostEqual(self.kannel.balance, 9.5)
        self.jsonrpc._spend_budget(0.5)
        self.jsonrpc.action_refresh_balance()
        self.assertAlmostEqual(self.jsonrpc.balance, 100.0, msg="a balance API is the truth: no local budget")

    def test_budget_too_small_pauses_the_mailing(self):
        self.kannel.balance = 0.05
        mailing = self._mailing()
        mailing.action_put_in_queue()
        mailing._sms_start_sending()
        self.assertFalse(mailing._sms_send_batch())
        self.assertTrue(mailing.sms_waiting_credit, "3 messages at 0.04 exceed a budget of 0.05")

    def test_status_query_of_the_local_gateway(self):
        delivered, never = sms(), uuid.uuid4().hex
        with self.jsonrpc._get_api() as api:
            self.assertEqual(api.status([delivered["uuid"]]), {delivered["uuid"]: {"state": "unknown", "at": None}})
            api.send([delivered])
            [state] = api.status([delivered["uuid"]]).values()
            self.assertIn(state["state"], ("pending", "delivered", "undelivered", "expired", "rejected"))
            self.assertEqual(api.status([never])[never]["state"], "unknown")
            with self.assertRaises(ValueError):
                api.status(["nope"])

    def _mailing(self):
        return self.env["mailing.mailing"].with_user(self.user_marketing).create({
            "subject": "Providers", "mailing_type": "sms", "body_plaintext": "Hello", "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        })

    def test_lost_answer_waits_in_unknown_never_resent(self):
        hole = BlackHole()
        self.addCleanup(hole.close)
        self.kannel.kannel_sendsms_url = hole.url
        mailing = self._mailing()
        mailing.action_put_in_queue()
        mailing._sms_start_sending()
        self.assertTrue(mailing._sms_send_batch())
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)], order="id")
        first, others = traces[0], traces[1:]
        self.assertEqual((first.trace_status, first.sms_unknown), ("pending", True))
        self.assertIn("not sent again", first.failure_reason)
        self.assertEqual(set(others.mapped("trace_status")), {"outgoing"}, "never tried: sent later")
        self.assertAlmostEqual(first.sms_credits, 0.04, msg="priced as sent: it may well have been")
        self.assertAlmostEqual(self.kannel.balance, 10.0 - 0.04)
        # Next runs (time passes): the others are tried again, the unknown one never.
        for _run in range(3):
            self.env.cr.execute(SQL("UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s",
                                    mailing.id))
            mailing._sms_send_batch()
        traces.invalidate_recordset()
        self.assertEqual(set(traces.mapped("sms_unknown")), {True}, "each tried once, each answer lost")
        for trace in traces:
            self.assertEqual(sum(1 for request in hole.requests if trace.sms_uuid.encode() in request), 1,
                             "never sent again")
        # Its delivery report settles it.
        self.env["mailing.trace"]._sms_apply_delivery_report(first.sms_uuid, "delivered")
        first.invalidate_recordset()
        self.assertEqual((first.trace_status, first.sms_unknown), ("sent", False))

    def test_lost_answer_at_an_idempotent_provider_is_retried(self):
        self.kannel.is_default = False
        self.jsonrpc.is_default = True
        self._gateway_admin("/_admin/faults", {"accept_then_fail_ratio": 1.0})
        self.addCleanup(self._gateway_admin, "/_admin/faults", {"accept_then_fail_ratio": 0.0})
        mailing = self._mailing()
        mailing.action_put_in_queue()
        mailing._sms_start_sending()
        mailing._sms_send_batch()
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(set(traces.mapped("trace_status")), {"outgoing"}, "the same uuids are simply sent again")
        self.assertFalse(any(traces.mapped("sms_unknown")))
