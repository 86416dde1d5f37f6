import base64

from odoo.addons.mail.tests.common import mail_new_test_user


class SmsMarketingUsersMixin:
    """Users of each profile the addon cares about, created once per test class."""

    @classmethod
    def _create_sms_users(cls):
        cls.user_marketing = mail_new_test_user(
            cls.env,
            login="sms_marketing_user",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_user",
            name="Mia Marketing",
            email="mia@example.com",
        )
        cls.user_sms_admin = mail_new_test_user(
            cls.env,
            login="sms_marketing_admin",
            groups="base.group_user,sms_marketing_ext.group_sms_marketing_admin",
            name="Adam SMS Admin",
            email="adam@example.com",
        )
        cls.user_employee = mail_new_test_user(
            cls.env,
            login="sms_employee",
            groups="base.group_user",
            name="Eve Employee",
        )
        cls.user_portal = mail_new_test_user(
            cls.env,
            login="sms_portal",
            groups="base.group_portal",
            name="Paul Portal",
        )


class SmsSenderMixin:
    """Senders in each state, for tests that need one."""

    JUSTIFICATION = base64.b64encode(b"%PDF-1.4 letterhead with a signed authorisation")

    @classmethod
    def _create_sender(cls, name, sender_type="alphanumeric", state="approved", company=None, **vals):
        sender = (
            cls.env["sms.sender"]
            .sudo()
            .create(
                {
                    "name": name,
                    "sender_type": sender_type,
                    "description": f"{name} description",
                    "reason": "Promotions of the shop",
                    "justification_document": cls.JUSTIFICATION,
                    "justification_filename": "letterhead.pdf",
                    "company_id": (company or cls.env.company).id,
                    **vals,
                }
            )
        )
        if state != "draft":
            sender.action_submit()
        if state in ("approved", "refused"):
            sender.action_approve()
        if state == "refused":
            sender.refusal_reason = "Not your brand"
            sender.action_refuse()
        return sender
