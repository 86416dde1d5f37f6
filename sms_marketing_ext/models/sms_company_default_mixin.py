from odoo import api, models


class SmsCompanyDefaultMixin(models.AbstractModel):
    """Records of which a company has one default (``is_default``, ``company_id``): flagging one
    as default unflags the others of its company, archived ones included."""

    _name = "sms.company.default.mixin"
    _description = "One default record per company"

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("is_default"):
                self._unset_other_defaults(vals.get("company_id") or self.env.company.id)
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("is_default"):
            companies = self.company_id
            if vals.get("company_id"):
                companies = self.env["res.company"].browse(vals["company_id"])
            for company in companies:
                self._unset_other_defaults(company.id, exclude=self)
        return super().write(vals)

    def _unset_other_defaults(self, company_id, exclude=None):
        others = self.with_context(active_test=False).search(
            [("company_id", "=", company_id), ("is_default", "=", True)]
        )
        if exclude:
            others -= exclude
        if others:
            others.write({"is_default": False})
