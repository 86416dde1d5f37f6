from odoo import _, api, fields, models

from ..tools import sms_audience


class MailingSmsAudience(models.TransientModel):
    """"Check recipients": who an SMS mailing would reach if sent now, and why the others not."""

    _name = "mailing.sms.audience"
    _description = "SMS mailing recipients check"

    mailing_id = fields.Many2one("mailing.mailing", required=True, ondelete="cascade", readonly=True)
    total = fields.Integer("Recipients", readonly=True)
    valid = fields.Integer("Will receive the SMS", readonly=True)
    missing = fields.Integer("Missing number", readonly=True)
    invalid = fields.Integer("Invalid number", readonly=True)
    duplicates = fields.Integer(readonly=True)
    blacklisted = fields.Integer(readonly=True)
    opted_out = fields.Integer("Opted out", readonly=True)
    capped = fields.Integer("Frequency cap", readonly=True)
    line_ids = fields.One2many("mailing.sms.audience.line", "audience_id", readonly=True)

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        for record in records:
            record._compute_summary()
        return records

    def _compute_summary(self):
        self.ensure_one()
        summary = self.mailing_id._sms_audience_summary()
        countries = self.env["res.country"].search([("code", "in", list(summary["countries"]))])
        by_code = {country.code: country for country in countries}
        self.write({
            **{key: summary[key] for key in ("total", "valid", *sms_audience.SUMMARY_KEYS.values())},
            "line_ids": [(5, 0, 0)] + [
                (0, 0, {"country_code": code, "country_id": by_code.get(code, countries.browse()).id, "count": count})
                for code, count in sorted(summary["countries"].items(), key=lambda item: (-item[1], item[0]))
            ],
        })

    def _action_open(self):
        return {
            "type": "ir.actions.act_window",
            "name": _("Recipients of %s", self.mailing_id.subject),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_refresh(self):
        self._compute_summary()
        return self._action_open()
