import base64

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools import sms_phone
from ..tools.sms_consent import blacklist_csv


class PhoneBlacklist(models.Model):
    """Every blacklisting and un-blacklisting leaves a consent record (``sms.consent.event``).

    Callers say where it comes from with the context key ``sms_consent_source`` ("link", "reply",
    "import"; "manual" without it, as in the user interface), optionally ``sms_consent_note``
    and ``sms_consent_mailing_id``. ``_add``/``_remove`` record each number they are given (each
    call is a request of the person or of a user); ``create``/``write`` outside them (form, list,
    archive/unarchive) record the numbers whose state they change."""

    _inherit = "phone.blacklist"

    consent_event_ids = fields.Many2many(
        "sms.consent.event",
        compute="_compute_consent_event_ids",
        string="Consent history",
        help="Opt-outs and opt-ins of this number, from every source, the latest first.",
    )

    @api.depends("number")
    def _compute_consent_event_ids(self):
        Event = self.env["sms.consent.event"]
        events = Event.search([("number", "in", [number for number in self.mapped("number") if number])])
        for entry in self:
            entry.consent_event_ids = events.filtered(lambda event, number=entry.number: event.number == number)

    @api.model_create_multi
    def create(self, vals_list):
        if self.env.context.get("sms_consent_skip"):
            return super().create(vals_list)
        region = (self.env.user.country_id or self.env.company.country_id).code
        requested = [sms_phone.normalize(vals.get("number"), region).number or vals.get("number") for vals in vals_list]
        before = set(self.search([("number", "in", requested)]).mapped("number"))
        records = super(PhoneBlacklist, self.with_context(sms_consent_skip=True)).create(vals_list)
        records = records.with_env(self.env)
        started = records.filtered(lambda entry: entry.active and entry.number not in before)
        if started:
            self.env["sms.consent.event"]._record(started.mapped("number"), "optout", blacklist=started)
        return records

    def write(self, vals):
        if "active" not in vals or self.env.context.get("sms_consent_skip"):
            return super().write(vals)
        changed = self.filtered(lambda entry: entry.active != bool(vals["active"]))
        res = super().write(vals)
        if changed:
            self.env["sms.consent.event"]._record(
                changed.mapped("number"), "optout" if vals["active"] else "optin", blacklist=changed
            )
        return res

    def _add(self, numbers, message=None):
        records = super(PhoneBlacklist, self.with_context(sms_consent_skip=True))._add(numbers, message=message)
        records = records.with_env(self.env)
        self.env["sms.consent.event"]._record(records.mapped("number"), "optout", blacklist=records)
        return records

    def _remove(self, numbers, message=None):
        records = super(PhoneBlacklist, self.with_context(sms_consent_skip=True))._remove(numbers, message=message)
        records = records.with_env(self.env)
        self.env["sms.consent.event"]._record(records.mapped("number"), "optin", blacklist=records)
        return records

    # ------------------------------------------------------------
    # Export
    # ------------------------------------------------------------

    def action_sms_export_csv(self):
        """Download the selected entries as CSV: number, active, date and source of the number's
        latest consent record."""
        self.check_access_rights("read")
        self.check_access_rule("read")
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT b.number, b.active, e.date, e.source
                  FROM phone_blacklist b
                  LEFT JOIN LATERAL (
                        SELECT date, source FROM sms_consent_event
                         WHERE number = b.number ORDER BY date DESC, id DESC LIMIT 1
                  ) e ON TRUE
                 WHERE b.id = ANY(%s)
                 ORDER BY b.number
                """,
                self.ids,
            )
        )
        content = blacklist_csv(self.env.cr.fetchall())
        export = self.env["phone.blacklist.export"].create(
            {"data": base64.b64encode(content.encode()), "filename": "phone_blacklist.csv"}
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/phone.blacklist.export/{export.id}/data/{export.filename}?download=true",
            "target": "self",
        }
