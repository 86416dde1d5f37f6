from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tests.common import TransactionCase

from .common import SmsMarketingUsersMixin, SmsSenderMixin


@tagged("post_install", "-at_install", "sms_sender")
class TestSmsSender(SmsMarketingUsersMixin, SmsSenderMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()

    def _request(self, user, **vals):
        return (
            self.env["sms.sender"]
            .with_user(user)
            .create(
                {
                    "name": "MyShop",
                    "sender_type": "alphanumeric",
                    "description": "Our shop",
                    "reason": "Weekly promotions",
                    **vals,
                }
            )
        )

    def test_validation_errors_on_records(self):
        with self.assertRaisesRegex(ValidationError, "1 to 11 characters.*'MyVeryLongShop' does not qualify"):
            self._request(self.user_marketing, name="MyVeryLongShop")
        with self.assertRaisesRegex(ValidationError, "at least one letter"):
            self._request(self.user_marketing, name="2024")
        with self.assertRaisesRegex(ValidationError, "3 to 8 digits"):
            self._request(self.user_marketing, name="12", sender_type="short_number")
        with self.assertRaisesRegex(ValidationError, "valid mobile number"):
            self._request(self.user_marketing, name="+33142685300", sender_type="virtual_number")
        virtual = self._request(self.user_marketing, name="+33 6 12 34 56 78", sender_type="virtual_number")
        self.assertEqual(virtual.name, "+33612345678")
        self.assertTrue(virtual.accepts_replies)
        short = self._request(self.user_marketing, name="36 180", sender_type="short_number")
        self.assertEqual(short.name, "36180")
        self.assertTrue(short.accepts_replies)
        self.assertFalse(self._request(self.user_marketing, name="Shop").accepts_replies)

    def test_workflow_and_rights(self):
        sender = self._request(self.user_marketing)
        self.assertEqual(sender.state, "draft")
        with self.assertRaisesRegex(UserError, "justification document"):
            sender.action_submit()
        sender.write({"justification_document": self.JUSTIFICATION, "justification_filename": "kbis.pdf"})
        sender.action_submit()
        self.assertEqual(sender.state, "submitted")
        activity = sender.activity_ids
        self.assertEqual(len(activity), 1)
        self.assertTrue(activity.user_id.has_group("sms_marketing_ext.group_sms_marketing_admin"))

        # A user can neither approve nor force the state.
        with self.assertRaises(AccessError):
            sender.action_approve()
        with self.assertRaises(AccessError):
            sender.write({"state": "approved"})
        with self.assertRaisesRegex(UserError, "cannot change"):
            sender.write({"name": "OtherShop"})

        admin_sender = sender.with_user(self.user_sms_admin)
        admin_sender.action_approve()
        self.assertEqual(sender.state, "approved")
        self.assertEqual(sender.decided_by_id, self.user_sms_admin)
        self.assertFalse(sender.activity_ids, "approving closes the approval activity")
        self.env.flush_all()
        self.env.cr.precommit.run()  # mail tracking values are written at commit time
        tracked = sender.sudo().message_ids.tracking_value_ids.filtered(lambda t: t.field_id.name == "state")
        self.assertTrue(any(t.new_value_char == "Approved" for t in tracked))

        with self.assertRaisesRegex(UserError, "refusal reason"):
            admin_sender.action_refuse()
        admin_sender.refusal_reason = "The justification does not match the brand"
        admin_sender.action_refuse()
        self.assertEqual(sender.state, "refused")
        sender.action_reset_draft()
        self.assertEqual(sender.state, "draft")
        sender.name = "MyShop2"
        sender.action_submit()
        self.assertFalse(sender.refusal_reason)

    def test_submit_needs_description_and_reason(self):
        sender = self._request(self.user_marketing, sender_type="short_number", name="36180", reason=False)
        with self.assertRaisesRegex(UserError, "reason"):
            sender.action_submit()
        sender.reason = "Replies to promotions"
        sender.action_submit()  # short numbers need no justification document
        self.assertEqual(sender.state, "submitted")

    def test_suggest_from_company(self):
        self.env.company.name = "Café du Marché"
        sender = self._request(self.user_marketing, name="Tmp")
        sender.action_suggest_from_company()
        self.assertEqual(sender.name, "Cafe du")

    def test_suggest_name_without_saving(self):
        """Issue 13 §11: the form's Suggest from company asks the name without saving the sender
        (whose name may be empty), for the company on the form."""
        self.env.company.name = "Café du Marché"
        other = self.env["res.company"].create({"name": "Boulangerie Paul"})
        Sender = self.env["sms.sender"].with_user(self.user_marketing)
        self.assertEqual(Sender.sms_suggest_name(), "Cafe du")
        self.assertEqual(Sender.sms_suggest_name(self.env.company.id), "Cafe du")
        self.assertEqual(Sender.sudo().sms_suggest_name(other.id), "Boulangerie")
        self.env.company.name = "1234 5678"
        with self.assertRaisesRegex(UserError, "gives no valid alphanumeric sender"):
            Sender.sms_suggest_name()

    def test_operator_decision_is_told_in_words(self):
        """Issue 13 §11: the chatter names the operator's decision as the form does, not its raw key."""
        sender = self._create_sender("Operated", state="submitted")
        sender._sms_operator_decision("approved")
        self.assertEqual(sender.state, "approved")
        bodies = sender.message_ids.mapped("body")
        self.assertTrue(any("State set by the operator: Approved." in body for body in bodies), bodies)

    def test_single_default_per_company(self):
        first = self._create_sender("First", is_default=True)
        second = self._create_sender("Second")
        self.assertEqual(self.env["sms.sender"]._get_default_sender(), first)
        second.is_default = True
        self.assertFalse(first.is_default)
        self.assertEqual(self.env["sms.sender"]._get_default_sender(), second)
        pending = self._create_sender("Pending", state="submitted")
        with self.assertRaisesRegex(ValidationError, "Only an approved sender"):
            pending.sudo().is_default = True
        self.assertEqual(self.env["sms.sender"]._get_default_sender(), second, "the approved default stays")

    def test_portal_has_no_access(self):
        sender = self._create_sender("Shop")
        with self.assertRaises(AccessError):
            sender.with_user(self.user_portal).read(["name"])
        with self.assertRaises(AccessError):
            sender.with_user(self.user_employee).read(["name"])
        self.assertEqual(sender.with_user(self.user_marketing).name, "Shop")
        with self.assertRaises(AccessError):
            sender.with_user(self.user_marketing).unlink()
