import socket
import time
from datetime import timedelta

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import SQL

from .common import LocalGatewayMixin
from .test_sms_delivery import SmsDeliveryCase


def _closed_port():
    """A loopback port nothing listens on: connections to it are refused (Odoo down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@tagged("post_install", "-at_install", "sms_delivery")
class TestSmsSettleLocalGateway(LocalGatewayMixin, SmsDeliveryCase):
    """Issue 12 §5, nothing stays pending forever: the settle cron against the real local gateway,
    whose delivery reports cannot reach Odoo."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Reports at once, given up after 7.5 s: Odoo is down longer than the gateway retries.
        cls._start_local_gateway("--report-delay", "0", "--fast-report-retries", "--delivered-ratio", "0.8",
                                 "--seed", "12")
        cls.gateway.base_url = cls.gateway_url
        cls.env["ir.config_parameter"].sudo().set_param("web.base.url", f"http://127.0.0.1:{_closed_port()}")
        cls.audience = cls._create_sms_list(
            "Two hundred", [(f"Person {index}", f"+33 6 55 00 {index // 100:02d} {index % 100:02d}")
                            for index in range(200)],
        )

    def setUp(self):
        super().setUp()
        self.token = f"tok_{self._testMethodName}"[:60]
        self._gateway_create_account(self.token, 1000, price=0.05)
        self.gateway.account_token = self.token

    def _send(self, mailing_list=None):
        mailing = self._mailing(body="Hello", contact_list_ids=[(6, 0, (mailing_list or self.audience).ids)])
        mailing.action_put_in_queue()
        self._run_cron_until_done(mailing)
        return mailing

    def _wait_reports(self, status, count, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self._gateway_admin(f"/_admin/stats?token={self.token}")
            if stats["reports"]["by_status"].get(status, 0) >= count:
                return stats
            time.sleep(0.3)
        self.fail(f"the gateway's reports did not reach {count} '{status}': {stats}")

    def _settle(self, hours_later, **kwargs):
        return self.env["sms.gateway"]._cron_sms_settle(
            time_budget=60, now=fields.Datetime.now() + timedelta(hours=hours_later), gateways=self.gateway, **kwargs
        )

    def test_reports_lost_while_odoo_down_are_settled_by_status(self):
        mailing = self._send()
        traces = mailing.mailing_trace_ids.filtered("sms_uuid")
        self.assertEqual(len(traces), 200)
        # Every report POST is refused until the gateway gives up: 200 of 200 stay pending.
        stats = self._wait_reports("failed", 200)
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"})
        credits_before = sum(traces.mapped("sms_credits"))
        self.assertAlmostEqual(credits_before, stats["credits_charged"])
        # Before the gateway's "settle after" delay, nothing is asked.
        self.assertEqual(self._settle(1)["queried"], 0)
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"})
        # After it, the status query settles every message, as its report would have.
        counts = self._settle(5)
        self.assertEqual((counts["queried"], counts["settled"], counts["expired"]), (200, 200, 0))
        at_gateway = {m["uuid"]: m for m in self._gateway_admin(f"/_admin/messages?token={self.token}&limit=500")}
        expected = {"delivered": ("sent", False), "undelivered": ("error", "sms_not_delivered"),
                    "expired": ("error", "sms_expired"), "rejected": ("bounce", "sms_rejected")}
        for trace in traces:
            self.assertEqual((trace.trace_status, trace.failure_type),
                             expected[at_gateway[trace.sms_uuid]["report_state"]], trace.sms_uuid)
            self.assertTrue(trace.sms_report_date)
        self.assertGreater(len(traces.filtered(lambda t: t.trace_status == "sent")), 100)
        # Credits are what the gateway charged, before and after; a second run changes nothing.
        self.assertAlmostEqual(sum(traces.mapped("sms_credits")), credits_before)
        states = {trace.id: (trace.trace_status, trace.failure_type) for trace in traces}
        self.assertEqual(self._settle(10), {"queried": 0, "settled": 0, "expired": 0})
        self.assertEqual({trace.id: (trace.trace_status, trace.failure_type) for trace in traces}, states)

    def test_pending_asked_again_later_then_expired(self):
        self._gateway_admin("/_admin/faults", {"report_delay": 3600})
        self.addCleanup(self._gateway_admin, "/_admin/faults", {"report_delay": 0})
        few = self._create_sms_list("Few", [(f"P{index}", f"+33 6 55 01 00 {index:02d}") for index in range(5)])
        mailing = self._send(few)
        traces = mailing.mailing_trace_ids.filtered("sms_uuid")
        self.assertEqual(len(traces), 5)
        counts = self._settle(5)
        self.assertEqual((counts["queried"], counts["settled"]), (5, 0), "the gateway answers 'pending'")
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"})
        asked = traces[0].sms_status_date
        self.assertTrue(asked)
        # Asked again only once "settle after" hours passed since the last question.
        self.assertEqual(self._settle(6)["queried"], 0)
        self.assertEqual(self._settle(9.5)["queried"], 5)
        # Past the horizon, still pending: recorded as expired, credits kept.
        charged = sum(traces.mapped("sms_credits"))
        counts = self._settle(73)
        self.assertEqual(counts["expired"], 5)
        self.assertEqual(set(traces.mapped("failure_type")), {"sms_expired"})
        self.assertEqual(set(traces.mapped("trace_status")), {"error"})
        self.assertIn("72 h", traces[0].failure_reason)
        self.assertAlmostEqual(sum(traces.mapped("sms_credits")), charged)
        # A real report arriving later still wins over the settlement.
        self.assertTrue(self.env["mailing.trace"]._sms_apply_delivery_report(traces[0].sms_uuid, "delivered",
                                                                             gateway=self.gateway))
        self.assertEqual(traces[0].trace_status, "sent")

    def test_lost_answer_unknown_to_the_gateway_is_not_charged(self):
        """A message whose send answer was lost (outcome unknown) and that the gateway says it never
        received: settled as not sent, its credits back to 0 (the mailing's credits stay exact)."""
        few = self._create_sms_list("Lost", [("L1", "+33 6 55 02 00 01"), ("L2", "+33 6 55 02 00 02")])
        mailing = self._send(few)
        traces = mailing.mailing_trace_ids.filtered("sms_uuid").sorted("id")
        self._wait_reports("failed", 2)
        # The first one's send answer was "lost": the gateway never had it (another uuid).
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_unknown = true, sms_uuid = %s WHERE id = %s", "f" * 32, traces[0].id,
        ))
        traces.invalidate_recordset()
        counts = self._settle(5)
        self.assertEqual((counts["queried"], counts["settled"]), (2, 2))
        self.assertEqual((traces[0].trace_status, traces[0].failure_type, traces[0].sms_credits, traces[0].sms_unknown),
                         ("error", "sms_server", 0.0, False))
        self.assertIn(traces[1].trace_status, ("sent", "error", "bounce"))
        self.assertTrue(traces[1].sms_credits)

    def test_gateway_down_settles_later(self):
        few = self._create_sms_list("Down", [("D1", "+33 6 55 03 00 01")])
        mailing = self._send(few)
        trace = mailing.mailing_trace_ids.filtered("sms_uuid")
        self._wait_reports("failed", 1)
        self.gateway.base_url = f"http://127.0.0.1:{_closed_port()}"
        self.assertEqual(self._settle(5)["settled"], 0)
        self.assertEqual(trace.trace_status, "pending")
        self.assertFalse(trace.sms_status_date, "not marked asked: the next run asks again")
        self.gateway.base_url = self.gateway_url
        self.assertEqual(self._settle(5)["settled"], 1)


