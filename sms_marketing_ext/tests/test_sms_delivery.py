import time

from freezegun import freeze_time

from odoo.tests import tagged
from odoo.tests.common import TransactionCase
from odoo.tools import SQL

from ..tools import sms_tokens
from ..tools.sms_delivery import CreditLedger, SmsMessage
from .common import (
    NUMBER_BE,
    PRICES,
    SHORT_BASE,
    LocalGatewayMixin,
    MockSmsGateway,
    SmsMailingMixin,
    SmsMarketingUsersMixin,
    SmsSenderMixin,
)

# 23 French customers (+33 6 12 34 00 00 to +33 6 12 34 00 22), a Belgian, and a Twin with the first
# customer's number: 24 numbers to send to, one duplicate.
FRENCH = [f"+336123400{index:02d}" for index in range(23)]


class SmsDeliveryCase(SmsMarketingUsersMixin, SmsSenderMixin, SmsMailingMixin, TransactionCase):
    """The send cron's fixture: a default gateway (batches of 10), a default sender, 25 contacts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env.company.country_id = cls.env.ref("base.fr")
        cls.env.company.sms_short_link_base = SHORT_BASE
        cls.gateway = cls._create_sms_gateway("Local", batch_size=10, is_default=True, max_attempts=30)
        cls.sender = cls._create_sender("MyShop", is_default=True)
        cls.mailing_list = cls._create_sms_list("Customers", [
            *((f"Customer {index}", f"+33 6 12 34 {index // 100:02d} {index % 100:02d}") for index in range(23)),
            ("Belgian", "+32 470 12 34 56"),
            ("Twin", "+33 6 12 34 00 00"),
        ])

    def _mailing(self, body="Spring sale -20% at https://shop.example.com/sale?x=1 today", **vals):
        vals = {"subject": "Spring sale", "sms_allow_unsubscribe": True, "sms_class": "flash", **vals}
        return self._create_sms_mailing(body, self.mailing_list, user=self.user_marketing, **vals)

    def _run_cron_until_done(self, mailing, runs=40):
        for _run in range(runs):
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            if mailing.state == "done" or mailing.sms_waiting_credit:
                return
            # Time passes: retries scheduled by the backoff are due.
            self.env.cr.execute(SQL(
                "UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s", mailing.id
            ))
        self.fail(f"mailing still {mailing.state} after {runs} cron runs")

    @staticmethod
    def _sent_to_all(status="pending"):
        """The traces of a complete send to the list: every number once, the Twin a duplicate."""
        expected = {number: status for number in FRENCH[1:]}
        expected[FRENCH[0]] = [status, ("cancel", "sms_duplicate")]
        expected[NUMBER_BE] = status
        return expected


@tagged("post_install", "-at_install", "sms_delivery")
class TestSmsDelivery(MockSmsGateway, SmsDeliveryCase):
    """The send cron's logic (retries, credit, results, scheduling, quiet hours, test sends), the
    gateway answered at the HTTP boundary by MockSmsGateway."""

    def test_retries_exhausted_fail_as_server_error(self):
        self.gateway.max_attempts = 2
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway(sim_error="transient") as gateway:
            mailing.action_put_in_queue()
            self._run_cron_until_done(mailing)
            failed = self._sms_traces(mailing, "error")
            self.assertEqual(len(failed), 24)
            self.assertEqual(set(failed.mapped("failure_type")), {"sms_server"})
            self.assertEqual(set(failed.mapped("sms_attempts")), {2})
            self.assertIn("503", failed[0].failure_reason)
            self.assertEqual(gateway.messages, {})
            # The gateway is back: Retry (stock's button) sends the failed ones, same uuids.
            gateway.sim_error = None
            uuids = set(failed.mapped("sms_uuid"))
            mailing.action_retry_failed()
            self.assertEqual(mailing.state, "sending")
            self._run_cron_until_done(mailing)
        self.assertEqual(mailing.state, "done")
        self.assertEqual(set(self._sms_traces(mailing, "pending").mapped("sms_uuid")), uuids)
        self.assertEqual(set(gateway.messages), uuids)
        self.assertSmsTraces(mailing, self._sent_to_all(), content="Hello")

    def test_server_error_and_lost_answer_retried_once(self):
        """One number's message fails on the gateway's side once; a whole batch is taken by the gateway
        but its answer is lost: both are retried with their uuids, and each is charged once."""
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway(nbr_t_error={FRENCH[3]: ["server_error", "accepted"],
                                              NUMBER_BE: ["lost", "accepted"]}) as gateway:
            mailing.action_put_in_queue()
            self._run_cron_until_done(mailing)
        self.assertEqual(mailing.state, "done")
        self.assertSmsTraces(mailing, self._sent_to_all(), content="Hello")
        traces = self._sms_traces(mailing, "pending")
        by_number = {trace.sms_number: trace for trace in traces}
        self.assertEqual(by_number[FRENCH[3]].sms_attempts, 2)
        self.assertEqual(by_number[NUMBER_BE].sms_attempts, 2)
        self.assertAlmostEqual(by_number[NUMBER_BE].sms_credits, PRICES["BE"], msg="what the lost answer charged")
        self.assertEqual(gateway.messages[by_number[NUMBER_BE].sms_uuid]["presented_count"], 2)
        self.assertAlmostEqual(sum(traces.mapped("sms_credits")), 23 * PRICES["FR"] + PRICES["BE"])
        self.assertAlmostEqual(gateway.balance, 1000 - 23 * PRICES["FR"] - PRICES["BE"])

    def test_gateway_refuses_part_of_a_batch_for_credit(self):
        """The gateway, not our estimate, runs out (another campaign spent the credit since our
        balance was read): its insufficient_credit answers pause the mailing, nothing is lost,
        and those messages go out after the top-up with the same uuids."""
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway(balance=0.05 * 5) as gateway:
            mailing.with_context(sms_ext_cost_confirmed=True).action_put_in_queue()
            self.env["mailing.mailing"]._cron_sms_send(time_budget=5)  # materialises; then pauses (0.25 < 0.5)
            self.assertTrue(mailing.sms_waiting_credit)
            self.assertFalse([request for request in gateway.requests if request["method"] == "send"])
            mailing.action_sms_resume()
            stale_ledger = CreditLedger({self.gateway.id: 1000.0})
            self.assertTrue(mailing._sms_send_batch(stale_ledger))
            self.assertTrue(mailing.sms_waiting_credit)
            accepted = self._sms_traces(mailing, "pending")
            refused = self._sms_traces(mailing, "outgoing").filtered(lambda t: t.failure_type == "sms_credit")
            self.assertEqual(len(accepted) + len(refused), 10, "one batch of 10")
            self.assertIn(len(accepted), (4, 5), "0.25 credits pay 5 French parts, or 3 and a Belgian one")
            # The gateway took the messages in order until one could not be paid, then refused the rest.
            [send] = [request for request in gateway.requests if request["method"] == "send"]
            sent_uuids = [message["uuid"] for message in send["params"]["messages"]]
            self.assertEqual([gateway.messages[uuid]["state"] for uuid in sent_uuids],
                             ["accepted"] * len(accepted) + ["insufficient_credit"] * len(refused))
            self.assertEqual(set(accepted.mapped("sms_uuid")), set(sent_uuids[:len(accepted)]))
            self.assertAlmostEqual(gateway.balance, 0.25 - sum(accepted.mapped("sms_credits")))
            self.assertLess(gateway.balance, 0.05, "not even one more French part")
            refused_uuids = set(refused.mapped("sms_uuid"))
            gateway.balance += 10  # top-up
            self._run_cron_until_done(mailing)
        self.assertEqual(mailing.state, "done")
        self.assertEqual(len(self._sms_traces(mailing, "pending")), 24)
        self.assertLessEqual(refused_uuids, set(self._sms_traces(mailing, "pending").mapped("sms_uuid")))
        self.assertEqual(len(gateway.messages), 24)
        self.assertSmsGatewaySent([*FRENCH, NUMBER_BE], exact=True)
        self.assertSmsTraces(mailing, self._sent_to_all())

    def test_invalid_sender_and_number_format(self):
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway(senders=["Other"]):
            mailing.action_put_in_queue()
            self._run_cron_until_done(mailing)
        failed = self._sms_traces(mailing, "error")
        self.assertEqual(len(failed), 24)
        self.assertEqual(set(failed.mapped("failure_type")), {"sms_sender_invalid"})
        self.assertIn("MyShop", failed[0].failure_reason)
        # A number the gateway finds malformed fails for good; the others go out.
        other = self._mailing(body="Hello again")
        with self.mockSmsGateway(nbr_t_error={FRENCH[5]: "wrong_number_format"}):
            other.action_put_in_queue()
            self._run_cron_until_done(other)
        expected = self._sent_to_all()
        expected[FRENCH[5]] = ("error", "sms_number_format")
        self.assertSmsTraces(other, expected)

    def test_scheduled_mailing_waits_for_its_time(self):
        mailing = self._mailing(body="Hello", schedule_type="scheduled", schedule_date="2999-01-01 10:00:00")
        with self.mockSmsGateway() as gateway:
            mailing.action_schedule()
            self.assertEqual(mailing.state, "in_queue")
            cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_send")
            triggers = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
            self.assertIn("2999-01-01 10:00:00", [str(trigger.call_at) for trigger in triggers])
            self.env["mailing.mailing"]._cron_sms_send(time_budget=5)
        self.assertEqual(mailing.state, "in_queue")
        self.assertFalse(self._sms_traces(mailing))
        self.assertFalse([request for request in gateway.requests if request["method"] == "send"])

    def test_test_send(self):
        mailing = self._mailing(body="Hi {{ object.name }}, see https://shop.example.com/new")
        with self.mockSmsGateway() as gateway:
            wizard = self.env["mailing.sms.test"].with_user(self.user_marketing).create({
                "mailing_id": mailing.id,
                "numbers": "+33 6 99 99 99 01, 06 99 99 99 02;\n+33699999901\nnot-a-number",
            })
            action = wizard.action_send_sms()
            self.assertIn("not-a-number", action["params"]["message"])
            self.assertSmsGatewaySent(["+33699999901", "+33699999902"], exact=True, sender="MyShop")
            content = self._sms_gateway_sent()[0]["content"]
            self.assertTrue(content.startswith("Hi "), content)
            self.assertNotIn("{{", content)
            self.assertRegex(content, r"https://go\.example\.com/r/\w+/[\w-]{12}\n")
            self.assertIn("https://go.example.com/sms/o/", content)
            log = mailing.message_ids[0]
            self.assertIn("Test SMS sent to +33699999901", log.body)
            # Nothing was queued: no trace, and the cron sends nothing.
            self.assertFalse(self._sms_traces(mailing))
            self.env["mailing.mailing"]._cron_sms_send(time_budget=5)
        self.assertEqual(len(gateway.messages), 2)

    def test_dynamic_placeholders_rendered_per_recipient(self):
        mailing = self._mailing(body="Hi {{ object.name }}!", sms_allow_unsubscribe=False,
                                sms_sender_id=self._create_sender("36180", sender_type="short_number").id)
        with self.mockSmsGateway():
            mailing.action_put_in_queue()
            self._run_cron_until_done(mailing)
        contents = {message["number"]: message["content"] for message in self._sms_gateway_sent()}
        self.assertEqual(contents[NUMBER_BE], "Hi Belgian!")
        self.assertEqual(contents[FRENCH[7]], "Hi Customer 7!")
        self.assertEqual(len(contents), 24)
        self.assertSmsTraces(mailing, self._sent_to_all())

    def test_early_and_repeated_delivery_reports(self):
        """A report can arrive before the send call returns, and more than once."""
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway():
            mailing.action_put_in_queue()
            self.env["mailing.mailing"]._cron_sms_send(time_budget=0)  # materialise only
        trace = self._sms_traces(mailing, "outgoing")[0]
        Trace = self.env["mailing.trace"]
        self.assertTrue(Trace._sms_apply_delivery_report(trace.sms_uuid, "delivered"))
        self.assertEqual(trace.trace_status, "sent")
        # The send result that follows (accepted) does not downgrade the delivered status.
        batch = [SmsMessage(trace.id, trace.sms_uuid, trace.sms_number, "FR", 1, 0, trace.res_id)]
        mailing._sms_record_results(batch, {trace.sms_uuid: {"state": "accepted", "credits": 0.05}},
                                    self.gateway, CreditLedger())
        self.assertEqual((trace.trace_status, trace.sms_credits), ("sent", 0.05))
        # Repeats are harmless; an older report does not overwrite a newer one.
        self.assertTrue(Trace._sms_apply_delivery_report(trace.sms_uuid, "delivered"))
        self.assertTrue(Trace._sms_apply_delivery_report(trace.sms_uuid, "undelivered", "2000-01-01 00:00:00"))
        self.assertEqual(trace.trace_status, "sent")
        self.assertFalse(Trace._sms_apply_delivery_report("0" * 32, "delivered"), "unknown uuid")

    def test_cost_estimate_and_schedule_warning(self):
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway() as gateway:
            mailing.action_sms_estimate_cost()
            self.assertAlmostEqual(mailing.sms_cost_estimate, 23 * 0.05 + 0.08)
            self.assertTrue(mailing.sms_cost_covered)
            self.assertAlmostEqual(mailing.sms_cost_balance, 1000)
            gateway.balance = 1
            mailing.write({"schedule_type": "scheduled", "schedule_date": "2999-01-01 10:00:00"})
            warning = mailing.action_schedule()
            audience = self.env["mailing.sms.audience"].browse(warning["res_id"])
            self.assertEqual(audience.confirm_action, "schedule")
            self.assertEqual(mailing.state, "draft")
            audience.action_confirm()
        self.assertEqual(mailing.state, "in_queue")

    def test_quiet_hours(self):
        """Company window 08:00-21:00 in the recipient's local time: at 12:00 UTC Paris (13:00)
        receives at once, New York (07:00) waits until 13:00 UTC."""
        new_york = self.env["mailing.contact"].create(
            {"name": "New Yorker", "mobile": "+1 212 555 0123", "list_ids": [(4, self.mailing_list.id)]}
        )
        self.env.company.write({"sms_quiet_hours": True, "sms_send_window_start": 8, "sms_send_window_end": 21})
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway():
            with freeze_time("2026-01-15 12:00:00"):
                mailing.action_put_in_queue()
                self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
                waiting = self._sms_traces(mailing, "outgoing")
                self.assertEqual(waiting.res_id, new_york.id)
                self.assertEqual(str(waiting.sms_next_attempt), "2026-01-15 13:00:00")
                self.assertEqual(waiting.sms_attempts, 0, "waiting for the window is not a failed attempt")
                self.assertEqual(len(self._sms_traces(mailing, "pending")), 24)
                self.assertNotIn("+12125550123", [message["number"] for message in self._sms_gateway_sent()])
                cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_send")
                self.assertIn("2026-01-15 13:00:00", [
                    str(t.call_at) for t in self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
                ])
            with freeze_time("2026-01-15 13:05:00"):
                self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            self.assertEqual(mailing.state, "done")
            self.assertSmsGatewaySent(["+12125550123"])
            # The mailing can override the company: send at any hour.
            other = self._mailing(body="Night owls", sms_quiet_hours_mode="off")
            with freeze_time("2026-01-15 03:00:00"):
                other.action_put_in_queue()
                self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        self.assertEqual(other.state, "done")
        self.assertEqual(len(self._sms_traces(other, "pending")), 25)

    def test_throughput_limit(self):
        """20 messages per second: 24 messages in batches of 10 take at least 1.2 s (a lower
        bound only; the speed target itself is measured in benchmarks/)."""
        self.gateway.throughput = 20
        mailing = self._mailing(body="Hello")
        with self.mockSmsGateway():
            mailing.action_put_in_queue()
            self.env["mailing.mailing"]._cron_sms_send(time_budget=0)  # materialise only
            started = time.monotonic()
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            elapsed = time.monotonic() - started
        self.assertEqual(mailing.state, "done")
        self.assertGreaterEqual(elapsed, 1.15, "the gateway's throughput limit was not respected")

    def test_claim_continues_after_the_last_claimed_trace(self):
        """The claim continues after the last trace it took (it does not walk the index entries of
        the traces sent before), and a trace below that id that is due again is claimed when the
        claim reaches the mailing's end: no message is lost."""
        mailing = self._mailing(body="Hello")
        mailing.action_put_in_queue()
        self.env["mailing.mailing"]._cron_sms_send(time_budget=0)  # materialise only
        ids = self._sms_traces(mailing, "outgoing").sorted("id").ids
        self.assertEqual(len(ids), 24)

        def sent(batch):
            self.env.cr.execute(SQL("UPDATE mailing_trace SET trace_status = 'pending' WHERE id = ANY(%s)",
                                    [message.trace_id for message in batch]))

        positions = {}
        first = mailing._sms_claim_batch(10, positions)
        self.assertEqual([message.trace_id for message in first], ids[:10])
        self.assertEqual(positions, {mailing.id: ids[9]})
        sent(first)
        # A message of the first batch is due again (its worker died before committing, a retry...).
        self.env.cr.execute(SQL("UPDATE mailing_trace SET trace_status = 'outgoing' WHERE id = %s", ids[2]))
        second = mailing._sms_claim_batch(10, positions)
        self.assertEqual([message.trace_id for message in second], ids[10:20], "continues after the last id")
        self.assertEqual(positions, {mailing.id: ids[19]})
        sent(second)
        third = mailing._sms_claim_batch(10, positions)
        self.assertEqual([message.trace_id for message in third], [*ids[20:], ids[2]],
                         "at the end, the claim starts over and takes the message due again")
        self.assertEqual(positions, {mailing.id: 0})
        sent(third)
        self.assertFalse(mailing._sms_claim_batch(10, positions))
        self.env.cr.execute(SQL("SELECT current_setting('enable_sort')"))
        self.assertEqual(self.env.cr.fetchone()[0], "on", "the claim's planner setting does not outlive it")
        # Without positions (a single batch, the test send...): from the first trace, as before.
        self.env.cr.execute(SQL("UPDATE mailing_trace SET trace_status = 'outgoing' WHERE id = ANY(%s)",
                                [ids[5], ids[15]]))
        self.assertEqual([message.trace_id for message in mailing._sms_claim_batch(10)], [ids[5], ids[15]])


