# Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Import phone numbers from a CSV or text file into a mailing list.

The file is read once, as a stream: the numbers are normalised in Python (one parse per line, a
bounded cache per distinct value and country) and sent in chunks to a temporary table; duplicates,
existing contacts, numbers already in the list and the blacklist are then found with a few
set-based SQL statements, and the contacts and subscriptions are inserted from that table. Python
keeps a chunk, counters and the preview's first lines, never the whole file.

The preview keeps the lines it read in a staging table (one per wizard, dropped with it or by the
import): the download of the rejected lines and the import start from them without reading the
file again, and only look the database up again (contacts, list, blacklist may have changed).
A new file or default country drops them.
"""

import base64
import csv
import io
import json
import logging
import time

import psycopg2.extensions
from markupsafe import Markup

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, clean_context

from ..tools import sms_phone
from ..tools.sms_number_file import MAX_LINES, NumberFileError, ascii_key, write_csv

_logger = logging.getLogger(__name__)

PREVIEW_ROWS = 20
PREVIEW_REJECTED = 100
SQL_CHUNK = 20_000  # rows sent to PostgreSQL at once
FETCH_CHUNK = 10_000  # rejected lines read back at once
NORMALISE_CACHE = 100_000  # distinct (value, country) pairs remembered
ANALYZE_THRESHOLD = 1_000
COUNTRY_ALIASES = {"uk": "GB"}
# Temporary tables of one action (dropped at the end of the transaction): every non-blank line
# of the file, and every distinct valid number with what the database knows of it.
ROWS_TABLE = "sms_list_import_row"
NUMBERS_TABLE = "sms_list_import_number"
# The lines the preview read, for the import (unlogged: a cache of the file, rebuilt from it).
STAGING_TABLE = "mailing_list_sms_import_staging"
ROW_COLUMNS = ("line", "value", "name", "country_id", "country_code", "number", "reason", "cells")
NULLABLE_ROW_COLUMNS = ("name", "country_id", "country_code", "number", "reason")  # never an empty text
# What the wizard must read again in the file when it changes.
FILE_FIELDS = ("file_data", "country_id")
FILE_CHUNK = 1 << 22  # base64 characters of the file read from the database at once (a multiple of 4)
_NOT_BASE64 = bytes(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="))


class _Analysis:
    """What one reading of the file found: counters, and the preview's first lines. The lines
    themselves are in the temporary tables."""

    def __init__(self):
        self.row_count = 0  # non-blank lines
        self.blank_count = 0
        self.rejected_count = 0
        self.duplicate_count = 0
        self.number_count = 0  # distinct valid numbers
        self.subscribed_count = 0
        self.blacklisted_count = 0
        # The file's layout, for the rejected lines written back in it.
        self.delimiter = ","
        self.header = None
        self.width = 1

    def counts(self):
        return {
            "line_count": self.row_count + self.blank_count,
            "new_count": self.number_count - self.subscribed_count,
            "existing_count": self.subscribed_count,
            "duplicate_count": self.duplicate_count,
            "rejected_count": self.rejected_count,
            "blank_count": self.blank_count,
            "blacklisted_count": self.blacklisted_count,
        }

    @property
    def has_rejected(self):
        return bool(self.rejected_count or self.duplicate_count)


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
    # The file's layout and counters when its lines are staged (by the preview), else empty.
    staged_file = fields.Json(readonly=True, copy=False)

    def init(self):
        res = super().init()
        self.env.cr.execute(
            SQL(
                """CREATE UNLOGGED TABLE IF NOT EXISTS %(staging)s (
                       wizard_id int4 NOT NULL REFERENCES %(wizards)s (id) ON DELETE CASCADE,
                       line int4 NOT NULL, value varchar, name varchar, country_id int4, country_code varchar,
                       number varchar, reason varchar, cells varchar
                   )""",
                staging=SQL.identifier(STAGING_TABLE),
                wizards=SQL.identifier(self._table),
            )
        )
        self.env.cr.execute(
            SQL("CREATE INDEX IF NOT EXISTS %s ON %s (wizard_id)", SQL.identifier(f"{STAGING_TABLE}_wizard_idx"),
                SQL.identifier(STAGING_TABLE))
        )
        return res

    def write(self, vals):
        if any(name in vals for name in FILE_FIELDS) and any(self.mapped("staged_file")):
            self._drop_staged()
            vals = {**vals, "staged_file": False}
        return super().write(vals)

    def _drop_staged(self):
        self.env.cr.execute(SQL("DELETE FROM %s WHERE wizard_id = ANY(%s)", SQL.identifier(STAGING_TABLE), self.ids))

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_preview(self):
        self.ensure_one()
        analysis = self._analyse(stage=True)
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
        analysis = self._analyse(new_contact_ids=True)
        created_count = self._bulk_import(analysis)
        if self.staged_file:
            self._drop_staged()
            self.staged_file = False
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

    def _analyse(self, stage=False, new_contact_ids=False):
        """Fill the temporary tables from the staged lines, else from the file (staged too when
        ``stage``); return the :class:`_Analysis`. ``new_contact_ids``: see :meth:`_lookup_database`."""
        if self.staged_file:
            analysis = _Analysis()
            self._create_tables()
            self._load_staged(analysis)
            self._lookup_database(analysis, new_contact_ids)
            return analysis
        data = self._file_bytes()
        if not data:
            raise UserError(_("Choose a file to import: a .csv or .txt file with one phone number per line."))
        numbers = self._number_file_open(data, max_lines=MAX_LINES)
        del data  # numbers holds the bytes
        analysis = _Analysis()
        analysis.delimiter, analysis.header, analysis.width = numbers.delimiter, numbers.header, numbers.width
        self._create_tables()
        try:
            self._load_rows(numbers, analysis)
        except NumberFileError as error:
            raise UserError(self._number_file_message(error)) from error
        analysis.blank_count = numbers.blank_count
        if stage:
            self._stage(analysis)
        self._lookup_database(analysis, new_contact_ids)
        return analysis

    def _file_bytes(self):
        """The uploaded file's bytes (a bytearray), read from its column in chunks and base64-decoded chunk by
        chunk, as ``base64.b64decode(self.file_data)`` but without ever holding the whole base64
        text (4/3 of the file) nor its transfer form (twice that): only the decoded bytes."""
        self.flush_recordset(["file_data"])
        cr = self.env.cr
        table, column = SQL.identifier(self._table), SQL.identifier("file_data")
        cr.execute(SQL("SELECT octet_length(%s) FROM %s WHERE id = %s", column, table, self.id))
        size = (cr.fetchone() or [None])[0]
        if not size:
            return b""
        decoded, carry = bytearray(), b""
        for start in range(1, size + 1, FILE_CHUNK):
            cr.execute(SQL("SELECT substring(%s FROM %s FOR %s) FROM %s WHERE id = %s",
                           column, start, FILE_CHUNK, table, self.id))
            # As b64decode does: characters out of the alphabet (line breaks...) are ignored.
            chunk = carry + bytes(cr.fetchone()[0]).translate(None, _NOT_BASE64)
            cut = len(chunk) - len(chunk) % 4
            decoded += base64.b64decode(chunk[:cut])
            carry = chunk[cut:]
        if carry:
            decoded += base64.b64decode(carry)  # raises on a truncated value, as b64decode does
        return decoded  # a bytearray: NumberFile reads it in place (bytes() would copy the file)

    def _stage(self, analysis):
        """Keep the lines of the rows table, and the file's layout and counters, for the next actions."""
        self._drop_staged()
        columns = SQL(", ").join(SQL.identifier(name) for name in ROW_COLUMNS)
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (wizard_id, %s) SELECT %s, %s FROM %s",
                SQL.identifier(STAGING_TABLE),
                columns,
                self.id,
                columns,
                SQL.identifier(ROWS_TABLE),
            )
        )
        self.staged_file = {
            "delimiter": analysis.delimiter,
            "header": analysis.header,
            "width": analysis.width,
            "row_count": analysis.row_count,
            "blank_count": analysis.blank_count,
            "rejected_count": analysis.rejected_count,
        }

    def _load_staged(self, analysis):
        staged = self.staged_file
        analysis.delimiter, analysis.header, analysis.width = staged["delimiter"], staged["header"], staged["width"]
        analysis.row_count, analysis.blank_count = staged["row_count"], staged["blank_count"]
        analysis.rejected_count = staged["rejected_count"]
        columns = SQL(", ").join(SQL.identifier(name) for name in ROW_COLUMNS)
        self.env.cr.execute(
            SQL(
                "INSERT INTO %s (%s) SELECT %s FROM %s WHERE wizard_id = %s",
                SQL.identifier(ROWS_TABLE),
                columns,
                columns,
                SQL.identifier(STAGING_TABLE),
                self.id,
            )
        )

    def _create_tables(self):
        cr = self.env.cr
        cr.execute(SQL("DROP TABLE IF EXISTS %s, %s", SQL.identifier(ROWS_TABLE), SQL.identifier(NUMBERS_TABLE)))
        cr.execute(
            SQL(
                """CREATE TEMPORARY TABLE %s (
                       line int4 NOT NULL, value varchar, name varchar, country_id int4, country_code varchar,
                       number varchar, reason varchar, cells varchar
                   ) ON COMMIT DROP""",
                SQL.identifier(ROWS_TABLE),
            )
        )

    def _insert_rows(self, columns):
        """Send one chunk of rows (``columns``: the lists of ROW_COLUMNS' values) to the rows table
        with COPY: CSV written by Python's C writer, every cell quoted, so that an empty quoted cell
        is an empty text in ``value`` and ``cells`` and NULL (FORCE_NULL) in the columns that are
        never empty (a name, a country, a number or a reason, else nothing). Several times faster
        than an INSERT of unnest() arrays, which PostgreSQL parses from their text form."""
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(zip(*columns, strict=True))
        buffer.seek(0)
        copy = SQL(
            "COPY %s (%s) FROM STDIN WITH (FORMAT csv, FORCE_NULL (%s))",
            SQL.identifier(ROWS_TABLE),
            SQL(", ").join(SQL.identifier(name) for name in ROW_COLUMNS),
            SQL(", ").join(SQL.identifier(name) for name in NULLABLE_ROW_COLUMNS),
        )
        # As Odoo's own COPY (models.py): no asynchronous wait callback during a COPY.
        callback = psycopg2.extensions.get_wait_callback()
        psycopg2.extensions.set_wait_callback(None)
        try:
            self.env.cr.copy_expert(copy.code, buffer)
        finally:
            psycopg2.extensions.set_wait_callback(callback)

    def _load_rows(self, numbers, analysis):
        """Normalise the rows of ``numbers`` as they stream and send them to the rows table in chunks."""
        countries = self._country_index()
        default = self.country_id
        default_code = default.code or None
        unknown_country = _("unknown country “%s”")
        empty = _("empty number")
        cache = {}
        columns = [[] for _index in range(8)]
        lines, values, names, country_ids, country_codes, results, reasons, cells = columns
        dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
        for row in numbers:
            analysis.row_count += 1
            lines.append(row.line)
            cells.append(dumps(row.cells))  # every column, for the rejected lines' file
            values.append(row.number)
            names.append(row.name or None)
            number = reason = country_id = None
            region = default_code
            if not row.number:
                reason = empty
            elif row.country and not (country := countries.get(ascii_key(row.country))):
                reason = unknown_country % row.country
            else:
                if row.country:
                    country_id, region = country[0], country[1]
                key = (row.number, region)
                result = cache.get(key)
                if result is None:
                    if len(cache) >= NORMALISE_CACHE:
                        cache.clear()
                    result = cache[key] = self._normalise_number(row.number, region, countries)
                number, calling_code, reason = result
                if number and country_id is None and default and calling_code == default.phone_code:
                    country_id, region = default.id, default_code
            if not number:
                analysis.rejected_count += 1
            country_ids.append(country_id if number else None)
            country_codes.append(region if number and country_id else None)
            results.append(number)
            reasons.append(reason)
            if len(lines) >= SQL_CHUNK:
                self._insert_rows(columns)
                for column in columns:
                    column.clear()
        if lines:
            self._insert_rows(columns)

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

    def _normalise_number(self, raw, region, countries):
        """Return (E.164 number, calling code, rejection reason), by the rule of stock's phone_sanitized."""
        phone, not_mobile = sms_phone.normalize_sms(raw, region)  # one parse for both rules
        if phone.number:
            # A landline (or other line that cannot receive SMS) would be charged and never delivered.
            if not_mobile:
                return None, None, _("not a mobile number: a landline cannot receive SMS")
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

    def _lookup_database(self, analysis, new_contact_ids=False):
        """The distinct valid numbers of the file (the first line of each), with the existing
        contact having each, whether it is already in the list and whether it is blacklisted.

        :param new_contact_ids: give each number to import that no contact has yet (``created``)
            the id of the contact to create, from the contacts' sequence in file order (the import
            inserts them with these ids: no RETURNING joined back onto this table)."""
        self.env["mailing.contact"].flush_model(["phone_sanitized"])
        self.env["mailing.subscription"].flush_model(["contact_id", "list_id"])
        self.env["phone.blacklist"].flush_model(["number", "active"])
        cr = self.env.cr
        rows, numbers = SQL.identifier(ROWS_TABLE), SQL.identifier(NUMBERS_TABLE)
        cr.execute(SQL("ANALYZE %s", rows))
        new_id, created = SQL("NULL::int4"), SQL("FALSE")
        if new_contact_ids:
            contacts = self.env["mailing.contact"]._table
            cr.execute(SQL("SELECT pg_get_serial_sequence(%s, 'id')", contacts))
            # Evaluated row by row in file order (the ORDER BY below, in the subquery).
            new_id = SQL("CASE WHEN q.contact_id IS NULL AND NOT q.subscribed THEN nextval(%s::regclass) END",
                         cr.fetchone()[0])
            created = SQL("(q.contact_id IS NULL AND NOT q.subscribed)")
        cr.execute(
            SQL(
                """CREATE TEMPORARY TABLE %(numbers)s ON COMMIT DROP AS
                   SELECT q.number, q.line, q.name, q.country_id,
                          COALESCE(q.contact_id, %(new_id)s) AS contact_id, q.subscribed, q.blacklisted,
                          %(created)s AS created
                     FROM (
                   SELECT f.number, f.line, f.name, f.country_id, c.contact_id,
                          (sub.number IS NOT NULL) AS subscribed, (bl.number IS NOT NULL) AS blacklisted
                     FROM (SELECT DISTINCT ON (number) number, line, name, country_id
                             FROM %(rows)s WHERE number IS NOT NULL ORDER BY number, line) f
                LEFT JOIN (SELECT phone_sanitized AS number, MIN(id) AS contact_id FROM mailing_contact
                            WHERE phone_sanitized IN (SELECT number FROM %(rows)s)
                         GROUP BY phone_sanitized) c ON c.number = f.number
                LEFT JOIN (SELECT DISTINCT c.phone_sanitized AS number
                             FROM mailing_subscription s JOIN mailing_contact c ON c.id = s.contact_id
                            WHERE s.list_id = %(list_id)s) sub ON sub.number = f.number
                LEFT JOIN (SELECT DISTINCT number FROM phone_blacklist WHERE active) bl ON bl.number = f.number
                   %(order)s) q""",
                rows=rows,
                numbers=numbers,
                list_id=self.mailing_list_id.id,
                new_id=new_id,
                created=created,
                order=SQL("ORDER BY f.line") if new_contact_ids else SQL(""),
            )
        )
        cr.execute(SQL("CREATE UNIQUE INDEX ON %s (number)", numbers))
        cr.execute(SQL("ANALYZE %s", numbers))
        cr.execute(
            SQL(
                """SELECT (SELECT count(*) FROM %(rows)s WHERE number IS NOT NULL),
                          count(*), count(*) FILTER (WHERE subscribed), count(*) FILTER (WHERE blacklisted)
                     FROM %(numbers)s""",
                rows=rows,
                numbers=numbers,
            )
        )
        valid_rows, analysis.number_count, analysis.subscribed_count, analysis.blacklisted_count = cr.fetchone()
        analysis.duplicate_count = valid_rows - analysis.number_count

    def _rows_sql(self, rejected_only=False):
        """The rows of the file in order: line, value, number, name, country code, reason, first line
        of the number, already in the list, blacklisted."""
        return SQL(
            """SELECT r.line, r.value, r.number, r.name, r.country_code, r.reason, n.line, n.subscribed,
                      n.blacklisted
                 FROM %(rows)s r
            LEFT JOIN %(numbers)s n ON n.number = r.number
                WHERE %(where)s
             ORDER BY r.line""",
            rows=SQL.identifier(ROWS_TABLE),
            numbers=SQL.identifier(NUMBERS_TABLE),
            where=SQL("r.number IS NULL OR r.line <> n.line") if rejected_only else SQL("TRUE"),
        )

    def _fetch_rows(self, limit, rejected_only=False):
        self.env.cr.execute(SQL("%s LIMIT %s", self._rows_sql(rejected_only), limit))
        return self.env.cr.fetchall()

    def _stream_rejected(self, width):
        """The rejected lines (invalid and duplicates) in file order, as their cells (padded to
        ``width``) followed by the line number and the reason, fetched in chunks through a cursor
        of the transaction."""
        cr = self.env.cr
        query = SQL(
            """SELECT r.line, r.cells, r.number, r.reason, n.line
                 FROM %(rows)s r
            LEFT JOIN %(numbers)s n ON n.number = r.number
                WHERE r.number IS NULL OR r.line <> n.line
             ORDER BY r.line""",
            rows=SQL.identifier(ROWS_TABLE),
            numbers=SQL.identifier(NUMBERS_TABLE),
        )
        cr.execute(SQL("DECLARE sms_list_import_rejected NO SCROLL CURSOR FOR %s", query))
        duplicate_of = _("duplicate of line %s")
        try:
            while True:
                cr.execute(SQL("FETCH %s FROM sms_list_import_rejected", FETCH_CHUNK))
                chunk = cr.fetchall()
                if not chunk:
                    break
                for line, cells_json, number, reason, first_line in chunk:
                    cells = json.loads(cells_json)
                    cells.extend([""] * (width - len(cells)))
                    cells.append(line)
                    cells.append(reason if not number else duplicate_of % first_line)
                    yield cells
        finally:
            cr.execute(SQL("CLOSE sms_list_import_rejected"))

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

    def _recompute_stored(self, model_name, ids_sql, filled):
        """Recompute the stored computed fields the bulk insert did not fill (none in a standard
        database), on the records ``ids_sql`` selects, in chunks."""
        model = self.env[model_name]
        fields_to_compute = [
            field for field in model._fields.values() if field.store and field.compute and field.name not in filled
        ]
        if not fields_to_compute:
            return
        cr = self.env.cr
        cr.execute(ids_sql)
        ids = [record_id for (record_id,) in cr.fetchall()]
        for start in range(0, len(ids), SQL_CHUNK):
            records = model.browse(ids[start : start + SQL_CHUNK])
            for field in fields_to_compute:
                self.env.add_to_compute(field, records)
            self.env.flush_all()
            self.env.invalidate_all()

    def _bulk_import(self, analysis):
        """Create the missing contacts and subscribe every new number, from the numbers table;
        return the number of contacts created."""
        self.env.flush_all()
        cr = self.env.cr
        uid, now = self.env.uid, cr.now()
        list_id = self.mailing_list_id.id
        numbers = SQL.identifier(NUMBERS_TABLE)

        contact_filled = {"mobile", "phone_sanitized", "name", "country_id", "email_normalized"}
        columns, values = self._insert_defaults("mailing.contact", contact_filled)
        cr.execute(
            SQL(
                """INSERT INTO mailing_contact (id, mobile, phone_sanitized, name, country_id,
                                                create_uid, create_date, write_uid, write_date%(columns)s)
                   SELECT n.contact_id, n.number, n.number, n.name, n.country_id,
                          %(uid)s, %(now)s, %(uid)s, %(now)s%(values)s
                     FROM %(numbers)s n
                    WHERE n.created
                 ORDER BY n.line""",
                columns=columns,
                values=values,
                uid=uid,
                now=now,
                numbers=numbers,
            )
        )
        created_count = cr.rowcount
        if created_count >= ANALYZE_THRESHOLD:
            # Fresh statistics, so that the plans cached by this connection (among which the foreign
            # key checks of the subscriptions inserted below) stop assuming a small contact table.
            cr.execute(SQL("ANALYZE %s", SQL.identifier(self.env["mailing.contact"]._table)))

        subscription_filled = {"contact_id", "list_id", "opt_out", "opt_out_datetime"}
        columns, values = self._insert_defaults("mailing.subscription", subscription_filled)
        cr.execute(
            SQL(
                """INSERT INTO mailing_subscription (contact_id, list_id, opt_out,
                                                     create_uid, create_date, write_uid, write_date%(columns)s)
                   SELECT n.contact_id, %(list_id)s, FALSE, %(uid)s, %(now)s, %(uid)s, %(now)s%(values)s
                     FROM %(numbers)s n
                    WHERE NOT n.subscribed
                 ORDER BY n.line
              ON CONFLICT (contact_id, list_id) DO NOTHING""",
                columns=columns,
                values=values,
                list_id=list_id,
                uid=uid,
                now=now,
                numbers=numbers,
            )
        )

        # The ORM caches know nothing of the rows written above.
        self.env.invalidate_all()
        self._recompute_stored(
            "mailing.contact", SQL("SELECT contact_id FROM %s WHERE created", numbers), contact_filled
        )
        self._recompute_stored(
            "mailing.subscription",
            SQL(
                "SELECT s.id FROM mailing_subscription s JOIN %s n ON n.contact_id = s.contact_id "
                "WHERE s.list_id = %s AND NOT n.subscribed",
                numbers,
                list_id,
            ),
            subscription_filled,
        )
        return created_count

    # ------------------------------------------------------------------
    # Reporting
    # ------------------------------------------------------------------

    def _status_label(self, number, reason, first_line, line, subscribed, blacklisted):
        if not number:
            return _("Rejected: %s", reason)
        if first_line != line:
            return _("Rejected: %s", _("duplicate of line %s", first_line))
        label = _("Already in the list") if subscribed else _("New")
        if blacklisted:
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
            # Scrolls sideways on a phone instead of running off its screen.
            '<div class="table-responsive"><table class="table table-sm table-striped o_sms_import_table">'
            "<thead><tr>%s</tr></thead><tbody>%s</tbody></table></div>"
        ) % (head, body)

    def _preview_html(self, analysis):
        # The first lines and the first rejected ones are read in line order, a few: through an
        # index they stop early, without one they sort the whole file (seconds at 1M lines).
        self.env.cr.execute(SQL("CREATE INDEX ON %s (line)", SQL.identifier(ROWS_TABLE)))
        parts = [Markup("<h5>%s</h5>") % _("First lines of the file")]
        parts.append(
            self._html_table(
                [_("Line"), _("Value"), _("Normalized Number"), _("Name"), _("Country"), _("Status")],
                [
                    (line, value, number, name, country_code,
                     self._status_label(number, reason, first_line, line, subscribed, blacklisted))
                    for line, value, number, name, country_code, reason, first_line, subscribed, blacklisted
                    in self._fetch_rows(PREVIEW_ROWS)
                ],
            )
        )
        rejected_count = analysis.rejected_count + analysis.duplicate_count
        if rejected_count:
            parts.append(Markup("<h5>%s</h5>") % _("Rejected lines (%s)", rejected_count))
            parts.append(
                self._html_table(
                    [_("Line"), _("Value"), _("Reason")],
                    [
                        (line, value, reason if not number else _("duplicate of line %s", first_line))
                        for line, value, number, _name, _country, reason, first_line, _sub, _bl
                        in self._fetch_rows(PREVIEW_REJECTED, rejected_only=True)
                    ],
                )
            )
            if rejected_count > PREVIEW_REJECTED:
                parts.append(
                    Markup("<p>%s</p>")
                    % _(
                        "… and %s more: download the rejected lines to see them all.",
                        rejected_count - PREVIEW_REJECTED,
                    )
                )
        return Markup("").join(parts)

    def _create_rejected_attachment(self, analysis, res_model, res_id):
        """The rejected lines as a CSV attachment, written from the rows table chunk by chunk: every
        column of the lines, in the file's separator, under its header row when it has one, then
        the line number and the reason (so that the file, corrected, imports again); cells are
        neutralised against formulas (the readers strip the guard)."""
        if not analysis.has_rejected:
            return self.env["ir.attachment"]
        header = analysis.header
        width = max(analysis.width, len(header) if header else 0)
        if header is not None:
            header = [*header, *[""] * (width - len(header)), "line", "reason"]
        buffer = io.BytesIO()
        text = io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")
        write_csv(
            text, header, self._stream_rejected(width), lineterminator="\n", delimiter=analysis.delimiter
        )
        text.flush()
        base_name = (self.file_name or "numbers").rsplit(".", 1)[0]
        return self.env["ir.attachment"].create(
            {
                "name": f"{base_name}-rejected.csv",
                "raw": buffer.getvalue(),
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
