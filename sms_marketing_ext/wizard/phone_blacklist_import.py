import base64
import binascii

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import sms_consent, sms_phone
from ..tools.sms_number_file import NumberFileError


class PhoneBlacklistImport(models.TransientModel):
    """Blacklist the numbers of a CSV file: a number column and, optionally, a reason column.
    Numbers are normalised to E.164 (those without country code in the default country); each
    blacklisting leaves a consent record of source "import" with the line's reason."""

    _name = "phone.blacklist.import"
    _inherit = ["sms.number.file.import"]
    _description = "Import blacklisted phone numbers"

    state = fields.Selection([("upload", "Upload"), ("done", "Done")], default="upload", required=True)
    file_data = fields.Binary("CSV file", required=True)
    file_name = fields.Char()
    country_id = fields.Many2one(
        "res.country",
        "Default country",
        default=lambda self: self.env.company.country_id,
        help="The country of numbers written without their country code (+...).",
    )
    added_count = fields.Integer("Blacklisted", readonly=True)
    existing_count = fields.Integer("Already blacklisted", readonly=True)
    rejected_count = fields.Integer("Rejected lines", readonly=True)
    line_ids = fields.One2many("phone.blacklist.import.line", "import_id", "Rejected", readonly=True)

    def _rejection_reason(self, code, first_line):
        if code == sms_consent.DUPLICATE:
            return _("Same number as line %s", first_line)
        if code == sms_phone.MISSING:
            return _("No number")
        if code == sms_phone.NO_COUNTRY:
            return _("No country code (+...) and no default country")
        if code in (sms_phone.NOT_A_NUMBER, sms_phone.UNKNOWN_PREFIX):
            return _("Not a phone number")
        return _("Not a valid phone number")

    def action_import(self):
        self.ensure_one()
        try:
            data = base64.b64decode(self.file_data or b"", validate=True)
        except (binascii.Error, ValueError):
            raise UserError(_("The file could not be read.")) from None
        try:
            accepted, rejected = sms_consent.parse_blacklist_csv(data, self.country_id.code)
        except NumberFileError as error:
            raise UserError(self._number_file_message(error)) from error
        numbers = [number for _line, number, _reason in accepted]
        self.env.cr.execute(
            SQL("SELECT number FROM phone_blacklist WHERE active AND number = ANY(%s)", numbers)
        )
        existing = {row[0] for row in self.env.cr.fetchall()}
        by_reason = {}
        for _line, number, reason in accepted:
            if number not in existing:
                by_reason.setdefault(reason, []).append(number)
        default_note = _("Imported from %s", self.file_name or _("a CSV file"))
        Blacklist = self.env["phone.blacklist"].with_context(sms_consent_source="import")
        for reason, reason_numbers in by_reason.items():
            note = reason or default_note
            Blacklist.with_context(sms_consent_note=note)._add(
                reason_numbers, message=_("Blacklisted by import (%s).", note)
            )
        self.write(
            {
                "state": "done",
                "added_count": sum(len(reason_numbers) for reason_numbers in by_reason.values()),
                "existing_count": len(existing),
                "rejected_count": len(rejected),
                "line_ids": [
                    (0, 0, {"line": line, "value": value, "reason": self._rejection_reason(code, first_line)})
                    for line, value, code, first_line in rejected
                ],
            }
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "name": _("Import Blacklist"),
        }
