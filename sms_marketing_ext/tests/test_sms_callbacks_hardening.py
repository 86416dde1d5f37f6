"""Callbacks attacked (issue 11, section 4): signed is not enough, they must also be right.

Every test goes through real HTTP to Odoo, as a gateway or an attacker would.
"""

import itertools
import json
import logging
import time
import uuid
from datetime import datetime, timedelta

from odoo.tests import HttpCase, tagged

from ..tools.sms_delivery import CreditLedger, SmsMessage
from ..tools.sms_gateway_api import SIGNATURE_HEADER, sign

_logger = logging.getLogger(__name__)

# Secret of the test gateway record, not a credential.
SECRET = "hardening-webhook-secret"  # noqa: S105
NUMBER = "+33612345678"
IAP_STATUS_URL = "/sms/status"


@tagged("post_install", "-at_install", "sms_callbacks")
class TestSmsCallbacksHardening(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Gateway = cls.env["sms.gateway"]
        cls.signed_gateway = Gateway.create({
            "name": "Signed gateway", "provider": "jsonrpc", "base_url": "http://127.0.0.1:9",
            "account_token": "tok_hardening", "webhook_secret": SECRET,
        })
        cls.iap_gateway = Gateway.create({"name": "Odoo IAP", "provider": "odoo_iap"})
        cls.partner = cls.env["res.partner"].create({"name": "Sam Recipient", "mobile": NUMBER})
        cls.signed_mailing = cls.env["mailing.mailing"].create({
            "subject": "Through the signed gateway", "mailing_type": "sms", "body_plaintext": "Hello",
            "sms_gateway_id": cls.signed_gateway.id,
        })
        cls._numbers = itertools.count(20000000)
        cls._number_blocks = itertools.count(10_000_000, 1_000_000)
        cls.iap_mailing = cls.env["mailing.mailing"].create({
            "subject": "Through Odoo IAP", "mailing_type": "sms", "body_plaintext": "Hello",
            "sms_gateway_id": cls.iap_gateway.id,
        })

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def _trace(self, mailing, gateway=None):
        """A pending trace of ``mailing`` (to a number of its own), sent through ``gateway`` when given
        (else unrecorded)."""
        number = f"+336{next(self._numbers):08d}"
        vals = {
            "trace_type": "sms", "model": "res.partner", "res_id": self.partner.id,
            "mass_mailing_id": mailing.id, "trace_status": "pending",
            "sms_uuid": uuid.uuid4().hex, "sms_number": number,
        }
        if gateway is not None:
            vals["sms_gateway_id"] = gateway.id
        return self.env["mailing.trace"].create(vals)

    def _bulk_traces(self, mailing, gateway, count):
        """``count`` pending traces inserted in one statement (the ORM would take minutes); their uuids."""
        uuids = [uuid.uuid4().hex for _index in range(count)]
        self.env.cr.execute(
            """
            INSERT INTO mailing_trace (trace_type, model, res_id, mass_mailing_id, trace_status, sms_uuid,
                                       sms_number, sms_gateway_id, create_date, write_date)
            SELECT 'sms', 'res.partner', %s, %s, 'pending', u, '+337' || (%s + n)::text, %s,
                   now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
              FROM unnest(%s::varchar[]) WITH ORDINALITY AS r(u, n)
            """,
            (self.partner.id, mailing.id, next(self._number_blocks), gateway.id, uuids),
        )
        return uuids

    def _iap_post(self, params):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).encode()
        return self.url_open(IAP_STATUS_URL, data=body, headers={"Content-Type": "application/json"}, timeout=120)

    def _statuses(self, uuids):
        self.env.cr.execute(
            "SELECT trace_status, count(*) FROM mailing_trace WHERE sms_uuid = ANY(%s) GROUP BY 1", (uuids,)
        )
        return dict(self.env.cr.fetchall())

    def _signed_post(self, kind, body, gateway_id=None):
        body = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}
        url = f"/sms_marketing_ext/webhook/{gateway_id or self.signed_gateway.id}/{kind}"
        return self.url_open(url, data=body, headers=headers)

    @staticmethod
    def _raw_reply(sender=NUMBER, to="36180", text="STOP"):
        return f'{{"from": "{sender}", "to": "{to}", "body": "{text}", "at": "2024-05-01T12:00:00Z"}}'.encode()

    def _reply(self, text, at, sender=NUMBER):
        return self._signed_post("inbound", {"from": sender, "to": "36180", "body": text, "at": at})

    def _blacklisted(self, number=NUMBER):
        entry = self.env["phone.blacklist"].with_context(active_test=False).search([("number", "=", number)])
        return bool(entry.active)

    def _events(self, number=NUMBER):
        return self.env["sms.consent.event"].search([("number", "=", number)], order="id")

    # ------------------------------------------------------------
    # Stock's unsigned /sms/status
    # ------------------------------------------------------------

    def test_iap_status_cannot_touch_traces_of_signed_gateways(self):
        """One unauthenticated POST moved a trace of an HMAC-signed gateway pending -> bounce."""
        victim = self._trace(self.signed_mailing, self.signed_gateway)
        unrecorded = self._trace(self.signed_mailing)  # sent before the gateway was recorded on traces
        switched = self._trace(self.iap_mailing, self.signed_gateway)  # mailing moved to IAP afterwards
        response = self._iap_post({"message_statuses": [
            {"sms_status": "sms_invalid_destination", "uuids": [victim.sms_uuid, unrecorded.sms_uuid,
                                                                switched.sms_uuid]},
        ]})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json().get("result"), "OK", "stock's answer is unchanged")
        for trace in victim | unrecorded | switched:
            trace.invalidate_recordset()
            self.assertEqual((trace.trace_status, trace.sms_report_date), ("pending", False), trace.sms_uuid)

    def test_signed_report_of_another_gateway_changes_nothing(self):
        """A gateway's secret signs reports on its own messages only."""
        other = self.signed_gateway.copy({"name": "Another signed gateway", "webhook_secret": "other-secret"})
        trace = self._trace(self.signed_mailing, self.signed_gateway)
        unrecorded = self._trace(self.signed_mailing)  # the mailing's gateway counts
        for victim in (trace, unrecorded):
            body = json.dumps({"uuid": victim.sms_uuid, "state": "rejected"}).encode()
            response = self.url_open(f"/sms_marketing_ext/webhook/{other.id}/status", data=body, headers={
                "Content-Type": "application/json", SIGNATURE_HEADER: sign("other-secret", body)})
            self.assertEqual(response.status_code, 200)
            victim.invalidate_recordset()
            self.assertEqual(victim.trace_status, "pending")
        self.assertEqual(self._signed_post("status", {"uuid": unrecorded.sms_uuid, "state": "rejected"}).status_code,
                         200)
        unrecorded.invalidate_recordset()
        self.assertEqual(unrecorded.trace_status, "bounce", "its own gateway's report applies")

    def test_iap_status_updates_traces_sent_through_odoo_iap(self):
        sent = self._trace(self.iap_mailing, self.iap_gateway)
        before_upgrade = self._trace(self.iap_mailing)  # no gateway on the trace: the mailing's counts
        bounced = self._trace(self.iap_mailing, self.iap_gateway)
        response = self._iap_post({"message_statuses": [
            {"sms_status": "delivered", "uuids": [sent.sms_uuid, before_upgrade.sms_uuid]},
            {"sms_status": "sms_invalid_destination", "uuids": [bounced.sms_uuid]},
            {"sms_status": "something_new", "uuids": [uuid.uuid4().hex]},
        ]})
        self.assertEqual(response.json().get("result"), "OK")
        (sent | before_upgrade | bounced).invalidate_recordset()
        self.assertEqual((sent.trace_status, before_upgrade.trace_status), ("sent", "sent"))
        self.assertEqual((bounced.trace_status, bounced.failure_type), ("bounce", "sms_rejected"))
        self.assertTrue(sent.sms_report_date)

    def test_send_results_record_the_gateway_on_the_trace(self):
        trace = self._trace(self.iap_mailing)
        trace.trace_status = "outgoing"
        self.env.flush_all()
        batch = [SmsMessage(trace.id, trace.sms_uuid, trace.sms_number, "FR", 1, 0, trace.res_id)]
        self.iap_mailing._sms_record_results(batch, {trace.sms_uuid: {"state": "accepted", "credits": 1.0}},
                                             self.iap_gateway, CreditLedger())
        self.assertEqual((trace.trace_status, trace.sms_gateway_id), ("pending", self.iap_gateway))

    def test_iap_status_is_set_based(self):
        """The number of SQL queries of one call does not grow with its uuids (was one UPDATE per uuid)."""
        counts = {}
        for size in (10, 1000):
            uuids = self._bulk_traces(self.iap_mailing, self.iap_gateway, size)
            self.env.flush_all()
            before = self.registry.test_cr.sql_log_count
            response = self._iap_post({"message_statuses": [{"sms_status": "delivered", "uuids": uuids}]})
            counts[size] = self.registry.test_cr.sql_log_count - before
            self.assertEqual(response.json().get("result"), "OK")
            self.assertEqual(self._statuses(uuids), {"sent": size})
        self.assertLess(counts[1000] - counts[10], 10, counts)

    def test_iap_status_two_megabytes(self):
        """The 2 MB body that held a worker 53 s: all of it applied, in one call."""
        real = self._bulk_traces(self.iap_mailing, self.iap_gateway, 5000)
        foreign = self._bulk_traces(self.signed_mailing, self.signed_gateway, 5000)
        unknown = [uuid.uuid4().hex for _index in range(48000)]
        statuses = [
            {"sms_status": "delivered", "uuids": real[:4000] + unknown[:24000] + foreign[:2500]},
            {"sms_status": "sms_not_delivered", "uuids": real[4000:] + unknown[24000:] + foreign[2500:]},
        ]
        body_size = len(json.dumps({"params": {"message_statuses": statuses}}))
        self.assertGreater(body_size, 2_000_000)
        self.env.flush_all()
        started = time.monotonic()
        response = self._iap_post({"message_statuses": statuses})
        _logger.info("POST /sms/status with %s bytes (%s uuids): %.2f s", body_size, 58000,
                     time.monotonic() - started)
        self.assertEqual(response.json().get("result"), "OK")
        self.assertEqual(self._statuses(real[:4000]), {"sent": 4000})
        self.assertEqual(self._statuses(real[4000:]), {"error": 1000})
        self.assertEqual(self._statuses(foreign), {"pending": 5000})

    def test_iap_status_caps_the_uuids_per_call(self):
        trace = self._trace(self.iap_mailing, self.iap_gateway)
        too_many = [trace.sms_uuid] + [uuid.uuid4().hex for _index in range(100_000)]
        response = self._iap_post({"message_statuses": [{"sms_status": "delivered", "uuids": too_many}]})
        self.assertEqual(response.status_code, 413)
        self.assertIn("100000", response.json()["error"]["message"])
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "pending", "nothing of a refused call is applied")

    def test_iap_status_wrong_types_never_crash(self):
        trace = self._trace(self.iap_mailing, self.iap_gateway)
        with self.assertNoLogs(level="ERROR"):
            for params in (
                {},
                {"message_statuses": "delivered"},
                {"message_statuses": [5]},
                {"message_statuses": [{"sms_status": "delivered"}]},
                {"message_statuses": [{"sms_status": 5, "uuids": [trace.sms_uuid]}]},
                {"message_statuses": [{"sms_status": "delivered", "uuids": trace.sms_uuid}]},
                {"message_statuses": [{"sms_status": "delivered", "uuids": [[trace.sms_uuid]]}]},
                {"message_statuses": {"sms_status": "delivered", "uuids": [trace.sms_uuid]}},
            ):
                response = self._iap_post(params)
                self.assertIn(response.status_code, (200, 400), params)
                self.assertIn("error", response.json(), params)
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "pending")

    # ------------------------------------------------------------
    # STOP / START ordered by the message's date
    # ------------------------------------------------------------

    def test_start_dated_before_the_latest_stop_changes_nothing(self):
        self.assertEqual(self._reply("STOP", "2024-05-01T12:05:00Z").json()["action"], "stop")
        late_start = self._reply("START", "2024-05-01T12:00:00Z")  # sent first, arrived last
        self.assertEqual(late_start.status_code, 200)
        self.assertIsNone(late_start.json()["action"])
        self.assertTrue(self._blacklisted(), "the person's latest message is STOP")
        self.assertEqual(self._events().mapped("action"), ["optout"])

        self._reply("START", "2024-05-01T12:10:00Z")
        self.assertFalse(self._blacklisted(), "a START dated after the STOP lifts it")

    def test_stop_dated_before_the_latest_start_changes_nothing(self):
        self._reply("STOP", "2024-05-01T12:00:00Z")
        self._reply("START", "2024-05-01T12:10:00Z")
        late_stop = self._reply("STOP", "2024-05-01T12:05:00Z")
        self.assertIsNone(late_stop.json()["action"])
        self.assertFalse(self._blacklisted(), "the person's latest message is START")

    def test_start_dated_before_an_opt_out_of_another_source_changes_nothing(self):
        self.env["phone.blacklist"]._add([NUMBER])  # manual opt-out, now
        self._reply("START", (datetime.utcnow() - timedelta(hours=1)).isoformat() + "Z")
        self.assertTrue(self._blacklisted())

    def test_stop_is_never_discarded_by_a_manual_removal(self):
        """A user lifting the blacklist does not make the person's own STOP, delivered late, void."""
        self.env["phone.blacklist"]._remove([NUMBER])
        self._reply("STOP", (datetime.utcnow() - timedelta(minutes=30)).isoformat() + "Z")
        self.assertTrue(self._blacklisted())

    def test_replayed_callback_is_applied_once(self):
        stop = {"from": NUMBER, "to": "36180", "body": "STOP", "at": "2024-05-01T12:00:00Z"}
        self.assertEqual(self._signed_post("inbound", stop).json()["action"], "stop")
        replay = self._signed_post("inbound", stop)
        self.assertEqual(replay.status_code, 200, "the gateway must not retry")
        self.assertIsNone(replay.json()["action"])
        self.assertEqual(len(self._events()), 1)
        entry = self.env["phone.blacklist"].search([("number", "=", NUMBER)])
        self.assertEqual(len(entry.message_ids.filtered(lambda m: "STOP" in (m.body or ""))), 1)
        # The same text at another date is another message.
        self._signed_post("inbound", dict(stop, at="2024-05-02T12:00:00Z"))
        self.assertEqual(len(self._events()), 2)

    def test_consent_record_stores_the_message_date(self):
        self._reply("STOP", "2024-05-01T14:00:00+02:00")
        event = self._events()
        self.assertEqual(event.message_date, datetime(2024, 5, 1, 12))
        self.assertNotEqual(event.date, event.message_date, "date is when Odoo recorded it")

    # ------------------------------------------------------------
    # Malformed signed bodies: 400 with a reason, never 500
    # ------------------------------------------------------------

    def test_malformed_signed_bodies_answer_400(self):
        trace = self._trace(self.signed_mailing, self.signed_gateway)
        good_report = {"uuid": trace.sms_uuid, "state": "delivered", "at": "2024-05-01T12:00:00Z"}
        good_reply = {"from": NUMBER, "to": "36180", "body": "STOP", "at": "2024-05-01T12:00:00Z"}
        nested = b'{"uuid": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        bad_dates = ("0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00",
                     "99999-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2999-01-01T00:00:00Z", "", "now", 5, [], {})
        cases = [("status", nested), ("inbound", nested.replace(b"uuid", b"from"))]
        cases += [("status", dict(good_report, at=at)) for at in bad_dates]
        cases += [("inbound", dict(good_reply, at=at)) for at in bad_dates]
        cases += [
            ("inbound", dict(good_reply, at=None)),
            # JSON escapes of lone UTF-16 surrogates: valid JSON, not storable text
            ("inbound", self._raw_reply(text="STOP \\ud800")),
            ("inbound", self._raw_reply(sender="+3361234\\udfff5678")),
            ("inbound", self._raw_reply(to="36\\ud83d180")),
            ("inbound", dict(good_reply, body="STOP\x00")),
            ("inbound", dict(good_reply, to="36180\x00")),
            ("inbound", dict(good_reply, **{"from": "+33612345678\x00"})),
            ("inbound", dict(good_reply, body=["STOP"])),
            ("inbound", dict(good_reply, to=36180)),
            ("inbound", dict(good_reply, **{"from": 33612345678})),
            ("inbound", b"\xff\xfe{}"),
            ("status", b'{"uuid": "\\u0000' + trace.sms_uuid[1:].encode() + b'", "state": "delivered"}'),
            ("status", dict(good_report, state=["delivered"])),
            ("status", dict(good_report, state={"delivered": 1})),
            ("status", dict(good_report, uuid=None)),
            ("status", b"NaN"),
        ]
        with self.assertNoLogs(level="ERROR"):
            for kind, body in cases:
                response = self._signed_post(kind, body)
                self.assertEqual(response.status_code, 400, (kind, body[:80] if isinstance(body, bytes) else body))
                answer = response.json()
                self.assertFalse(answer["ok"])
                self.assertTrue(answer["error"], answer)
        trace.invalidate_recordset()
        self.assertEqual(trace.trace_status, "pending")
        self.assertFalse(self._blacklisted())

    def test_gateway_id_out_of_range_is_refused_not_crashed(self):
        with self.assertNoLogs(level="ERROR"):
            for gateway_id in (2**31, 10**30):
                report = {"uuid": "0" * 32, "state": "delivered"}
                response = self._signed_post("status", report, gateway_id=gateway_id)
                self.assertEqual(response.status_code, 403)

    def test_stop_with_odd_characters_still_blacklists(self):
        texts = [
            "  stop!", "STOP.", "Stop 🙏", "Stop🙏", "🙏 STOP", "\u200bSTOP", "STOP\u200b", "\ufeffStop",
            "STOP\u2060", "\u00a0STOP\u00a0", "ＳＴＯＰ", "Ｓｔｏｐ ｓｍｓ", "¡STOP!", "«stop»", "“STOP”",
            "STOP\u00a0SMS", "\u3000stop", "...STOP", "Stop❤️", "sTOP\r\n", "STOP\u200bSMS", "stop\u0301",
        ]
        for index, text in enumerate(texts):
            number = f"+336123400{index:02d}"
            response = self._reply(text, "2024-05-01T12:00:00Z", sender=number)
            self.assertEqual(response.status_code, 200, text)
            self.assertEqual(response.json()["action"], "stop", repr(text))
            self.assertTrue(self._blacklisted(number), repr(text))
        for text in ("ＳＴＡＲＴ", " start!", "\u200bUnstop"):
            self.assertEqual(self._reply(text, "2024-05-01T12:30:00Z", sender="+33612340000").json()["action"],
                             "start", repr(text))
        for index, text in enumerate(("stopping", "non stop", "Please stop", "s t o p", "🛑")):
            number = f"+336123401{index:02d}"
            self.assertIsNone(self._reply(text, "2024-05-01T12:00:00Z", sender=number).json()["action"], text)
            self.assertFalse(self._blacklisted(number), text)
