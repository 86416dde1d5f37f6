from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from ..tools.sms_gateway_api import COUNTRY_CODE_RE


class SmsGatewayPrice(models.Model):
    """Credits a gateway charges per SMS part for one destination country, as its price list says."""

    _name = "sms.gateway.price"
    _description = "SMS Gateway Country Price"
    _order = "gateway_id, country_code"
    _rec_name = "country_code"

    gateway_id = fields.Many2one("sms.gateway", required=True, ondelete="cascade", index=True)
    country_code = fields.Char(
        "Country code", size=2, required=True, help="ISO 3166 alpha-2 code of the destination country."
    )
    country_id = fields.Many2one(
        "res.country", compute="_compute_country_id", store=True, readonly=True
    )
    price = fields.Float("Credits per part", digits=(16, 4), required=True)

    _sql_constraints = [
        ("gateway_country_uniq", "unique(gateway_id, country_code)", "A gateway has one price per country."),
    ]

    @api.depends("country_code")
    def _compute_country_id(self):
        codes = {code for code in self.mapped("country_code") if code}
        countries = self.env["res.country"].search([("code", "in", list(codes))]) if codes else self.env["res.country"]
        by_code = {country.code: country for country in countries}
        for line in self:
            line.country_id = by_code.get(line.country_code, False)

    @api.constrains("country_code")
    def _check_country_code(self):
        for line in self:
            if not COUNTRY_CODE_RE.match(line.country_code or "") or line.country_code != line.country_code.upper():
                raise ValidationError(
                    _("A country code has 2 upper-case letters (such as FR): '%s' is not one.", line.country_code)
                )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("country_code"):
                vals["country_code"] = vals["country_code"].strip().upper()
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("country_code"):
            vals = dict(vals, country_code=vals["country_code"].strip().upper())
        return super().write(vals)