@tagged("post_install", "-at_install", "sms_delivery")
class TestSmsSettleWithoutStatusQuery(SmsDeliveryCase):
    """Providers without a status query (Odoo IAP, Kannel): given up as expired past the horizon."""

    def _pending_trace(self, gateway, hours_ago, unknown=False, charged=0.05):
        mailing = self._mailing(body="Hello", sms_gateway_id=gateway.id)
        trace = self.env["mailing.trace"].create({
            "mass_mailing_id": mailing.id, "trace_type": "sms", "model": "mailing.contact",
            "res_id": self.mailing_list.contact_ids[0].id, "sms_number": "+33612340000",
            "trace_status": "pending",
        })
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_uuid = md5(id::text), sent_datetime = %s, sms_unknown = %s, "
            "sms_credits = %s, sms_gateway_id = %s WHERE id = %s",
            fields.Datetime.now() - timedelta(hours=hours_ago), unknown, charged, gateway.id, trace.id,
        ))
        trace.invalidate_recordset()
        return trace

    def test_expired_after_horizon_for_each_provider(self):
        kannel = self.env["sms.gateway"].create({
            "name": "Kannel", "provider": "kannel", "kannel_sendsms_url": "http://127.0.0.1:1/cgi-bin/sendsms",
            "settle_expire_hours": 24,
        })
        iap = self.env["sms.gateway"].create({"name": "IAP", "provider": "odoo_iap"})
        old_iap = self._pending_trace(iap, 80, unknown=True)
        young_iap = self._pending_trace(iap, 10)
        old_kannel = self._pending_trace(kannel, 30)
        young_kannel = self._pending_trace(kannel, 20)
        counts = self.env["sms.gateway"]._cron_sms_settle(time_budget=60, gateways=iap | kannel)
        self.assertEqual(counts["queried"], 0, "no status query on these providers")
        self.assertEqual((old_iap.trace_status, old_iap.failure_type, old_iap.sms_unknown),
                         ("error", "sms_expired", False))
        self.assertIn("answer to the send was lost", old_iap.failure_reason)
        self.assertAlmostEqual(old_iap.sms_credits, 0.05, msg="credits kept: the operator may have charged")
        self.assertEqual(young_iap.trace_status, "pending")
        self.assertEqual(counts["expired"], 2)
        self.assertFalse(self.env["mailing.trace"].search_count([("id", "in", (young_iap | young_kannel).ids),
                                                                 ("trace_status", "!=", "pending")]))
        self.assertEqual(old_kannel.failure_type, "sms_expired")
        self.assertIn("24 h", old_kannel.failure_reason)
        self.assertEqual(young_kannel.trace_status, "pending")
        # Idempotent.
        self.assertEqual(self.env["sms.gateway"]._cron_sms_settle(time_budget=60, gateways=iap | kannel)["expired"], 0)
        # The cron as it runs (every gateway): it settles the same way.
        self.env["sms.gateway"]._cron_sms_settle(time_budget=60)
        self.assertEqual(young_iap.trace_status, "pending")

    def test_settings_are_checked(self):
        with self.assertRaises(ValidationError):
            self.gateway.settle_after_hours = 0
        with self.assertRaises(ValidationError):
            self.gateway.write({"settle_after_hours": 10, "settle_expire_hours": 5})

    def test_cron_record(self):
        cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_settle")
        self.assertEqual(cron.code, "model._cron_sms_settle()")
        self.assertTrue(cron.active)
