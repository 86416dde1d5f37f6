from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools import sms_audience


@tagged("at_install", "sms_tools", "sms_audience")
class TestSmsAudienceTools(BaseCase):
    """tools/sms_audience.py: exclusion reasons and calling codes (no database)."""

    def test_calling_codes_are_a_prefix_code(self):
        codes = sms_audience.calling_codes()
        by_code = dict(codes)
        self.assertEqual(len(by_code), len(codes), "one region per calling code")
        self.assertEqual(
            {code: by_code[code] for code in ("1", "7", "33", "32", "39", "44", "352")},
            {"1": "US", "7": "RU", "33": "FR", "32": "BE", "39": "IT", "44": "GB", "352": "LU"},
            "codes shared by several regions give the main one",
        )
        self.assertTrue(all(code.isdigit() and 1 <= len(code) <= 3 for code in by_code))
        for code in by_code:
            with self.subTest(code=code):
                self.assertFalse([other for other in by_code if other != code and other.startswith(code)],
                                 "no calling code is the beginning of another")
        self.assertIs(sms_audience.calling_codes(), codes, "computed once")

    def test_summary_keys(self):
        reasons = (sms_audience.REASON_MISSING, sms_audience.REASON_INVALID, sms_audience.REASON_BLACKLIST,
                   sms_audience.REASON_OPTOUT, sms_audience.REASON_DUPLICATE, sms_audience.REASON_CAPPED)
        self.assertEqual(set(sms_audience.SUMMARY_KEYS), set(reasons))
        self.assertEqual(sorted(sms_audience.SUMMARY_KEYS.values()),
                         ["blacklisted", "capped", "duplicates", "invalid", "missing", "opted_out"])