@tagged("post_install", "-at_install", "sms_delivery")
class TestSmsDeliveryLocalGateway(LocalGatewayMixin, SmsDeliveryCase):
    """The send cron end to end against the project's real local gateway (an HTTP server in a
    subprocess): what reaches it, what it charges, its faults and its credit."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._start_local_gateway("--report-delay", "3600", "--seed", "7")
        cls.gateway.base_url = cls.gateway_url

    def setUp(self):
        super().setUp()
        # One gateway account per test: what it received is this test's alone.
        self.token = f"tok_{self._testMethodName}"
        self._gateway_create_account(self.token, 1000, price=0.05, country_prices=PRICES)
        self.gateway.account_token = self.token

    def _received(self):
        """What the gateway stored for our account, by uuid."""
        return {message["uuid"]: message for message in self._gateway_admin(f"/_admin/messages?token={self.token}")}

    def test_send_happy_path(self):
        mailing = self._mailing()
        mailing.action_put_in_queue()
        self.assertEqual(mailing.state, "in_queue")
        cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_send")
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]), "Send triggers the cron")
        self._run_cron_until_done(mailing)
        self.assertEqual(mailing.state, "done")
        sent = self._sms_traces(mailing, "pending")
        self.assertEqual(len(sent), 24, "25 contacts, one duplicate number")
        self.assertEqual(self._sms_traces(mailing, "cancel").failure_type, "sms_duplicate")
        self.assertSmsTraces(mailing, self._sent_to_all())
        received = self._received()
        self.assertEqual(set(received), set(sent.mapped("sms_uuid")), "every uuid reached the gateway")
        self.assertTrue(all(message["presented_count"] == 1 for message in received.values()))
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        for trace in sent:
            message = received[trace.sms_uuid]
            self.assertEqual(message["number"], trace.sms_number)
            self.assertEqual(message["sender"], "MyShop")
            self.assertEqual(message["sms_class"], "flash")
            content = message["content"]
            # The counter counted exactly what was sent.
            self.assertEqual(len(content), mailing.sms_length, content)
            link_token = sms_tokens.make_token(secret, "link", trace.id)
            self.assertIn("https://go.example.com/r/", content)
            self.assertIn(f"/{link_token} today", content)
            self.assertIn(f"https://go.example.com/sms/o/{sms_tokens.make_token(secret, 'optout', trace.id)}",
                          content)
            self.assertNotIn("shop.example.com", content)
            price = PRICES[trace.sms_country_code]
            self.assertAlmostEqual(trace.sms_credits, price * trace.sms_parts)
        self.assertEqual(sorted(set(sent.mapped("sms_country_code"))), ["BE", "FR"])
        stats = self._gateway_admin(f"/_admin/stats?token={self.token}")
        self.assertAlmostEqual(stats["credits_charged"], sum(sent.mapped("sms_credits")))
        # The link tracker exists once, with the mailing's UTM values.
        tracker = self.env["link.tracker"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(tracker.url, "https://shop.example.com/sale?x=1")
        # A second cron run sends nothing more.
        self.env["mailing.mailing"]._cron_sms_send(time_budget=5)
        self.assertEqual(len(self._received()), 24)

    def test_transient_failures_retry_and_deliver_once(self):
        self._gateway_set_faults(fail_ratio=0.2, accept_then_fail_ratio=0.2)
        mailing = self._mailing(body="Hello")
        mailing.action_put_in_queue()
        self._run_cron_until_done(mailing)
        sent = self._sms_traces(mailing, "pending")
        self.assertEqual(len(sent), 24)
        received = self._received()
        self.assertEqual(set(received), set(sent.mapped("sms_uuid")))
        self.assertTrue(all(message["state"] == "accepted" for message in received.values()))
        stats = self._gateway_admin(f"/_admin/stats?token={self.token}")
        self.assertGreater(stats["duplicate_accept_attempts"], 0, "lost answers made us resend accepted uuids")
        self.assertAlmostEqual(stats["credits_charged"], 24 * 0.05 + 0.03, msg="each message charged once")
        self.assertGreater(max(sent.mapped("sms_attempts")), 1)
        self.assertAlmostEqual(sum(sent.mapped("sms_credits")), stats["credits_charged"])

    def test_credit_runs_out_pause_topup_resume(self):
        self._gateway_create_account(self.token, 0.05 * 15, price=0.05, country_prices=PRICES)
        mailing = self._mailing(body="Hello")
        # Send warns that the balance does not cover the estimate; the user sends anyway.
        warning = mailing.action_put_in_queue()
        self.assertEqual(mailing.state, "draft")
        audience = self.env["mailing.sms.audience"].browse(warning["res_id"])
        self.assertEqual((audience.confirm_action, audience.covered), ("put_in_queue", False))
        self.assertAlmostEqual(audience.cost, 23 * 0.05 + 0.08)
        self.assertAlmostEqual(audience.balance, 0.75)
        self.assertEqual(
            {line.country_code: (line.count, line.price) for line in audience.line_ids},
            {"FR": (23, 0.05), "BE": (1, 0.08)},
        )
        audience.action_confirm()
        self.assertEqual(mailing.state, "in_queue")
        self.assertFalse(mailing.sms_cost_covered)
        self._run_cron_until_done(mailing)
        self.assertTrue(mailing.sms_waiting_credit)
        self.assertEqual(mailing.state, "sending")
        sent_before = self._sms_traces(mailing, "pending")
        self.assertEqual(len(sent_before), 10, "the first batch of 10 was paid, the second would not be")
        self.assertTrue(mailing.activity_ids.filtered(lambda a: "credit" in (a.summary or "")))
        # Nothing happens while the balance is short.
        self.env["mailing.mailing"]._cron_sms_send(time_budget=5)
        self.assertTrue(mailing.sms_waiting_credit)
        self.assertEqual(len(self._received()), 10)
        # Top-up: the cron resumes by itself and sends the rest, once.
        self._gateway_admin("/_admin/topup", {"token": self.token, "credits": 10})
        self._run_cron_until_done(mailing)
        self.assertFalse(mailing.sms_waiting_credit)
        self.assertEqual(mailing.state, "done")
        sent = self._sms_traces(mailing, "pending")
        self.assertEqual(len(sent), 24)
        received = self._received()
        self.assertEqual(set(received), set(sent.mapped("sms_uuid")))
        self.assertTrue(all(message["presented_count"] == 1 for message in received.values()))

    # ------------------------------------------------------------
    # Money and length are exact (issue 11 §5)
    # ------------------------------------------------------------

    def _add_contacts(self, names):
        return self.env["mailing.contact"].create([
            {"name": name, "mobile": f"+33 6 98 00 00 {index:02d}", "list_ids": [(4, self.mailing_list.id)]}
            for index, name in enumerate(names)
        ])

    def _assert_credits_match_gateway(self, mailing):
        """Every figure of what was spent equals what the gateway charged: in total (its
        per-account charge), on the mailing's statistic, and message by message."""
        stats = self._gateway_admin(f"/_admin/stats?token={self.token}")
        traces = self._sms_traces(mailing).filtered("sms_uuid")
        mailing.invalidate_recordset()
        self.assertAlmostEqual(sum(traces.mapped("sms_credits")), stats["credits_charged"], places=6)
        self.assertAlmostEqual(mailing.sms_stat_credits, stats["credits_charged"], places=6)
        received = self._received()
        for trace in traces.filtered(lambda t: t.sms_uuid in received):
            message = received[trace.sms_uuid]
            self.assertEqual(trace.sms_parts, message["parts"], f"parts of {trace.sms_number}")
            self.assertAlmostEqual(trace.sms_credits, message["credits"], places=6, msg=trace.sms_number)
        return stats

    def test_credits_exact_after_lost_answers_and_early_reports(self):
        """Every send answer is lost (the gateway accepted and charged); delivery reports of some
        messages arrive before the retry. Two recipients' names force Unicode: their SMS is 2
        parts although the mailing's text is 1. Credits spent = what the gateway charged."""
        self._add_contacts(["Zbigniew Bałuk", "Łucja Wąs"])
        mailing = self._mailing(body="Hi {{ object.name }}, spring sale -20% today")
        mailing.action_put_in_queue()
        self.assertEqual(mailing.sms_segment_count, 1)
        self._gateway_set_faults(accept_then_fail_ratio=1.0)
        self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        accepted = self._received()
        self.assertEqual(len(accepted), 26, "every message was accepted and charged, every answer lost")
        self.assertFalse(self._sms_traces(mailing, "pending"), "no answer arrived")
        # Reports for some of them arrive before their retry (one of the Unicode ones among them).
        early = self._sms_traces(mailing, "outgoing").filtered(
            lambda t: t.sms_number in ("+33698000000", "+33612340001", "+33612340002"))
        self.assertEqual(len(early), 3)
        for trace in early:
            self.assertTrue(self.env["mailing.trace"]._sms_apply_delivery_report(trace.sms_uuid, "delivered"))
        self._gateway_set_faults(accept_then_fail_ratio=0.0)
        self._run_cron_until_done(mailing)
        self.assertEqual(mailing.state, "done")
        self.assertEqual(set(early.mapped("trace_status")), {"sent"}, "the early reports stand")
        stats = self._assert_credits_match_gateway(mailing)
        self.assertAlmostEqual(stats["credits_charged"], 25 * 0.05 + 2 * 0.05 + 0.08, places=6)
        self.assertEqual(len(self._received()), 26, "nothing was sent twice")

    def test_recipient_too_long_is_canceled(self):
        """Placeholders are counted after rendering, per recipient: a recipient whose SMS would
        exceed the maximum number of parts is canceled with that reason, never sent; the others
        record the parts actually sent."""
        self.env.company.sms_max_segments = 2
        long_name, short_name = self._add_contacts(["Ł" * 200, "Zbigniew Bałuk"])
        mailing = self._mailing(body="Hi {{ object.name }}, spring sale -20% today")
        self.assertTrue(mailing.sms_length_varies)
        self.assertEqual(mailing.sms_segment_count, 1)
        mailing.action_put_in_queue()
        self._run_cron_until_done(mailing)
        too_long = self._sms_traces(mailing).filtered(lambda t: t.res_id == long_name.id)
        self.assertEqual((too_long.trace_status, too_long.failure_type), ("cancel", "sms_too_long"))
        self.assertIn("2", too_long.failure_reason)
        self.assertNotIn(too_long.sms_number, [message["number"] for message in self._received().values()])
        unicode_trace = self._sms_traces(mailing).filtered(lambda t: t.res_id == short_name.id)
        self.assertEqual((unicode_trace.trace_status, unicode_trace.sms_parts), ("pending", 2))
        self.assertEqual(len(self._received()), 25)
        self._assert_credits_match_gateway(mailing)

    def test_cost_estimate_uses_rendered_lengths(self):
        """A 420-character Unicode name makes that recipient's SMS 8 parts: the estimate says so
        and equals what the gateway then charges."""
        self.env.company.sms_max_segments = 10
        self._add_contacts(["Ł" * 420])
        mailing = self._mailing(body="Hi {{ object.name }}, spring sale -20% today")
        self.assertTrue(mailing.sms_length_varies)
        # A plain field is read with SQL; any other expression is rendered by Odoo: same counts.
        self.assertTrue(mailing._sms_placeholder_fields_sql())
        rendered = self._mailing(body="Hi {{ object.name.upper() }}, spring sale -20% today")
        self.assertIsNone(rendered._sms_placeholder_fields_sql())
        self.assertEqual(rendered._sms_rendered_parts(), mailing._sms_rendered_parts())
        self.assertEqual(mailing._sms_rendered_parts()["FR", 8], 1)
        audience = self.env["mailing.sms.audience"].create({"mailing_id": mailing.id})
        self.assertEqual((audience.parts_min, audience.parts), (1, 8))
        self.assertAlmostEqual(audience.cost, 23 * 0.05 + 8 * 0.05 + 0.08, places=6)
        self.assertAlmostEqual(mailing.sms_cost_estimate, audience.cost, places=6)
        mailing.action_put_in_queue()
        self._run_cron_until_done(mailing)
        stats = self._assert_credits_match_gateway(mailing)
        self.assertAlmostEqual(stats["credits_charged"], audience.cost, places=6)

    def test_counter_says_length_depends_on_recipient(self):
        plain = self._mailing(body="Spring sale today", sms_allow_unsubscribe=False)
        dynamic = self._mailing(body="Hi {{ object.name }}, spring sale today", sms_allow_unsubscribe=False)
        self.assertFalse(plain.sms_length_varies)
        self.assertTrue(dynamic.sms_length_varies)
        # At least the text around the placeholders.
        self.assertEqual(dynamic.sms_length, len("Hi , spring sale today"))
