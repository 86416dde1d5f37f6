import collections
import contextlib
import time
from unittest.mock import patch

import requests

from odoo.tests import HttpCase, tagged
from odoo.tools import SQL, config

from .common import SmsMarketingUsersMixin, SmsSenderMixin
from .kannel_process import SMSBOX_PASSWORD, SMSBOX_USER, KannelProcess

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
