from odoo import models


class PhoneBlacklistRemove(models.TransientModel):
    """Un-blacklisting from the blacklist form keeps the reason given in the consent record."""

    _inherit = "phone.blacklist.remove"

    def action_unblacklist_apply(self):
        wizard = self.with_context(sms_consent_note=self.reason or False)
        return super(PhoneBlacklistRemove, wizard).action_unblacklist_apply()
