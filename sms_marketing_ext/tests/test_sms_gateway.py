import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase

from ..models.sms_gateway_odoo_iap import OdooIapSmsApi
from ..tools.sms_gateway_api import (
    GatewayAccessError,
    GatewayError,
    GatewayInsufficientCreditError,
    GatewayResponseError,
    GatewayTransientError,
    SmsGatewayApi,
    iap_state_to_protocol,
)
from .common import LocalGatewayMixin, SmsMailingMixin, SmsMarketingUsersMixin

# Account tokens of the throw-away local gateway, not credentials.
TOKEN = "tok_sms_gateway_tests"  # noqa: S105
POOR_TOKEN = "tok_sms_gateway_poor"  # noqa: S105
UNKNOWN_TOKEN = "tok_unknown"  # noqa: S105
REPRICE_TOKEN = "tok_sms_gateway_reprice"  # noqa: S105
COUNTRY_PRICES = {"FR": 0.045, "BE": 0.06}
DEFAULT_PRICE = 0.05


def sms(number="+33612345678", content="Hello", sender=None, sms_class="standard"):
    return {"uuid": uuid.uuid4().hex, "number": number, "content": content, "sender": sender, "sms_class": sms_class}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _HtmlHandler(BaseHTTPRequestHandler):
    """Answers every POST with an HTML page, as a web server that is not a gateway would."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@tagged("post_install", "-at_install", "sms_gateway")
class TestSmsGateway(LocalGatewayMixin, SmsMarketingUsersMixin, SmsMailingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls._start_local_gateway("--report-delay", "3600")
        cls._gateway_create_account(TOKEN, 100, price=DEFAULT_PRICE, country_prices=COUNTRY_PRICES)
        cls._gateway_create_account(POOR_TOKEN, 0)
        cls.gateway = cls._create_sms_gateway("Local gateway", cls.gateway_url, TOKEN, webhook_secret=None)

    def _api(self, token=TOKEN, **kwargs):
        api = SmsGatewayApi(self.gateway_url, token, **kwargs)
        self.addCleanup(api.close)
        return api

    # ------------------------------------------------------------
    # API client against the real gateway
    # ------------------------------------------------------------

    def test_api_balance_and_prices(self):
        api = self._api()
        self.assertIsInstance(api.balance(), float)
        self.assertGreater(api.balance(), 0)
        self.assertEqual(api.prices(), {"default": DEFAULT_PRICE, "countries": COUNTRY_PRICES})

    def test_api_send_is_idempotent(self):
        api = self._api()
        before = api.balance()
        batch = [sms("+33612345678", "Spring sale"), sms("+32470123456", "Soldes"), sms("12", "bad number")]
        results = api.send(batch, webhook_url="http://127.0.0.1:9/never")
        self.assertEqual([r["uuid"] for r in results], [m["uuid"] for m in batch], "same order as sent")
        self.assertEqual([r["state"] for r in results], ["accepted", "accepted", "wrong_number_format"])
        self.assertAlmostEqual(results[0]["credits"], COUNTRY_PRICES["FR"])
        self.assertAlmostEqual(results[1]["credits"], COUNTRY_PRICES["BE"])
        self.assertEqual(results[2]["credits"], 0.0)
        charged = COUNTRY_PRICES["FR"] + COUNTRY_PRICES["BE"]
        self.assertAlmostEqual(api.balance(), before - charged)

        again = api.send(batch[:2])
        self.assertEqual([(r["state"], r["credits"]) for r in again], [("accepted", 0.0), ("accepted", 0.0)])
        self.assertAlmostEqual(api.balance(), before - charged, msg="a repeated uuid is never charged twice")
        stored = {m["uuid"]: m for m in self._gateway_admin(f"/_admin/messages?token={TOKEN}")}
        self.assertEqual(stored[batch[0]["uuid"]]["presented_count"], 2)
        self.assertEqual(stored[batch[0]["uuid"]]["webhook_url"], "http://127.0.0.1:9/never")

    def test_api_send_validates_the_batch(self):
        api = self._api()
        self.assertEqual(api.send([]), [])
        with self.assertRaisesRegex(ValueError, "at most 1000"):
            api.send([sms() for _i in range(1001)])
        with self.assertRaisesRegex(ValueError, "uuid"):
            api.send([dict(sms(), uuid="not-a-uuid")])
        with self.assertRaisesRegex(ValueError, "sms_class"):
            api.send([sms(sms_class="loud")])
        twice = sms()
        with self.assertRaisesRegex(ValueError, "twice"):
            api.send([twice, twice])

    def test_api_access_error(self):
        with self.assertRaises(GatewayAccessError) as caught:
            self._api(token=UNKNOWN_TOKEN).balance()
        self.assertEqual(caught.exception.name, "AccessError")
        self.assertIsInstance(caught.exception, GatewayError)

    def test_api_insufficient_credit(self):
        with self.assertRaises(GatewayInsufficientCreditError) as caught:
            self._api(token=POOR_TOKEN).send([sms()])
        self.assertEqual(caught.exception.name, "InsufficientCreditError")

    def test_api_transient_on_http_503(self):
        self._gateway_set_faults(fail_ratio=1.0)
        with self.assertRaises(GatewayTransientError) as caught:
            self._api().send([sms()])
        self.assertEqual((caught.exception.reason, caught.exception.status_code), ("http", 503))
        self.assertIsInstance(caught.exception, GatewayError, "one tree: callers catch GatewayError")
        self.assertEqual(str(caught.exception), caught.exception.message, "the text is the message alone")
        self.assertIn("HTTP 503", caught.exception.message)

    def test_api_retry_after_500_is_not_charged_twice(self):
        api, message = self._api(), sms(content="Flash sale")
        before = api.balance()
        self._gateway_set_faults(accept_then_fail_ratio=1.0)
        with self.assertRaises(GatewayTransientError) as caught:
            api.send([message])
        self.assertEqual(caught.exception.status_code, 500)
        self._gateway_admin("/_admin/faults", {"accept_then_fail_ratio": 0.0})
        [result] = api.send([message])
        self.assertEqual((result["state"], result["credits"]), ("accepted", 0.0))
        self.assertAlmostEqual(api.balance(), before - COUNTRY_PRICES["FR"])

    def test_api_timeout(self):
        self._gateway_set_faults(latency_ms=1500)
        with self.assertRaises(GatewayTransientError) as caught:
            self._api(timeout=0.3).balance()
        self.assertEqual(caught.exception.reason, "timeout")

    def test_api_connection_refused(self):
        api = SmsGatewayApi(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=2)
        self.addCleanup(api.close)
        with self.assertRaises(GatewayTransientError) as caught:
            api.balance()
        self.assertEqual(caught.exception.reason, "unreachable")

    def test_api_malformed_answer(self):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        api = self._api()
        api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        with self.assertRaisesRegex(GatewayResponseError, "did not answer JSON"):
            api.balance()

    def test_api_keeps_one_session(self):
        api = self._api()
        api.balance()
        api.prices()
        self.assertEqual(len(api.session.adapters["http://"].poolmanager.pools), 1)

    # ------------------------------------------------------------
    # Odoo IAP adapter (no network here: mapping only)
    # ------------------------------------------------------------

    def test_iap_state_mapping(self):
        failure_types = self.env["sms.sms"].IAP_TO_SMS_FAILURE_TYPE
        self.assertEqual(iap_state_to_protocol("success", failure_types), ("accepted", False))
        self.assertEqual(iap_state_to_protocol("processing", failure_types), ("accepted", False))
        self.assertEqual(
            iap_state_to_protocol("insufficient_credit", failure_types), ("insufficient_credit", "sms_credit")
        )
        self.assertEqual(
            iap_state_to_protocol("wrong_number_format", failure_types), ("wrong_number_format", "sms_number_format")
        )
        self.assertEqual(
            iap_state_to_protocol("country_not_supported", failure_types),
            ("wrong_number_format", "sms_country_not_supported"),
        )
        self.assertEqual(iap_state_to_protocol("server_error", failure_types), ("server_error", "sms_server"))
        self.assertEqual(iap_state_to_protocol("unregistered", failure_types), ("insufficient_credit", "sms_acc"))
        self.assertEqual(iap_state_to_protocol("brand_new_state", failure_types), ("server_error", "unknown"))

        messages = [sms(), sms(), sms()]
        response = [
            {"uuid": messages[1]["uuid"], "state": "wrong_number_format"},
            {"uuid": messages[0]["uuid"], "state": "success", "credit": 1.0},
        ]
        results = OdooIapSmsApi(self.env)._results(messages, response)
        self.assertEqual(
            [(r["uuid"], r["state"], r["credits"]) for r in results],
            [
                (messages[0]["uuid"], "accepted", 1.0),
                (messages[1]["uuid"], "wrong_number_format", 0.0),
                (messages[2]["uuid"], "server_error", 0.0),
            ],
            "results follow the order of the messages; a message IAP did not answer for is retried",
        )

    def test_odoo_iap_gateway(self):
        gateway = self.env["sms.gateway"].create({"name": "Odoo IAP", "provider": "odoo_iap"})
        self.assertIsInstance(gateway._get_api(), OdooIapSmsApi)
        self.assertEqual(gateway._get_api().prices(), {"default": 0.0, "countries": {}})

    # ------------------------------------------------------------
    # Gateway records
    # ------------------------------------------------------------

    def test_test_connection(self):
        action = self.gateway.action_test_connection()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(action["params"]["type"], "success")
        balance = self._api().balance()
        self.assertIn(f"{balance} credits", action["params"]["message"])

    def test_test_connection_errors_in_user_terms(self):
        bad_token = self.gateway.copy({"name": "Bad token", "account_token": "tok_wrong"})
        with self.assertRaisesRegex(UserError, "refused the account token"):
            bad_token.action_test_connection()

        unreachable = self.gateway.copy(
            {"name": "Unreachable", "base_url": f"http://127.0.0.1:{free_port()}", "account_token": TOKEN}
        )
        with self.assertRaisesRegex(UserError, "Cannot reach .* check the base URL"):
            unreachable.action_test_connection()

        slow = self.gateway.copy({"name": "Slow", "timeout": 1, "account_token": TOKEN})
        self._gateway_set_faults(latency_ms=2500)
        with self.assertRaisesRegex(UserError, "did not answer within 1 seconds"):
            slow.action_test_connection()

    def test_refresh_balance_and_prices(self):
        gateway = self.gateway.copy({"name": "Refreshed", "account_token": TOKEN})
        self.assertFalse(gateway.price_ids)
        gateway.action_refresh_balance()
        self.assertAlmostEqual(gateway.balance, self._api().balance())
        self.assertTrue(gateway.balance_date)
        self.assertAlmostEqual(gateway.price_default, DEFAULT_PRICE)
        self.assertEqual(set(gateway.price_ids.mapped("country_code")), set(COUNTRY_PRICES))
        for line in gateway.price_ids:
            self.assertAlmostEqual(line.price, COUNTRY_PRICES[line.country_code])
        france = gateway.price_ids.filtered(lambda p: p.country_code == "FR")
        self.assertEqual(france.country_id, self.env.ref("base.fr"))
        self.assertAlmostEqual(gateway._price_for("fr"), COUNTRY_PRICES["FR"])
        self.assertAlmostEqual(gateway._price_for("DE"), DEFAULT_PRICE)
        self.assertAlmostEqual(gateway._price_for(None), DEFAULT_PRICE)

        token = REPRICE_TOKEN
        self._gateway_create_account(token, 7, price=0.07, country_prices={"DE": 0.08})
        gateway.sudo().account_token = token
        gateway.action_refresh_balance()
        self.assertEqual(gateway.balance, 7)
        self.assertEqual(gateway.price_ids.mapped("country_code"), ["DE"], "price list replaced")
        self.assertAlmostEqual(gateway.price_ids.price, 0.08)
        self.assertAlmostEqual(gateway.price_default, 0.07)
        self.assertEqual(self.env["sms.gateway.price"].search_count([("gateway_id", "=", gateway.id)]), 1)

    def test_secrets_are_for_sms_administrators(self):
        as_user = self.gateway.with_user(self.user_marketing)
        self.assertEqual(as_user.read(["name", "base_url", "balance"])[0]["name"], "Local gateway")
        self.gateway.invalidate_recordset()
        with self.assertRaises(AccessError):
            as_user.read(["account_token"])
        with self.assertRaises(AccessError):
            as_user.read(["webhook_secret"])
        self.assertNotIn("account_token", as_user.fields_get())
        with self.assertRaises(AccessError):
            as_user.write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            as_user.action_test_connection()
        self.assertEqual(as_user._get_default_gateway(self.env.company), as_user._get_default_gateway())

        as_admin = self.gateway.with_user(self.user_sms_admin)
        self.assertEqual(as_admin.read(["account_token"])[0]["account_token"], TOKEN)
        self.assertRegex(as_admin.webhook_secret, r"^[0-9a-f]{64}$")
        with self.assertRaises(AccessError):
            self.gateway.with_user(self.user_employee).read(["name"])

    def test_regenerate_webhook_secret(self):
        gateway = self.gateway.copy({"name": "Regenerated"})
        secret = gateway.webhook_secret
        self.assertRegex(secret, r"^[0-9a-f]{64}$")
        self.assertNotEqual(secret, self.gateway.webhook_secret, "every gateway gets its own secret")
        gateway.with_user(self.user_sms_admin).action_regenerate_webhook_secret()
        self.assertRegex(gateway.webhook_secret, r"^[0-9a-f]{64}$")
        self.assertNotEqual(gateway.webhook_secret, secret)

    def test_batch_size_constraint(self):
        for size in (0, -5, 1001):
            with self.assertRaisesRegex(ValidationError, "between 1 and 1000"), self.cr.savepoint():
                self.gateway.batch_size = size
                self.gateway.flush_recordset()
        self.gateway.batch_size = 1000
        self.gateway.batch_size = 1
        self.assertEqual(self.gateway.batch_size, 1)
        with self.assertRaises(ValidationError), self.cr.savepoint():
            self.env["sms.gateway"].create({"name": "No URL", "provider": "jsonrpc", "account_token": TOKEN})

    def test_single_default_per_company(self):
        other_company = self.env["res.company"].create({"name": "Other SMS company"})
        first = self.gateway.copy({"name": "First", "is_default": True})
        self.assertTrue(first.is_default)
        second = self.gateway.copy({"name": "Second"})
        elsewhere = self.gateway.copy({"name": "Elsewhere", "company_id": other_company.id, "is_default": True})
        second.is_default = True
        self.assertFalse(first.is_default)
        self.assertTrue(second.is_default)
        self.assertTrue(elsewhere.is_default, "another company's default is untouched")
        third = self.env["sms.gateway"].create(
            {"name": "Third", "base_url": self.gateway_url, "account_token": TOKEN, "is_default": True}
        )
        self.assertFalse(second.is_default)
        defaults = self.env["sms.gateway"].search([("is_default", "=", True), ("company_id", "=", self.env.company.id)])
        self.assertEqual(defaults, third)
        self.assertEqual(self.env["sms.gateway"]._get_default_gateway(self.env.company), third)
        self.assertEqual(self.env["sms.gateway"]._get_default_gateway(other_company), elsewhere)

    def test_webhook_urls(self):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url").rstrip("/")
        self.assertEqual(
            self.gateway._webhook_url("status"), f"{base_url}/sms_marketing_ext/webhook/{self.gateway.id}/status"
        )
        self.assertEqual(self.gateway.inbound_webhook_url, self.gateway._webhook_url("inbound"))
        with self.assertRaises(ValueError):
            self.gateway._webhook_url("other")

    def test_other_company_gateways_are_hidden(self):
        other_company = self.env["res.company"].create({"name": "Elsewhere Ltd"})
        hidden = self.env["sms.gateway"].create({
            "name": "Elsewhere", "base_url": self.gateway_url, "account_token": TOKEN, "company_id": other_company.id,
        })
        visible = self.env["sms.gateway"].with_user(self.user_marketing).search([])
        self.assertIn(self.gateway, visible)
        self.assertNotIn(hidden, visible)
        self.user_marketing.company_ids |= other_company
        visible = self.env["sms.gateway"].with_user(self.user_marketing).with_context(
            allowed_company_ids=[self.env.company.id, other_company.id]
        ).search([])
        self.assertIn(hidden, visible)
