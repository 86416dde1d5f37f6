from odoo import models
from odoo.tools import SQL


class MailingSubscription(models.Model):
    _inherit = "mailing.subscription"

    def init(self):
        res = super().init()
        # SMS audiences on mailing lists select subscriptions by list; stock only indexes
        # (contact_id, list_id), so a list of a million contacts was a sequential scan.
        self.env.cr.execute(SQL(
            "CREATE INDEX IF NOT EXISTS mailing_subscription_sms_ext_list_idx "
            "ON mailing_subscription (list_id, contact_id)"
        ))
        return res
