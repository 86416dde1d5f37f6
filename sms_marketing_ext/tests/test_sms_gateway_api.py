from datetime import datetime

from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools.sms_gateway_api import (
    GatewayAccessError,
    GatewayError,
    gateway_error,
    parse_utc_datetime,
    sign,
    verify_signature,
)


@tagged("at_install", "sms_tools", "sms_gateway")
class TestSmsGatewayApiTools(BaseCase):
    """The pure helpers of tools/sms_gateway_api.py: callback signatures, error names, dates (no
    database; the client itself is tested against the local gateway in test_sms_gateway)."""

    def test_signature_helpers(self):
        body = b'{"uuid":"0123456789abcdef0123456789abcdef","state":"delivered","at":"2024-05-01T12:00:00Z"}'
        signature = sign("s3cret", body)
        self.assertRegex(signature, r"^[0-9a-f]{64}$")
        self.assertTrue(verify_signature("s3cret", body, signature))
        self.assertTrue(verify_signature("s3cret", body, signature.upper()))
        self.assertFalse(verify_signature("s3cret", body + b" ", signature))
        self.assertFalse(verify_signature("other", body, signature))
        self.assertFalse(verify_signature("s3cret", body, None))
        self.assertFalse(verify_signature("s3cret", body, ""))
        self.assertFalse(verify_signature("", body, sign("", body)), "no secret never verifies")
        self.assertFalse(verify_signature("s3cret", body, "é" * 64))

    def test_error_names(self):
        self.assertIsInstance(gateway_error("odoo.exceptions.AccessError", "bad"), GatewayAccessError)
        error = gateway_error("RateLimitError", "slow down")
        self.assertEqual((type(error), error.name, error.message), (GatewayError, "RateLimitError", "slow down"))

    def test_parse_utc_datetime(self):
        self.assertEqual(parse_utc_datetime("2024-05-01T12:00:00Z"), datetime(2024, 5, 1, 12))
        self.assertEqual(parse_utc_datetime("2024-05-01T14:00:00+02:00"), datetime(2024, 5, 1, 12))
        self.assertEqual(parse_utc_datetime("2024-05-01T12:00:00"), datetime(2024, 5, 1, 12))
        with self.assertRaises(ValueError):
            parse_utc_datetime("1 May")
