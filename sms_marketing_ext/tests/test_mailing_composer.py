from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase
from odoo.tools import SQL

from ..tools import sms_links
from .common import SHORT_BASE, SmsMailingMixin, SmsMarketingUsersMixin, SmsSenderMixin


@tagged("post_install", "-at_install", "sms_composer")
class TestMailingComposer(SmsMarketingUsersMixin, SmsSenderMixin, SmsMailingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env.company.sms_short_link_base = SHORT_BASE
        cls.sender = cls._create_sender("MyShop", is_default=True)
        cls.short_number = cls._create_sender("36180", sender_type="short_number")
        cls.mailing_list = cls.env["mailing.list"].create({"name": "Customers"})

    def _mailing(self, body, **vals):
        vals = {"subject": "Spring sale", "sms_allow_unsubscribe": True, **vals}
        return self._create_sms_mailing(body, self.mailing_list, user=self.user_marketing, **vals)

    def test_defaults(self):
        mailing = self._mailing("Hi")
        self.assertEqual(mailing.sms_sender_id, self.sender, "the company's default approved sender")
        self.assertEqual(mailing.sms_class, "standard")
        self.assertEqual(mailing.company_id, self.env.company)
        self.assertTrue(mailing.sms_optout_required, "an alphanumeric sender receives no STOP replies")
        mailing.sms_sender_id = self.short_number
        self.assertFalse(mailing.sms_optout_required)

    def test_counts_on_body_as_sent(self):
        mailing = self._mailing("Hello", sms_allow_unsubscribe=False)
        self.assertEqual(
            (mailing.sms_encoding, mailing.sms_length, mailing.sms_segment_count, mailing.sms_non_gsm_chars),
            ("gsm7", 5, 1, False),
        )
        # Links are counted in their tracked short form, whatever their length.
        mailing.body_plaintext = "Sale: https://www.example.com/a/very/long/path?utm=1,2#top now"
        context = mailing.sms_counter_context()
        self.assertTrue(context["link"].startswith("https://go.example.com/r/"))
        self.assertEqual(len(context["link"].rsplit("/", 1)[1]), sms_links.LINK_TOKEN_LENGTH)
        self.assertEqual(mailing.sms_length, len("Sale: ") + len(context["link"]) + len(" now"))
        # The opt-out footer is counted when it is on.
        mailing.sms_allow_unsubscribe = True
        self.assertEqual(mailing.sms_length, len("Sale: ") + len(context["link"]) + len(" now")
                         + len(context["optout_footer"]))
        self.assertIn("https://go.example.com/sms/o/", context["optout_footer"])
        # An emoji switches to Unicode and is named.
        mailing.body_plaintext = "Hello 😀"
        self.assertEqual(mailing.sms_encoding, "ucs2")
        self.assertEqual(mailing.sms_non_gsm_chars, "😀")
        self.assertEqual(mailing.sms_length, len("Hello ") + 2 + len(context["optout_footer"]))

    def test_make_gsm_compatible(self):
        mailing = self._mailing("“Soldes” jusqu’à –50 %… ", sms_allow_unsubscribe=False)
        self.assertEqual(mailing.sms_encoding, "ucs2")
        action = mailing.action_sms_make_gsm_compatible()
        self.assertEqual(mailing.body_plaintext, "\"Soldes\" jusqu'à -50 %... ")
        self.assertEqual(mailing.sms_encoding, "gsm7")
        self.assertIn("Replaced", action["params"]["message"])
        self.assertEqual(action["params"]["type"], "success")
        mailing.body_plaintext = "Hi 😀"
        action = mailing.action_sms_make_gsm_compatible()
        self.assertEqual(mailing.body_plaintext, "Hi 😀")
        self.assertIn("Still Unicode", action["params"]["message"])
        # Invisible characters are replaced too and named in words, not shown as empty boxes; the form
        # reloads the (just saved) mailing instead of restoring a blank new one.
        mailing.body_plaintext = "Sale\tnow:\u00a0-20%\u200b"
        action = mailing.action_sms_make_gsm_compatible()
        self.assertEqual(mailing.body_plaintext, "Sale now: -20%")
        for label in ("tab (U+0009)", "non-breaking space (U+00A0)", "zero-width space (U+200B)"):
            self.assertIn(label, action["params"]["message"])
        self.assertEqual(action["params"]["next"], {"type": "ir.actions.act_window_close"})

    def test_optout_footer_language(self):
        """Issue 13 §5: each recipient's footer in their language, else the mailing's (its responsible's)."""
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(["mass_mailing_sms"], ["fr_FR"], overwrite=True)
        french, unknown = self.env["res.partner"].create([
            {"name": "Amélie", "mobile": "+33612345601", "lang": "fr_FR"},
            {"name": "Nobody", "mobile": "+33612345602", "lang": False},
        ])
        mailing = self._mailing(
            "Spring sale", mailing_model_id=self.env["ir.model"]._get_id("res.partner"),
            mailing_domain=f"[('id', 'in', {[french.id, unknown.id]})]", contact_list_ids=[(5, 0, 0)],
        )
        bodies = mailing.sudo()._sms_render_bodies([(1, french.id), (2, unknown.id)])
        self.assertIn("\nSTOP SMS : ", bodies[1])
        self.assertIn("\nSTOP SMS: ", bodies[2], "no language: the mailing's (its responsible's, English)")
        # The viewer's language changes nothing: the counter counts the mailing's footer.
        self.assertEqual(mailing.with_context(lang="fr_FR").sms_length, mailing.sms_length)
        self.assertEqual(mailing.with_context(lang="fr_FR").sms_optout_footer_text[:10], "STOP SMS: ")

    def test_max_segments(self):
        mailing = self._mailing("a" * 153 * 6)
        self.assertGreater(mailing.sms_segment_count, 6, "with the opt-out footer, 6 full parts overflow")
        with self.assertRaisesRegex(UserError, "maximum of 6"):
            mailing.action_put_in_queue()
        with self.assertRaisesRegex(UserError, "maximum of 6"):
            mailing.action_schedule()
        self.env.company.sms_max_segments = 10
        mailing.action_put_in_queue()
        self.assertEqual(mailing.state, "in_queue")

    def test_sender_must_be_approved(self):
        pending = self._create_sender("Pending", state="submitted")
        mailing = self._mailing("Hi", sms_sender_id=pending.id)
        with self.assertRaisesRegex(UserError, "not approved"):
            mailing.action_put_in_queue()
        with self.assertRaisesRegex(UserError, "not approved"):
            mailing.action_send_mail()
        pending.with_user(self.user_sms_admin).action_approve()
        mailing.action_put_in_queue()
        self.assertEqual(mailing.state, "in_queue")

    def test_optout_required_without_replies(self):
        mailing = self._mailing("Hi", sms_allow_unsubscribe=False)
        with self.assertRaisesRegex(UserError, "cannot reply STOP"):
            mailing.action_put_in_queue()
        mailing.sms_sender_id = self.short_number
        mailing.action_put_in_queue()
        self.assertEqual(mailing.state, "in_queue")

    def test_sender_of_another_company(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        foreign = self._create_sender("Foreign", company=other_company)
        mailing = self._mailing("Hi")
        with self.assertRaisesRegex(UserError, "Incompatible companies"):
            mailing.sudo().sms_sender_id = foreign
        # Data written behind the ORM's back (SQL, an old import) is caught before sending.
        self.env.cr.execute(SQL("UPDATE mailing_mailing SET sms_sender_id = %s WHERE id = %s", foreign.id, mailing.id))
        mailing.invalidate_recordset()
        with self.assertRaisesRegex(UserError, "another company"):
            mailing.action_put_in_queue()
