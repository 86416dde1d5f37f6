import uuid as uuid_lib

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase

from .common import SmsMailingMixin, SmsMarketingUsersMixin, SmsSenderMixin


@tagged("post_install", "-at_install", "sms_audience")
class TestSmsAudience(SmsMarketingUsersMixin, SmsSenderMixin, SmsMailingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env.company.country_id = cls.env.ref("base.fr")
        cls.sender = cls._create_sender("MyShop", is_default=True)
        Contact = cls.env["mailing.contact"]
        cls.list_a = cls.env["mailing.list"].create({"name": "List A"})
        cls.list_b = cls.env["mailing.list"].create({"name": "List B"})
        cls.contacts = Contact.create([
            {"name": "FR intl", "mobile": "+33 6 12 34 56 01", "list_ids": [(4, cls.list_a.id)]},
            {"name": "FR national", "mobile": "06 12 34 56 02", "list_ids": [(4, cls.list_a.id)]},
            {"name": "No number", "list_ids": [(4, cls.list_a.id)]},
            {"name": "Bad number", "mobile": "12", "list_ids": [(4, cls.list_a.id)]},
            {"name": "FR duplicate", "mobile": "+33612345601", "list_ids": [(4, cls.list_a.id)]},
            {"name": "Blacklisted", "mobile": "+33 6 12 34 56 06", "list_ids": [(4, cls.list_a.id)]},
            {"name": "Opted out", "mobile": "+33 6 12 34 56 07", "list_ids": [(4, cls.list_a.id)]},
            {"name": "IT national", "mobile": "347 123 4567", "country_id": cls.env.ref("base.it").id,
             "list_ids": [(4, cls.list_a.id)]},
            {"name": "BE intl", "mobile": "+32 470 12 34 56", "list_ids": [(4, cls.list_a.id)]},
            {"name": "Opted out of A only", "mobile": "+33 6 12 34 56 10",
             "list_ids": [(4, cls.list_a.id), (4, cls.list_b.id)]},
        ])
        cls.env["phone.blacklist"].sudo()._add(["+33612345606"])
        cls.env["mailing.subscription"].search([
            ("contact_id", "in", cls.contacts.filtered(lambda c: c.name.startswith("Opted out")).ids),
            ("list_id", "=", cls.list_a.id),
        ]).opt_out = True

    def _mailing(self, lists=None, **vals):
        vals = {"subject": "Audience", "sms_allow_unsubscribe": True, **vals}
        return self._create_sms_mailing("Hello", lists or self.list_a, user=self.user_marketing, **vals)

    def test_summary_on_list(self):
        summary = self._mailing()._sms_audience_summary()
        self.assertEqual(summary, {
            "total": 10, "valid": 4, "missing": 1, "invalid": 1, "duplicates": 1,
            "blacklisted": 1, "opted_out": 2, "capped": 0,
            "countries": {"FR": 2, "IT": 1, "BE": 1},
        })
        # Opted out of list A but subscribed to B: a mailing on both lists reaches it.
        both = self._mailing(lists=self.list_a | self.list_b)._sms_audience_summary()
        self.assertEqual((both["total"], both["valid"], both["opted_out"]), (10, 5, 1))

    def test_check_recipients_dialog(self):
        mailing = self._mailing()
        action = mailing.with_user(self.user_marketing).action_sms_check_recipients()
        audience = self.env["mailing.sms.audience"].browse(action["res_id"])
        self.assertEqual((audience.total, audience.valid, audience.blacklisted), (10, 4, 1))
        self.assertEqual(
            {line.country_id.code: line.count for line in audience.line_ids}, {"FR": 2, "IT": 1, "BE": 1}
        )

    def test_materialize_and_resend(self):
        mailing = self._mailing()
        created = mailing._sms_materialize_audience()
        self.assertEqual(created, 10)
        traces = self._sms_traces(mailing)
        outgoing = traces.filtered(lambda t: t.trace_status == "outgoing")
        self.assertEqual(
            sorted(outgoing.mapped("sms_number")), ["+32470123456", "+33612345601", "+33612345602", "+393471234567"]
        )
        self.assertEqual(sorted(outgoing.mapped("sms_country_code")), ["BE", "FR", "FR", "IT"])
        self.assertTrue(all(len(t.sms_uuid) == 32 for t in outgoing))
        self.assertEqual(len(set(outgoing.mapped("sms_uuid"))), 4)
        # Time-ordered uuids (version 7): the creation time in milliseconds, then random bits.
        self.env.cr.execute("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint")
        now_ms = self.env.cr.fetchone()[0]
        for trace in outgoing:
            uuid = uuid_lib.UUID(trace.sms_uuid)
            self.assertEqual((uuid.version, uuid.variant), (7, uuid_lib.RFC_4122), trace.sms_uuid)
            self.assertLessEqual(now_ms - int(trace.sms_uuid[:12], 16), 60_000, "the time of its creation")
        canceled = traces - outgoing
        self.assertEqual(
            sorted(canceled.mapped("failure_type")),
            sorted(["sms_number_missing", "sms_number_format", "sms_duplicate", "sms_blacklist", "sms_optout",
                    "sms_optout"]),
        )
        self.assertFalse(canceled.filtered("sms_uuid"), "excluded recipients get no uuid: they are never sent")
        # Sending again targets nobody twice; a new contact with an already targeted number is a duplicate.
        self.assertEqual(mailing._sms_materialize_audience(), 0)
        newcomer = self.env["mailing.contact"].create(
            {"name": "Late", "mobile": "+33 6 12 34 56 02", "list_ids": [(4, self.list_a.id)]}
        )
        self.assertEqual(mailing._sms_materialize_audience(), 1)
        late = self._sms_traces(mailing).filtered(lambda t: t.res_id == newcomer.id)
        self.assertEqual((late.trace_status, late.failure_type), ("cancel", "sms_duplicate"))
        self.assertEqual(len(self._sms_traces(mailing).filtered(lambda t: t.trace_status == "outgoing")), 4)

    def test_frequency_cap(self):
        earlier = self._mailing(subject="Earlier")
        self.env["mailing.trace"].create({
            "trace_type": "sms", "model": "mailing.contact", "res_id": self.contacts[8].id,
            "mass_mailing_id": earlier.id, "sms_number": "+32470123456", "trace_status": "sent",
            "sent_datetime": "2000-01-01 00:00:00",
        })
        self.env.company.sms_frequency_cap_hours = 24
        self.assertEqual(self._mailing()._sms_audience_summary()["capped"], 0, "sent long ago: not capped")
        self.env["mailing.trace"].search([("mass_mailing_id", "=", earlier.id)]).sent_datetime = (
            self.env.cr.now()
        )
        summary = self._mailing()._sms_audience_summary()
        self.assertEqual((summary["capped"], summary["valid"]), (1, 3))
        self.env.company.sms_frequency_cap_hours = 0
        self.assertEqual(self._mailing()._sms_audience_summary()["capped"], 0)

    def test_domain_on_contacts_model(self):
        Partner = self.env["res.partner"]
        partners = Partner.create([
            {"name": "Audience P1", "mobile": "+33 6 11 11 11 11"},
            {"name": "Audience P2", "phone": "0611111112"},
            {"name": "Audience P3", "mobile": "+44 7911 123456", "country_id": self.env.ref("base.uk").id},
            {"name": "Audience P4"},
            {"name": "Other", "mobile": "+33 6 11 11 11 19"},
        ])
        mailing = self._mailing(
            mailing_model_id=self.env["ir.model"]._get_id("res.partner"),
            mailing_domain=repr([("name", "ilike", "Audience P")]),
            contact_list_ids=[(5, 0, 0)],
        )
        summary = mailing._sms_audience_summary()
        self.assertEqual((summary["total"], summary["valid"], summary["missing"]), (4, 3, 1))
        self.assertEqual(summary["countries"], {"FR": 2, "GB": 1})
        mailing._sms_materialize_audience()
        self.assertEqual(
            set(self._sms_traces(mailing).filtered(lambda t: t.trace_status == "outgoing").mapped("res_id")),
            set(partners[:3].ids),
        )

    def test_model_without_sanitized_number(self):
        """Models with a phone field but no stored phone_sanitized are normalised in Python chunks."""
        Target = self.env["res.company"]
        self.assertNotIn("phone_sanitized", Target._fields)
        self.env.company.phone = "+33 6 22 22 22 22"
        mailing = self._mailing(
            mailing_model_id=self.env["ir.model"]._get_id("res.company"),
            mailing_domain=repr([("id", "=", self.env.company.id)]),
            contact_list_ids=[(5, 0, 0)],
        )
        self.assertEqual(mailing._sms_number_source()[0], "python")
        summary = mailing._sms_audience_summary()
        self.assertEqual((summary["valid"], summary["countries"]), (1, {"FR": 1}))
        mailing._sms_materialize_audience()
        self.assertEqual(self._sms_traces(mailing).sms_number, "+33622222222")

    def test_bad_domains_refused(self):
        mailing = self._mailing(
            mailing_model_id=self.env["ir.model"]._get_id("res.partner"), contact_list_ids=[(5, 0, 0)]
        )
        for domain in (
            "__import__('os').system('echo pwned')",
            "[('name', '=', 'x'",
            "[('no_such_field', '=', 1)]",
            "{'a': 1}",
            "[('name', 'no_such_operator', 'x')]",
        ):
            with self.subTest(domain=domain), self.assertRaises(ValidationError):
                mailing.mailing_domain = domain
                mailing.flush_recordset()
        # An SQL fragment in a value is only a value: harmless and matching nobody.
        mailing.mailing_domain = repr([("name", "=", "x'); DROP TABLE res_partner; --")])
        self.assertEqual(mailing._sms_audience_summary()["total"], 0)
        self.assertTrue(self.env["res.partner"].search_count([]))

    def test_ab_testing_siblings_share_numbers(self):
        campaign = self.env["utm.campaign"].create({"name": "A/B"})
        common = {"campaign_id": campaign.id, "ab_testing_enabled": True, "ab_testing_pc": 50}
        mailing_a = self._mailing(subject="A", **common)
        mailing_b = self._mailing(subject="B", **common)
        self.assertEqual(mailing_a._sms_audience_mailings(), mailing_a | mailing_b)
        mailing_a._sms_materialize_audience()
        traced_a = self._sms_traces(mailing_a)
        self.assertEqual(len(traced_a), 5, "50% of the 10 recipients")
        mailing_b._sms_materialize_audience()
        traced_b = self._sms_traces(mailing_b)
        self.assertFalse(set(traced_a.mapped("res_id")) & set(traced_b.mapped("res_id")))
        sent_numbers_a = set(traced_a.filtered("sms_uuid").mapped("sms_number"))
        sent_numbers_b = set(traced_b.filtered("sms_uuid").mapped("sms_number"))
        self.assertFalse(sent_numbers_a & sent_numbers_b, "a number is targeted once across A/B siblings")
