import base64
import csv
import io

from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged

from .common import NUMBER, WEBHOOK_SECRET, SmsMailingMixin, SmsMarketingUsersMixin


@tagged("post_install", "-at_install", "sms_consent")
class TestSmsConsent(SmsMarketingUsersMixin, SmsMailingMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env.company.country_id = cls.env.ref("base.fr")
        cls.gateway = cls._create_sms_gateway("Consent gateway", account_token="tok_consent")  # noqa: S106

    # ------------------------------------------------------------
    # Replies (STOP / START webhook)
    # ------------------------------------------------------------

    def _inbound(self, text, signed=True, sender=NUMBER):
        payload = {"from": sender, "to": "36180", "body": text, "at": "2024-05-01T12:00:00Z"}
        return self._post_sms_webhook(self.gateway, "inbound", payload, secret=None if not signed else WEBHOOK_SECRET)

    def test_reply_stop_and_start(self):
        self.assertEqual(self._inbound("STOP", signed=False).status_code, 403)
        self.assertFalse(self._sms_consent_events(), "an unsigned STOP records nothing")

        self.assertEqual(self._inbound("Stop please").json()["action"], "stop")
        event = self._sms_consent_events()
        self.assertEqual(len(event), 1)
        self.assertEqual((event.action, event.source, event.blacklist_id),
                         ("optout", "reply", self._sms_blacklist_entry()))
        self.assertIn("Stop please", event.note)
        self.assertIn("Consent gateway", event.note)
        self.assertFalse(event.user_id)
        self.assertTrue(event.date)

        self.assertEqual(self._inbound("START", signed=False).status_code, 403)
        self.assertEqual(len(self._sms_consent_events()), 1, "an unsigned START records nothing")
        self.assertTrue(self._sms_blacklist_entry().active)

        self.assertEqual(self._inbound("start").json()["action"], "start")
        events = self._sms_consent_events()
        self.assertEqual(events.mapped("action"), ["optout", "optin"])
        self.assertEqual(events.mapped("source"), ["reply", "reply"])
        self.assertFalse(self._sms_blacklist_entry().active)

    def test_reply_start_of_unknown_number_is_recorded(self):
        self._inbound("START", sender="+33612345677")
        event = self._sms_consent_events("+33612345677")
        self.assertEqual((event.action, event.source), ("optin", "reply"), "an explicit opt-in is kept")

    # ------------------------------------------------------------
    # Manual changes in the user interface
    # ------------------------------------------------------------

    def test_manual_blacklist_changes(self):
        Blacklist = self.env["phone.blacklist"].with_user(self.user_sms_admin)
        entry = Blacklist.create({"number": "+33 6 12 34 56 78"})
        event = self._sms_consent_events()
        self.assertEqual(len(event), 1, "one record per change, not one per layer of the ORM")
        self.assertEqual((event.action, event.source, event.user_id, event.blacklist_id),
                         ("optout", "manual", self.user_sms_admin, entry))

        Blacklist.create({"number": NUMBER})
        self.assertEqual(len(self._sms_consent_events()), 1, "creating an already blacklisted number changes nothing")

        entry.action_archive()
        entry.action_unarchive()
        self.assertEqual(self._sms_consent_events().mapped("action"), ["optout", "optin", "optout"])

        wizard = self.env["phone.blacklist.remove"].with_user(self.user_sms_admin).create(
            {"phone": NUMBER, "reason": "Called us to opt back in"}
        )
        wizard.action_unblacklist_apply()
        last = self._sms_consent_events()[-1]
        self.assertEqual((last.action, last.source, last.note), ("optin", "manual", "Called us to opt back in"))
        self.assertFalse(entry.active)

        entry.with_user(self.user_sms_admin).action_add()
        self.assertEqual(self._sms_consent_events()[-1].action, "optout")
        self.assertEqual(set(self._sms_consent_events().mapped("source")), {"manual"})

        # The blacklist form shows the number's consent history.
        entry.invalidate_recordset()
        self.assertEqual(entry.consent_event_ids, self._sms_consent_events())
        arch = Blacklist.get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn("consent_event_ids", arch)

    def test_consent_records_are_read_only(self):
        self.env["phone.blacklist"]._add([NUMBER])
        for user in (self.user_marketing, self.user_sms_admin):
            Event = self.env["sms.consent.event"].with_user(user)
            with self.subTest(user=user.login):
                self.assertEqual(len(Event.search([("number", "=", NUMBER)])), 1)
                with self.assertRaises(AccessError):
                    Event.search([("number", "=", NUMBER)]).write({"source": "import"})
                with self.assertRaises(AccessError):
                    Event.create({"number": NUMBER, "action": "optin", "source": "manual"})
        with self.assertRaises(AccessError):
            self.env["phone.blacklist"].with_user(self.user_marketing).create({"number": "+33612345670"})
        with self.assertRaises(AccessError):
            self.env["sms.consent.event"].with_user(self.user_employee).search([])

    # ------------------------------------------------------------
    # Import and export
    # ------------------------------------------------------------

    def test_import_csv(self):
        self.env["phone.blacklist"]._add(["+33612345670"])
        content = "\n".join(
            [
                "Number;Reason",
                "+33 6 12 34 56 78;Asked at the counter",
                "06 12 34 56 79;",
                "not a number;Typo",
                "",
                "+33612345678;Twice",
                "+33 6 12 34 56 70;Already there",
                "+1 555;Too short",
                "0033612345680;Asked at the counter",
            ]
        ).encode()
        wizard = self.env["phone.blacklist.import"].with_user(self.user_sms_admin).create(
            {"file_data": base64.b64encode(content), "file_name": "optouts.csv",
             "country_id": self.env.ref("base.fr").id}
        )
        wizard.action_import()
        self.assertEqual((wizard.state, wizard.added_count, wizard.existing_count, wizard.rejected_count),
                         ("done", 3, 1, 3))
        self.assertEqual(
            [(line.line, line.value, line.reason) for line in wizard.line_ids],
            [
                (4, "not a number", "Not a phone number"),
                (6, "+33612345678", "Same number as line 2"),
                (8, "+1 555", "Not a valid phone number"),
            ],
        )
        for number, note in (("+33612345678", "Asked at the counter"), ("+33612345679", "Imported from optouts.csv"),
                             ("+33612345680", "Asked at the counter")):
            with self.subTest(number=number):
                self.assertTrue(self._sms_blacklist_entry(number).active)
                event = self._sms_consent_events(number)
                self.assertEqual((event.action, event.source, event.note, event.user_id),
                                 ("optout", "import", note, self.user_sms_admin))
        self.assertEqual(self._sms_consent_events("+33612345670").mapped("source"), ["manual"],
                         "an already blacklisted number is left as it is")

    def test_import_reads_like_the_list_import(self):
        """The blacklist import reads files as the mailing-list import does, and says why one cannot be read."""
        Import = self.env["phone.blacklist.import"].with_user(self.user_sms_admin)
        content = "Telefono\tNota\n347 123 4567\tDetto al telefono, più volte\n".encode("cp1252")
        wizard = Import.create({"file_data": base64.b64encode(content), "country_id": self.env.ref("base.it").id})
        wizard.action_import()
        self.assertEqual((wizard.added_count, wizard.rejected_count), (1, 0))
        self.assertEqual(self._sms_consent_events("+393471234567").note, "Detto al telefono, più volte")
        for content, message in (
            (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet"),
            (b" \n\n", "is empty"),
            (b"phone\n", "contains no phone number"),
            (b"name;city\nJohn;Paris\n", "No column of phone numbers"),
        ):
            with self.subTest(content=content):
                wizard = Import.create({"file_data": base64.b64encode(content), "file_name": "optouts.csv"})
                with self.assertRaisesRegex(UserError, message):
                    wizard.action_import()

    def test_import_hostile_files(self):
        """Files an attacker (or a broken export) uploads get a message saying what is wrong, never a
        server error, and blacklist nothing: binary content past the first 64 KiB, a quote left open
        (which used to swallow the next lines silently into one cell), cells too long to be data."""
        Import = self.env["phone.blacklist.import"].with_user(self.user_sms_admin)
        fr = self.env.ref("base.fr").id
        cases = (
            ("binary", bytes(range(1, 256)) * 400, "is not a text file"),
            ("NUL after 64 KiB", b"0612345678\n" * 7000 + b"\x00\x01\x02" * 100, "is not a text file"),
            ("quote left open", b'number;reason\n0612345670;"asked\n0612345671;x\n0612345672;y\n',
             "Line 2 of .optouts.csv. opens a quote"),
            ("quote left open, long", b'number;reason\n0612345670;"asked\n' + b"0612345671;x\n" * 20000,
             "Line 2 of .optouts.csv. opens a quote"),
            ("huge cell", b"number;reason\n0612345670;" + b"x" * 200_000 + b"\n",
             "Line 2 .* more than 1024 characters"),
            ("huge number", b"number\n0612345670\n" + b"6" * 100_000 + b"\n", "Line 3 .* more than 1024 characters"),
            ("too many lines", b"0612345670\n" * 1_000_001, "at most 1000000 lines"),
        )
        for name, content, message in cases:
            with self.subTest(name):
                wizard = Import.create({"file_data": base64.b64encode(content), "file_name": "optouts.csv",
                                        "country_id": fr})
                with self.assertRaisesRegex(UserError, message):
                    wizard.action_import()
                self.assertFalse(self._sms_blacklist_entry("+33612345670"), "nothing is blacklisted")

    def test_import_access(self):
        with self.assertRaises(AccessError):
            self.env["phone.blacklist.import"].with_user(self.user_marketing).create(
                {"file_data": base64.b64encode(b"+33612345678")}
            )

    def test_export_csv(self):
        Blacklist = self.env["phone.blacklist"]
        Blacklist.with_context(sms_consent_source="import")._add(["+33612345678"])
        Blacklist.with_context(sms_consent_source="reply")._add(["+33612345679"])
        Blacklist.with_context(sms_consent_source="reply")._remove(["+33612345679"])
        entries = Blacklist.with_context(active_test=False).search([("number", "in", ["+33612345678", "+33612345679"])])
        action = entries.with_user(self.user_marketing).action_sms_export_csv()
        self.assertEqual(action["type"], "ir.actions.act_url")
        export_id = int(action["url"].split("/")[4])
        export = self.env["phone.blacklist.export"].browse(export_id)
        rows = list(csv.reader(io.StringIO(base64.b64decode(export.data).decode())))
        self.assertEqual(rows[0], ["number", "active", "last_consent_date", "last_consent_source"])
        # the numbers start with "+": neutralised as formulas, as OWASP says (the imports read them back)
        self.assertEqual([row[:2] + row[3:] for row in rows[1:]],
                         [["'+33612345678", "yes", "import"], ["'+33612345679", "no", "reply"]])
        self.assertTrue(all(row[2] for row in rows[1:]), "the date of the latest consent record")

        self.authenticate("sms_marketing_user", "sms_marketing_user")
        response = self.url_open(action["url"])
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.text.startswith("number,active"))

    def test_export_neutralises_formulas_and_imports_back(self):
        """No cell of an export starts a formula, and the export imports back as it was: into the
        blacklist (after an opt-in) and into a mailing list."""
        Blacklist = self.env["phone.blacklist"]
        numbers = ["+33612345678", "+447911123456"]
        Blacklist.with_context(sms_consent_source="import")._add(numbers)
        entries = Blacklist.search([("number", "in", numbers)])
        action = entries.with_user(self.user_marketing).action_sms_export_csv()
        export = self.env["phone.blacklist.export"].browse(int(action["url"].split("/")[4]))
        content = base64.b64decode(export.data)
        rows = list(csv.reader(io.StringIO(content.decode())))
        self.assertEqual(len(rows), 3)
        for row in rows:
            for cell in row:
                self.assertFalse(cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"formula cell {cell!r}")

        Blacklist.with_context(sms_consent_source="reply")._remove(numbers)
        wizard = self.env["phone.blacklist.import"].with_user(self.user_sms_admin).create(
            {"file_data": base64.b64encode(content), "file_name": "phone_blacklist.csv"}
        )
        wizard.action_import()
        self.assertEqual((wizard.added_count, wizard.rejected_count), (2, 0))
        self.assertEqual(set(Blacklist.search([("number", "in", numbers)]).mapped("number")), set(numbers))

        mailing_list = self.env["mailing.list"].create({"name": "From the blacklist export"})
        wizard = self.env["mailing.list.sms.import"].with_user(self.user_marketing).create(
            {"mailing_list_id": mailing_list.id, "file_data": base64.b64encode(content), "file_name": "bl.csv"}
        )
        wizard.action_import()
        self.assertEqual((wizard.new_count, wizard.rejected_count), (2, 0))
        self.assertEqual(set(mailing_list.subscription_ids.contact_id.mapped("phone_sanitized")), set(numbers))

    # ------------------------------------------------------------
    # Mailing-list subscriptions
    # ------------------------------------------------------------

    def test_list_optout_by_hand_is_recorded(self):
        mailing_list = self.env["mailing.list"].create({"name": "Consent list"})
        contact = self.env["mailing.contact"].create(
            {"name": "Hand", "mobile": "+33 6 12 34 56 78", "list_ids": [(4, mailing_list.id)]}
        )
        subscription = self.env["mailing.subscription"].search([("contact_id", "=", contact.id)])
        subscription.with_user(self.user_marketing).opt_out = True
        event = self._sms_consent_events()
        self.assertEqual((event.action, event.source, event.list_ids), ("optout", "manual", mailing_list))
        self.assertEqual(event.user_id, self.user_marketing)
        subscription.opt_out = True  # no change, nothing recorded
        self.assertEqual(len(self._sms_consent_events()), 1)
        subscription.opt_out = False
        self.assertEqual(self._sms_consent_events().mapped("action"), ["optout", "optin"])

    def test_stock_optout_page_records_a_link_event(self):
        """Stock's page where the recipient retypes the number (SMS sent before this addon)."""
        mailing_list = self.env["mailing.list"].create({"name": "Old list"})
        self.env["mailing.contact"].create(
            {"name": "Old", "mobile": "+33 6 12 34 56 78", "list_ids": [(4, mailing_list.id)]}
        )
        mailing = self._create_sms_mailing("Hi", mailing_list, subject="Old SMS")
        self._create_sms_trace(mailing, mailing_list.contact_ids, NUMBER, sms_code="abc", trace_status="sent")
        response = self.url_open(f"/sms/{mailing.id}/unsubscribe/abc?sms_number=%2B33612345678")
        self.assertEqual(response.status_code, 200)
        event = self._sms_consent_events()
        self.assertEqual((event.action, event.source, event.mailing_id), ("optout", "link", mailing))
