"""A company's gateway, senders and credits are its own; only approved senders reach a gateway.

Written as an attacker would try it: direct ORM writes as non-admin users (``with_user``), the
send cron running as superuser, the test send wizard, and records changed while a mailing is half
sent. Each test drives the real local gateway and checks what it received."""

import base64

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import LocalGatewayMixin, SmsSenderMixin

SMS_USER_GROUPS = "base.group_user,sms_marketing_ext.group_sms_marketing_user"
SMS_ADMIN_GROUPS = "base.group_user,sms_marketing_ext.group_sms_marketing_admin"
STOCK_MARKETER_GROUPS = "base.group_user,mass_mailing.group_mass_mailing_user"


class SmsTwoCompaniesCase(LocalGatewayMixin, SmsSenderMixin, TransactionCase):
    """Companies A and B, each with its gateway account, default gateway and approved default
    sender; A also has a second gateway and a second approved sender. Users of company A only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_local_gateway("--report-delay", "3600")
        france = cls.env.ref("base.fr")
        cls.company_a = cls.env.company
        cls.company_a.country_id = france
        cls.company_b = cls.env["res.company"].create({"name": "Company B", "country_id": france.id})
        Gateway = cls.env["sms.gateway"]
        Gateway.search([("company_id", "=", cls.company_a.id)]).write({"is_default": False})
        cls.gateway_a = Gateway.create({
            "name": "A main", "base_url": cls.gateway_url, "account_token": "set in setUp", "batch_size": 2,
            "is_default": True, "company_id": cls.company_a.id,
        })
        cls.gateway_a2 = Gateway.create({
            "name": "A premium", "base_url": cls.gateway_url, "account_token": "set in setUp", "batch_size": 2,
            "company_id": cls.company_a.id,
        })
        cls.gateway_b = Gateway.create({
            "name": "B main", "base_url": cls.gateway_url, "account_token": "set in setUp", "batch_size": 2,
            "is_default": True, "company_id": cls.company_b.id,
        })
        cls.sender_a = cls._create_sender("ShopA", is_default=True)
        cls.sender_a2 = cls._create_sender("ShopAbis")
        cls.sender_b = cls._create_sender("ShopB", company=cls.company_b, is_default=True)
        only_a = {"company_id": cls.company_a.id, "company_ids": [(6, 0, cls.company_a.ids)]}
        cls.marketer_a = mail_new_test_user(
            cls.env, login="mc_marketer_a", groups=SMS_USER_GROUPS, name="Mia A", email="mia.a@example.com", **only_a
        )
        cls.stock_marketer = mail_new_test_user(
            cls.env, login="mc_stock_marketer", groups=STOCK_MARKETER_GROUPS, name="Stan Stock",
            email="stan@example.com", **only_a,
        )
        cls.sms_admin_a = mail_new_test_user(
            cls.env, login="mc_sms_admin_a", groups=SMS_ADMIN_GROUPS, name="Ada Admin", email="ada@example.com",
            **only_a,
        )
        cls.mailing_list = cls.env["mailing.list"].create({"name": "A customers"})
        cls.env["mailing.contact"].create([
            {"name": f"Customer {index}", "mobile": f"+33 6 12 34 57 {index:02d}",
             "list_ids": [(4, cls.mailing_list.id)]}
            for index in range(5)
        ])

    def setUp(self):
        super().setUp()
        # One account per gateway and test: what an account received is this test's alone.
        self.tokens = {}
        gateways = {"tok_mc_a": self.gateway_a, "tok_mc_a2": self.gateway_a2, "tok_mc_b": self.gateway_b}
        for key, gateway in gateways.items():
            self.tokens[key] = f"{key}_{self._testMethodName}"
            self._gateway_create_account(self.tokens[key], 1000, price=0.05)
            gateway.account_token = self.tokens[key]

    def _mailing(self, user, **vals):
        return self.env["mailing.mailing"].with_user(user).create({
            "subject": "Multi-company",
            "mailing_type": "sms",
            "body_plaintext": "Hello",
            "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
            **vals,
        })

    def _received(self, key):
        return self._gateway_admin(f"/_admin/messages?token={self.tokens[key]}")

    def _cron(self):
        self.env["mailing.mailing"]._cron_sms_send(time_budget=30)

    def _as_cron(self, mailing):
        """The mailing as the send cron sees it (superuser)."""
        return self.env["mailing.mailing"].browse(mailing.id)

    def _assert_stopped(self, mailing, text):
        """Stopped with a message on the mailing naming the cause, and an activity for its responsible."""
        mailing = self._as_cron(mailing)
        mailing.invalidate_recordset()
        self.assertEqual(mailing.state, "draft")
        bodies = " ".join(mailing.message_ids.mapped("body"))
        self.assertIn(text, bodies)
        self.assertIn(mailing.user_id, mailing.activity_ids.user_id, "its responsible is told")


@tagged("post_install", "-at_install", "sms_multicompany")
class TestSmsMultiCompany(SmsTwoCompaniesCase):
    def test_move_mailing_to_other_company_refused(self):
        """A user of A cannot move a mailing to B with B's gateway and sender and queue it."""
        mailing = self._mailing(self.marketer_a)
        with self.assertRaises(UserError):
            mailing.with_user(self.marketer_a).write({
                "company_id": self.company_b.id, "sms_gateway_id": self.gateway_b.id,
                "sms_sender_id": self.sender_b.id, "state": "in_queue",
            })
        mailing.invalidate_recordset()
        self.assertEqual((mailing.company_id, mailing.state), (self.company_a, "draft"))
        with self.assertRaises(UserError):
            self._mailing(self.marketer_a, company_id=self.company_b.id, sms_gateway_id=self.gateway_b.id,
                          sms_sender_id=self.sender_b.id)
        self._cron()
        self.assertFalse(self._received("tok_mc_b"), "nothing went out through B's account")

    def test_gateway_and_sender_of_other_company_refused(self):
        mailing = self._mailing(self.marketer_a)
        with self.assertRaises(UserError):
            mailing.with_user(self.marketer_a).write({"sms_gateway_id": self.gateway_b.id})
        with self.assertRaises(UserError):
            mailing.with_user(self.marketer_a).write({"sms_sender_id": self.sender_b.id})
        with self.assertRaises(UserError):
            self._mailing(self.marketer_a, sms_gateway_id=self.gateway_b.id)
        mailing.invalidate_recordset()
        self.assertEqual((mailing.sms_gateway_id, mailing.sms_sender_id), (self.gateway_a, self.sender_a))

    def test_other_company_records_invisible(self):
        Gateway = self.env["sms.gateway"].with_user(self.marketer_a)
        self.assertNotIn(self.gateway_b, Gateway.search([]))
        with self.assertRaises(AccessError):
            self.gateway_b.with_user(self.marketer_a).read(["name"])
        with self.assertRaises(AccessError):
            self.sender_b.with_user(self.marketer_a).read(["name"])
        mailing_b = self.env["mailing.mailing"].create({
            "subject": "B only", "mailing_type": "sms", "body_plaintext": "Hi", "company_id": self.company_b.id,
        })
        self.assertEqual(mailing_b.sms_gateway_id, self.gateway_b)
        Mailing = self.env["mailing.mailing"].with_user(self.marketer_a)
        self.assertNotIn(mailing_b, Mailing.search([("mailing_type", "=", "sms")]))
        with self.assertRaises(AccessError):
            mailing_b.with_user(self.marketer_a).write({"state": "in_queue"})

    def test_stock_marketer_only_default_gateway_and_sender(self):
        """Stock's Mass Mailing users keep stock's flow through the company's defaults; they
        cannot pick another gateway or sender, nor queue a mailing set to one."""
        stock = self.stock_marketer
        with self.assertRaises(AccessError):
            self._mailing(stock, sms_gateway_id=self.gateway_a2.id)
        with self.assertRaises(AccessError):
            self._mailing(stock, sms_sender_id=self.sender_a2.id)
        mailing = self._mailing(stock)
        self.assertEqual((mailing.sms_gateway_id, mailing.sms_sender_id), (self.gateway_a, self.sender_a))
        with self.assertRaises(AccessError):
            mailing.with_user(stock).write({"sms_gateway_id": self.gateway_a2.id})
        with self.assertRaises(AccessError):
            mailing.with_user(stock).write({"sms_sender_id": self.sender_a2.id})
        # An SMS user chose the premium gateway: the stock marketer cannot queue it, by any path.
        mailing.with_user(self.marketer_a).write({"sms_gateway_id": self.gateway_a2.id})
        with self.assertRaises(AccessError):
            mailing.with_user(stock).write({"state": "in_queue"})
        with self.assertRaises(AccessError):
            mailing.with_user(stock).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        mailing.invalidate_recordset()
        self.assertEqual(mailing.state, "draft")
        # Back to the defaults, the stock flow works.
        mailing.with_user(stock).write({"sms_gateway_id": self.gateway_a.id})
        mailing.with_user(stock).action_send_sms()
        self._cron()
        self.assertEqual(len(self._received("tok_mc_a")), 5)
        self.assertFalse(self._received("tok_mc_a2"))

    def test_cron_stops_when_author_loses_the_company(self):
        """Half sent, the author loses access to company A: the cron sends nothing more."""
        mailing = self._mailing(self.marketer_a)
        mailing.with_user(self.marketer_a).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        cron_mailing = self._as_cron(mailing)
        cron_mailing._sms_start_sending()
        self.assertTrue(cron_mailing._sms_send_batch())
        self.assertEqual(len(self._received("tok_mc_a")), 2)
        self.marketer_a.write({"company_ids": [(6, 0, self.company_b.ids)], "company_id": self.company_b.id})
        self._cron()
        self.assertEqual(len(self._received("tok_mc_a")), 2, "no batch after the change")
        self._assert_stopped(mailing, "Mia A")

    def test_cron_refuses_to_start_for_author_without_the_company(self):
        mailing = self._mailing(self.marketer_a)
        mailing.with_user(self.marketer_a).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        self.marketer_a.write({"company_ids": [(6, 0, self.company_b.ids)], "company_id": self.company_b.id})
        self._cron()
        self.assertFalse(self._received("tok_mc_a"))
        self.assertFalse(self.env["mailing.trace"].search_count([("mass_mailing_id", "=", mailing.id)]))
        self._assert_stopped(mailing, "Mia A")

    def test_cron_stops_when_gateway_moves_to_other_company(self):
        mailing = self._mailing(self.marketer_a, sms_gateway_id=self.gateway_a2.id)
        mailing.with_user(self.marketer_a).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        cron_mailing = self._as_cron(mailing)
        cron_mailing._sms_start_sending()
        self.assertTrue(cron_mailing._sms_send_batch())
        self.gateway_a2.company_id = self.company_b
        self._cron()
        self.assertEqual(len(self._received("tok_mc_a2")), 2, "no batch through B's gateway")
        self._assert_stopped(mailing, "A premium")

    def test_audience_applies_author_rules(self):
        """Check recipients, the summary and the send count only what the author may read: no
        partner of B, and no probing of B's partners by filter."""
        Partner = self.env["res.partner"]
        partner_a = Partner.create({"name": "Alice A", "mobile": "+33 6 11 11 11 11", "comment": "secret a",
                                    "company_id": self.company_a.id})
        partner_b = Partner.create({"name": "Bob B", "mobile": "+33 6 22 22 22 22", "comment": "secret b",
                                    "company_id": self.company_b.id})
        partner_model = self.env["ir.model"]._get_id("res.partner")
        probe = self._mailing(self.marketer_a, mailing_model_id=partner_model, mailing_domain=repr(
            [("id", "=", partner_b.id), ("comment", "ilike", "secret")]))
        self.assertEqual(probe.with_user(self.marketer_a)._sms_audience_summary()["total"], 0)
        mailing = self._mailing(self.marketer_a, mailing_model_id=partner_model,
                                mailing_domain=repr([("id", "in", (partner_a | partner_b).ids)]))
        action = mailing.with_user(self.marketer_a).action_sms_check_recipients()
        self.assertEqual(self.env["mailing.sms.audience"].browse(action["res_id"]).total, 1)
        # The send, materialised by the cron as superuser, applies the author's rules too.
        mailing.with_user(self.marketer_a).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        self._cron()
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(traces.mapped("res_id"), partner_a.ids)
        self.assertEqual([message["number"] for message in self._received("tok_mc_a")], ["+33611111111"])
        # A colleague cannot lend a wider view by naming another responsible: the creator's rules hold.
        admin = self.env.ref("base.user_admin")
        admin.company_ids |= self.company_b
        widened = self._mailing(self.marketer_a, mailing_model_id=partner_model, user_id=admin.id,
                                mailing_domain=repr([("id", "in", (partner_a | partner_b).ids)]))
        self.assertEqual(self._as_cron(widened)._sms_audience_summary()["total"], 1)


