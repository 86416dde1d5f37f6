import os
import re

import polib

from odoo.exceptions import UserError, ValidationError
from odoo.modules.module import get_module_path
from odoo.tests import tagged
from odoo.tests.common import TransactionCase

MODULE = "sms_marketing_ext"
PLACEHOLDER = re.compile(r"%\(\w+\)[-+ #0]*\d*(?:\.\d+)?[sdfr]|%[-+ #0]*\d*(?:\.\d+)?[sdfr]")

# What the Italian and French translations of the addon must show, per language.
EXPECTED = {
    "it_IT": {
        "po": "it.po",
        "fields": {"name": "Mittente", "reason": "Motivo d'uso", "sender_type": "Tipo"},
        "selection": {("sender_type", "alphanumeric"): "ID alfanumerico", ("state", "submitted"): "In approvazione"},
        "menu": "Mittenti",
        "button": "Invia per approvazione",
        "justification_error": (
            "Allega un documento giustificativo prima di inviare per approvazione il mittente alfanumerico "
            "MyShop: una carta intestata con un'autorizzazione firmata e timbrata, una carta d'identità o "
            "una visura camerale."
        ),
        "name_error": (
            "Un mittente alfanumerico ha da 1 a 11 caratteri, solo lettere A-Z senza accenti, cifre e spazi: "
            "'My-Shop' non è valido."
        ),
    },
    "fr_FR": {
        "po": "fr.po",
        "fields": {"name": "Expéditeur", "reason": "Motif d'utilisation", "sender_type": "Type"},
        "selection": {("sender_type", "alphanumeric"): "ID alphanumérique", ("state", "submitted"): "Soumis"},
        "menu": "Expéditeurs",
        "button": "Soumettre pour approbation",
        "justification_error": (
            "Joignez un justificatif avant de soumettre l'expéditeur alphanumérique MyShop : un papier à "
            "en-tête avec une autorisation signée et tamponnée, une pièce d'identité ou un extrait du "
            "registre du commerce."
        ),
        "name_error": (
            "Un expéditeur alphanumérique compte de 1 à 11 caractères, uniquement des lettres A-Z sans accents, "
            "des chiffres et des espaces : « My-Shop » ne convient pas."
        ),
    },
}


@tagged("post_install", "-at_install")
class TestI18n(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for code in EXPECTED:
            cls.env["res.lang"]._activate_lang(code)
        cls.env["ir.module.module"]._load_module_terms([MODULE], list(EXPECTED), overwrite=True)

    def test_po_files_complete(self):
        # Every term of the template is translated, with the same placeholders.
        i18n = os.path.join(get_module_path(MODULE), "i18n")
        template = polib.pofile(os.path.join(i18n, f"{MODULE}.pot"))
        for code, expected in EXPECTED.items():
            translations = {entry.msgid: entry for entry in polib.pofile(os.path.join(i18n, expected["po"]))}
            for entry in template:
                with self.subTest(lang=code, msgid=entry.msgid[:60]):
                    self.assertIn(entry.msgid, translations)
                    msgstr = translations[entry.msgid].msgstr
                    self.assertTrue(msgstr.strip())
                    self.assertEqual(sorted(PLACEHOLDER.findall(entry.msgid)), sorted(PLACEHOLDER.findall(msgstr)))

    def test_field_labels(self):
        for code, expected in EXPECTED.items():
            Sender = self.env["sms.sender"].with_context(lang=code)
            described = Sender.fields_get(list(expected["fields"]), ["string"])
            for field_name, label in expected["fields"].items():
                with self.subTest(lang=code, field=field_name):
                    field = self.env["ir.model.fields"]._get("sms.sender", field_name)
                    self.assertEqual(field.with_context(lang=code).field_description, label)
                    self.assertEqual(described[field_name]["string"], label)

    def test_selection_values(self):
        for code, expected in EXPECTED.items():
            Sender = self.env["sms.sender"].with_context(lang=code)
            described = Sender.fields_get(["sender_type", "state"], ["selection"])
            for (field_name, value), label in expected["selection"].items():
                with self.subTest(lang=code, field=field_name, value=value):
                    self.assertEqual(dict(described[field_name]["selection"])[value], label)

    def test_menu_and_view(self):
        for code, expected in EXPECTED.items():
            with self.subTest(lang=code):
                menu = self.env.ref(f"{MODULE}.sms_sender_menu").with_context(lang=code)
                self.assertEqual(menu.name, expected["menu"])
                view = self.env.ref(f"{MODULE}.sms_sender_view_form").with_context(lang=code)
                self.assertIn(expected["button"], view.arch_db)
        # English stays the source.
        self.assertEqual(self.env.ref(f"{MODULE}.sms_sender_menu").with_context(lang="en_US").name, "Senders")

    def test_python_message(self):
        sender = self.env["sms.sender"].create(
            {
                "name": "MyShop",
                "sender_type": "alphanumeric",
                "description": "Our shop",
                "reason": "Weekly promotions",
            }
        )
        for code, expected in EXPECTED.items():
            with self.subTest(lang=code), self.assertRaises(UserError) as caught:
                sender.with_context(lang=code).action_submit()
            self.assertEqual(caught.exception.args[0], expected["justification_error"])
        self.assertEqual(sender.state, "draft")

    def test_sender_rule_message(self):
        # tools/sms_sender.py returns the code of the broken rule; the model words it in the user's language.
        Sender = self.env["sms.sender"]
        for code, expected in EXPECTED.items():
            with self.subTest(lang=code), self.assertRaises(ValidationError) as caught:
                Sender.with_context(lang=code).create({"name": "My-Shop", "sender_type": "alphanumeric"})
            self.assertEqual(caught.exception.args[0], expected["name_error"])

    def test_view_terms_applied(self):
        # Every translated term of views, templates and action helps is accepted and shown.
        i18n = os.path.join(get_module_path(MODULE), "i18n")
        for code, expected in EXPECTED.items():
            for entry in polib.pofile(os.path.join(i18n, expected["po"])):
                for occurrence, _line in entry.occurrences:
                    if not occurrence.startswith("model_terms:"):
                        continue
                    model_field, xmlid = occurrence[len("model_terms:"):].split(":", 1)
                    _model, field = model_field.split(",")
                    record = self.env.ref(xmlid).with_context(lang=code)
                    with self.subTest(lang=code, xmlid=xmlid, msgid=entry.msgid[:50]):
                        self.assertIn(entry.msgstr, record[field])
