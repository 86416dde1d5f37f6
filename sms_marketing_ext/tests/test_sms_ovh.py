import base64
from datetime import timedelta, timezone

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, TransactionCase, new_test_user, tagged
from odoo.tools import SQL

from ..tools.providers.ovh import STOP_MENTION, OvhClient, with_stop_mention
from ..tools.sms_segments import analyze
from .common import SmsMarketingUsersMixin, SmsSenderMixin
from .ovh_api_server import PARIS, OvhAccount, OvhApiServer

APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE = "ak_test", "as_test_secret", "ck_test", "sms-ab12345-1"
NUMBERS = [f"+336200000{index:02d}" for index in range(12)]


@tagged("post_install", "-at_install", "sms_ovh")
class TestSmsOvh(SmsMarketingUsersMixin, SmsSenderMixin, TransactionCase):
    """The OVHcloud provider driven by the real ``ovh`` client against a local server that checks
    OVH's request signature (tests/ovh_api_server.py)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.account = OvhAccount(APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE, credits=500.0)
        cls.account.senders["MyShop"] = {"sender": "MyShop", "status": "enable", "type": "alpha",
                                         "description": "Shop", "comment": ""}
        cls.rates = {"us": 1.0, "fr": 1.0}
        cls.account.rates = dict(cls.rates)
        cls.server = OvhApiServer(cls.account)
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.env["sms.gateway"].search([("company_id", "=", cls.env.company.id)]).write({"is_default": False})
        cls.gateway = cls.env["sms.gateway"].create({
            "name": "OVH", "provider": "ovh", "ovh_endpoint": cls.server.url, "ovh_application_key": APP_KEY,
            "ovh_application_secret": APP_SECRET, "ovh_consumer_key": CONSUMER_KEY, "ovh_service_name": SERVICE,
            "batch_size": 5, "price_default": 1.0,
        })
        cls.sender = cls._create_sender("MyShop", is_default=True)  # approved here, before OVH is the default
        cls.gateway.is_default = True
        cls.mailing_list = cls.env["mailing.list"].create({"name": "OVH customers"})
        cls.env["mailing.contact"].create([
            {"name": f"Customer {index}", "mobile": number, "list_ids": [(4, cls.mailing_list.id)]}
            for index, number in enumerate(NUMBERS)
        ])

    def setUp(self):
        super().setUp()
        with self.account.lock:
            self.account.jobs.clear()
            self.account.sender_requests.clear()
            self.account.outgoing.clear()
            self.account.queued.clear()
            self.account.incoming.clear()
            self.account.blacklist.clear()
            self.account.calls.clear()
            self.account.queue_jobs, self.account.lose_answers, self.account.drop_jobs = False, 0, 0
            self.account.rates = dict(self.rates)

    def _mailing(self, body, sms_class="standard"):
        return self.env["mailing.mailing"].with_user(self.user_marketing).create({
            "subject": body[:20], "mailing_type": "sms", "body_plaintext": body, "sms_class": sms_class,
            "sms_allow_unsubscribe": True,
            "mailing_model_id": self.env["ir.model"]._get_id("mailing.list"),
            "contact_list_ids": [(6, 0, self.mailing_list.ids)],
        })

    def _run_cron_until_done(self, mailing, runs=20):
        for _run in range(runs):
            self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
            if mailing.state == "done":
                return
            self.env.cr.execute(SQL(
                "UPDATE mailing_trace SET sms_next_attempt = NULL WHERE mass_mailing_id = %s", mailing.id))
        self.fail(f"mailing still {mailing.state} after {runs} cron runs")

    def test_ovh_mailing_arrives_once_each(self):
        credits_before = self.account.credits
        flash = self._mailing("Soldes: -20% [code HIVER]", "flash")
        emoji = self._mailing("Merci 😀", "sim")
        (flash | emoji).action_put_in_queue()
        self._run_cron_until_done(flash)
        self._run_cron_until_done(emoji)
        jobs = self.account.jobs
        self.assertEqual(len(jobs), 2 * len(NUMBERS), "one job per message, none twice")
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "in", (flash | emoji).ids)])
        by_tag = {job["tag"]: job for job in jobs}
        self.assertEqual(set(by_tag), set(traces.mapped("sms_uuid")), "each job tagged with our uuid, once")
        for trace in traces:
            job = by_tag[trace.sms_uuid]
            self.assertEqual(job["receiver"], trace.sms_number)
            self.assertEqual(job["sender"], "MyShop")
            self.assertEqual(job["noStopClause"], False)
            if trace.mass_mailing_id == flash:
                self.assertEqual((job["class"], job["coding"]), ("flash", "7bit"))
            else:
                self.assertEqual((job["class"], job["coding"]), ("sim", "8bit"))
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"}, "accepted by OVH, waiting for delivery")
        self.assertEqual(self.account.credits, credits_before - 2 * len(NUMBERS))

    def test_ovh_balance_and_connection(self):
        self.account.credits = 123.5
        self.gateway.action_refresh_balance()
        self.assertEqual(self.gateway.balance, 123.5)
        action = self.gateway.action_test_connection()
        self.assertIn("123.5", action["params"]["message"])
        self.assertTrue(self.gateway.cap_balance and self.gateway.cap_sender_sync)
        self.assertTrue(self.gateway.cap_prices and self.gateway.cap_status_query and self.gateway.cap_inbound)
        self.assertFalse(self.gateway.cap_idempotent_send, "OVH jobs take no idempotency key")
        self.assertFalse(self.gateway.cap_delivery_reports, "OVH's receipts are polled, OVH posts nothing to us")

    def test_ovh_wrong_credentials_clear_error(self):
        self.gateway.ovh_application_secret = "not-the-secret"  # noqa: S105
        with self.assertRaisesRegex(UserError, "OVHcloud refused the credentials of gateway OVH.*signature"):
            self.gateway.action_test_connection()
        self.gateway.ovh_application_secret = APP_SECRET
        self.gateway.ovh_consumer_key = "ck_unknown"
        with self.assertRaisesRegex(UserError, "OVHcloud refused the credentials"):
            self.gateway.action_refresh_balance()
        self.gateway.ovh_consumer_key = CONSUMER_KEY
        self.gateway.ovh_service_name = "sms-zz0-1"
        with self.assertRaisesRegex(UserError, "service name"):
            self.gateway.action_test_connection()

    def test_ovh_sender_sync_maps_states(self):
        self.account.senders.update({
            "WAITING": {"sender": "WAITING", "status": "waitingValidation", "description": "", "comment": ""},
            "NOPE": {"sender": "NOPE", "status": "refused", "description": "", "comment": "Brand not proven"},
        })
        pending = self._create_sender("NOPE", state="submitted")
        self.gateway.action_ovh_sync_senders()
        senders = self.env["sms.sender"].search([("company_id", "=", self.env.company.id)])
        states = {sender.name: sender.state for sender in senders}
        self.assertEqual(states["MyShop"], "approved")
        self.assertEqual(states["WAITING"], "submitted")
        self.assertEqual(pending.state, "refused")
        self.assertEqual(pending.refusal_reason, "Brand not proven")
        # OVH enables it later: the next sync approves it through the workflow.
        self.account.senders["WAITING"]["status"] = "enable"
        self.gateway.action_ovh_sync_senders()
        self.assertEqual(senders.filtered(lambda s: s.name == "WAITING").state, "approved")
        # A marketer still cannot set the state by a write.
        with self.assertRaises(AccessError):
            pending.with_user(self.user_marketing).write({"state": "approved"})

    def test_ovh_submit_sender_posts_to_ovh(self):
        sender = self.env["sms.sender"].with_user(self.user_marketing).create({
            "name": "NEWBRAND", "description": "Our new brand", "reason": "Promotions",
            "justification_document": base64.b64encode(b"%PDF-1.4 letterhead"),
            "justification_filename": "letterhead.pdf",
        })
        sender.action_submit()
        self.assertEqual(self.account.sender_requests, [
            {"sender": "NEWBRAND", "description": "Our new brand", "reason": "Promotions"}])
        self.assertEqual(self.account.senders["NEWBRAND"]["status"], "waitingValidation")
        self.assertEqual(sender.state, "submitted")
        # The justification document went with it: created on the sender, the file uploaded.
        [document] = [d for d in self.account.documents.values() if d["sender"] == "NEWBRAND"]
        self.assertEqual(document["name"], "letterhead.pdf")
        self.assertEqual(self.account.uploads[document["documentID"]], b"%PDF-1.4 letterhead")
        # OVH's moderators enable it: the poll (no Sync click) approves it.
        self.account.senders["NEWBRAND"]["status"] = "enable"
        self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertEqual(sender.state, "approved")

    def test_ovh_stop_mention_counted(self):
        self.assertEqual(with_stop_mention("Hi", True, False), "Hi" + STOP_MENTION)
        self.assertTrue(self.gateway._ovh_counts_stop_mention(self.sender))
        self.gateway.ovh_no_stop_clause = True
        self.assertFalse(self.gateway._ovh_counts_stop_mention(self.sender))
        with OvhClient(self.server.url, APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE, no_stop_clause=True) as client:
            payload = client.job_payload({"uuid": "a" * 32, "number": "+33620000000", "content": "Hi",
                                          "sender": "MyShop", "sms_class": "standard"})
        self.assertEqual((payload["noStopClause"], payload["class"], payload["tag"]), (True, "phoneDisplay", "a" * 32))

    def test_ovh_gateway_of_another_company(self):
        company_b = self.env["res.company"].create({"name": "Company B"})
        gateway_b = self.env["sms.gateway"].create({
            "name": "OVH B", "provider": "ovh", "ovh_endpoint": self.server.url, "ovh_application_key": APP_KEY,
            "ovh_application_secret": APP_SECRET, "ovh_consumer_key": CONSUMER_KEY, "ovh_service_name": SERVICE,
            "company_id": company_b.id,
        })
        admin_a = new_test_user(self.env, "ovh_admin_a", groups="base.group_user,"
                                "sms_marketing_ext.group_sms_marketing_admin", company_id=self.env.company.id)
        self.assertFalse(self.env["sms.gateway"].with_user(admin_a).search([("id", "=", gateway_b.id)]))
        with self.assertRaises(AccessError):
            gateway_b.with_user(admin_a).action_test_connection()
        with self.assertRaises(AccessError):
            gateway_b.with_user(admin_a).action_ovh_sync_senders()

    # ------------------------------------------------------------
    # Prices, receipts, lost answers, replies, STOP mention
    # ------------------------------------------------------------

    def _send_mailing(self, body="Soldes -20%"):
        mailing = self._mailing(body)
        mailing.action_put_in_queue()
        self._run_cron_until_done(mailing)
        return mailing, self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)], order="id")

    def test_ovh_prices_from_rates(self):
        self.account.rates = {"fr": 1.0, "be": 2.5, "de": 3.0}
        self.gateway.ovh_price_countries = "FR, be"
        self.gateway.action_refresh_balance()
        self.assertEqual({line.country_code: line.price for line in self.gateway.price_ids}, {"FR": 1.0, "BE": 2.5})
        self.assertEqual(self.gateway.price_default, 2.5, "unlisted countries cost the dearest listed one")
        self.assertEqual(self.gateway._price_for("BE"), 2.5)
        with self.assertRaises(UserError):  # a country OVH has no rate for: said, nothing stored
            self.gateway.ovh_price_countries = "FR, ZZ"
            self.gateway.action_refresh_balance()

    def test_ovh_poll_applies_receipts(self):
        _mailing, traces = self._send_mailing()
        self.assertTrue(all(trace.sms_provider_ref for trace in traces), "OVH's id kept on every trace")
        outcomes = {0: (1, 0), 1: (2, 9), 2: (2, 801), 3: (16, 0), 4: (2, 53), 5: (8, 0)}
        for index, (receipt, ptt) in outcomes.items():
            self.account.deliver(traces[index].sms_uuid, receipt, ptt)
        self.account.calls.clear()
        counts = self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertEqual(counts["delivered"], 5)
        states = [(trace.trace_status, trace.failure_type or False) for trace in traces]
        self.assertEqual(states[:6], [("sent", False), ("error", "sms_not_delivered"), ("error", "sms_expired"),
                                      ("bounce", "sms_rejected"), ("bounce", "sms_rejected"), ("pending", False)])
        self.assertEqual(set(states[6:]), {("pending", False)})
        self.assertTrue(traces[0].sms_report_date)
        detail_reads = [call for call in self.account.calls if call[1].startswith("outgoing/")]
        self.assertEqual(len(detail_reads), 5, "only the messages with a final receipt are read one by one")
        # Polled again: nothing moves, nothing read again.
        self.account.calls.clear()
        self.assertEqual(self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)["delivered"], 0)
        self.assertFalse([call for call in self.account.calls if call[1].startswith("outgoing/")])

    def test_ovh_settle_cron_asks_by_tag(self):
        _mailing, traces = self._send_mailing()
        self.env.cr.execute(SQL("UPDATE mailing_trace SET sent_datetime = sent_datetime - interval '5 hours', "
                                "sms_provider_ref = NULL WHERE id = ANY(%s)", traces.ids))
        traces.invalidate_recordset()
        self.account.deliver(traces[0].sms_uuid, 1)
        self.account.deliver(traces[1].sms_uuid, 2, 801)
        counts = self.env["sms.gateway"]._cron_sms_settle(time_budget=30, gateways=self.gateway)
        self.assertEqual((counts["queried"], counts["settled"]), (len(traces), 2))
        self.assertEqual(traces[0].trace_status, "sent")
        self.assertEqual((traces[1].trace_status, traces[1].failure_type), ("error", "sms_expired"))
        self.assertEqual(set(traces[2:].mapped("trace_status")), {"pending"})
        tag_lookups = [call for call in self.account.calls if call[1] == "outgoing" and "tag" in call[2]]
        self.assertEqual(len(tag_lookups), len(traces), "each message found by its tag")

    def test_ovh_lost_answer_found_by_tag_never_resent(self):
        self.account.lose_answers = 1  # the first job is taken, its answer lost
        _mailing, traces = self._send_mailing()
        self.assertEqual(len(self.account.jobs), len(NUMBERS), "no message posted twice")
        self.assertEqual(len({job["tag"] for job in self.account.jobs}), len(NUMBERS))
        self.assertEqual(set(traces.mapped("trace_status")), {"pending"})
        self.assertFalse(any(traces.mapped("sms_unknown")), "found at once by its tag: accepted, not unknown")
        self.assertTrue(all(traces.mapped("sms_provider_ref")))

    def test_ovh_lost_answer_waits_in_unknown(self):
        # OVH queues the job (no tag on jobs): the lookup cannot find it, it waits as unknown.
        self.account.queue_jobs, self.account.lose_answers = True, 1
        mailing, traces = self._send_mailing()
        self.assertEqual(len(self.account.jobs), len(NUMBERS), "never sent blindly again")
        unknown = traces.filtered("sms_unknown")
        self.assertEqual(len(unknown), 1)
        Gateway = self.env["sms.gateway"]
        now = fields.Datetime.now()
        Gateway._cron_ovh_poll(time_budget=30, now=now + timedelta(minutes=10))
        self.assertTrue(unknown.sms_unknown and unknown.trace_status == "pending", "jobs still queued: pending")
        # The jobs go out and the message is delivered: the next lookup by tag settles it.
        self.account.release_jobs()
        self.account.deliver(unknown.sms_uuid, 1)
        Gateway._cron_ovh_poll(time_budget=30, now=now + timedelta(minutes=50))
        self.assertEqual((unknown.trace_status, unknown.sms_unknown), ("sent", False))
        self.assertEqual(len(self.account.jobs), len(NUMBERS))
        self.assertEqual(mailing.state, "done")

    def test_ovh_lost_answer_never_taken_fails_unsent(self):
        self.account.drop_jobs = 1  # the connection is cut before OVH takes the job
        _mailing, traces = self._send_mailing()
        unknown = traces.filtered("sms_unknown")
        self.assertEqual(len(unknown), 1)
        self.assertEqual(len(self.account.jobs), len(NUMBERS) - 1, "not sent again blindly")
        self.env["sms.gateway"]._cron_ovh_poll(time_budget=30, now=fields.Datetime.now() + timedelta(minutes=10))
        self.assertEqual((unknown.trace_status, unknown.failure_type, unknown.sms_credits), ("error", "sms_server", 0))
        self.assertEqual(len(self.account.jobs), len(NUMBERS) - 1)

    def test_ovh_replies_stop_start_applied_once(self):
        Blacklist = self.env["phone.blacklist"].with_context(active_test=False)
        Event = self.env["sms.consent.event"]
        now = fields.Datetime.now()
        self.account.receive(NUMBERS[0], "Stop !")
        self.account.receive(NUMBERS[1], "Bonjour, merci")
        counts = self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertEqual(counts["replies"], 1)
        self.assertTrue(Blacklist.search([("number", "=", NUMBERS[0]), ("active", "=", True)]))
        self.assertFalse(Blacklist.search([("number", "=", NUMBERS[1]), ("active", "=", True)]))
        events = Event.search([("number", "=", NUMBERS[0])])
        self.assertEqual((events.action, events.source), ("optout", "reply"))
        self.assertTrue(self.gateway.ovh_inbound_cursor)
        # Read again (the poll re-reads an overlap; OVH keeps its history): applied once.
        self.gateway.ovh_inbound_cursor = False
        self.assertEqual(self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)["replies"], 0)
        self.assertEqual(Event.search_count([("number", "=", NUMBERS[0])]), 1)
        # START later lifts it, through the same consent rules.
        self.account.receive(NUMBERS[0], "START", at=(now + timedelta(minutes=1)).replace(
            tzinfo=timezone.utc).astimezone(PARIS))
        self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertFalse(Blacklist.search([("number", "=", NUMBERS[0]), ("active", "=", True)]))
        self.assertEqual(Event.search([("number", "=", NUMBERS[0])]).mapped("action"), ["optin", "optout"])

    def test_ovh_stop_mention_in_counter_cost_and_parts(self):
        body = "A" * 140  # 140 + the opt-out footer fits one part; OVH's mention makes it two
        mailing = self._mailing(body)
        mailing.sms_allow_unsubscribe = False
        self.assertEqual(mailing.sms_length, 140 + len(STOP_MENTION))
        self.assertEqual(mailing.sms_segment_count, 1)
        mailing.body_plaintext = "A" * 150
        self.assertEqual((mailing.sms_length, mailing.sms_segment_count), (150 + len(STOP_MENTION), 2))
        self.assertEqual(mailing.sms_counter_context()["provider_suffix"], STOP_MENTION)
        estimate = mailing._sms_cost_estimate()
        self.assertEqual(estimate["parts"], 2)
        self.assertEqual(estimate["cost"], 2 * len(NUMBERS) * self.gateway.price_default)
        self.gateway.ovh_no_stop_clause = True
        self.assertEqual((mailing.sms_length, mailing.sms_segment_count), (150, 1))
        self.assertEqual(mailing.sms_counter_context()["provider_suffix"], "")
        self.gateway.ovh_no_stop_clause = False
        # A numeric sender gets no mention.
        number_sender = self._create_sender("+33612345678", sender_type="virtual_number")
        mailing.sms_sender_id = number_sender
        self.assertEqual(mailing.sms_length, 150)
        mailing.sms_sender_id = self.sender
        # Sent: the text posted has no mention (OVH adds it), the parts recorded count it.
        mailing.sms_allow_unsubscribe = True
        mailing.action_put_in_queue()
        self._run_cron_until_done(mailing)
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)])
        self.assertEqual(set(traces.mapped("sms_parts")), {2})
        self.assertFalse([job for job in self.account.jobs if STOP_MENTION in job["message"]])

    def test_ovh_stop_blacklist_imported_once(self):
        """Issue 12 §3: those who answer OVH's STOP mention ("STOP au 36180") are on OVH's own
        blacklist of the service, never in our replies: the poll imports each new entry as an
        opt-out dated when OVH recorded it, once, and asks nothing about numbers we have."""
        Blacklist = self.env["phone.blacklist"].with_context(active_test=False)
        Event = self.env["sms.consent.event"]
        now = fields.Datetime.now()
        at = (now - timedelta(days=2)).replace(microsecond=0)
        self.account.blacklist_number(NUMBERS[2], at=at.replace(tzinfo=timezone.utc).astimezone(PARIS), outgoing_id=7)
        self.account.blacklist_number("0033620000003")  # OVH's other way of writing numbers
        self.env["phone.blacklist"]._add([NUMBERS[4]])  # ours already
        self.account.blacklist_number(NUMBERS[4])
        counts = self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertEqual(counts["blacklisted"], 2)
        for number in NUMBERS[2:4]:
            self.assertTrue(Blacklist.search([("number", "=", number), ("active", "=", True)]), number)
        event = Event.search([("number", "=", NUMBERS[2])])
        self.assertEqual((event.action, event.source, event.message_date), ("optout", "reply", at))
        self.assertIn("36180", event.note)
        self.assertIn(self.gateway.name, event.note)
        detail_reads = [call[1] for call in self.account.calls if call[1].startswith("blacklists/")]
        self.assertEqual(sorted(detail_reads), ["blacklists/+33620000002", "blacklists/0033620000003"],
                         "the number already on our blacklist is not read")
        # Polled again: nothing new, nothing read one by one.
        self.account.calls.clear()
        self.assertEqual(self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)["blacklisted"], 0)
        self.assertFalse([call for call in self.account.calls if call[1].startswith("blacklists/")])
        self.assertEqual(Event.search_count([("number", "in", NUMBERS[2:4])]), 2)
        # Lifted here by hand: the same OVH entry is not applied again (it is the one applied).
        self.env["phone.blacklist"]._remove([NUMBERS[2]])
        self.assertEqual(self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)["blacklisted"], 0)
        self.assertFalse(Blacklist.search([("number", "=", NUMBERS[2]), ("active", "=", True)]))
        # The person answers START to us after their STOP to OVH: an older OVH entry changes nothing.
        self.account.receive(NUMBERS[3], "START", at=(now + timedelta(minutes=1)).replace(
            tzinfo=timezone.utc).astimezone(PARIS))
        self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertFalse(Blacklist.search([("number", "=", NUMBERS[3]), ("active", "=", True)]))
        # OVH deletes the entry and the person sends STOP again later: a new entry, applied.
        self.account.blacklist_number(NUMBERS[3], at=(now + timedelta(minutes=2)).replace(
            tzinfo=timezone.utc).astimezone(PARIS))
        del self.account.blacklist["0033620000003"]
        self.assertEqual(self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)["blacklisted"], 1)
        self.assertTrue(Blacklist.search([("number", "=", NUMBERS[3]), ("active", "=", True)]))

    def test_ovh_stop_blacklist_of_each_gateway(self):
        """Each OVH gateway reads its own service's blacklist, with its own credentials; the
        opt-out names the gateway it came through."""
        company_b = self.env["res.company"].create({"name": "Company B"})
        account_b = OvhAccount("ak_b", "as_b", "ck_b", "sms-bb12345-1")
        server_b = OvhApiServer(account_b)
        server_b.start()
        self.addCleanup(server_b.stop)
        gateway_b = self.env["sms.gateway"].create({
            "name": "OVH B", "provider": "ovh", "ovh_endpoint": server_b.url, "ovh_application_key": "ak_b",
            "ovh_application_secret": "as_b", "ovh_consumer_key": "ck_b", "ovh_service_name": "sms-bb12345-1",
            "company_id": company_b.id,
        })
        account_b.blacklist_number(NUMBERS[5])
        self.account.blacklist_number(NUMBERS[6])
        counts = self.env["sms.gateway"]._cron_ovh_poll(time_budget=30)
        self.assertEqual(counts["blacklisted"], 2)
        events = self.env["sms.consent.event"].search([("number", "in", NUMBERS[5:7])])
        self.assertIn(gateway_b.name, events.filtered(lambda e: e.number == NUMBERS[5]).note)
        self.assertNotIn(gateway_b.name, events.filtered(lambda e: e.number == NUMBERS[6]).note)
        self.assertEqual([call[1] for call in account_b.calls if call[1].startswith("blacklists")],
                         ["blacklists", f"blacklists/{NUMBERS[5]}"])

    def test_ovh_stop_mention_follows_an_unsaved_form(self):
        """The counter's ``sms_provider_suffix`` is recomputed by the form's onchange when the
        gateway or the sender changes, before any save (the web client counts it live)."""
        other = self.env["sms.gateway"].create({"name": "Plain", "provider": "jsonrpc",
                                                "base_url": "http://127.0.0.1:9", "account_token": "t"})
        number_sender = self._create_sender("+33612345670", sender_type="virtual_number")
        form = Form(self.env["mailing.mailing"].with_user(self.user_marketing).with_context(
            default_mailing_type="sms"), view="mass_mailing_sms.mailing_mailing_view_form_sms")
        form.sms_subject = "Unsaved"
        form.sms_sender_id = self.sender
        form.sms_allow_unsubscribe = True
        # 5 characters short of one part with the opt-out footer: OVH's mention makes it two.
        footer = self.env["mailing.mailing"].sms_counter_context()["optout_footer"]
        form.body_plaintext = "A" * (160 - analyze(footer)["length"] - 5)
        self.assertEqual((form.sms_provider_suffix, form.sms_segment_count), (STOP_MENTION, 2))
        form.sms_gateway_id = other
        self.assertEqual((form.sms_provider_suffix, form.sms_segment_count), (False, 1))
        form.sms_gateway_id = self.gateway
        form.sms_sender_id = number_sender
        self.assertEqual((form.sms_provider_suffix, form.sms_segment_count), (False, 1))
        form.sms_sender_id = self.sender
        self.assertEqual(form.sms_provider_suffix, STOP_MENTION)

    def test_ovh_messages_left_handed_over_are_looked_up_never_resent(self):
        """Issue 12 §1 (in one process; the SIGKILL version is in test_sms_delivery_processes):
        messages a dead worker left marked as handed to OVH are looked up by their tag before
        anything is sent. Found: accepted with OVH's id; unknown to OVH and handed over more than
        the grace ago: sent once; younger: they wait (the mailing is not done)."""
        mailing = self._mailing("Soldes -20%")
        mailing.action_put_in_queue()
        mailing._sms_start_sending()
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)], order="id")
        self.assertEqual(set(traces.mapped("trace_status")), {"outgoing"})
        found, lost, young = traces[:2], traces[2], traces[3]
        # The dead worker's calls: OVH took the jobs of the first two, never heard of the others.
        with OvhClient(self.server.url, APP_KEY, APP_SECRET, CONSUMER_KEY, SERVICE) as client:
            for trace in found:
                client.send([{"uuid": trace.sms_uuid, "number": trace.sms_number, "content": "Soldes -20%",
                              "sender": "MyShop", "sms_class": "standard"}])
        self.account.deliver(found[0].sms_uuid, 1)
        now = fields.Datetime.now()
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_sending_since = %s, sms_gateway_id = %s WHERE id = ANY(%s)",
            now - timedelta(minutes=5), self.gateway.id, (found | lost).ids))
        self.env.cr.execute(SQL("UPDATE mailing_trace SET sms_sending_since = %s, sms_gateway_id = %s WHERE id = %s",
                                now, self.gateway.id, young.id))
        traces.invalidate_recordset()
        self.account.calls.clear()
        self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        self.assertEqual(mailing.state, "sending", "the young one waits for the grace")
        self.assertEqual((young.trace_status, bool(young.sms_sending_since)), ("outgoing", True))
        receivers = [job["receiver"] for job in self.account.jobs]
        self.assertEqual(sorted(receivers), sorted(set(receivers)), "nobody twice at OVH")
        self.assertEqual(len(receivers), len(NUMBERS) - 1, "all but the young one")
        self.assertEqual(found.mapped("trace_status"), ["sent", "pending"], "found: its delivery receipt applied")
        self.assertEqual(found.mapped("sms_provider_ref"),
                         [str(job["id"]) for job in self.account.jobs[:2]], "found by tag: OVH's id kept")
        self.assertEqual(found.mapped("sms_credits"), [1.0, 1.0], "charged as OVH charged it")
        self.assertFalse(any(found.mapped("sms_unknown")))
        self.assertEqual((lost.trace_status, bool(lost.sms_sending_since)), ("pending", False), "sent once")
        # Later, once the grace has passed: the young one is asked again, OVH still has nothing: sent once.
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_sending_since = sms_sending_since - interval '5 minutes', "
            "sms_status_date = sms_status_date - interval '5 minutes' WHERE id = %s", young.id))
        young.invalidate_recordset()
        self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        self.assertEqual(mailing.state, "done")
        self.assertEqual(young.trace_status, "pending")
        receivers = [job["receiver"] for job in self.account.jobs]
        self.assertEqual(sorted(receivers), sorted(NUMBERS), "each recipient exactly once at OVH")

    def test_ovh_handed_over_lookup_failing_waits(self):
        """OVH unreachable when the messages are looked up: nothing is sent, they stay marked."""
        mailing = self._mailing("Soldes -20%")
        mailing.action_put_in_queue()
        mailing._sms_start_sending()
        traces = self.env["mailing.trace"].search([("mass_mailing_id", "=", mailing.id)], order="id")
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_sending_since = %s, sms_gateway_id = %s WHERE id = ANY(%s)",
            fields.Datetime.now() - timedelta(minutes=5), self.gateway.id, traces.ids))
        traces.invalidate_recordset()
        self.gateway.ovh_application_secret = "wrong-secret"  # noqa: S105 - every call refused
        self.env["mailing.mailing"]._cron_sms_send(time_budget=30)
        self.assertFalse(self.account.jobs)
        self.assertEqual(set(traces.mapped("trace_status")), {"outgoing"})
        self.assertTrue(all(traces.mapped("sms_sending_since")))
        self.assertEqual(mailing.state, "sending")