@tagged("post_install", "-at_install", "sms_multicompany")
class TestSmsSenderApprovalPaths(SmsTwoCompaniesCase):
    def test_test_send_refuses_unapproved_sender(self):
        for state in ("draft", "submitted", "refused"):
            with self.subTest(state=state):
                sender = self._create_sender(f"Test{state[:5]}", state=state)
                mailing = self._mailing(self.marketer_a, sms_sender_id=sender.id)
                wizard = self.env["mailing.sms.test"].with_user(self.marketer_a).create({
                    "mailing_id": mailing.id, "numbers": "+33 6 99 99 99 99",
                })
                with self.assertRaisesRegex(UserError, "not approved"):
                    wizard.action_send_sms()
        self.assertFalse(self._received("tok_mc_a"), "no test SMS under an unapproved sender")
        # An approved sender of the mailing's company is fine.
        mailing = self._mailing(self.marketer_a)
        self.env["mailing.sms.test"].with_user(self.marketer_a).create({
            "mailing_id": mailing.id, "numbers": "+33 6 99 99 99 99",
        }).action_send_sms()
        self.assertEqual([message["sender"] for message in self._received("tok_mc_a")], ["ShopA"])

    def test_sender_demoted_while_waiting_for_credit(self):
        """1,900 SMS went out under a refused sender: the cron checks before every batch."""
        self._gateway_create_account(self.tokens["tok_mc_a"], 0.05 * 2, price=0.05)
        mailing = self._mailing(self.marketer_a, sms_sender_id=self.sender_a2.id)
        mailing.with_user(self.marketer_a).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        self._cron()
        cron_mailing = self._as_cron(mailing)
        self.assertTrue(cron_mailing.sms_waiting_credit, "one batch of 2, then out of credit")
        self.assertEqual(len(self._received("tok_mc_a")), 2)
        self.sender_a2.with_user(self.sms_admin_a).write({"refusal_reason": "Brand not proven"})
        self.sender_a2.with_user(self.sms_admin_a).action_refuse()
        self._gateway_admin("/_admin/topup", {"token": self.tokens["tok_mc_a"], "credits": 100})
        self._cron()
        self.assertEqual(len(self._received("tok_mc_a")), 2, "nothing under the refused sender")
        self._assert_stopped(mailing, "ShopAbis")
        self.assertEqual(
            self.env["mailing.trace"].search_count([("mass_mailing_id", "=", mailing.id),
                                                    ("trace_status", "=", "outgoing")]),
            3, "the rest waits, untouched, for an approved sender",
        )

    def test_sender_switched_while_sending(self):
        draft = self._create_sender("Sneaky", state="draft")
        mailing = self._mailing(self.marketer_a)
        mailing.with_user(self.marketer_a).with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
        cron_mailing = self._as_cron(mailing)
        cron_mailing._sms_start_sending()
        self.assertTrue(cron_mailing._sms_send_batch())
        mailing.with_user(self.marketer_a).write({"sms_sender_id": draft.id})
        self._cron()
        self.assertEqual([message["sender"] for message in self._received("tok_mc_a")], ["ShopA", "ShopA"])
        self._assert_stopped(mailing, "Sneaky")

    def test_state_and_decision_only_through_workflow(self):
        marketer, admin = self.marketer_a, self.sms_admin_a
        request = self.env["sms.sender"].with_user(marketer).create({
            "name": "NoDoc", "description": "Shop", "reason": "Promotions",
        })
        approved = self._create_sender("Approved")
        attempts = [
            (marketer, request, {"state": "submitted"}),
            (marketer, approved, {"state": "draft"}),
            (marketer, approved, {"decided_by_id": marketer.id}),
            (marketer, approved, {"decided_on": "2020-01-01 00:00:00"}),
            (marketer, approved, {"justification_document": base64.b64encode(b"forged")}),
            (marketer, approved, {"company_id": self.company_b.id}),
            (admin, request, {"state": "approved"}),
            (admin, approved, {"state": "draft"}),
            (admin, approved, {"decided_by_id": marketer.id}),
            (admin, approved, {"justification_document": False}),
        ]
        for user, sender, vals in attempts:
            with self.subTest(user=user.login, sender=sender.name, vals=list(vals)), self.assertRaises(UserError):
                sender.with_user(user).write(vals)
        for user in (marketer, admin):
            with self.subTest(create_as=user.login), self.assertRaises(UserError):
                self.env["sms.sender"].with_user(user).create({
                    "name": "Forged", "description": "x", "reason": "y", "state": "approved",
                    "justification_document": self.JUSTIFICATION,
                })
        request.invalidate_recordset()
        approved.invalidate_recordset()
        self.assertEqual((request.state, approved.state), ("draft", "approved"))
        self.assertEqual(approved.justification_document, self.JUSTIFICATION)
        # The workflow itself still works, for the roles it is meant for.
        with self.assertRaisesRegex(UserError, "justification document"):
            request.with_user(marketer).action_submit()
        request.with_user(marketer).write({"justification_document": self.JUSTIFICATION})
        request.with_user(marketer).action_submit()
        request.with_user(admin).action_approve()
        self.assertEqual((request.state, request.decided_by_id), ("approved", admin))

    def test_only_approved_sender_is_default(self):
        draft = self._create_sender("Drafty", state="draft")
        submitted = self._create_sender("Pending", state="submitted")
        for sender in (draft, submitted):
            with self.subTest(sender=sender.name), self.assertRaises(ValidationError):
                sender.with_user(self.marketer_a).write({"is_default": True})
        with self.assertRaises(ValidationError):
            self._create_sender("NewDefault", state="draft", is_default=True)
        self.sender_a.invalidate_recordset()
        self.assertTrue(self.sender_a.is_default, "the approved default stays")
        self.assertEqual(self.env["sms.sender"]._get_default_sender(self.company_a), self.sender_a)
        self.sender_a2.with_user(self.marketer_a).write({"is_default": True})
        self.assertEqual(self.env["sms.sender"]._get_default_sender(self.company_a), self.sender_a2)
