import base64

from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, new_test_user, tagged
from odoo.tools import SQL

from ..tools.providers.ovh import STOP_MENTION, OvhClient, with_stop_mention
from .common import SmsMarketingUsersMixin, SmsSenderMixin
from .ovh_api_server import OvhAccount, OvhApiServer

APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE = "ak_test", "as_test_secret", "ck_test", "sms-ab12345-1"
NUMBERS = [f"+336200000{index:02d}" for index in range(12)]


@tagged("post_install", "-at_install", "sms_ovh")
class TestSmsOvh(SmsMarketingUsersMixin, SmsSenderMixin, TransactionCase):
    """The OVHcloud provider driven by the real ``ovh`` client against a local server that checks
    OVH's request signature (tests/ovh_api_server.py)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.account = OvhAccount(APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE, credits=500.0)
        cls.account.senders["MyShop"] = {"sender": "MyShop", "status": "enable", "type": "alpha",
                                         "description": "Shop", "comment": ""}
        cls.server = OvhApiServer(cls.account)
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.env["sms.gateway"].search([("company_id", "=", cls.env.company.id)]).write({"is_default": False})
        cls.gateway = cls.env["sms.gateway"].create({
            "name": "OVH", "provider": "ovh", "ovh_endpoint": cls.server.url, "ovh_application_key": APP_KEY,
            "ovh_application_secret": APP_SECRET, "ovh_consumer_key": CONSUMER_KEY, "ovh_service_name": SERVICE,
            "is_default": True, "batch_size": 5, "price_default": 1.0,
        })
        cls.sender = cls._create_sender("MyShop", is_default=True)
        cls.mailing_list = cls.env["mailing.list"].create({"name": "OVH customers"})
        cls.env["mailing.contact"].create([
            {"name": f"Customer {index}", "mobile": number, "list_ids": [(4, cls.mailing_list.id)]}
            for index, number in enumerate(NUMBERS)
        ])

    def setUp(self):
        super().setUp()
        with self.account.lock:
            self.account.jobs.clear()
            self.account.sender_requests.clear()

    def _mailing(self, body, sms_class="standard"):
        return self.env["mailing.mailing"].with_user(self.user_marketing).create({
            "subject": body[:20], "mailing_type": "sms", "body_plaintext": body, "sms_class": sms_class,
            "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        })

    def _run_cron_until_done(self, mailing, runs=20):
        for _run in range(runs):
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            if mailing.state == "done":
                return
            self.env.cr.execute(SQL(
                "UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s", mailing.id))
        self.fail(f"mailing still {mailing.state} after {runs} cron runs")

    def test_ovh_mailing_arrives_once_each(self):
        credits_before = self.account.credits
        flash = self._mailing("Soldes: -20% [code HIVER]", "flash")
        emoji = self._mailing("Merci 😀", "sim")
        (flash | emoji).action_put_in_queue()
        self._run_cron_until_done(flash)
        self._run_cron_until_done(emoji)
        jobs = self.account.jobs
        self.assertEqual(len(jobs), 2 * len(NUMBERS), "one job per message, none twice")
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "in", (flash | emoji).ids)])
        by_tag = {job["tag"]: job for job in jobs}
        self.assertEqual(set(by_tag), set(traces.mapped("sms_uuid")), "each job tagged with our uuid, once")
        for trace in traces:
            job = by_tag[trace.sms_uuid]
            self.assertEqual(job["receiver"], trace.sms_number)
            self.assertEqual(job["sender"], "MyShop")
            self.assertEqual(job["noStopClause"], False)
            if trace.mass_mailing_id == flash:
                self.assertEqual((job["class"], job["coding"]), ("flash", "7bit"))
            else:
                self.assertEqual((job["class"], job["coding"]), ("sim", "8bit"))
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"}, "accepted by OVH, waiting for delivery")
        self.assertEqual(self.account.credits, credits_before - 2 * len(NUMBERS))

    def test_ovh_balance_and_connection(self):
        self.account.credits = 123.5
        self.gateway.action_refresh_balance()
        self.assertEqual(self.gateway.balance, 123.5)
        action = self.gateway.action_test_connection()
        self.assertIn("123.5", action["params"]["message"])
        self.assertTrue(self.gateway.cap_balance and self.gateway.cap_sender_sync)
        self.assertFalse(self.gateway.cap_idempotent_send, "OVH jobs take no idempotency key")

    def test_ovh_wrong_credentials_clear_error(self):
        self.gateway.ovh_application_secret = "not-the-secret"  # noqa: S105
        with self.assertRaisesRegex(UserError, "OVHcloud refused the credentials of gateway OVH.*signature"):
            self.gateway.action_test_connection()
        self.gateway.ovh_application_secret = APP_SECRET
        self.gateway.ovh_consumer_key = "ck_unknown"
        with self.assertRaisesRegex(UserError, "OVHcloud refused the credentials"):
            self.gateway.action_refresh_balance()
        self.gateway.ovh_consumer_key = CONSUMER_KEY
        self.gateway.ovh_service_name = "sms-zz0-1"
        with self.assertRaisesRegex(UserError, "service name"):
            self.gateway.action_test_connection()

    def test_ovh_sender_sync_maps_states(self):
        self.account.senders.update({
            "WAITING": {"sender": "WAITING", "status": "waitingValidation", "description": "", "comment": ""},
            "NOPE": {"sender": "NOPE", "status": "refused", "description": "", "comment": "Brand not proven"},
        })
        pending = self._create_sender("NOPE", state="submitted")
        self.gateway.action_ovh_sync_senders()
        senders = self.env["sms.sender"].search([("company_id", "=", self.env.company.id)])
        states = {sender.name: sender.state for sender in senders}
        self.assertEqual(states["MyShop"], "approved")
        self.assertEqual(states["WAITING"], "submitted")
        self.assertEqual(pending.state, "refused")
        self.assertEqual(pending.refusal_reason, "Brand not proven")
        # OVH enables it later: the next sync approves it through the workflow.
        self.account.senders["WAITING"]["status"] = "enable"
        self.gateway.action_ovh_sync_senders()
        self.assertEqual(senders.filtered(lambda s: s.name == "WAITING").state, "approved")
        # A marketer still cannot set the state by a write.
        with self.assertRaises(AccessError):
            pending.with_user(self.user_marketing).write({"state": "approved"})

    def test_ovh_submit_sender_posts_to_ovh(self):
        sender = self.env["sms.sender"].with_user(self.user_marketing).create({
            "name": "NEWBRAND", "description": "Our new brand", "reason": "Promotions",
            "justification_document": base64.b64encode(b"%PDF-1.4 letterhead"),
            "justification_filename": "letterhead.pdf",
        })
        sender.action_submit()
        self.assertEqual(self.account.sender_requests, [
            {"sender": "NEWBRAND", "description": "Our new brand", "reason": "Promotions"}])
        self.assertEqual(self.account.senders["NEWBRAND"]["status"], "waitingValidation")
        self.assertEqual(sender.state, "submitted")

    def test_ovh_stop_mention_counted(self):
        self.assertEqual(with_stop_mention("Hi", True, False), "Hi" + STOP_MENTION)
        self.assertTrue(self.gateway._ovh_counts_stop_mention(self.sender))
        self.gateway.ovh_no_stop_clause = True
        self.assertFalse(self.gateway._ovh_counts_stop_mention(self.sender))
        with OvhClient(self.server.url, APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE, no_stop_clause=True) as client:
            payload = client.job_payload({"uuid": "a" * 32, "number": "+33620000000", "content": "Hi",
                                          "sender": "MyShop", "sms_class": "standard"})
        self.assertEqual((payload["noStopClause"], payload["class"], payload["tag"]), (True, "phoneDisplay", "a" * 32))

    def test_ovh_gateway_of_another_company(self):
        company_b = self.env["res.company"].create({"name": "Company B"})
        gateway_b = self.env["sms.gateway"].create({
            "name": "OVH B", "provider": "ovh", "ovh_endpoint": self.server.url, "ovh_application_key": APP_KEY,
            "ovh_application_secret": APP_SECRET, "ovh_consumer_key": CONSUMER_KEY, "ovh_service_name": SERVICE,
            "company_id": company_b.id,
        })
        admin_a = new_test_user(self.env, "ovh_admin_a", groups="base.group_user,"
                                "sms_marketing_ext.group_sms_marketing_admin", company_id=self.env.company.id)
        self.assertFalse(self.env["sms.gateway"].with_user(admin_a).search([("id", "=", gateway_b.id)]))
        with self.assertRaises(AccessError):
            gateway_b.with_user(admin_a).action_test_connection()
        with self.assertRaises(AccessError):
            gateway_b.with_user(admin_a).action_ovh_sync_senders()
