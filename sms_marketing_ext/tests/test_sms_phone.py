import doctest
import itertools
import random

import phonenumbers

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tests.common import BaseCase

from odoo.addons.phone_validation.tools import phone_validation

from ..tools import sms_phone
from ..tools.sms_phone import (
    INVALID,
    MISSING,
    MOBILE,
    NO_COUNTRY,
    NOT_A_NUMBER,
    NOT_MOBILE,
    NOT_POSSIBLE,
    POSSIBLE,
    UNKNOWN_PREFIX,
    VALID,
    Phone,
    normalize,
    normalize_sms,
)

# Values as people write them, in the countries of the tests, for the comparison with stock.
WRITTEN = [
    "0612345678", "06 12 34 56 78", "+33612345678", "+33 (0)6 12 34 56 78", "0033612345678", "0033 6 12 34 56 78",
    "33612345678", "0000033612345678", " 0612345678 ", "\t0612345678", "612345678", "06 12", "06.12.34.56.78",
    "hello", "12", "", "+999 123 456", "+33 1", "tel:+33612345678", "(+33) 6 12 34 56 78",
    "0470 12 34 56", "+32 470 12 34 56", "347 123 4567", "+39 347 123 4568", "00393471234567", "3934712345678",
    "(201) 555-0123", "001 201 555 0123", "12015550123", "+12015550123", "+1 555", "2015550123",
    "+44 7911 123456", "07911 123456", "0049 1512 3456789", "4915123456789", "01512 3456789", "+86 138 0013 8000",
]  # fmt: skip
REGIONS = [None, "FR", "BE", "IT", "US", "GB", "DE"]


def stock_e164(value, region):
    """What stock Odoo stores in phone_sanitized for ``value`` read in ``region``."""
    try:
        parsed = phone_validation.phone_parse(value, region)
    except (UserError, phonenumbers.NumberParseException):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@tagged("at_install", "sms_phone")
