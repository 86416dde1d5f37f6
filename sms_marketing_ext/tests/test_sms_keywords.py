from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools.sms_keywords import START, STOP, classify_inbound, normalize_sender_number
from .common import NUMBER


@tagged("at_install", "sms_tools", "sms_webhooks")
class TestSmsKeywords(BaseCase):
    """tools/sms_keywords.py: STOP / START replies and inbound sender numbers (no database)."""

    def test_classify_inbound(self):
        self.assertEqual((STOP, START), ("stop", "start"))
        for text in ("STOP", "stop", " Stop ", "STOP SMS", "stop sms please", "StopAll", "UNSUBSCRIBE", "cancel",
                     "End", "quit", "STOP.", "\tstop\n"):
            self.assertEqual(classify_inbound(text), "stop", text)
        for text in ("START", "start", " Unstop ", "UNSTOP now"):
            self.assertEqual(classify_inbound(text), "start", text)
        for text in ("", None, "   ", "Please stop", "stopping", "Hello", "STARTING", "non stop"):
            self.assertIsNone(classify_inbound(text), text)

    def test_normalize_sender_number(self):
        self.assertEqual(normalize_sender_number("+33 6 12 34 56 78"), NUMBER)
        self.assertEqual(normalize_sender_number("0033612345678"), NUMBER)
        self.assertIsNone(normalize_sender_number("0612345678"), "no country code: cannot tell")
        self.assertIsNone(normalize_sender_number("STOP"))
