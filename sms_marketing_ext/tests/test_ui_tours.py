import base64
import unittest
from datetime import datetime

from odoo.tests import HttpCase, tagged

from .common import LocalGatewayMixin, SmsMailingMixin, SmsMarketingUsersMixin, SmsSenderMixin

TOKEN = "tour-token"  # noqa: S105 - account of the throw-away test gateway


@tagged("post_install", "-at_install", "sms_ext_tours")
class TestUiTours(LocalGatewayMixin, SmsMarketingUsersMixin, SmsSenderMixin, SmsMailingMixin, HttpCase):
    """The web client end to end, in headless Chromium (static/tests/tours/), with the project's
    real local gateway behind the default gateway (test send, recipients check and cost estimate)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls._start_local_gateway("--report-delay", "3600")
        cls._gateway_create_account(TOKEN, 1000, price=0.05, country_prices={"FR": 0.045, "BE": 0.06, "IT": 0.055})
        cls.gateway = cls._create_sms_gateway("Tour gateway", cls.gateway_url, TOKEN, is_default=True)
        cls.sender = cls._create_sender("TourShop")
        cls.mailing_list = cls._create_sms_list("Tour list", [
            ("Tour Alice", "+33 6 12 34 56 10"),
            ("Tour Bram", "+32 470 12 34 11"),
            ("Tour Carla", "+39 347 123 4512"),
            ("Tour Nobody", "12345"),
        ])
        cls.import_list = cls.env["mailing.list"].create({"name": "Tour import list"})

    def start_tour(self, url_path, tour_name, **kwargs):
        # Odoo skips browser tests when Chromium is missing or cannot start: here that is a failure,
        # so that a run without a working browser never passes silently.
        try:
            return super().start_tour(url_path, tour_name, **kwargs)
        except unittest.SkipTest as exc:
            self.fail(f"The browser tour {tour_name} could not run (headless Chromium): {exc}")

    def test_marketing_user_writes_tests_and_schedules_a_mailing(self):
        self.start_tour("/web", "sms_ext_tour_marketing_mailing", login=self.user_marketing.login)
        mailing = self.env["mailing.mailing"].search([("subject", "=", "Tour spring sale")])
        self.assertEqual(len(mailing), 1)
        self.assertEqual(mailing.mailing_type, "sms")
        self.assertEqual(mailing.contact_list_ids, self.mailing_list)
        self.assertIn("🌸", mailing.body_plaintext)
        self.assertEqual(mailing.sms_encoding, "ucs2")
        self.assertEqual(mailing.sms_sender_id, self.sender)
        self.assertEqual(mailing.sms_gateway_id, self.gateway)
        self.assertTrue(mailing.sms_allow_unsubscribe)
        self.assertEqual(mailing.state, "in_queue")
        self.assertEqual(mailing.schedule_type, "scheduled")
        self.assertEqual(mailing.schedule_date.year, 2099)
        self.assertGreater(mailing.schedule_date, datetime.now())
        self.assertEqual(mailing.create_uid, self.user_marketing)
        received = self._gateway_admin(f"/_admin/messages?token={TOKEN}")
        self.assertEqual([message["number"] for message in received], ["+33612345678"],
                         "the test SMS reached the gateway, and nothing else")
        self.assertIn("🌸", received[0]["content"])
        self.assertEqual(received[0]["sender"], "TourShop")

    def test_sender_requested_with_a_document_then_approved(self):
        self.start_tour("/web", "sms_ext_tour_sender_request", login=self.user_marketing.login)
        sender = self.env["sms.sender"].search([("name", "=", "TourBrand")])
        self.assertEqual(len(sender), 1)
        self.assertEqual(sender.state, "submitted")
        self.assertEqual(sender.sender_type, "alphanumeric")
        self.assertEqual(sender.create_uid, self.user_marketing)
        self.assertEqual(sender.justification_filename, "tourbrand_letterhead.pdf")
        self.assertTrue(base64.b64decode(sender.justification_document).startswith(b"%PDF-1.4"))
        self.assertTrue(sender.activity_ids, "an administrator has an approval activity")

        self.start_tour("/web", "sms_ext_tour_sender_approve", login=self.user_sms_admin.login)
        self.assertEqual(sender.state, "approved")
        self.assertEqual(sender.decided_by_id, self.user_sms_admin)

    def test_csv_import_reports_bad_lines(self):
        self.start_tour("/web", "sms_ext_tour_csv_import", login=self.user_marketing.login)
        contacts = self.import_list.subscription_ids.contact_id
        self.assertEqual(sorted(contacts.mapped("phone_sanitized")),
                         ["+32470123403", "+33612345601", "+393471234502"])
        attachments = self.env["ir.attachment"].search(
            [("res_model", "=", "mailing.list"), ("res_id", "=", self.import_list.id)])
        self.assertEqual(len(attachments), 1, "the rejected lines are kept on the list")
        rejected = base64.b64decode(attachments.datas).decode()
        self.assertIn("12345", rejected)
        self.assertIn("call me maybe", rejected)

    def test_admin_reads_link_analytics(self):
        contacts = self.mailing_list.subscription_ids.contact_id.sorted("id")
        mailing = self._create_sms_mailing(
            "Sale at https://shop.example.com/sale", self.mailing_list, subject="Tour analytics mailing",
            state="done", sms_allow_unsubscribe=True,
        )
        traces = self.env["mailing.trace"].create([
            {"trace_type": "sms", "mass_mailing_id": mailing.id, "model": "mailing.contact", "res_id": contact.id,
             "trace_status": "sent", "sms_number": number, "sms_country_code": country}
            for contact, number, country in zip(
                contacts[:2], ["+33612345610", "+32470123411"], ["FR", "BE"], strict=True
            )
        ])
        link = self.env["link.tracker"].create({
            "url": "https://shop.example.com/sale", "title": "Sale", "mass_mailing_id": mailing.id,
        })
        common = {"link_id": link.id, "mass_mailing_id": mailing.id}
        self.env["link.tracker.click"].create([
            {**common, "mailing_trace_id": traces[0].id, "country_id": self.env.ref("base.fr").id, "sms_unique": True},
            {**common, "mailing_trace_id": traces[0].id, "country_id": self.env.ref("base.fr").id},
            {**common, "mailing_trace_id": traces[1].id, "country_id": self.env.ref("base.be").id, "sms_unique": True},
            {**common, "is_bot": True},
        ])
        self.start_tour("/web", "sms_ext_tour_link_analytics", login=self.user_sms_admin.login)
