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
