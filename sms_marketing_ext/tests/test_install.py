from odoo.exceptions import AccessError
from odoo.modules.migration import load_script
from odoo.tests import tagged
from odoo.tests.common import TransactionCase
from odoo.tools.safe_eval import safe_eval

from .common import SmsMarketingUsersMixin


@tagged("post_install", "-at_install")
class TestInstall(SmsMarketingUsersMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()

    def test_groups_hierarchy(self):
        user_group = self.env.ref("sms_marketing_ext.group_sms_marketing_user")
        admin_group = self.env.ref("sms_marketing_ext.group_sms_marketing_admin")
        mass_mailing_user = self.env.ref("mass_mailing.group_mass_mailing_user")
        self.assertIn(user_group, admin_group.implied_ids)
        self.assertIn(mass_mailing_user, user_group.implied_ids)
        self.assertTrue(self.user_sms_admin.has_group("sms_marketing_ext.group_sms_marketing_user"))
        self.assertTrue(self.user_marketing.has_group("mass_mailing.group_mass_mailing_user"))
        self.assertFalse(self.user_marketing.has_group("sms_marketing_ext.group_sms_marketing_admin"))
        self.assertTrue(self.env.ref("base.user_admin").has_group("sms_marketing_ext.group_sms_marketing_admin"))

    def test_marketing_user_opens_sms_mailings(self):
        # The stock "SMS Marketing" action is readable by a marketing user and lists its mailings.
        action = self.env["ir.actions.act_window"].with_user(self.user_marketing)._for_xml_id(
            "mass_mailing_sms.mailing_mailing_action_sms"
        )
        Mailing = self.env["mailing.mailing"].with_user(self.user_marketing)
        mailing = Mailing.create({"subject": "Spring sale", "mailing_type": "sms", "body_plaintext": "Hi"})
        self.assertIn(mailing, Mailing.search(safe_eval(action.get("domain") or "[]")))
        menu = self.env.ref("mass_mailing_sms.mass_mailing_sms_menu_root")
        visible = self.env["ir.ui.menu"].with_user(self.user_marketing)._visible_menu_ids()
        self.assertIn(menu.id, visible)

    def test_portal_and_employee_denied(self):
        for user in (self.user_portal, self.user_employee):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.env["mailing.mailing"].with_user(user).search([("mailing_type", "=", "sms")])
        # Portal users cannot even read the menu table; employees see no SMS Marketing app.
        with self.assertRaises(AccessError):
            self.env["ir.ui.menu"].with_user(self.user_portal).search([])
        menu = self.env.ref("mass_mailing_sms.mass_mailing_sms_menu_root")
        visible = self.env["ir.ui.menu"].with_user(self.user_employee)._visible_menu_ids()
        self.assertNotIn(menu.id, visible)

    def test_send_cron_code_updated_on_upgrade(self):
        """The send cron's record is noupdate: the 17.0.1.0.1 migration moves databases installed
        before to the renamed method (_sms_cron_send -> _cron_sms_send)."""
        cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_send")
        self.assertEqual(cron.code.strip(), "model._cron_sms_send()")
        self.assertTrue(callable(getattr(self.env["mailing.mailing"], "_cron_sms_send", None)))
        cron.code = "model._sms_cron_send()"  # as a database installed before has it
        script = load_script("sms_marketing_ext/migrations/17.0.1.0.1/post-migration.py", "sms_ext_post_migration")
        script.migrate(self.env.cr, "17.0.1.0.0")
        cron.invalidate_recordset(["code"])
        self.assertEqual(cron.code, "model._cron_sms_send()")
