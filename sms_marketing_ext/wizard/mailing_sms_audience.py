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
    parts = fields.Integer("SMS parts per recipient", readonly=True, help="The most parts of one recipient's SMS.")
    parts_min = fields.Integer("Fewest SMS parts", readonly=True)
    length_varies = fields.Boolean(
        "Length depends on the recipient", readonly=True,
        help="The text has placeholders: each recipient's SMS was rendered and counted.",
    )
    too_long = fields.Integer(
        "Too long once rendered", readonly=True,
        help="Recipients whose SMS would exceed the maximum number of parts: canceled at send, not in the cost.",
    )
    cost = fields.Float("Estimated cost (credits)", readonly=True, digits=(16, 2))
    balance = fields.Float("Gateway balance (credits)", readonly=True, digits=(16, 2))
    balance_known = fields.Boolean(readonly=True)
    covered = fields.Boolean("Balance covers the mailing", readonly=True)
    confirm_action = fields.Selection(
        [("put_in_queue", "Send"), ("schedule", "Schedule")],
        readonly=True,
        help="Set when this dialog warns before sending or scheduling: its button goes on with it.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        for record in records:
            record._compute_summary()
        return records

    def _compute_summary(self):
        self.ensure_one()
        summary = self.mailing_id._sms_audience_summary()
        estimate = self.mailing_id._sms_cost_estimate(summary)
        countries = self.env["res.country"].search([("code", "in", list(summary["countries"]))])
        by_code = {country.code: country for country in countries}
        self.write({
            **{key: summary[key] for key in ("total", "valid", *sms_audience.SUMMARY_KEYS.values())},
            "parts": estimate["parts"],
            "parts_min": estimate["parts_min"],
            "length_varies": self.mailing_id.sms_length_varies,
            "too_long": estimate["too_long"],
            "cost": estimate["cost"],
            "balance": estimate["balance"] or 0.0,
            "balance_known": estimate["balance"] is not None,
            "covered": estimate["covered"],
            "line_ids": [(5, 0, 0)] + [
                (0, 0, {
                    "country_code": line["country"],
                    "country_id": by_code.get(line["country"], countries.browse()).id,
                    "count": line["count"],
                    "parts": line["parts"],
                    "price": line["price"],
                    "cost": line["cost"],
                })
                for line in estimate["lines"]
            ],
        })

    def _action_open(self):
        title = {"put_in_queue": _("Send %s"), "schedule": _("Schedule %s")}.get(
            self.confirm_action, _("Recipients of %s")
        )
        return {
            "type": "ir.actions.act_window",
            "name": title % self.mailing_id.subject,
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_refresh(self):
        self._compute_summary()
        return self._action_open()

    def action_confirm(self):
        """Send or schedule anyway, although the balance does not cover the estimate."""
        self.ensure_one()
        mailing = self.mailing_id.with_context(sms_ext_cost_confirmed=True)
        if self.confirm_action == "schedule":
            return mailing.action_schedule()
        return mailing.action_put_in_queue() or {"type": "ir.actions.act_window_close"}
