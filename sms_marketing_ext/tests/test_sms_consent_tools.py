from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools.sms_consent import mask_number, parse_blacklist_csv


@tagged("at_install", "sms_tools", "sms_consent")
class TestSmsConsentTools(BaseCase):
    """tools/sms_consent.py: masked numbers and blacklist CSV files (no database)."""

    def test_mask_number(self):
        self.assertEqual(mask_number("+33612345678"), "+33 ••••••• 78")
        self.assertEqual(mask_number("+3247012345"), "+32 •••••• 45")
        self.assertEqual(mask_number(""), "")

    def test_parse_blacklist_csv(self):
        accepted, rejected = parse_blacklist_csv("+33612345678,\"STOP, by mail\"\n0612345679\n", "FR")
        self.assertEqual(accepted, [(1, "+33612345678", "STOP, by mail"), (2, "+33612345679", "")])
        self.assertEqual(rejected, [])
        accepted, rejected = parse_blacklist_csv("0612345679\n", None)
        self.assertEqual((accepted, rejected), ([], [(1, "0612345679", "no_country", None)]))
