from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools import sms_sender as sender_tools
from ..tools.sms_sender import sender_name_error, suggest_alphanumeric_sender


@tagged("at_install", "sms_tools", "sms_sender")
class TestSmsSenderTools(BaseCase):
    """tools/sms_sender.py: the rules of sender names and the suggestion from a company name (no database)."""

    def test_name_rules(self):
        valid = [
            ("alphanumeric", "MyShop"),
            ("alphanumeric", "A"),
            ("alphanumeric", "Shop 24 7 X"),
            ("short_number", "123"),
            ("short_number", "36180"),
            ("short_number", "12345678"),
            ("virtual_number", "+33612345678"),
        ]
        characters, digits = sender_tools.ALPHANUMERIC_CHARACTERS, sender_tools.SHORT_NUMBER_DIGITS
        not_mobile = sender_tools.VIRTUAL_NUMBER_NOT_MOBILE
        invalid = [
            ("alphanumeric", "", characters),
            ("alphanumeric", "TwelveChars1", characters),
            ("alphanumeric", "Société", characters),
            ("alphanumeric", "My-Shop", characters),
            ("alphanumeric", "12345", sender_tools.ALPHANUMERIC_NO_LETTER),
            ("alphanumeric", "My Shop ", sender_tools.ALPHANUMERIC_EDGE_SPACE),
            ("short_number", "12", digits),
            ("short_number", "123456789", digits),
            ("short_number", "12a4", digits),
            ("virtual_number", "0612345678", not_mobile),
            ("virtual_number", "+33142685300", not_mobile),  # a Paris landline, not a mobile
            ("virtual_number", "+3361234", not_mobile),
            ("fax", "MyShop", sender_tools.UNKNOWN_TYPE),
        ]
        for sender_type, name in valid:
            with self.subTest(sender_type=sender_type, name=name):
                self.assertIsNone(sender_name_error(sender_type, name))
        for sender_type, name, code in invalid:
            with self.subTest(sender_type=sender_type, name=name):
                self.assertEqual(sender_name_error(sender_type, name), code)

    def test_suggest_alphanumeric_sender(self):
        self.assertEqual(suggest_alphanumeric_sender("Société Générale & Fils"), "Societe")
        self.assertEqual(suggest_alphanumeric_sender("My Company"), "My Company")
        self.assertEqual(suggest_alphanumeric_sender("Ab Cd Ef Gh Ij"), "Ab Cd Ef Gh")
        self.assertEqual(suggest_alphanumeric_sender("Supercalifragilistic"), "Supercalifr")
        self.assertIsNone(suggest_alphanumeric_sender("1234 5678"))
        self.assertIsNone(suggest_alphanumeric_sender("東京"))
