from datetime import timedelta

from odoo import fields
from odoo.tests import tagged
from odoo.tests.common import TransactionCase


@tagged("post_install", "-at_install", "sms_demo_data")
class TestSmsDemoData(TransactionCase):
    """The demo data (demo/, written by scripts/generate_demo_data.py) as the crons leave it: the
    demo database is reused for days, its crons run, and what the README shows must stay true."""

    def setUp(self):
        super().setUp()
        module = self.env["ir.module.module"].search([("name", "=", "sms_marketing_ext")])
        if not module.demo:
            self.skipTest("installed without demo data")
        self.mailing = self.env.ref("sms_marketing_ext.sms_demo_mailing_sent")
        self.gateway = self.env.ref("sms_marketing_ext.sms_demo_gateway_local")

    def _outcomes(self):
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", self.mailing.id)], order="id")
        return traces.mapped(lambda trace: (trace.id, trace.trace_status, trace.failure_type))

    def test_settle_cron_leaves_the_sent_demo_mailing_as_it_is(self):
        """Issue 13: the winter campaign was sent days ago, past the gateway's give-up horizon: no message
        of it is still pending (the first settle run would expire it), those that never got a report
        are already expired by the cron's rule, and the figures add up."""
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", self.mailing.id)])
        self.assertFalse(traces.filtered(lambda trace: trace.trace_status == "pending"))
        unreported = traces.filtered(lambda trace: trace.failure_type == "sms_expired" and not trace.sms_report_date)
        self.assertTrue(unreported, "the demo shows messages the settle cron gave up on")
        self.assertTrue(all("within the horizon" in (trace.failure_reason or "") for trace in unreported))
        self.assertEqual(self.mailing.sms_stat_pending, 0)
        self.assertEqual(self.mailing.sms_stat_recipients,
                         self.mailing.sms_stat_delivered + self.mailing.sms_stat_failed)
        before = self._outcomes()
        now = fields.Datetime.now()
        for later in (now, now + timedelta(days=10)):  # the day it is built, and the database reused later
            counts = self.env["sms.gateway"]._cron_sms_settle(now=later, gateways=self.gateway)
            self.assertEqual(counts, {"queried": 0, "settled": 0, "expired": 0})
        self.assertEqual(self._outcomes(), before)

    def test_demo_dates_follow_the_send(self):
        """Reports, clicks and opt-outs through the campaign's link come after its send, in the past."""
        now = fields.Datetime.now()
        sent_date = self.mailing.sent_date
        self.assertLess(sent_date, now)
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", self.mailing.id),
                                                   ("sent_datetime", "!=", False)])
        self.assertTrue(traces)
        for trace in traces:
            self.assertGreaterEqual(trace.sent_datetime, sent_date)
            self.assertLess(trace.sent_datetime, now)
            if trace.sms_report_date:
                self.assertGreater(trace.sms_report_date, trace.sent_datetime)
        clicks = self.env["link.tracker.click"].search([("mass_mailing_id", "=", self.mailing.id)])
        self.assertTrue(clicks)
        self.assertTrue(all(sent_date <= click.create_date < now for click in clicks))
