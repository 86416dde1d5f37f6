"""Drop-in: installed into a database with stock marketers, the addon takes nothing away.

A user with only stock's *Mass Mailing / User* group keeps every SMS flow of stock (send, test,
statistics); a company without a gateway of ours keeps stock's pipeline (sms.sms through Odoo
IAP) until an administrator configures one. Stock's own suites run in scripts/test too; these
tests pin the mechanisms the addon adds for it."""

from odoo.exceptions import AccessError
from odoo.tests import Form, tagged
from odoo.tests.common import TransactionCase

from odoo.addons.mail.tests.common import mail_new_test_user
from odoo.addons.sms.tests.common import MockSMS

from .common import LocalGatewayMixin

STOCK_MARKETER_GROUPS = "base.group_user,mass_mailing.group_mass_mailing_user"


@tagged("post_install", "-at_install", "sms_dropin")
class TestSmsDropInStockMarketer(LocalGatewayMixin, TransactionCase):
    """A stock marketer (no SMS Marketing group) sends through the company's default gateway."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_local_gateway("--report-delay", "3600")
        cls._gateway_create_account("tok_dropin", 100, price=0.05)
        cls.env["sms.gateway"].search([("company_id", "=", cls.env.company.id)]).write({"is_default": False})
        cls.gateway = cls.env["sms.gateway"].create({
            "name": "Local", "provider": "jsonrpc", "base_url": cls.gateway_url, "account_token": "tok_dropin",
            "batch_size": 10, "is_default": True,
        })
        cls.stock_marketer = mail_new_test_user(
            cls.env, login="stock_marketer", groups=STOCK_MARKETER_GROUPS, name="Stella Stock", email="s@example.com",
        )
        cls.mailing_list = cls.env["mailing.list"].create({"name": "Drop-in customers"})
        cls.env["mailing.contact"].create([
            {"name": f"Customer {index}", "mobile": f"+33 6 12 34 56 {index:02d}",
             "list_ids": [(4, cls.mailing_list.id)]}
            for index in range(5)
        ])

    def _mailing(self):
        return self.env["mailing.mailing"].with_user(self.stock_marketer).create({
            "subject": "Stock flow",
            "mailing_type": "sms",
            "body_plaintext": "Hello from a stock marketer",
            "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        })

    def test_stock_marketer_sends_tests_and_reads_statistics(self):
        self.assertFalse(self.stock_marketer.has_group("sms_marketing_ext.group_sms_marketing_user"))
        mailing = self._mailing()
        self.assertEqual(mailing.sms_gateway_id, self.gateway, "the company's default gateway, no choice needed")
        # Check recipients (and the cost estimate it shows) works for them.
        audience = self.env["mailing.sms.audience"].with_user(self.stock_marketer).create({"mailing_id": mailing.id})
        self.assertEqual(audience.valid, 5)
        # The Test button.
        test = self.env["mailing.sms.test"].with_user(self.stock_marketer).create({
            "mailing_id": mailing.id, "numbers": "+33 6 99 99 99 99",
        })
        test.action_send_sms()
        received = self._gateway_admin("/_admin/messages?token=tok_dropin")
        self.assertEqual([message["number"] for message in received], ["+33699999999"])
        # Send, as stock's button does, then the cron (superuser) sends through the default gateway.
        mailing.with_user(self.stock_marketer).action_send_sms()
        self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        self.assertEqual(mailing.state, "done")
        received = self._gateway_admin("/_admin/messages?token=tok_dropin")
        self.assertEqual(len(received), 6, "5 recipients and the test")
        # Statistics as the marketer sees them.
        mailing_as_marketer = mailing.with_user(self.stock_marketer)
        mailing_as_marketer.invalidate_recordset()
        self.assertEqual(mailing_as_marketer.sms_stat_sent, 5)
        self.assertEqual(mailing_as_marketer.sent, 5)
        # The gateway's secret stays out of their reach.
        gateway = self.gateway.with_user(self.stock_marketer)
        self.assertEqual(gateway.name, "Local")
        with self.assertRaises(AccessError):
            gateway.read(["account_token"])


@tagged("post_install", "-at_install", "sms_dropin")
class TestSmsDropInStockPipeline(MockSMS, TransactionCase):
    """A company with no gateway of ours keeps stock's pipeline, as before the install."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_bare = cls.env["res.company"].create({
            "name": "Bare Company", "country_id": cls.env.ref("base.be").id,
        })
        cls.assertFalse(cls, cls.env["sms.gateway"].search([("company_id", "=", cls.company_bare.id)]))
        cls.stock_marketer = mail_new_test_user(
            cls.env, login="bare_marketer", groups=STOCK_MARKETER_GROUPS, name="Bart Bare",
            email="b@example.com", company_id=cls.company_bare.id, company_ids=[(6, 0, cls.company_bare.ids)],
        )
        cls.partners = cls.env["res.partner"].create([
            {"name": f"Bare {index}", "mobile": f"+32 470 12 34 5{index}", "company_id": cls.company_bare.id}
            for index in range(3)
        ])

    def _mailing(self, **vals):
        return self.env["mailing.mailing"].with_user(self.stock_marketer).create({
            "subject": "Bare",
            "mailing_type": "sms",
            "body_plaintext": "Stock pipeline",
            "mailing_model_id": self.env["ir.model"]._get_id("res.partner"),
            "mailing_domain": repr([("id", "in", self.partners.ids)]),
            **vals,
        })

    def test_send_goes_through_stock_sms_queue(self):
        mailing = self._mailing()
        self.assertTrue(mailing._sms_uses_stock_pipeline())
        self.assertFalse(mailing.sms_optout_required, "stock flows are not blocked by our opt-out rule")
        with self.mockSMSGateway():
            mailing.with_user(self.stock_marketer).action_send_sms()
            sms = self.env["sms.sms"].sudo().search([("mailing_id", "=", mailing.id)])
            self.assertEqual(len(sms), 3, "stock's composer created one sms.sms per partner")
            sms.send()
        self.assertEqual(len(self._sms), 3, "the three reached stock's IAP call")
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"})

    def test_our_cron_leaves_stock_mailings_to_stock_queue(self):
        mailing = self._mailing()
        mailing.with_user(self.stock_marketer).action_put_in_queue()
        self.env["mailing.mailing"]._cron_sms_send(time_budget=5)
        self.assertEqual(mailing.state, "in_queue", "our send cron does not take a stock-pipeline mailing")
        with self.mockSMSGateway():
            self.env["mailing.mailing"]._process_mass_mailing_queue()
        self.assertEqual(mailing.state, "sending", "stock's queue took it")
        self.assertEqual(self.env["sms.sms"].sudo().search_count([("mailing_id", "=", mailing.id)]), 3)

    def test_configuring_a_gateway_switches_to_ours(self):
        mailing = self._mailing()
        self.assertTrue(mailing._sms_uses_stock_pipeline())
        self.env["sms.gateway"].create({
            "name": "Bare's gateway", "provider": "jsonrpc", "base_url": "http://127.0.0.1:9",
            "account_token": "x", "company_id": self.company_bare.id,
        })
        self.assertFalse(mailing._sms_uses_stock_pipeline())
        mailing.invalidate_recordset(["sms_optout_required"])
        self.assertTrue(mailing.sms_optout_required, "the default sender cannot take STOP replies")


@tagged("post_install", "-at_install", "sms_dropin")
class TestSmsOptOutDefault(TransactionCase):
    def test_new_mailing_has_opt_out_link_when_required(self):
        form = Form(self.env["mailing.mailing"].with_context(default_mailing_type="sms"))
        self.assertTrue(form.sms_optout_required, "the demo company's gateway sender takes no replies")
        self.assertTrue(form.sms_allow_unsubscribe, "on by default where it is required")
