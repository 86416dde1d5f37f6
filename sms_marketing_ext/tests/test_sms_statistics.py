from odoo.tests import tagged
from odoo.tests.common import TransactionCase

from .common import SmsMailingMixin, SmsMarketingUsersMixin


@tagged("post_install", "-at_install", "sms_statistics")
class TestSmsStatistics(SmsMarketingUsersMixin, SmsMailingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.mailing = cls._create_sms_mailing("Hi", model="res.partner", subject="Stats", state="done")
        partner = cls.env["res.partner"].create({"name": "Someone"})
        outcomes = [
            ("sent", False, 0.05, True),  # delivered and clicked
            ("sent", False, 0.05, False),
            ("open", False, 0.05, True),
            ("pending", False, 0.05, False),
            ("error", "sms_not_delivered", 0.05, False),
            ("bounce", "sms_rejected", 0.05, False),
            ("error", "sms_number_format", 0.0, False),
            ("cancel", "sms_blacklist", 0.0, False),
            ("cancel", "sms_duplicate", 0.0, False),
        ]
        cls.traces = cls.env["mailing.trace"].create([{
            "trace_type": "sms", "model": "res.partner", "res_id": partner.id, "mass_mailing_id": cls.mailing.id,
            "sms_number": f"+3361234560{index}", "trace_status": status, "failure_type": failure,
            "sms_credits": credits, "sent_datetime": "2026-01-01 10:00:00" if credits else False,
            "links_click_datetime": "2026-01-01 10:05:00" if clicked else False,
        } for index, (status, failure, credits, clicked) in enumerate(outcomes)])
        Consent = cls.env["sms.consent.event"].sudo()
        for number in ("+33612345600", "+33612345601", "+33612345601"):  # the same number twice counts once
            Consent.create({"number": number, "action": "optout", "source": "link", "mailing_id": cls.mailing.id})

    def test_statistics(self):
        mailing = self.mailing.with_user(self.user_marketing)
        self.assertEqual(
            (mailing.sms_stat_recipients, mailing.sms_stat_sent, mailing.sms_stat_delivered, mailing.sms_stat_failed,
             mailing.sms_stat_excluded, mailing.sms_stat_clicked, mailing.sms_stat_optouts),
            (7, 6, 3, 3, 2, 2, 2),
        )
        self.assertAlmostEqual(mailing.sms_stat_credits, 0.30)
        # Issue 13 §6: the figures add up (recipients = delivered + failed + pending) and there is one
        # click rate, stock's (recipients who clicked, of the recipients), on the form, button and list.
        self.assertEqual(mailing.sms_stat_pending, 1)
        self.assertEqual(mailing.sms_stat_delivered + mailing.sms_stat_failed + mailing.sms_stat_pending,
                         mailing.sms_stat_recipients)
        self.assertEqual(mailing.sms_stat_click_rate, 28.57)
        self.assertEqual(mailing.sms_stat_click_rate, mailing.clicks_ratio)

    def test_buttons_and_statistics_email(self):
        action = self.mailing.action_sms_view_failures()
        failures = self.env["mailing.trace"].search(action["domain"])
        self.assertEqual(len(failures), self.mailing.sms_stat_failed, "the Failed button opens what it counts")
        self.assertEqual(len(failures), 3)
        self.assertEqual(action["context"]["group_by"], ["failure_type"])
        self.assertEqual(len(self.env["sms.consent.event"].search(self.mailing.action_sms_view_optouts()["domain"])), 3)
        self.assertEqual(len(self.env["mailing.trace"].search(self.mailing.action_sms_view_credits()["domain"])), 6)
        values = self.mailing._prepare_statistics_email_values()
        kpi = values["kpi_data"][-1]
        self.assertEqual((kpi["kpi_col1"]["value"], kpi["kpi_col2"]["value"], kpi["kpi_col3"]["value"]),
                         ("0.30", "3", "2"))

    def _stock_pipeline_mailing(self):
        """A mailing of a company without a gateway of ours, with an error and a bounce."""
        company = self.env["res.company"].create({"name": "No gateway Co"})
        other = self._create_sms_mailing("Hi", model="res.partner", subject="Other company", state="done",
                                         company_id=company.id)
        self.traces[4].copy({"mass_mailing_id": other.id})
        self.traces[5].copy({"mass_mailing_id": other.id})
        return other

    def test_stock_pipeline_keeps_stock_figures(self):
        """Without a gateway of ours the mailing is stock's: stock's figures stay stock's (its suites
        assert them), errors and bounces apart."""
        other = self._stock_pipeline_mailing()
        self.assertFalse(other.sms_uses_own_pipeline)
        self.assertEqual((other.failed, other.bounced, other.bounced_ratio, other.sms_stat_failed), (1, 1, 50.0, 2))
        self.assertTrue(other.action_view_traces_failed()["context"].get("search_default_filter_failed"))
        report = next(kpi for kpi in other._prepare_statistics_email_values()["kpi_data"] if kpi["kpi_name"] == "sms")
        self.assertEqual(report["kpi_col3"]["col_subtitle"], "BOUNCED (1)")

    def test_own_pipeline_every_figure_agrees(self):
        """Issue 13 §6: on a mailing sent through our gateway, stock's banner ("could not be delivered"),
        its Bounced button and list column, and the statistics e-mail count what our Failed counts, and
        everything adds up with pending shown."""
        if not self.mailing.sms_uses_own_pipeline:
            self._create_sms_gateway("Stats gateway", is_default=True)
            self.mailing.invalidate_recordset()
        mailing = self.mailing.with_user(self.user_marketing)
        self.assertTrue(mailing.sms_uses_own_pipeline)
        failed = mailing.sms_stat_failed
        self.assertEqual(failed, 3)
        self.assertEqual((mailing.failed, mailing.bounced), (failed, failed), "banner and Bounced = our Failed")
        self.assertEqual(mailing.bounced_ratio, round(100.0 * failed / mailing.sms_stat_recipients, 2))
        self.assertEqual(mailing.received_ratio,
                         round(100.0 * mailing.sms_stat_delivered / mailing.sms_stat_recipients, 2))
        self.assertEqual(mailing.sms_stat_delivered + failed + mailing.sms_stat_pending, mailing.sms_stat_recipients)
        for action in (mailing.action_view_traces_failed(), mailing.action_view_bounced()):
            self.assertEqual(self.env["mailing.trace"].search_count(action["domain"]), failed,
                             "the banner and the Bounced button open what they count")
        kpis = {kpi["kpi_name"]: kpi for kpi in mailing._prepare_statistics_email_values()["kpi_data"]}
        report, delivery = kpis["sms"], kpis["sms_delivery"]
        self.assertEqual(report["kpi_fullname"], "Report for 7 recipients (1 pending)")
        self.assertEqual(report["kpi_col1"], {"value": f"{mailing.received_ratio}%", "col_subtitle": "RECEIVED (3)"})
        self.assertEqual(report["kpi_col3"], {"value": f"{mailing.bounced_ratio}%", "col_subtitle": "FAILED (3)"})
        self.assertEqual(delivery["kpi_col2"]["value"], "3")
        # a mailing of a company without a gateway keeps stock's figures in the same batch
        other = self._stock_pipeline_mailing()
        both = self.mailing | other
        both.invalidate_recordset()
        self.assertEqual([(m.sms_uses_own_pipeline, m.failed, m.bounced) for m in both], [(True, 3, 3), (False, 1, 1)])
