# Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Import phone numbers from a CSV or text file into a mailing list.

Numbers are parsed and normalised in Python (one parse per distinct value and country), then
contacts and subscriptions are written with a handful of set-based SQL statements, so that a
file of 100,000 lines costs a few dozen queries instead of hundreds of thousands of ORM calls.
"""

import base64
import csv
import io
import logging
import time

from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, clean_context, split_every

from ..tools import sms_phone
from ..tools.sms_number_file import NumberFileError, ascii_key

_logger = logging.getLogger(__name__)

MAX_LINES = 1_000_000
PREVIEW_ROWS = 20
PREVIEW_REJECTED = 100
SQL_CHUNK = 50_000
ANALYZE_THRESHOLD = 1_000
COUNTRY_ALIASES = {"uk": "GB"}


class _Row:
    """One non-blank line of the file."""

    __slots__ = ("country_code", "country_id", "country_value", "line", "name", "number", "raw", "reason", "status")

    def __init__(self, line, raw, name, country_value):
        self.line = line
        self.raw = raw
        self.name = name
        self.country_value = country_value
        self.country_id = None
        self.country_code = ""
        self.number = None
        self.status = "rejected"  # rejected, duplicate, then valid -> new / existing
        self.reason = ""


class _Analysis:
    """Parsed file and what the database already knows about its numbers."""

    def __init__(self, rows, blank_count):
        self.rows = rows
        self.blank_count = blank_count
        self.valid = {}  # E.164 number -> first row holding it (file order)
        self.contacts = {}  # E.164 number -> id of an existing contact having it
        self.subscribed = set()  # numbers already in the list (whatever the opt-out)
        self.blacklisted = set()

    def count(self, status):
        return sum(1 for row in self.rows if row.status == status)

    def counts(self):
        return {
            "line_count": len(self.rows) + self.blank_count,
            "new_count": len(self.valid) - len(self.subscribed),
            "existing_count": len(self.subscribed),
            "duplicate_count": self.count("duplicate"),
            "rejected_count": self.count("rejected"),
            "blank_count": self.blank_count,
            "blacklisted_count": len(self.blacklisted),
        }

    def rejected_rows(self):
        return [row for row in self.rows if row.status in ("rejected", "duplicate")]


class MailingListSmsImport(models.TransientModel):
    _name = "mailing.list.sms.import"
    _inherit = ["sms.number.file.import"]
    _description = "Import phone numbers into a mailing list"

    @api.model
    def _default_mailing_list_id(self):
        context = self.env.context
        if context.get("active_model") == "mailing.list" and context.get("active_id"):
            return context["active_id"]
        return False

    state = fields.Selection(
        [("upload", "Upload"), ("preview", "Preview"), ("done", "Done")], default="upload", required=True
    )
    mailing_list_id = fields.Many2one(
        "mailing.list", required=True, ondelete="cascade", default=lambda self: self._default_mailing_list_id()
    )
    file_data = fields.Binary(
        string="File",
        attachment=False,
        help="A .csv or .txt file: one number per line, or columns with a header row "
        "(number/phone/mobile, and optionally name and country).",
    )
    file_name = fields.Char()
    country_id = fields.Many2one(
        "res.country",
        string="Default Country",
        default=lambda self: self.env.company.country_id,
        help="Country of the numbers written without their international prefix (+...), "
        "for the lines that have no country of their own.",
    )
    line_count = fields.Integer("Lines Read", readonly=True)
    new_count = fields.Integer("Valid New Numbers", readonly=True)
    existing_count = fields.Integer("Already in the List", readonly=True)
    duplicate_count = fields.Integer("Duplicates in the File", readonly=True)
    rejected_count = fields.Integer("Rejected", readonly=True)
    blank_count = fields.Integer("Blank Lines", readonly=True)
    blacklisted_count = fields.Integer(
        "Blacklisted", readonly=True, help="Valid numbers on the SMS blacklist: imported, but they receive no SMS."
    )
    created_count = fields.Integer("Contacts Created", readonly=True)
    preview_html = fields.Html("Preview", readonly=True)
    rejected_attachment_id = fields.Many2one("ir.attachment", string="Rejected Lines", readonly=True)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_preview(self):
        self.ensure_one()
        analysis = self._analyse()
        self.write({**analysis.counts(), "preview_html": self._preview_html(analysis), "state": "preview"})
        return self._action_reopen()

    def action_back(self):
        self.ensure_one()
        self.write({"state": "upload", "preview_html": False})
        return self._action_reopen()

    def action_download_rejected(self):
        self.ensure_one()
        analysis = self._analyse()
        attachment = self._create_rejected_attachment(analysis, self._name, self.id)
        if not attachment:
            raise UserError(_("No line of the file is rejected."))
        return {"type": "ir.actions.act_url", "url": self._download_url(attachment), "target": "self"}

    def action_import(self):
        self.ensure_one()
        self._check_import_access()
        started = time.perf_counter()
        analysis = self._analyse()
        created_count = self._bulk_import(analysis)
        mailing_list = self.mailing_list_id
        attachment = self._create_rejected_attachment(analysis, "mailing.list", mailing_list.id)
        self.write(
            {
                **analysis.counts(),
                "created_count": created_count,
                "rejected_attachment_id": attachment.id if attachment else False,
                "state": "done",
            }
        )
        _logger.info(
            "SMS numbers import into mailing list %s: %s lines, %s subscribed, %s contacts created, in %.2fs",
            mailing_list.id,
            self.line_count,
            self.new_count,
            created_count,
            time.perf_counter() - started,
        )
        return self._report_result(attachment)

    # ------------------------------------------------------------------
    # Reading the file
    # ------------------------------------------------------------------

    def _analyse(self):
        rows, blank_count = self._parse_rows()
        analysis = _Analysis(rows, blank_count)
        self._normalise(analysis)
        self._lookup_database(analysis)
        return analysis

    def _parse_rows(self):
        """Read the file: return ([_Row], number of blank lines), or raise a UserError the user can act upon."""
        if not self.file_data:
            raise UserError(_("Choose a file to import: a .csv or .txt file with one phone number per line."))
        numbers = self._number_file_open(base64.b64decode(self.file_data), max_lines=MAX_LINES)
        try:
            rows = [_Row(row.line, row.number, row.name, row.country) for row in numbers]
        except NumberFileError as error:
            raise UserError(self._number_file_message(error)) from error
        return rows, numbers.blank_count

    # ------------------------------------------------------------------
    # Normalising numbers
    # ------------------------------------------------------------------

    def _country_index(self):
        """Countries by lower-case ISO code and by name in every installed language."""
        index = {}
        Country = self.env["res.country"].sudo()
        langs = [self.env.lang or "en_US"] + [code for code, _label in self.env["res.lang"].get_installed()]
        for lang in dict.fromkeys(langs):
            for country in Country.with_context(lang=lang).search_read([("code", "!=", False)], ["code", "name"]):
                value = (country["id"], country["code"], country["name"])
                index.setdefault(ascii_key(country["name"]), value)
                if country["code"]:
                    index[country["code"].lower()] = value
        for alias, code in COUNTRY_ALIASES.items():
            if code.lower() in index:
                index.setdefault(alias, index[code.lower()])
        return index

    def _normalise(self, analysis):
        countries = self._country_index()
        default = self.country_id
        default_code = default.code or None
        unknown_country = _("unknown country “%s”")
        duplicate_of = _("duplicate of line %s")
        empty = _("empty number")
        cache = {}
        for row in analysis.rows:
            if not row.raw:
                row.reason = empty
                continue
            region, country_id = default_code, None
            if row.country_value:
                country = countries.get(ascii_key(row.country_value))
                if not country:
                    row.reason = unknown_country % row.country_value
                    continue
                country_id, region = country[0], country[1]
            key = (row.raw, region)
            result = cache.get(key)
            if result is None:
                result = cache[key] = self._normalise_number(row.raw, region, countries)
            number, calling_code, reason = result
            if not number:
                row.reason = reason
                continue
            if country_id is None and default and calling_code == default.phone_code:
                country_id, region = default.id, default_code
            row.country_id, row.country_code = country_id, region if country_id else ""
            first = analysis.valid.get(number)
            row.number = number
            if first:
                row.status, row.reason = "duplicate", duplicate_of % first.line
                continue
            analysis.valid[number] = row
            row.status = "valid"

    def _normalise_number(self, raw, region, countries):
        """Return (E.164 number, calling code, rejection reason), by the rule of stock's phone_sanitized."""
        phone = sms_phone.normalize(raw, region)
        if phone.number:
            return phone.number, phone.country_code, None
        if phone.reason == sms_phone.NOT_A_NUMBER:
            return None, None, _("not a phone number")
        if phone.reason == sms_phone.UNKNOWN_PREFIX:
            return None, None, _("unknown international prefix")
        if phone.reason == sms_phone.NO_COUNTRY:
            return None, None, _(
                "no international prefix (+...) and no country: add the prefix or choose a default country"
            )
        country = countries.get((phone.region or "").lower())
        if country and phone.country_code != 1:  # +1 is many countries: their names would mislead
            return None, None, _("invalid number for %s", country[2])
        return None, None, _("invalid number")

    # ------------------------------------------------------------------
    # Database
    # ------------------------------------------------------------------

    def _lookup_database(self, analysis):
        """Fill existing contacts, numbers already in the list and blacklisted numbers."""
        self.env["mailing.contact"].flush_model(["phone_sanitized"])
        self.env["mailing.subscription"].flush_model(["contact_id", "list_id"])
        self.env["phone.blacklist"].flush_model(["number", "active"])
        cr = self.env.cr
        list_id = self.mailing_list_id.id
        for chunk in split_every(SQL_CHUNK, analysis.valid, list):
            cr.execute(
                SQL(
                    """SELECT c.phone_sanitized, MIN(c.id)
                         FROM mailing_contact c
                         JOIN unnest(%s::varchar[]) AS n(number) ON n.number = c.phone_sanitized
                     GROUP BY c.phone_sanitized""",
                    chunk,
                )
            )
            analysis.contacts.update(cr.fetchall())
            cr.execute(
                SQL(
                    """SELECT DISTINCT c.phone_sanitized
                         FROM mailing_subscription s
                         JOIN mailing_contact c ON c.id = s.contact_id
                         JOIN unnest(%s::varchar[]) AS n(number) ON n.number = c.phone_sanitized
                        WHERE s.list_id = %s""",
                    chunk,
                    list_id,
                )
            )
            analysis.subscribed.update(number for (number,) in cr.fetchall())
            cr.execute(
                SQL(
                    """SELECT b.number
                         FROM phone_blacklist b
                         JOIN unnest(%s::varchar[]) AS n(number) ON n.number = b.number
                        WHERE b.active""",
                    chunk,
                )
            )
            analysis.blacklisted.update(number for (number,) in cr.fetchall())
        for number, row in analysis.valid.items():
            row.status = "existing" if number in analysis.subscribed else "new"

    def _check_import_access(self):
        self.mailing_list_id.check_access_rights("write")
        self.mailing_list_id.check_access_rule("write")
        for model in ("mailing.contact", "mailing.subscription"):
            self.env[model].check_access_rights("create")

    def _insert_defaults(self, model_name, filled):
        """SQL column list and values for the stored fields of ``model_name`` that have a default
        and that the bulk insert does not fill itself, as the ORM's create() would."""
        model = self.env[model_name].with_context(clean_context(self.env.context))
        names = [
            name
            for name, field in model._fields.items()
            if field.store
            and field.column_type
            and not field.compute
            and not field.translate
            and not field.company_dependent
            and name not in filled
            and name not in models.MAGIC_COLUMNS
        ]
        defaults = model.default_get(names)
        columns = SQL("").join(SQL(", %s", SQL.identifier(name)) for name in defaults)
        values = SQL("").join(
            SQL(", %s", model._fields[name].convert_to_column(value, model)) for name, value in defaults.items()
        )
        return columns, values

    def _recompute_stored(self, model_name, ids, filled):
        """Schedule the stored computed fields the bulk insert did not fill."""
        model = self.env[model_name]
        records = model.browse(ids)
        for field in model._fields.values():
            if field.store and field.compute and field.name not in filled and records:
                self.env.add_to_compute(field, records)

    def _bulk_import(self, analysis):
        """Create the missing contacts and subscribe every new number; return the contacts created."""
        self.env.flush_all()
        cr = self.env.cr
        uid, now = self.env.uid, cr.now()
        list_id = self.mailing_list_id.id
        to_subscribe = [number for number in analysis.valid if number not in analysis.subscribed]
        to_create = [number for number in to_subscribe if number not in analysis.contacts]

        contact_filled = {"mobile", "phone_sanitized", "name", "country_id", "email_normalized"}
        columns, values = self._insert_defaults("mailing.contact", contact_filled)
        created = {}
        for chunk in split_every(SQL_CHUNK, to_create, list):
            rows = [analysis.valid[number] for number in chunk]
            cr.execute(
                SQL(
                    """INSERT INTO mailing_contact (mobile, phone_sanitized, name, country_id,
                                                    create_uid, create_date, write_uid, write_date%s)
                       SELECT t.number, t.number, t.name, t.country_id, %s, %s, %s, %s%s
                         FROM unnest(%s::varchar[], %s::varchar[], %s::int4[]) AS t(number, name, country_id)
                    RETURNING phone_sanitized, id""",
                    columns,
                    uid,
                    now,
                    uid,
                    now,
                    values,
                    chunk,
                    [row.name or None for row in rows],
                    [row.country_id for row in rows],
                )
            )
            created.update(cr.fetchall())
        if len(created) >= ANALYZE_THRESHOLD:
            # Fresh statistics, so that the plans cached by this connection (among which the foreign
            # key checks of the subscriptions inserted below) stop assuming a small contact table.
            cr.execute(SQL("ANALYZE %s", SQL.identifier(self.env["mailing.contact"]._table)))

        subscription_filled = {"contact_id", "list_id", "opt_out", "opt_out_datetime"}
        columns, values = self._insert_defaults("mailing.subscription", subscription_filled)
        contact_ids = [created.get(number) or analysis.contacts[number] for number in to_subscribe]
        subscription_ids = []
        for chunk in split_every(SQL_CHUNK, contact_ids, list):
            cr.execute(
                SQL(
                    """INSERT INTO mailing_subscription (contact_id, list_id, opt_out,
                                                         create_uid, create_date, write_uid, write_date%s)
                       SELECT t.contact_id, %s, FALSE, %s, %s, %s, %s%s
                         FROM unnest(%s::int4[]) AS t(contact_id)
                  ON CONFLICT (contact_id, list_id) DO NOTHING
                    RETURNING id""",
                    columns,
                    list_id,
                    uid,
                    now,
                    uid,
                    now,
                    values,
                    chunk,
                )
            )
            subscription_ids.extend(sub_id for (sub_id,) in cr.fetchall())

        # The ORM caches know nothing of the rows written above.
        self.env.invalidate_all()
        self._recompute_stored("mailing.contact", list(created.values()), contact_filled)
        self._recompute_stored("mailing.subscription", subscription_ids, subscription_filled)
        self.env.flush_all()
        return len(created)

    # ------------------------------------------------------------------
    # Reporting
    # ------------------------------------------------------------------

    def _status_label(self, row, analysis):
        if row.status == "new":
            label = _("New")
        elif row.status == "existing":
            label = _("Already in the list")
        else:
            return _("Rejected: %s", row.reason)
        if row.number in analysis.blacklisted:
            label = _("%s (blacklisted: will not receive SMS)", label)
        return label

    @staticmethod
    def _html_table(headers, rows):
        head = Markup("").join(Markup("<th>%s</th>") % header for header in headers)
        body = Markup("").join(
            Markup("<tr>%s</tr>") % Markup("").join(Markup("<td>%s</td>") % (cell or "") for cell in row)
            for row in rows
        )
        return Markup(
            '<table class="table table-sm table-striped o_sms_import_table">'
            "<thead><tr>%s</tr></thead><tbody>%s</tbody></table>"
        ) % (head, body)

    def _preview_html(self, analysis):
        parts = [Markup("<h5>%s</h5>") % _("First lines of the file")]
        parts.append(
            self._html_table(
                [_("Line"), _("Value"), _("Normalized Number"), _("Name"), _("Country"), _("Status")],
                [
                    (row.line, row.raw, row.number, row.name, row.country_code, self._status_label(row, analysis))
                    for row in analysis.rows[:PREVIEW_ROWS]
                ],
            )
        )
        rejected = analysis.rejected_rows()
        if rejected:
            parts.append(Markup("<h5>%s</h5>") % _("Rejected lines (%s)", len(rejected)))
            parts.append(
                self._html_table(
                    [_("Line"), _("Value"), _("Reason")],
                    [(row.line, row.raw, row.reason) for row in rejected[:PREVIEW_REJECTED]],
                )
            )
            if len(rejected) > PREVIEW_REJECTED:
                parts.append(
                    Markup("<p>%s</p>")
                    % _(
                        "… and %s more: download the rejected lines to see them all.",
                        len(rejected) - PREVIEW_REJECTED,
                    )
                )
        return Markup("").join(parts)

    def _create_rejected_attachment(self, analysis, res_model, res_id):
        rejected = analysis.rejected_rows()
        if not rejected:
            return self.env["ir.attachment"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["line", "value", "reason"])
        writer.writerows((row.line, row.raw, row.reason) for row in rejected)
        base_name = (self.file_name or "numbers").rsplit(".", 1)[0]
        return self.env["ir.attachment"].create(
            {
                "name": f"{base_name}-rejected.csv",
                "raw": buffer.getvalue().encode("utf-8-sig"),
                "mimetype": "text/csv",
                "res_model": res_model,
                "res_id": res_id,
            }
        )

    @staticmethod
    def _download_url(attachment):
        return f"/web/content/{attachment.id}?download=true"

    def _summary_lines(self):
        lines = [
            _("%s lines read", self.line_count),
            _("%s numbers added to the list", self.new_count),
            _("%s contacts created, the others already existed", self.created_count),
            _("%s numbers already in the list (left untouched)", self.existing_count),
            _("%s duplicates in the file", self.duplicate_count),
            _("%s lines rejected", self.rejected_count),
            _("%s blank lines", self.blank_count),
        ]
        if self.blacklisted_count:
            lines.append(_("%s blacklisted numbers (imported, but they will not receive SMS)", self.blacklisted_count))
        return lines

    def _report_result(self, attachment):
        mailing_list = self.mailing_list_id
        lines = self._summary_lines()
        if isinstance(mailing_list, self.pool["mail.thread"]):
            body = Markup("<p>%s</p><ul>%s</ul>") % (
                _("Phone numbers imported from %s:", self._file_label()),
                Markup("").join(Markup("<li>%s</li>") % line for line in lines),
            )
            mailing_list.message_post(
                body=body, attachment_ids=attachment.ids, message_type="comment", subtype_xmlid="mail.mt_note"
            )
        params = {
            "title": _("Phone numbers imported"),
            # the notification formats "%s" placeholders with the links: keep user data out of it
            "message": "; ".join(line.replace("%", "%%") for line in lines) + ".",
            "type": "warning" if attachment else "success",
            "sticky": bool(attachment),
            "next": {"type": "ir.actions.act_window_close"},
        }
        if attachment:
            params["message"] += " %s"
            params["links"] = [{"label": _("Download the rejected lines"), "url": self._download_url(attachment)}]
        return {"type": "ir.actions.client", "tag": "display_notification", "params": params}

    def _action_reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": _("Import Numbers"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "context": self.env.context,
        }
