import collections
import contextlib
import time
from unittest.mock import patch

import requests

from odoo.tests import HttpCase, tagged
from odoo.tools import SQL, config, mute_logger

from .common import SmsMarketingUsersMixin, SmsSenderMixin
from .kannel_process import SMSBOX_PASSWORD, SMSBOX_USER, UNROUTABLE_PREFIX, KannelProcess

RECIPIENTS = 300
GSM_TEXT = "Soldes d'hiver: -20% sur tout, 5€ la livraison [code HIVER]"
UNICODE_TEXT = "Merci pour votre fidélité ✨ -30% ce week-end 😀"
PRICE_FR, PRICE_DEFAULT = 0.045, 0.05


@tagged("post_install", "-at_install", "sms_kannel")
class TestSmsKannel(SmsMarketingUsersMixin, SmsSenderMixin, HttpCase):
    """The Kannel provider end to end against real Kannel (bearerbox + smsbox) and its SMSC
    simulator fakesmsc: what a mailing sends arrives at the SMSC once each, with the right sender,
    class and text; Kannel's delivery reports and a STOP reply come back to Odoo's routes.

    Kannel calls Odoo's HTTP server, which in tests shares this test's cursor: the test holds the
    registry's test lock all along and lets them in only while it waits for them (:meth:`_wait`,
    :meth:`_odoo_serves`): they never run SQL at the same time as the test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        base_url = f"http://127.0.0.1:{cls.http_port()}"
        cls.env["ir.config_parameter"].sudo().set_param("web.base.url", base_url)
        cls.env.company.country_id = cls.env.ref("base.fr")
        cls.env["sms.gateway"].search([("company_id", "=", cls.env.company.id)]).write({"is_default": False})
        cls.gateway = cls.env["sms.gateway"].create({
            "name": "Kannel", "provider": "kannel", "kannel_sendsms_url": "http://127.0.0.1:9",
            "kannel_username": SMSBOX_USER, "kannel_password": SMSBOX_PASSWORD, "kannel_smsc": "mt",
            "kannel_validity": 60, "batch_size": 50, "is_default": True, "max_attempts": 30, "timeout": 10,
            "balance": 1000.0, "price_default": PRICE_DEFAULT,
            "price_ids": [(0, 0, {"country_code": "FR", "price": PRICE_FR})],
        })
        cls.kannel = KannelProcess(cls.gateway._kannel_callback_url("inbound"))
        cls.addClassCleanup(cls._stop_kannel)
        cls.kannel.start()
        cls.gateway.kannel_sendsms_url = cls.kannel.sendsms_url
        cls.sender = cls._create_sender("MyShop", is_default=True)
        cls.mailing_list = cls.env["mailing.list"].create({"name": "Kannel customers"})
        cls.env["mailing.contact"].create([
            {"name": f"Customer {index}", "mobile": f"+33 6 20 {index // 10000:02d} {index // 100 % 100:02d} "
                                                    f"{index % 100:02d}",
             "list_ids": [(4, cls.mailing_list.id)]}
            for index in range(RECIPIENTS)
        ])

    @classmethod
    def _stop_kannel(cls):
        with cls.registry.test_lock:
            cls.kannel.stop()
        time.sleep(1)  # calls that were waiting for the cursor end before the class's rollback
        cls.kannel.cleanup()

    @classmethod
    def http_port(cls):
        return config["http_port"]

    # ------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------

    def setUp(self):
        self.registry.test_lock.acquire()
        self.addCleanup(self.registry.test_lock.release)  # last: after the test's rollback
        super().setUp()
        self.kannel.mark()

    def _mailing(self, body, sms_class="flash", recipients=None):
        mailing_list = self.mailing_list
        if recipients is not None:
            mailing_list = self.env["mailing.list"].create({
                "name": f"First {recipients}",
                "contact_ids": [(6, 0, self.mailing_list.contact_ids.sorted("id")[:recipients].ids)],
            })
        return self.env["mailing.mailing"].with_user(self.user_marketing).create({
            "subject": body[:20], "mailing_type": "sms", "body_plaintext": body, "sms_class": sms_class,
            "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, mailing_list.ids)],
        })

    def _traces(self, mailing):
        return self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id), ("trace_type", "=", "sms")])

    def _run_cron_until_done(self, mailing, runs=40):
        for _run in range(runs):
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            if mailing.state == "done":
                return
            self.env.cr.execute(SQL(
                "UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s", mailing.id
            ))
        self.fail(f"mailing still {mailing.state} after {runs} cron runs")

    @contextlib.contextmanager
    def _db(self):
        """Use the database (fresh caches: Kannel's calls may have changed it)."""
        self.env.invalidate_all()
        yield

    @contextlib.contextmanager
    def _odoo_serves(self):
        """Let Odoo's HTTP server use the test cursor for the block (the test does not touch it)."""
        self.registry.test_lock.release()
        try:
            yield
        finally:
            self.registry.test_lock.acquire()

    def _wait(self, condition, what, timeout=90):
        """Wait until ``condition()`` (run under the test lock, with fresh caches) is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.env.invalidate_all()
            if condition():
                return
            with self._odoo_serves():
                time.sleep(0.3)
        self.fail(f"timed out waiting for {what}\n{self.kannel.tail()}")

    def _received_by_number(self):
        received = collections.defaultdict(list)
        for sender, number, text, parts in self.kannel.received():
            received[number].append((sender, text, parts))
        return received

    # ------------------------------------------------------------
    # Tests
    # ------------------------------------------------------------

    def test_kannel_mailing_arrives_once_with_reports(self):
        with self._db():
            self.assertEqual(self.gateway._get_api().check_connection(), None, "Kannel accepts our sendsms user")
            gsm = self._mailing(GSM_TEXT, "flash")
            emoji = self._mailing(UNICODE_TEXT, "standard", recipients=20)
            budget_before = self.gateway.balance
            (gsm | emoji).action_put_in_queue()
        self._run_cron_until_done(gsm)
        self._run_cron_until_done(emoji)
        with self._db():
            traces = self._traces(gsm) | self._traces(emoji)
            self.assertEqual(len(self._traces(gsm)), RECIPIENTS)
            self.assertEqual(len(self._traces(emoji)), 20)
            emoji_numbers = set(self._traces(emoji).mapped("sms_number"))
            expected = {}
            for mailing in (gsm, emoji):
                mailing_traces = self._traces(mailing)
                bodies = mailing._sms_render_bodies([(trace.id, trace.res_id) for trace in mailing_traces])
                for trace in mailing_traces:
                    expected.setdefault(trace.sms_number, []).append((bodies[trace.id], trace.sms_parts))
        self._wait(lambda: len(self.kannel.received()) >= len(traces), f"{len(traces)} messages at fakesmsc")
        received = self._received_by_number()
        self.assertEqual(set(received), set(expected), "every recipient, and nobody else")
        for number, texts in expected.items():
            self.assertEqual(sorted((text, parts) for _sender, text, parts in received[number]), sorted(texts),
                             f"{number}: each text once, exactly as rendered, in the parts we counted")
            self.assertEqual({sender for sender, _text, _parts in received[number]}, {"MyShop"})
        self.assertTrue(any("€" in text for texts in expected.values() for text, _parts in texts))
        self.assertTrue(any("😀" in text for texts in expected.values() for text, _parts in texts))
        # Class and coding as Kannel handed them to the SMSC (bearerbox's access log, one line per part).
        flags = collections.defaultdict(set)
        for line in self.kannel.sent_log():
            flags[(line["smsc"], line["mclass"], line["coding"])].add(line["to"])
        self.assertEqual(set(flags), {("mt", "0", "0"), ("mt", "-1", "2")})
        self.assertEqual(flags[("mt", "0", "0")], set(expected), "flash GSM-7 texts: class 0, coding 0")
        self.assertEqual(flags[("mt", "-1", "2")], emoji_numbers, "the Unicode one: no class, UCS-2")
        # Kannel's delivery reports come back through our route and settle every trace.
        self._wait(lambda: set(traces.mapped("trace_status")) == {"sent"}, "every trace delivered")
        with self._db():
            self.assertTrue(all(traces.mapped("sms_report_date")))
            self.assertFalse(any(traces.mapped("sms_unknown")))
            # No balance API: local prices, taken off the gateway's credit budget.
            for trace in traces:
                self.assertAlmostEqual(trace.sms_credits, PRICE_FR * trace.sms_parts)
            self.assertAlmostEqual(self.gateway.balance, budget_before - sum(traces.mapped("sms_credits")), places=4)

    def test_kannel_stop_reply_blacklists(self):
        number = "+33620000042"
        self.kannel.inject_mo(number, "MyShop", "Stop svp")
        self._wait(lambda: self.env["phone.blacklist"].search_count([("number", "=", number)]), "blacklisted")
        with self._db():
            event = self.env["sms.consent.event"].search([("number", "=", number)], order="id desc", limit=1)
            self.assertEqual(event.source, "reply")
        self.kannel.inject_mo(number, "MyShop", "START")
        self._wait(lambda: not self.env["phone.blacklist"].search_count([("number", "=", number)]),
                   "removed from the blacklist")

    def test_kannel_callbacks_need_the_secret(self):
        base = f"http://127.0.0.1:{self.http_port()}/sms_marketing_ext/kannel/{self.gateway.id}"
        for kind, params in (("dlr", {"uuid": "a" * 32, "type": "1"}), ("inbound", {"from": "+33620000043",
                                                                                    "text": "STOP"})):
            for secret in (None, "wrong", self.gateway.webhook_secret[:-1]):
                query = dict(params, **({"secret": secret} if secret is not None else {}))
                with self._odoo_serves():
                    response = self.url_open(f"{base}/{kind}?" + requests.compat.urlencode(query))
                self.assertEqual(response.status_code, 403, (kind, secret))
        with self._db():
            self.assertFalse(self.env["phone.blacklist"].search_count([("number", "=", "+33620000043")]))

    def test_kannel_stopped_mid_campaign(self):
        """Kannel stops after the 10th message of the second batch and while a batch is due, then
        comes back: every recipient gets the message exactly once."""
        kannel, answered = self.kannel, []
        kannel_get_api = type(self.gateway)._get_api

        def get_api(gateway):
            client = kannel_get_api(gateway)

            def count(response, *_args, **_kwargs):
                answered.append(response.status_code)
                if len(answered) == 60:  # 50 of the first batch, 10 of the second
                    kannel.stop()
            client.session.hooks["response"].append(count)
            return client

        with self._db():
            mailing = self._mailing("Nouvelle collection en boutique", "standard", recipients=150)
            mailing.action_put_in_queue()
            mailing._sms_start_sending()
            with patch.object(type(self.gateway), "_get_api", get_api):
                self.assertTrue(mailing._sms_send_batch())
                self.assertTrue(mailing._sms_send_batch())
                # Kannel is down: the next batch cannot even connect; nothing was sent, it waits.
                self.assertTrue(mailing._sms_send_batch())
            traces = self._traces(mailing)
            status = collections.Counter(traces.mapped("trace_status"))
            self.assertEqual(status["pending"], 60, status)
            self.assertEqual(status["outgoing"], 90, status)
            self.assertFalse(any(traces.mapped("sms_unknown")), "a refused connection sent nothing: no doubt")
        kannel.start()
        self._run_cron_until_done(mailing)
        self._wait(lambda: len(self.kannel.received()) >= 150, "150 messages at fakesmsc")
        time.sleep(1)  # anything sent twice would arrive now
        received = self._received_by_number()
        with self._db():
            traces = self._traces(mailing)
            numbers = set(traces.mapped("sms_number"))
        self.assertEqual(set(received), numbers, "nothing lost")
        self.assertEqual({number: len(texts) for number, texts in received.items() if len(texts) != 1}, {},
                         "nothing sent twice")
        # The reports of the messages sent after the restart come back. Those Kannel produced while
        # the test held Odoo (before the stop) were still queued in smsbox's HTTP client when it
        # stopped: Kannel does not keep them, those traces stay "sent to the gateway" (pending).
        resumed = traces.sorted("id")[60:]
        self._wait(lambda: set(resumed.mapped("trace_status")) == {"sent"}, "the resumed messages delivered")
        with self._db():
            self.assertLessEqual(set(traces.mapped("trace_status")), {"pending", "sent"})

    def _get_api_with_hook(self, on_answer):
        """``_get_api`` whose client calls ``on_answer(n)`` after Kannel's n-th answer."""
        kannel_get_api, answered = type(self.gateway)._get_api, []

        def get_api(gateway):
            client = kannel_get_api(gateway)

            def count(response, *_args, **_kwargs):
                answered.append(response.status_code)
                on_answer(len(answered))
            client.session.hooks["response"].append(count)
            return client
        return get_api, answered

    def test_kannel_refuses_the_user_mid_batch(self):
        """smsbox takes 3 messages of a batch of 6, then refuses our sendsms user (403
        "Authorization failed": its password changed): the 3 it took are sent once and never again,
        the 3 others wait and go once the password is right again. Failing the whole batch, as a
        refused first message does, would send the first 3 twice."""
        self.addCleanup(lambda: self.kannel.password != SMSBOX_PASSWORD and self.kannel.restart_smsbox(
            SMSBOX_PASSWORD))
        get_api, answered = self._get_api_with_hook(
            lambda count: count == 3 and self.kannel.restart_smsbox("changed-on-the-kannel-side"))
        with self._db():
            mailing = self._mailing("Offre du jour", "standard", recipients=6)
            mailing.action_put_in_queue()
            mailing._sms_start_sending()
            with patch.object(type(self.gateway), "_get_api", get_api), \
                    self.assertLogs("odoo.addons.sms_marketing_ext.tools.providers.kannel", "WARNING") as logs:
                self.assertTrue(mailing._sms_send_batch())
            self.assertEqual(answered, [202, 202, 202, 403], "the 5th and 6th are not tried after a refusal")
            self.assertIn("Authorization failed", logs.output[0])
            traces = self._traces(mailing).sorted("id")
            self.assertEqual(traces.mapped("trace_status"), ["pending"] * 3 + ["outgoing"] * 3)
            self.assertEqual(set(traces[3:].mapped("failure_type")), {"sms_server"})
            self.assertFalse(any(traces.mapped("sms_unknown")), "a refusal is an answer: no doubt")
            sent_first = set(traces[:3].mapped("sms_number"))
            # Still refused: the next batch's first message fails the whole call; nothing moves.
            self.env.cr.execute(SQL("UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s",
                                    mailing.id))
            with mute_logger("odoo.addons.sms_marketing_ext.models.mailing_mailing_delivery"):
                self.assertTrue(mailing._sms_send_batch())
            self.assertEqual(self._traces(mailing).sorted("id").mapped("trace_status"),
                             ["pending"] * 3 + ["outgoing"] * 3)
            self.assertEqual(set(self._traces(mailing).sorted("id")[3:].mapped("failure_reason")),
                             {"AccessError: Kannel refused the sendsms user: Authorization failed for sendsms"})
        self.kannel.restart_smsbox(SMSBOX_PASSWORD)
        self._run_cron_until_done(mailing)
        self._wait(lambda: len(self.kannel.received()) >= 6, "6 messages at fakesmsc")
        time.sleep(1)  # anything sent twice would arrive now
        received = self._received_by_number()
        with self._db():
            self.assertEqual(set(received), set(self._traces(mailing).mapped("sms_number")), "nothing lost")
        self.assertLessEqual(sent_first, set(received))
        self.assertEqual({number: len(texts) for number, texts in received.items() if len(texts) != 1}, {},
                         "nothing sent twice")

    def test_kannel_unroutable_number_mid_batch(self):
        """Kannel cannot route one receiver of a batch (403 "Not routable"): that message waits
        for its retries (then fails), the batch goes on; nothing is sent twice."""
        with self._db():
            self.gateway.max_attempts = 2
            # Older contacts and newer ones, lower numbers and higher ones around it: in the middle of
            # the batch whatever the order the audience comes in.
            contacts = self.mailing_list.contact_ids.sorted("id")[:2]
            for name, number in (("Nowhere", UNROUTABLE_PREFIX + "000001"), ("New 1", "+33760000001"),
                                 ("New 2", "+33760000002")):
                contacts |= self.env["mailing.contact"].create({"name": name, "mobile": number})
            mailing = self._mailing("Offre du soir", "standard")
            mailing.contact_list_ids = self.env["mailing.list"].create({"name": "Routes", "contact_ids": contacts.ids})
            mailing.action_put_in_queue()
            mailing._sms_start_sending()
            with self.assertLogs("odoo.addons.sms_marketing_ext.tools.providers.kannel", "WARNING") as logs:
                self.assertTrue(mailing._sms_send_batch())
            self.assertIn("Not routable", logs.output[0])
            traces = self._traces(mailing).sorted("id")
            unroutable = traces.filtered(lambda t: t.sms_number.startswith(UNROUTABLE_PREFIX))
            self.assertEqual(len(traces), 5)
            self.assertNotIn(unroutable, traces[0] | traces[-1], "in the middle of the batch")
            self.assertEqual(((traces - unroutable).mapped("trace_status"), unroutable.trace_status),
                             (["pending"] * 4, "outgoing"))
        with mute_logger("odoo.addons.sms_marketing_ext.tools.providers.kannel"):
            self._run_cron_until_done(mailing)
        with self._db():
            self.assertEqual((unroutable.trace_status, unroutable.failure_type, unroutable.sms_attempts),
                             ("error", "sms_server", 2), "tried twice (max attempts), never accepted")
            routable = set((traces - unroutable).mapped("sms_number"))
        self._wait(lambda: len(self.kannel.received()) >= 4, "4 messages at fakesmsc")
        time.sleep(1)
        self.assertEqual(sorted(number for _sender, number, _text, _parts in self.kannel.received()),
                         sorted(routable), "each routable one once, the unroutable one never")
        # Kannel also reports the message it could not route (DLR 16, "NACK/no SMSC"): rejected.
        self._wait(lambda: unroutable.trace_status == "bounce", "Kannel's report of the unroutable message")
        self.assertEqual(unroutable.failure_type, "sms_rejected")
