import doctest

from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools import sms_audience, sms_delivery, sms_gateway_api, sms_quiet_hours
from ..tools.sms_delivery import (
    CreditLedger,
    SmsMessage,
    backoff_seconds,
    batch_cost,
    covers,
    message_cost,
    trace_state_for_report,
    trace_state_for_send,
)

PRICES = {"FR": 0.045, "BE": 0.06}
DEFAULT_PRICE = 0.05


@tagged("at_install", "sms_delivery_tools")
class TestSmsDeliveryTools(BaseCase):
    """The pure rules of the send cron (``tools/sms_delivery.py``), the send window's check and
    the gateway errors' tree, without a database."""

    def test_doctests(self):
        for module in (sms_delivery, sms_quiet_hours, sms_audience):
            with self.subTest(module=module.__name__):
                result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
                self.assertGreater(result.attempted, 0, "the module has examples")
                self.assertEqual(result.failed, 0)

    def test_backoff_doubles_up_to_an_hour(self):
        waits = [backoff_seconds(attempts) for attempts in range(12)]
        self.assertEqual(waits[:4], [30, 60, 120, 240])
        self.assertEqual(waits[-1], sms_delivery.RETRY_MAX_SECONDS)
        self.assertEqual(waits, sorted(waits), "never shorter than the wait before")
        self.assertTrue(all(wait <= 3600 for wait in waits))

    def test_batch_cost(self):
        batch = [
            SmsMessage(1, "a" * 32, "+33612345678", "FR", 2, 0, 11),
            SmsMessage(2, "b" * 32, "+32470123456", "BE", 1, 0, 12),
            SmsMessage(3, "c" * 32, "+15555550100", "US", 3, 1, 13),
            SmsMessage(4, "d" * 32, "+999", None, 1, 0, 14),
        ]
        cost = batch_cost([(message.parts, message.country) for message in batch], PRICES, DEFAULT_PRICE)
        self.assertAlmostEqual(cost, 2 * 0.045 + 0.06 + 3 * 0.05 + 0.05)
        self.assertEqual(
            cost,
            sum(message_cost(message.parts, message.country, PRICES, DEFAULT_PRICE) for message in batch),
            "a batch costs exactly the sum of its messages",
        )
        self.assertEqual(message_cost(4, "BE", PRICES, DEFAULT_PRICE), 4 * 0.06)
        self.assertEqual(batch_cost([], PRICES, DEFAULT_PRICE), 0)

    def test_claimed_row_reads_by_name(self):
        row = (7, "e" * 32, "+33612345678", "FR", 2, 3, 42)
        message = SmsMessage._make(row)
        self.assertEqual(
            (message.trace_id, message.uuid, message.number, message.country, message.parts,
             message.attempts, message.res_id),
            row,
        )

    def test_covers(self):
        self.assertTrue(covers(None, 10**9), "an unknown balance is not checked")
        self.assertTrue(covers(0.3, 0.1 + 0.2), "float noise does not pause a mailing")
        self.assertTrue(covers(1.0, 1.0))
        self.assertFalse(covers(0.99, 1.0))
        self.assertFalse(covers(0.0, 0.01))

    def test_credit_ledger(self):
        ledger = CreditLedger()
        self.assertNotIn(1, ledger)
        self.assertIsNone(ledger.balance(1))
        ledger.record(1, 1.0)
        ledger.record(2, None)  # the gateway could not tell
        self.assertIn(1, ledger)
        self.assertIn(2, ledger, "an unknown balance is recorded: it is not asked again in the run")
        ledger.spend(1, 0.25)
        ledger.spend(2, 0.25)
        self.assertEqual(ledger.balance(1), 0.75)
        self.assertIsNone(ledger.balance(2))
        self.assertTrue(ledger.covers(1, 0.75))
        self.assertFalse(ledger.covers(1, 0.76))
        self.assertTrue(ledger.covers(2, 10**9))
        ledger.record(1, 5.0)
        self.assertEqual(ledger.balance(1), 5.0, "a fresh balance from the gateway replaces the local one")
        self.assertEqual(CreditLedger({3: 2.0}).balance(3), 2.0)

    def test_gateway_states(self):
        self.assertEqual(trace_state_for_send("accepted"), ("pending", False))
        self.assertEqual(trace_state_for_send("insufficient_credit"), ("outgoing", "sms_credit"))
        self.assertEqual(trace_state_for_send("wrong_number_format"), ("error", "sms_number_format"))
        self.assertEqual(trace_state_for_send("invalid_sender"), ("error", "sms_sender_invalid"))
        self.assertEqual(trace_state_for_send("server_error"), ("outgoing", "sms_server"))
        self.assertEqual(trace_state_for_send("something_new"), ("error", "unknown"))
        self.assertEqual(set(sms_delivery.GATEWAY_SEND_STATE), set(sms_gateway_api.SEND_STATES),
                         "every send state of the protocol has its trace state")
        self.assertEqual(set(sms_delivery.GATEWAY_REPORT_STATE), set(sms_gateway_api.REPORT_STATES),
                         "every report state of the protocol has its trace state")
        self.assertEqual(trace_state_for_report("delivered"), ("sent", False))
        self.assertEqual(trace_state_for_report("undelivered"), ("error", "sms_not_delivered"))
        self.assertEqual(trace_state_for_report("expired"), ("error", "sms_expired"))
        self.assertEqual(trace_state_for_report("rejected"), ("bounce", "sms_rejected"))
        with self.assertRaises(KeyError):
            trace_state_for_report("accepted")

    def test_retryable_failures(self):
        for failure in ("sms_server", "sms_acc", "sms_credit"):
            self.assertIn(failure, sms_delivery.RETRYABLE_FAILURES)
        for failure in ("sms_number_format", "sms_sender_invalid", "sms_not_delivered", "sms_blacklist"):
            self.assertNotIn(failure, sms_delivery.RETRYABLE_FAILURES, "it would fail the same way again")

    def test_send_window(self):
        for start, end in ((8, 21), (22, 6), (0, 24), (0, 0.25), (23.75, 24)):
            with self.subTest(start=start, end=end):
                self.assertIsNone(sms_quiet_hours.window_error(start, end))
        for start, end in ((-1, 8), (24, 8), (8, 0), (8, 24.5)):
            with self.subTest(start=start, end=end):
                self.assertEqual(sms_quiet_hours.window_error(start, end), sms_quiet_hours.WINDOW_OUT_OF_RANGE)
        self.assertEqual(sms_quiet_hours.window_error(9, 9), sms_quiet_hours.WINDOW_EMPTY)

    def test_gateway_errors_are_one_tree(self):
        transient = sms_gateway_api.GatewayTransientError("no answer within 10 seconds", reason="timeout")
        self.assertIsInstance(transient, sms_gateway_api.GatewayError)
        self.assertEqual(str(transient), "no answer within 10 seconds", "its text is the message alone")
        self.assertEqual((transient.reason, transient.status_code), ("timeout", None))
        refused = sms_gateway_api.gateway_error("AccessError", "bad token")
        self.assertNotIsInstance(refused, sms_gateway_api.GatewayTransientError)
        self.assertEqual(str(refused), "AccessError: bad token")
        self.assertIsInstance(sms_gateway_api.GatewayConfigurationError(message="no URL"), sms_gateway_api.GatewayError)
