import base64
import time
import unittest
import urllib.parse
from datetime import datetime

from odoo.tests import HttpCase, common, tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import LocalGatewayMixin, SmsMailingMixin, SmsMarketingUsersMixin, SmsSenderMixin
from .ovh_api_server import OvhAccount, OvhApiServer
from .prism_process import API_SPEC, PRICING_SPEC, PrismProcess

TOKEN = "tour-token"  # noqa: S105 - account of the throw-away test gateway


class UiToursCase(LocalGatewayMixin, SmsMarketingUsersMixin, SmsSenderMixin, SmsMailingMixin, HttpCase):
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


@tagged("post_install", "-at_install", "sms_ext_tours")
class TestUiTours(UiToursCase):
    """The journeys at a desktop's size (Odoo's default for tours, 1366x768)."""

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

    def test_make_gsm_compatible_on_a_new_mailing(self):
        """Issue 13 §1: the button saves the new mailing and the form stays on it, text replaced."""
        self.start_tour("/web", "sms_ext_tour_make_gsm_compatible", login=self.user_marketing.login)
        mailing = self.env["mailing.mailing"].search([("subject", "=", "Tour GSM fix")])
        self.assertEqual(len(mailing), 1)
        self.assertEqual(mailing.body_plaintext, "\"Soldes\" jusqu'\u00e0 -50 % ce week-end")
        self.assertEqual(mailing.sms_encoding, "gsm7")

    def test_marketer_without_email_saves_an_sms_mailing(self):
        """Issue 13 §8: stock requires a Reply To (hidden on SMS mailings) filled from the user's e-mail."""
        self.user_marketing.email = False
        self.start_tour("/web", "sms_ext_tour_mailing_without_email", login=self.user_marketing.login)
        mailing = self.env["mailing.mailing"].search([("subject", "=", "Tour no e-mail")])
        self.assertEqual(len(mailing), 1)
        self.assertEqual(mailing.mailing_type, "sms")
        self.assertEqual(mailing.create_uid, self.user_marketing)

    def test_admin_copies_the_webhook_secret(self):
        """Issue 13 §9: the secret the Callbacks tab says to give the gateway can be read and copied,
        by SMS administrators only."""
        self.gateway.webhook_secret = "tour-webhook-secret"  # noqa: S105 - throw-away test gateway
        self.start_tour("/web", "sms_ext_tour_webhook_secret", login=self.user_sms_admin.login)
        self.start_tour("/web", "sms_ext_tour_webhook_secret_hidden", login=self.user_marketing.login)

    def test_gateway_configured_from_scratch(self):
        """Issue 12 §6: an SMS administrator configures a JSON-RPC gateway against the real local
        gateway through the form alone, in under two minutes of the browser's time."""
        self._gateway_create_account("tour-new-token", 250, price=0.05,
                                     country_prices={"FR": 0.045, "BE": 0.06, "IT": 0.055})
        started = time.monotonic()
        self.start_tour("/web", "sms_ext_tour_gateway_setup",
                        login=self.user_sms_admin.login)
        elapsed = time.monotonic() - started
        gateway = self.env["sms.gateway"].search([("name", "=", "Tour new gateway")])
        self.assertEqual(len(gateway), 1)
        self.assertEqual((gateway.provider, gateway.base_url, gateway.sudo().account_token),
                         ("jsonrpc", self.gateway_url, "tour-new-token"))
        self.assertEqual(gateway.balance, 250)
        self.assertEqual(gateway._price_table(), {"FR": 0.045, "BE": 0.06, "IT": 0.055})
        self.assertTrue(gateway.balance_date)
        self.assertLess(elapsed, 120, "the whole journey, browser start included")

    def test_ovh_gateway_configured_from_scratch(self):
        """Issue 12 §6: an OVHcloud gateway configured through its form alone, against the local OVH
        API server (which checks OVH's request signature): Test connection, Refresh balance and
        prices (OVH's rates of the listed countries), then the poll and the sender sync."""
        account = OvhAccount("tour_ak", "tour_as_secret", "tour_ck", "sms-tr12345-1", credits=321.0)
        account.rates = {"fr": 1.0, "be": 2.5}
        account.senders["TourShop"] = {"sender": "TourShop", "status": "enable", "type": "alpha",
                                       "description": "", "comment": ""}
        server = OvhApiServer(account)
        server.start()
        self.addCleanup(server.stop)
        started = time.monotonic()
        self.start_tour("/web?" + urllib.parse.urlencode({"ovh_url": server.url}), "sms_ext_tour_ovh_setup",
                        login=self.user_sms_admin.login)
        elapsed = time.monotonic() - started
        gateway = self.env["sms.gateway"].search([("name", "=", "Tour OVH")])
        self.assertEqual(len(gateway), 1)
        self.assertEqual(
            (gateway.provider, gateway.ovh_endpoint, gateway.ovh_service_name, gateway.ovh_application_key),
            ("ovh", server.url, "sms-tr12345-1", "tour_ak"))
        self.assertEqual((gateway.sudo().ovh_application_secret, gateway.sudo().ovh_consumer_key),
                         ("tour_as_secret", "tour_ck"))
        self.assertEqual(gateway.balance, 321.0)
        self.assertEqual(gateway._price_table(), {"FR": 1.0, "BE": 2.5})
        self.assertTrue(gateway.ovh_polled_date)
        routes = {route for _method, route, _query in account.calls}
        self.assertLessEqual({"", "incoming", "blacklists", "senders", "senders/TourShop"}, routes,
                             "balance, poll and sender sync, each call signed with the credentials typed in the form")
        self.assertLess(elapsed, 120, "the whole journey, browser start included")

    def test_twilio_gateway_configured_from_scratch(self):
        """Issue 12 §6: a Twilio gateway configured through its form alone, against Twilio's published
        OpenAPI description served by Prism (requests validated): Test connection, Refresh balance and
        prices, the callback URLs to copy."""
        api, pricing = PrismProcess(API_SPEC), PrismProcess(PRICING_SPEC, errors=False)
        self.addCleanup(api.stop)
        self.addCleanup(pricing.stop)
        api.start()
        pricing.start()
        started = time.monotonic()
        self.start_tour("/web?" + urllib.parse.urlencode({"api_url": api.url, "pricing_url": pricing.url}),
                        "sms_ext_tour_twilio_setup", login=self.user_sms_admin.login)
        elapsed = time.monotonic() - started
        gateway = self.env["sms.gateway"].search([("name", "=", "Tour Twilio")])
        self.assertEqual(len(gateway), 1)
        self.assertEqual((gateway.provider, gateway.twilio_api_base, gateway.twilio_pricing_base),
                         ("twilio", api.url, pricing.url))
        self.assertEqual(gateway.sudo().twilio_auth_token, "tour-auth-token")
        self.assertEqual(gateway.balance, 0.05, "Balance.json as Twilio's description gives it")
        self.assertEqual(set(gateway._price_table()), {"FR", "BE"})
        self.assertEqual(gateway.inbound_webhook_url,
                         f"https://erp.example.com/sms_marketing_ext/twilio/{gateway.id}/inbound")
        received = api.received() + pricing.received()
        self.assertTrue(any(path.endswith("/Balance.json") for _method, path in received))
        self.assertTrue(any("/v1/Messaging/Countries/BE" in path for _method, path in received))
        self.assertGreaterEqual(api.validated() + pricing.validated(), 3, "each request passed the spec")
        self.assertLess(elapsed, 120, "the whole journey, browser start included")

    def test_counter_follows_gateway_and_sender_before_saving(self):
        """Issue 12 §3: OVH's STOP mention (added to messages of an alphanumeric sender) appears in
        the live counter as soon as the gateway or the sender of an unsaved mailing changes."""
        self.env["sms.gateway"].create({
            "name": "Tour OVH counter", "provider": "ovh", "ovh_endpoint": "http://127.0.0.1:9/1.0",
            "ovh_application_key": "ak", "ovh_application_secret": "as", "ovh_consumer_key": "ck",
            "ovh_service_name": "sms-tc12345-1",
        })
        self._create_sender("+33612000999", sender_type="virtual_number")
        self.start_tour("/web", "sms_ext_tour_counter_follows_gateway", login=self.user_marketing.login)
        self.assertFalse(self.env["mailing.mailing"].search([("subject", "=", "Tour STOP mention")]),
                         "the tour counted everything without saving")

    def test_paused_mailing_chatter_is_readable(self):
        """Issue 13 §11: pausing for credit posts a sentence; no "No -> Yes (Waiting for credit)"."""
        mailing = self.env["mailing.mailing"].create({
            "subject": "Tour paused mailing", "mailing_type": "sms", "state": "sending",
            "user_id": self.user_marketing.id,
            "body_plaintext": "Paused", "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        })
        mailing._sms_pause_for_credit(0.5, 2.0)
        self.assertTrue(mailing.sms_waiting_credit)
        self.start_tour("/web", "sms_ext_tour_paused_chatter", login=self.user_marketing.login)

    def test_send_confirmation(self):
        """Issue 13 §4: the part limit blocks before any confirmation; then one dialog says how many
        SMS, parts, credits and what the balance covers, and its Send queues the mailing."""
        common = {
            "mailing_type": "sms", "user_id": self.user_marketing.id, "sms_sender_id": self.sender.id,
            "sms_allow_unsubscribe": True, "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        }
        Mailing = self.env["mailing.mailing"]
        too_long = Mailing.create({**common, "subject": "Tour too long", "body_plaintext": "a" * 1200})
        ready = Mailing.create({**common, "subject": "Tour ready", "body_plaintext": "Spring sale!"})
        self.start_tour("/web", "sms_ext_tour_send_confirm", login=self.user_marketing.login)
        self.assertEqual(too_long.state, "draft")
        self.assertIn(ready.state, ("in_queue", "sending", "done"))

    def test_optout_footer_in_the_mailings_language(self):
        """Issue 13 §5: the footer follows the recipient's language, else the mailing's; never the
        viewer's. A French marketer looking at an English mailing counts the English footer."""
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(["mass_mailing_sms"], ["fr_FR"], overwrite=True)
        french = mail_new_test_user(
            self.env, login="sms_marketing_fr", name="Fanny Français", lang="fr_FR",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_user",
        )
        mailing = self.env["mailing.mailing"].create({
            "subject": "Tour footer", "mailing_type": "sms", "user_id": self.user_sms_admin.id,
            "body_plaintext": "Spring sale", "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        })
        self.assertIn("STOP SMS: ", mailing.sms_optout_footer_text)
        self.assertEqual(mailing.with_user(french).sms_length, mailing.sms_length, "the viewer changes nothing")
        self.assertIn("STOP SMS : ", mailing.with_context(lang="fr_FR")._sms_optout_footer_template("fr_FR"))
        self.start_tour(
            f"/web#id={mailing.id}&model=mailing.mailing&view_type=form", "sms_ext_tour_footer_language",
            login=french.login,
        )

    def test_statistics_agree(self):
        """Issue 13 §6: the banner's figures add up with pending shown, the Failed button opens what it
        counts, and the list's Clicked (%) is the form's click rate."""
        partner = self.env["res.partner"].create({"name": "Tour stats recipient"})
        mailing = self.env["mailing.mailing"].create({
            "subject": "Tour stats mailing", "mailing_type": "sms", "body_plaintext": "Hi", "state": "done",
            "user_id": self.user_marketing.id, "mailing_model_id": self.env["ir.model"]._get_id("res.partner"),
        })
        outcomes = [("sent", False, True), ("sent", False, False), ("open", False, True), ("pending", False, False),
                    ("error", "sms_not_delivered", False), ("bounce", "sms_rejected", False),
                    ("cancel", "sms_blacklist", False)]
        self.env["mailing.trace"].create([{
            "trace_type": "sms", "model": "res.partner", "res_id": partner.id, "mass_mailing_id": mailing.id,
            "sms_number": f"+3361234570{index}", "trace_status": status, "failure_type": failure,
            "sent_datetime": "2026-01-01 10:00:00" if status != "cancel" else False,
            "links_click_datetime": "2026-01-01 10:05:00" if clicked else False,
        } for index, (status, failure, clicked) in enumerate(outcomes)])
        self.assertEqual((mailing.sms_stat_recipients, mailing.sms_stat_delivered, mailing.sms_stat_failed,
                          mailing.sms_stat_pending, mailing.sms_stat_click_rate), (6, 3, 2, 1, 33.33))
        self.assertTrue(mailing.sms_uses_own_pipeline)
        self.assertEqual((mailing.failed, mailing.bounced, mailing.received_ratio), (2, 2, 50.0))
        self.start_tour("/web", "sms_ext_tour_statistics", login=self.user_marketing.login)

    def test_sender_requested_with_a_document_then_approved(self):
        self.env.company.name = "TourFlora Ltd"  # what "Suggest from company" starts from
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

    def test_marketer_reads_link_analytics(self):
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
        # Dated out of creation order (the list sorts by date, not by id): Belgium's click is the newest.
        clicks = self.env["link.tracker.click"].search([("mass_mailing_id", "=", mailing.id)], order="id")
        for click, day in zip(clicks, [2, 1, 3, 1], strict=True):
            self.env.cr.execute(
                "UPDATE link_tracker_click SET create_date = %s WHERE id = %s", (datetime(2026, 3, day, 9), click.id)
            )
        clicks.invalidate_recordset(["create_date"])
        # Issue 13 §10: a marketer (SMS Marketing / User), not only an administrator, finds it in the menu.
        self.start_tour("/web", "sms_ext_tour_link_analytics", login=self.user_marketing.login)


@tagged("post_install", "-at_install", "sms_ext_tours")
class TestUiToursMobile(UiToursCase):
    """The main journeys on a phone's screen (issue 13: 390x844, touch): Odoo's small-screen layout,
    where nothing may stick out of the screen."""

    browser_size = "390x844"
    touch_enabled = True

    def start_tour(self, url_path, tour_name, **kwargs):
        # Headless Chromium makes no window narrower than 500 px: the phone's width is emulated
        # through the DevTools protocol, in every browser the tour opens.
        width, height = (int(size) for size in self.browser_size.split("x"))

        class PhoneBrowser(common.ChromeBrowser):
            def __init__(self, *args, **kw):
                super().__init__(*args, **kw)
                self._websocket_request("Emulation.setDeviceMetricsOverride", params={
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": True,
                })

        self.patch(common, "ChromeBrowser", PhoneBrowser)
        return super().start_tour(url_path, tour_name, **kwargs)

    def test_mobile_journeys(self):
        self.env.company.name = "TourFlora Ltd"  # what "Suggest from company" starts from
        # A long address without hyphens (where lines can break): the opt-out footer must wrap, not run
        # off a phone's screen.
        self.env["ir.config_parameter"].set_param("web.base.url", "https://smsmarketing.tourflorashopexample.com")
        self.start_tour("/web", "sms_ext_tour_mobile", login=self.user_marketing.login)
        mailing = self.env["mailing.mailing"].search([("subject", "=", "Tour mobile mailing")])
        self.assertEqual(len(mailing), 1)
        self.assertTrue(mailing.sms_cost_date, "the estimate was made from the phone")
        self.assertFalse(self.env["sms.sender"].search([("name", "=", "TourFlora")]), "the new sender was discarded")
        self.assertEqual(len(self.import_list.subscription_ids), 3)
