from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase
from odoo.tools import SQL

from ..tools import sms_links
from .common import SmsMarketingUsersMixin, SmsSenderMixin


@tagged("post_install", "-at_install", "sms_composer")
class TestMailingComposer(SmsMarketingUsersMixin, SmsSenderMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env.company.sms_short_link_base = "https://go.example.com"
        cls.sender = cls._create_sender("MyShop", is_default=True)
        cls.short_number = cls._create_sender("36180", sender_type="short_number")
        cls.mailing_list = cls.env["mailing.list"].create({"name": "Customers"})

    def _mailing(self, body, **vals):
        return (
            self.env["mailing.mailing"]
            .with_user(self.user_marketing)
            .create(
                {
                    "subject": "Spring sale",
                    "mailing_type": "sms",
                    "body_plaintext": body,
                    "contact_list_ids": [(6, 0, self.mailing_list.ids)],
                    "sms_allow_unsubscribe": True,
                    **vals,
                }
            )
        )

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
