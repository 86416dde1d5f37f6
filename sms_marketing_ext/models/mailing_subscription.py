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

    def write(self, vals):
        """Opting a contact with a phone number out of a list, or back in, is a consent event:
        "manual" from the user interface, or the source the caller puts in the context
        (``sms_consent_source``; callers that record it themselves pass ``sms_consent_skip``)."""
        if "opt_out" not in vals or self.env.context.get("sms_consent_skip"):
            return super().write(vals)
        opt_out = bool(vals["opt_out"])
        changed = self.filtered(lambda sub: bool(sub.opt_out) != opt_out and sub.contact_id.phone_sanitized)
        res = super().write(vals)
        Consent = self.env["sms.consent.event"]
        for number, subscriptions in changed.grouped(lambda sub: sub.contact_id.phone_sanitized).items():
            Consent._record([number], "optout" if opt_out else "optin", lists=subscriptions.list_id)
        return res
