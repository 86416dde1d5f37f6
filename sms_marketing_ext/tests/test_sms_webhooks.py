import json
import time
import uuid
from datetime import datetime

from odoo.tests import HttpCase, tagged

from ..tools.sms_gateway_api import SIGNATURE_HEADER, parse_utc_datetime, sign
from ..tools.sms_keywords import classify_inbound, normalize_sender_number
from .common import LocalGatewayMixin

# Secrets of the throw-away local gateway and test gateway record, not credentials.
SECRET = "webhook-secret-for-tests"  # noqa: S105
OTHER_SECRET = "not-the-secret"  # noqa: S105
TOKEN = "tok_sms_webhooks"  # noqa: S105
REPORTS_TOKEN = "tok_sms_webhooks_reports"  # noqa: S105
NUMBER = "+33612345678"


@tagged("post_install", "-at_install", "sms_webhooks")
class TestSmsWebhooks(LocalGatewayMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Reports are due at once and always 'delivered', for the end-to-end test.
        cls._start_local_gateway("--report-delay", "0", "--delivered-ratio", "1")
        cls.gateway = cls.env["sms.gateway"].create(
            {
                "name": "Webhook gateway",
                "provider": "jsonrpc",
                "base_url": "http://127.0.0.1:9",
                "account_token": TOKEN,
                "webhook_secret": SECRET,
            }
        )
        cls.partner = cls.env["res.partner"].create({"name": "Sam Recipient", "mobile": NUMBER})
        cls.mailing = cls.env["mailing.mailing"].create(
            {"subject": "Webhook mailing", "mailing_type": "sms", "body_plaintext": "Hello",
             "sms_gateway_id": cls.gateway.id}
        )

    def _new_trace(self):
        return self.env["mailing.trace"].create(
            {
                "trace_type": "sms",
                "model": "res.partner",
                "res_id": self.partner.id,
                "mass_mailing_id": self.mailing.id,
                "trace_status": "pending",
                "sms_uuid": uuid.uuid4().hex,
                "sms_number": NUMBER,
            }
        )

    def _url(self, kind, gateway=None):
        return f"/sms_marketing_ext/webhook/{(gateway or self.gateway).id}/{kind}"

    def _post(self, kind, payload, secret=SECRET, signature=None, gateway=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if signature is None and secret is not None:
            signature = sign(secret, body)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return self.url_open(self._url(kind, gateway), data=body, headers=headers)

    @staticmethod
    def _inbound(body, sender=NUMBER, to="36180", at="2024-05-01T12:00:00Z"):
        return {"from": sender, "to": to, "body": body, "at": at}

    def _blacklisted(self, number=NUMBER):
        return self.env["phone.blacklist"].with_context(active_test=False).search([("number", "=", number)])

    # ------------------------------------------------------------
    # Delivery reports
    # ------------------------------------------------------------

    def test_delivery_report(self):
        trace = self._new_trace()
        report = {"uuid": trace.sms_uuid, "state": "delivered", "at": "2024-05-01T12:00:00.250Z"}
        response = self._post("status", report)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"ok": True})
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "sent")
        self.assertEqual(trace.sms_report_date, datetime(2024, 5, 1, 12, 0, 0, 250000))

        again = self._post("status", report)
        self.assertEqual(again.status_code, 200, "a repeated report is harmless")
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "sent")

    def test_delivery_report_failure_state(self):
        trace = self._new_trace()
        response = self._post("status", {"uuid": trace.sms_uuid, "state": "rejected", "at": "2024-05-01T12:00:00Z"})
        self.assertEqual(response.status_code, 200)
        trace.invalidate_recordset()
        self.assertEqual((trace.trace_status, trace.failure_type), ("bounce", "sms_rejected"))

    def test_delivery_report_unknown_uuid(self):
        response = self._post("status", {"uuid": uuid.uuid4().hex, "state": "delivered", "at": "2024-05-01T12:00:00Z"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"ok": True})

    def test_delivery_report_refused_without_the_right_signature(self):
        trace = self._new_trace()
        report = {"uuid": trace.sms_uuid, "state": "delivered", "at": "2024-05-01T12:00:00Z"}
        self.assertEqual(self._post("status", report, secret=None).status_code, 403, "unsigned")
        self.assertEqual(self._post("status", report, secret=OTHER_SECRET).status_code, 403, "wrong secret")
        self.assertEqual(self._post("status", report, signature="0" * 64).status_code, 403, "forged signature")
        body = json.dumps(report).encode()
        self.assertEqual(
            self._post("status", body.replace(b"delivered", b"expired"), signature=sign(SECRET, body)).status_code,
            403,
            "the signature covers the raw body",
        )
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "pending")
        self.assertFalse(trace.sms_report_date)

    def test_unknown_or_archived_gateway(self):
        trace = self._new_trace()
        report = {"uuid": trace.sms_uuid, "state": "delivered", "at": "2024-05-01T12:00:00Z"}
        unknown = self.env["sms.gateway"].browse(self.gateway.id + 100000)
        self.assertEqual(self._post("status", report, gateway=unknown).status_code, 403)
        archived = self.gateway.copy({"name": "Archived", "webhook_secret": SECRET, "active": False})
        self.assertEqual(self._post("status", report, gateway=archived).status_code, 403)
        self.assertEqual(self._post("inbound", {"from": NUMBER, "to": "36180", "body": "STOP"},
                                    gateway=archived).status_code, 403)
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "pending")
        self.assertFalse(self._blacklisted())

    def test_delivery_report_bad_bodies(self):
        trace = self._new_trace()
        for body in (
            b"not json",
            b"[]",
            json.dumps({"uuid": trace.sms_uuid, "state": "lost", "at": "2024-05-01T12:00:00Z"}).encode(),
            json.dumps({"uuid": "short", "state": "delivered"}).encode(),
            json.dumps({"uuid": trace.sms_uuid, "state": "delivered", "at": "yesterday"}).encode(),
        ):
            self.assertEqual(self._post("status", body).status_code, 400, body)
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "pending")

    def test_only_post(self):
        self.assertEqual(self.url_open(self._url("status")).status_code, 405)

    # ------------------------------------------------------------
    # Inbound messages
    # ------------------------------------------------------------

    def test_inbound_stop_and_start(self):
        response = self._post("inbound", {"from": NUMBER, "to": "36180", "body": "STOP", "at": "2024-05-01T12:00:00Z"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"ok": True, "action": "stop"})
        entry = self._blacklisted()
        self.assertTrue(entry.active)
        self.assertIn("STOP", entry.message_ids[:1].body)

        response = self._post("inbound", self._inbound(" start ", at="2024-05-01T12:01:00Z"))
        self.assertEqual(response.json(), {"ok": True, "action": "start"})
        entry.invalidate_recordset()
        self.assertFalse(entry.active, "START lifts the blacklist")

        self._post("inbound", self._inbound("stop sms", sender="+33 6 12 34 56 78", at="2024-05-01T12:02Z"))
        entry.invalidate_recordset()
        self.assertTrue(entry.active, "'stop sms' opts out too; the number is normalised to E.164")
        self.assertEqual(len(self._blacklisted()), 1)

        self._post("inbound", {"from": NUMBER, "to": "36180", "body": "Unstop", "at": "2024-05-01T12:03:00Z"})
        entry.invalidate_recordset()
        self.assertFalse(entry.active)

    def test_inbound_other_text_ignored(self):
        response = self._post("inbound", self._inbound("Please stop"))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"ok": True, "action": None})
        self.assertFalse(self._blacklisted())

    def test_inbound_refused_without_signature(self):
        payload = {"from": NUMBER, "to": "36180", "body": "STOP", "at": "2024-05-01T12:00:00Z"}
        self.assertEqual(self._post("inbound", payload, secret=None).status_code, 403)
        self.assertEqual(self._post("inbound", payload, secret=OTHER_SECRET).status_code, 403)
        self.assertFalse(self._blacklisted())

    def test_inbound_bad_bodies(self):
        self.assertEqual(self._post("inbound", b"{").status_code, 400)
        self.assertEqual(self._post("inbound", {"from": NUMBER, "body": 12}).status_code, 400)
        self.assertEqual(self._post("inbound", self._inbound("STOP", sender="not a number")).status_code, 400)
        self.assertFalse(self._blacklisted())

    def test_inbound_through_the_real_gateway(self):
        """The local gateway signs and posts an inbound STOP to the inbound URL it is given."""
        inbound_url = self.base_url() + self._url("inbound")
        self._gateway_create_account(TOKEN, 10, senders=["36180"], webhook_secret=SECRET, inbound_url=inbound_url)
        outcome = self._gateway_admin(
            "/_admin/inbound", {"token": TOKEN, "from": "+32470123456", "to": "36180", "body": "Stop"}
        )
        self.assertEqual((outcome["ok"], outcome["status"]), (True, 200), outcome)
        self.assertTrue(self._blacklisted("+32470123456").active)

        self._gateway_create_account(TOKEN, 10, webhook_secret=OTHER_SECRET, inbound_url=inbound_url)
        outcome = self._gateway_admin(
            "/_admin/inbound", {"token": TOKEN, "from": "+32470999999", "to": "36180", "body": "STOP"}
        )
        self.assertEqual(outcome["status"], 403, "a gateway signing with another secret is refused")
        self.assertFalse(self._blacklisted("+32470999999"))

    def test_delivery_report_through_the_real_gateway(self):
        """A message sent to the local gateway gets its delivery report back on the status URL."""
        token = REPORTS_TOKEN
        self._gateway_create_account(token, 10, webhook_secret=SECRET)
        self.gateway.write({"base_url": self.gateway_url, "account_token": token})
        trace = self._new_trace()
        with self.gateway._get_api() as api:
            [result] = api.send(
                [{"uuid": trace.sms_uuid, "number": NUMBER, "content": "Hi", "sender": None, "sms_class": "standard"}],
                webhook_url=self.base_url() + self._url("status"),
            )
        self.assertEqual(result["state"], "accepted")
        # Poll the gateway, not the database: the Odoo server thread applies the report on the test cursor.
        deadline, message = time.monotonic() + 20, {}
        while time.monotonic() < deadline and message.get("report_status") not in ("sent", "failed"):
            time.sleep(0.2)
            [message] = self._gateway_admin(f"/_admin/messages?token={token}")
        self.assertEqual((message["report_status"], message["report_state"]), ("sent", "delivered"), message)
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "sent")
        self.assertTrue(trace.sms_report_date)

    # ------------------------------------------------------------
    # Pure helpers
    # ------------------------------------------------------------

    def test_classify_inbound(self):
        for text in ("STOP", "stop", " Stop ", "STOP SMS", "stop sms please", "StopAll", "UNSUBSCRIBE", "cancel",
                     "End", "quit", "STOP.", "\tstop\n"):
            self.assertEqual(classify_inbound(text), "stop", text)
        for text in ("START", "start", " Unstop ", "UNSTOP now"):
            self.assertEqual(classify_inbound(text), "start", text)
        for text in ("", None, "   ", "Please stop", "stopping", "Hello", "STARTING", "non stop"):
            self.assertIsNone(classify_inbound(text), text)

    def test_normalize_sender_number(self):
        self.assertEqual(normalize_sender_number("+33 6 12 34 56 78"), NUMBER)
        self.assertEqual(normalize_sender_number("0033612345678"), NUMBER)
        self.assertIsNone(normalize_sender_number("0612345678"), "no country code: cannot tell")
        self.assertIsNone(normalize_sender_number("STOP"))

    def test_parse_utc_datetime(self):
        self.assertEqual(parse_utc_datetime("2024-05-01T12:00:00Z"), datetime(2024, 5, 1, 12))
        self.assertEqual(parse_utc_datetime("2024-05-01T14:00:00+02:00"), datetime(2024, 5, 1, 12))
        self.assertEqual(parse_utc_datetime("2024-05-01T12:00:00"), datetime(2024, 5, 1, 12))
        with self.assertRaises(ValueError):
            parse_utc_datetime("1 May")

    def test_odoo_iap_delivery_reports_update_traces(self):
        """Messages sent through the Odoo IAP provider get their reports on stock's /sms/status."""
        trace = self._new_trace()
        trace.sms_gateway_id = self.env["sms.gateway"].create({"name": "Odoo IAP", "provider": "odoo_iap"})
        payload = {"jsonrpc": "2.0", "method": "call", "params": {"message_statuses": [
            {"sms_status": "delivered", "uuids": [trace.sms_uuid]},
        ]}}
        response = self.url_open("/sms/status", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
        self.assertEqual(response.status_code, 200)
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "sent")