class TestSmsPhone(BaseCase):
    def test_doctests(self):
        results = doctest.testmod(sms_phone)
        self.assertGreater(results.attempted, 5)
        self.assertEqual(results.failed, 0)

    def test_stock_rule_is_phone_sanitized(self):
        """The default rule finds the number stock stores in phone_sanitized, whatever is written."""
        rng = random.Random(20261201)  # noqa: S311 (a reproducible sample, not a secret)
        values = list(WRITTEN)
        for _index in range(1500):
            digits = "".join(rng.choice("0123456789") for _digit in range(rng.randint(3, 15)))
            values.append(rng.choice(["", "+", "00", "0", "+1 "]) + digits)
        accepted = 0
        for value, region in itertools.product(values, REGIONS):
            expected = stock_e164(value, region)
            with self.subTest(value=value, region=region):
                self.assertEqual(normalize(value, region).number, expected)
            accepted += bool(expected)
        self.assertGreater(accepted, 500, "the sample holds many valid numbers, not only rejections")

    def test_accepted(self):
        self.assertEqual(normalize("06 12 34 56 78", "fr"), Phone("+33612345678", None, 33, "FR"))
        self.assertEqual(normalize("(201) 555-0123", "US"), Phone("+12015550123", None, 1, "US"))
        self.assertEqual(normalize("+32 470 12 34 56", "FR").number, "+32470123456", "the prefix wins")
        self.assertEqual(normalize("0033612345678", "US").number, "+33612345678", "too long: read with +")
        self.assertEqual(normalize("0033612345678", None, VALID).number, "+33612345678")

    def test_reasons(self):
        cases = [
            (None, "FR", MISSING),
            ("  ", "FR", MISSING),
            ("hello", "FR", NOT_A_NUMBER),
            ("hello", None, NOT_A_NUMBER),
            ("12", "FR", NOT_A_NUMBER),
            ("0612345678", None, NO_COUNTRY),
            ("+999 123 456", "FR", UNKNOWN_PREFIX),
            ("00999 123 456", "FR", UNKNOWN_PREFIX),
            ("06 12", "FR", NOT_POSSIBLE),
            ("0612345678", "BE", INVALID),
        ]
        for value, region, reason in cases:
            with self.subTest(value=value, region=region):
                self.assertEqual(normalize(value, region).reason, reason)
                self.assertEqual(normalize(value, region).number is None, reason is not None)

    def test_rejected_region(self):
        """A rejected number says the country it was read in, for messages like "invalid for France"."""
        self.assertEqual(normalize("0612345678", "BE"), Phone(None, INVALID, 32, "BE"))
        self.assertEqual(normalize("+33 6 12", "BE"), Phone(None, NOT_POSSIBLE, 33, "FR"))
        self.assertEqual(normalize("+1 555", None), Phone(None, NOT_POSSIBLE, 1, "US"))
        self.assertEqual(normalize("hello", "it"), Phone(None, NOT_A_NUMBER, None, "IT"))

    def test_valid_rule(self):
        """Valid numbers only: the reading of the blacklist import."""
        self.assertEqual(normalize("0033612345678", "FR", VALID).number, "+33612345678")
        self.assertEqual(normalize("+33612345678", None, VALID).number, "+33612345678")
        self.assertEqual(normalize("0612345679", None, VALID).reason, NO_COUNTRY)
        self.assertEqual(normalize("4915123456789", "FR").number, "+4915123456789", "too long: read with +")
        self.assertEqual(normalize("4915123456789", "FR", VALID).reason, NOT_POSSIBLE, "no second reading")
        self.assertEqual(normalize("+1 555", "FR", VALID).reason, NOT_POSSIBLE)
        self.assertEqual(normalize("not a number", "FR", VALID).reason, NOT_A_NUMBER)

    def test_possible_rule(self):
        """Inbound senders: the country code is required, a possible length is enough."""
        self.assertEqual(normalize("+33 6 12 34 56 78", rule=POSSIBLE).number, "+33612345678")
        self.assertEqual(normalize("0033612345678", rule=POSSIBLE).number, "+33612345678")
        self.assertEqual(normalize("+1 555 0100", rule=POSSIBLE).number, "+15550100", "possible, not valid")
        self.assertIsNone(normalize("+1 555 0100").number, "the stock rule wants a valid number")
        self.assertEqual(normalize("0612345678", rule=POSSIBLE).reason, NO_COUNTRY)
        self.assertEqual(normalize("STOP", rule=POSSIBLE).reason, NOT_A_NUMBER)
        self.assertEqual(normalize(12345, rule=POSSIBLE).reason, MISSING, "not text")

    def test_mobile_rule(self):
        self.assertEqual(normalize("+33 6 12 34 56 78", rule=MOBILE).number, "+33612345678")
        self.assertEqual(normalize("+1 201 555 0123", rule=MOBILE).number, "+12015550123", "fixed line or mobile")
        self.assertEqual(normalize("+33 1 23 45 67 89", rule=MOBILE).reason, NOT_MOBILE)
        self.assertEqual(normalize("+33 6 12", rule=MOBILE).reason, NOT_POSSIBLE)

    def test_normalize_sms_is_both_rules(self):
        """The one-parse shortcut of the imports gives exactly what the two rules give, on written
        forms, random digits and numbers of many countries, mobile and fixed, in many regions."""
        rng = random.Random(20261204)  # noqa: S311 (a reproducible sample, not a secret)
        values = [*WRITTEN, " +33 6 12 34 56 78 ", "+ 33 1 23 45 67 89", "\t0612345678", "0033612345678"]
        for _index in range(1500):
            digits = "".join(rng.choice("0123456789") for _digit in range(rng.randint(3, 15)))
            values.append(rng.choice(["", "+", "00", "0", "+1 ", " +33", "+44 7", "+39 3", "06", "01"]) + digits)
        for region in ("FR", "GB", "IT", "US", "DE", "BE", "CH"):
            for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
                example = phonenumbers.example_number_for_type(region, kind)
                if example:
                    values.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL))
                    values.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
        # Every region's example numbers of every type, in international form (calling codes shared
        # by several regions, non-geographic ones...), and with a digit changed (often invalid).
        international = []
        regions = sorted(phonenumbers.SUPPORTED_REGIONS)
        for region, kind in itertools.product(regions, phonenumbers.PhoneNumberType.values()):
            example = phonenumbers.example_number_for_type(region, kind)
            if example:
                text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                international += [text, text[:-1] + str((int(text[-1]) + 1) % 10), text[:-2]]
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
            example = phonenumbers.example_number_for_non_geo_entity(code)
            if example:
                international.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
        for value in international:
            stock = normalize(value)
            expected_not_mobile = bool(stock.number) and normalize(value, rule=MOBILE).reason == NOT_MOBILE
            with self.subTest(value=value):
                self.assertEqual(normalize_sms(value), (stock, expected_not_mobile))
        mobile = not_mobile = 0
        for value, region in itertools.product(values, (*REGIONS, "fr")):
            stock = normalize(value, region)
            expected_not_mobile = bool(stock.number) and normalize(value, region, rule=MOBILE).reason == NOT_MOBILE
            with self.subTest(value=value, region=region):
                self.assertEqual(normalize_sms(value, region), (stock, expected_not_mobile))
            mobile += bool(stock.number) and not expected_not_mobile
            not_mobile += expected_not_mobile
        self.assertGreater(mobile, 100, "the sample holds many mobile numbers")
        self.assertGreater(not_mobile, 100, "and many valid numbers that are not mobile")
