import logging
import threading
import time
from datetime import timedelta

import psycopg2

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL, config

from ..tools import sms_delivery, sms_gateway_api, sms_links, sms_quiet_hours, sms_segments

_logger = logging.getLogger(__name__)

# A cron run sends for at most this long, then re-triggers itself (other crons get a turn); less
# when the server kills cron jobs sooner (see _sms_cron_time_budget).
SEND_TIME_BUDGET = 50


class MailingMailingDelivery(models.Model):
    """The send pipeline of SMS mailings: the send cron claims batches of outgoing traces,
    checks credit, sends them through the gateway, records every result and retries transient
    failures; a mailing out of credit pauses and resumes."""

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    sms_waiting_credit = fields.Boolean(
        "Waiting for credit",
        readonly=True,
        copy=False,
        # Not tracked: pausing and resuming post their own sentence ("Sending paused: ...", "Sending
        # resumed."), where tracking only showed "No -> Yes (Waiting for credit)".
        help="Sending paused: the gateway's balance cannot pay for the next batch. It resumes by itself "
        "when the balance allows, or at once with Resume.",
    )

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model
    def _search(self, domain, *args, **kwargs):
        # The stock mass-mailing queue leaves SMS mailings to our send cron (see _process_mass_mailing_queue).
        if self.env.context.get("sms_ext_skip_sms_mailings"):
            own = expression.normalize_domain(self._sms_own_pipeline_domain())
            domain = expression.AND([domain, ["!", *own]])
        return super()._search(domain, *args, **kwargs)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_retry_failed_sms(self):
        """Stock deletes the failed sms.sms and their traces and queues the mailing again; ours
        has no sms.sms: the retryable failed traces go back to outgoing with their uuid (the
        gateway never charges an accepted uuid twice) and the send cron takes them."""
        for mailing in self:
            self.env["mailing.trace"].flush_model()
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace
                   SET trace_status = 'outgoing', failure_type = NULL, failure_reason = NULL,
                       sms_attempts = 0, sms_next_attempt = NULL
                 WHERE mass_mailing_id = %s AND trace_type = 'sms' AND trace_status = 'error'
                   AND sms_uuid IS NOT NULL AND failure_type IN %s
                """,
                mailing.id, sms_delivery.RETRYABLE_FAILURES,
            ))
            if self.env.cr.rowcount:
                mailing.write({"state": "sending", "sms_waiting_credit": False})
                mailing.message_post(body=_("%s failed SMS queued again.", self.env.cr.rowcount))
        self.env["mailing.trace"].invalidate_model()
        self._sms_trigger_send_cron()
        return True

    def action_sms_resume(self):
        for mailing in self.filtered("sms_waiting_credit"):
            mailing.sms_waiting_credit = False
            mailing.message_post(body=_("Sending resumed."))
            mailing.activity_feedback(["mail.mail_activity_data_todo"], feedback=_("Resumed"))
        self._sms_trigger_send_cron()
        return True

    # ------------------------------------------------------------
    # SEND CRON
    # ------------------------------------------------------------

    @api.model
    def _process_mass_mailing_queue(self):
        without_sms = self.with_context(sms_ext_skip_sms_mailings=True)
        return super(MailingMailingDelivery, without_sms)._process_mass_mailing_queue()

    @api.model
    def _cron_sms_send(self, time_budget=None):
        """"SMS Marketing: segment and send". Starts the SMS mailings that are due (materialising
        the first chunk of their audience), resumes those waiting for credit when the balance
        allows, then, until the time budget is spent, materialises the next chunks of audiences
        still being prepared and sends batches, committing after each chunk and each batch.
        Re-triggers itself while work remains, and for the next retry or scheduled mailing.

        :param time_budget: seconds; by default what the server's time limit for cron jobs allows
        """
        if time_budget is None:
            time_budget = self._sms_cron_time_budget()
        deadline = time.monotonic() + time_budget
        now = fields.Datetime.now()
        own = self._sms_own_pipeline_domain()
        due = self.search([
            *own, ("state", "=", "in_queue"),
            "|", ("schedule_date", "=", False), ("schedule_date", "<=", now),
        ])
        plans = {}
        for mailing in due:
            plans[mailing.id] = mailing._sms_chunk_plan()
            mailing._sms_start_sending(plans[mailing.id])
            self._sms_commit()
        ledger = sms_delivery.CreditLedger()
        for mailing in self.search([*own, ("state", "=", "sending"), ("sms_waiting_credit", "=", True)]):
            mailing._sms_resume_if_credit(ledger)
        self._sms_commit()
        mailings = self.search([*own, ("state", "=", "sending"), ("sms_waiting_credit", "=", False)])
        pending = True
        while pending and time.monotonic() < deadline:
            pending = False
            for mailing in mailings.filtered(lambda m: not m.sms_waiting_credit):
                if time.monotonic() >= deadline:
                    break
                if mailing.state == "sending" and mailing.sms_audience_pending:
                    mailing._sms_materialize_next(plans.setdefault(mailing.id, mailing._sms_chunk_plan()), deadline)
                    pending = True
                if mailing._sms_send_batch(ledger):
                    pending = True
                self._sms_commit()
        self._sms_settle_reported_charges()
        for mailing in mailings:
            mailing._sms_finish_if_done()
        self._sms_commit()
        self._sms_retrigger(deadline_reached=time.monotonic() >= deadline)

    @api.model
    def _sms_cron_time_budget(self):
        """Seconds a send cron run may take: SEND_TIME_BUDGET, or half of the real-time limit the
        server puts on cron jobs when it is lower (``--limit-time-real-cron``, else
        ``--limit-time-real``: a multi-process server kills the cron worker past it, a threaded
        one restarts). Work is committed per chunk and per batch, so a run killed anyway loses one
        chunk or batch at most."""
        cron_limit = config.get("limit_time_real_cron") or 0
        limit = cron_limit if cron_limit > 0 else config.get("limit_time_real") or 0
        if limit <= 0:
            return SEND_TIME_BUDGET
        return min(SEND_TIME_BUDGET, limit / 2)

    def _sms_materialize_next(self, plan, deadline):
        """Materialise the next chunk of an audience still being prepared, between batches; an
        author who lost access to the recipients meanwhile stops the mailing."""
        self.ensure_one()
        remaining = max(deadline - time.monotonic(), 0.0)
        plan.step = min(plan.step, max(plan.minimum, int(plan.step * remaining / plan.target_seconds)))
        try:
            with self.env.cr.savepoint():
                self.with_context(sms_ext_no_commit=True)._sms_materialize_audience(plan=plan, max_chunks=1)
        except UserError as error:
            self._sms_stop_sending(error.args[0])
        self._sms_commit()

    def _sms_trigger_send_cron(self, at=None):
        cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_send", raise_if_not_found=False)
        if not cron:
            return
        if at:
            cron._trigger(at)
        else:
            cron._trigger([mailing.schedule_date or fields.Datetime.now() for mailing in self] or None)

    def _sms_commit(self):
        # Each batch and each chunk of an audience is its own transaction in production (its
        # results are final once committed, its locks released); tests run in one transaction.
        if not getattr(threading.current_thread(), "testing", False) and not self.env.context.get("sms_ext_no_commit"):
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _sms_start_sending(self, plan=None):
        """Start sending: checks, then the first chunk of the audience (the cron materialises the
        rest between batches while ``sms_audience_pending`` is set)."""
        self.ensure_one()
        try:
            self._sms_check_sendable()
            self._sms_get_gateway()
            # The audience is read with its authors' rights: one who may not read the target
            # model gets an AccessError (a UserError), and nothing is materialised.
            with self.env.cr.savepoint():
                self._sms_link_trackers(sms_links.split_links(self.body_plaintext or "")[1])
                self._sms_materialize_reset()
                # One chunk, committed with the state below: not inside the savepoint.
                self.with_context(sms_ext_no_commit=True)._sms_materialize_audience(plan=plan, max_chunks=1)
        except UserError as error:
            self.write({"state": "draft"})
            self.message_post(body=_("Sending canceled: %s", error.args[0]))
            self._sms_notify_responsible(_("SMS mailing not sent"), error.args[0])
            return
        self.write({"state": "sending", "sms_waiting_credit": False})

    def _sms_stop_sending(self, reason):
        """Stop a mailing that may no longer send (see ``_sms_delivery_error``): back to draft with
        its remaining messages untouched, a message on it and an activity for its responsible.
        Send, once the cause is fixed, sends the rest (the audience already sent is not taken
        again)."""
        self.ensure_one()
        self.write({"state": "draft", "sms_waiting_credit": False})
        message = _("Sending stopped, nothing more was sent: %s Fix it, then Send to send the rest.", reason)
        self.message_post(body=message)
        self._sms_notify_responsible(_("SMS mailing stopped"), message)

    def _sms_finish_if_done(self):
        """Done when its whole audience is materialised and no message of the mailing waits to
        be sent or retried."""
        self.ensure_one()
        if self.sms_audience_pending:
            return
        self.env.cr.execute(SQL(
            "SELECT 1 FROM mailing_trace WHERE mass_mailing_id = %s AND trace_type = 'sms' "
            "AND trace_status IN ('outgoing', 'process') LIMIT 1",
            self.id,
        ))
        if not self.env.cr.fetchone() and self.state == "sending":
            self.write({"state": "done", "sent_date": fields.Datetime.now(), "kpi_mail_required": not self.sent_date})

    def _sms_retrigger(self, deadline_reached):
        """Run again at once while batches remain, else at the next retry or scheduled mailing."""
        if deadline_reached:
            self._sms_trigger_send_cron(fields.Datetime.now())
            return
        self.env.cr.execute(SQL(
            """
            SELECT min(t.sms_next_attempt) FROM mailing_trace t
              JOIN mailing_mailing m ON m.id = t.mass_mailing_id
             WHERE m.state = 'sending' AND m.sms_waiting_credit IS NOT TRUE AND t.trace_type = 'sms'
               AND t.trace_status = 'outgoing' AND t.sms_next_attempt IS NOT NULL
            """
        ))
        next_retry = self.env.cr.fetchone()[0]
        scheduled = self.search([("mailing_type", "=", "sms"), ("state", "=", "in_queue"),
                                 ("schedule_date", ">", fields.Datetime.now())], order="schedule_date", limit=1)
        for moment in (next_retry, scheduled.schedule_date):
            if moment:
                self._sms_trigger_send_cron(moment)

    # ------------------------------------------------------------
    # BATCHES
    # ------------------------------------------------------------

    def _sms_claim_batch(self, size):
        """Lock the next due outgoing traces of this mailing. SKIP LOCKED: two workers never
        take the same message; the locks hold until the batch's results are committed, so a
        worker that dies mid-batch releases its messages untouched (same uuids next time).

        :return: list of :class:`~..tools.sms_delivery.SmsMessage`
        """
        query = SQL(
            """
            SELECT id, sms_uuid, sms_number, sms_country_code, COALESCE(sms_parts, 1), COALESCE(sms_attempts, 0),
                   res_id
              FROM mailing_trace
             WHERE mass_mailing_id = %(mailing)s AND trace_type = 'sms' AND trace_status = 'outgoing'
               AND sms_uuid IS NOT NULL
               AND (sms_next_attempt IS NULL OR sms_next_attempt <= %(now)s)
             ORDER BY id
             LIMIT %(size)s
               FOR UPDATE SKIP LOCKED
            """,
            mailing=self.id, now=fields.Datetime.now(), size=size,
        )
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(query)
                rows = self.env.cr.fetchall()
        except psycopg2.errors.SerializationFailure:
            # This transaction's snapshot (taken by the checks before the claim) predates another
            # worker's commit on these rows: nothing was written since the last commit, so start a
            # fresh transaction and claim again. Tests run in one transaction: they never get here.
            if getattr(threading.current_thread(), "testing", False):
                raise
            self.env.cr.rollback()
            self.env.invalidate_all()
            self.env.cr.execute(query)
            rows = self.env.cr.fetchall()
        return [sms_delivery.SmsMessage._make(row) for row in rows]

    def _sms_send_batch(self, ledger=None):
        """Claim, check credit, send and record one batch. Returns True when a batch went out
        (more may remain), False when there was nothing to send or sending paused.

        :param ledger: the cron run's :class:`~..tools.sms_delivery.CreditLedger` (a new one when None)
        """
        self.ensure_one()
        if self.state != "sending":
            return False
        error = self._sms_delivery_error()
        if error:
            self._sms_stop_sending(error)
            return False
        ledger = sms_delivery.CreditLedger() if ledger is None else ledger
        gateway = self._sms_get_gateway()
        batch = self._sms_claim_batch(gateway.batch_size)
        if not batch:
            return False
        started = time.monotonic()
        batch = self._sms_defer_quiet_hours(batch)
        if not batch:
            return True  # all of it waits for its send window; the next claim takes other messages
        bodies = self._sms_render_bodies([(message.trace_id, message.res_id) for message in batch])
        batch = self._sms_cancel_too_long(batch, bodies)
        if not batch:
            return True
        balance = self._sms_balance(gateway, ledger)
        cost = sms_delivery.batch_cost(
            [(message.parts, message.country) for message in batch], gateway._price_table(), gateway.price_default
        )
        if not sms_delivery.covers(balance, cost):
            self._sms_pause_for_credit(balance, cost)
            return False
        sender = self.sms_sender_id.name or None
        messages = [
            {"uuid": message.uuid, "number": message.number, "content": bodies[message.trace_id],
             "sender": sender, "sms_class": self.sms_class}
            for message in batch
        ]
        try:
            with gateway._get_api() as api:
                results = api.send(messages, webhook_url=gateway._report_url())
        except sms_gateway_api.GatewayInsufficientCreditError:
            self._sms_pause_for_credit(0.0, cost)
            return False
        except sms_gateway_api.GatewayTransientError as error:
            if error.maybe_sent and not gateway._get_capabilities().idempotent_send:
                # The operator may have taken the batch and cannot tell us by our reference:
                # sending it again could deliver it twice. It waits for its reports instead.
                _logger.warning("SMS mailing %s: answer to a batch of %s lost, outcome unknown: %s",
                                self.id, len(batch), error)
                results = [{"uuid": message.uuid, "state": sms_delivery.UNKNOWN_STATE, "credits": 0.0}
                           for message in batch]
                self._sms_record_results(batch, {result["uuid"]: result for result in results}, gateway, ledger,
                                         reason=str(error))
                return True
            _logger.warning("SMS mailing %s: batch of %s failed, will retry: %s", self.id, len(batch), error)
            self._sms_record_retry(batch, gateway, "sms_server", str(error))
            return True
        except sms_gateway_api.GatewayError as error:  # transient or refused: retried
            failure = "sms_acc" if isinstance(error, sms_gateway_api.GatewayAccessError) else "sms_server"
            _logger.warning("SMS mailing %s: batch of %s failed, will retry: %s", self.id, len(batch), error)
            self._sms_record_retry(batch, gateway, failure, str(error))
            return True
        by_uuid = {result["uuid"]: result for result in results}
        self._sms_record_results(batch, by_uuid, gateway, ledger)
        if any(result["state"] == "insufficient_credit" for result in results):
            self._sms_pause_for_credit(ledger.balance(gateway.id) or 0.0, cost)
        if gateway.throughput:
            time.sleep(max(0.0, len(batch) / gateway.throughput - (time.monotonic() - started)))
        return True

    def _sms_defer_quiet_hours(self, batch):
        """Keep the messages whose recipients are inside the send window now; the others get
        their next attempt at the window's opening in their time zone (no attempt is counted)."""
        window = self._sms_send_window()
        if not window:
            return batch
        now = fields.Datetime.now()
        kept, deferred_ids, deferred_at = [], [], []
        for message in batch:
            when = sms_quiet_hours.next_send_time(now, sms_quiet_hours.timezones_for_number(message.number), *window)
            if when is None:
                kept.append(message)
            else:
                deferred_ids.append(message.trace_id)
                deferred_at.append(when)
        if deferred_ids:
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace t SET sms_next_attempt = r.next
                  FROM unnest(%s::int[], %s::timestamp[]) AS r(id, next) WHERE t.id = r.id
                """,
                deferred_ids, deferred_at,
            ))
            self.env["mailing.trace"].invalidate_model(["sms_next_attempt"])
        return kept

    def _sms_cancel_too_long(self, batch, bodies):
        """Count each rendered SMS (``bodies`` by trace id): a message longer than the company's
        maximum number of parts is canceled with that reason and never sent.

        :return: the other messages, each with the parts of its rendered text
        """
        limit = (self.company_id or self.env.company).sms_max_segments
        kept, too_long = [], []
        for claimed in batch:
            message = claimed._replace(parts=sms_segments.billed_parts(bodies[claimed.trace_id]))
            (too_long if message.parts > limit else kept).append(message)
        if too_long:
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace t
                   SET trace_status = 'cancel', failure_type = 'sms_too_long', failure_reason = r.reason,
                       sms_parts = r.parts, sms_credits = 0, sms_next_attempt = NULL, write_date = %(now)s
                  FROM unnest(%(ids)s::int[], %(parts)s::int[], %(reasons)s::text[]) AS r(id, parts, reason)
                 WHERE t.id = r.id
                """,
                now=fields.Datetime.now(),
                ids=[message.trace_id for message in too_long],
                parts=[message.parts for message in too_long],
                reasons=[
                    _("Once rendered for this recipient the SMS needs %(parts)s parts, more than the maximum of "
                      "%(max)s.", parts=message.parts, max=limit)
                    for message in too_long
                ],
            ))
            self.env["mailing.trace"].invalidate_model()
        return kept

    def _sms_record_results(self, batch, by_uuid, gateway, ledger, reason=None):
        """Store the gateway's answer for each message of ``batch`` (``by_uuid``: its results by
        uuid) and take what it charged off the ``ledger`` (and off the gateway's credit budget when
        its provider has no balance API). A message whose answer was lost (state ``unknown``) is
        counted as sent, flagged, and never sent again: its delivery report settles it. Each trace
        records the parts actually sent."""
        now = fields.Datetime.now()
        prices = gateway._price_table()
        local_prices = not gateway._get_capabilities().prices
        rows = {"id": [], "status": [], "failure": [], "reason": [], "credits": [], "next": [], "attempts": [],
                "unknown": [], "parts": []}
        spent = 0.0
        lost_reason = reason
        for message in batch:
            result = by_uuid.get(message.uuid) or {"state": "server_error", "credits": 0}
            state = result["state"]
            status, failure = sms_delivery.trace_state_for_send(state)
            charged = float(result.get("credits") or 0.0)
            if local_prices and not charged and state in ("accepted", sms_delivery.UNKNOWN_STATE):
                # The operator does not say what it charged: our local price, as the credit check had it.
                charged = sms_delivery.message_cost(message.parts, message.country, prices, gateway.price_default)
                spent += charged
            else:
                spent += charged
                if state == "accepted" and not charged:
                    # The gateway took this uuid before (our answer was lost, or the worker died
                    # before recording it): it answers "accepted, 0 credits" and charged the first
                    # time, for this rendered text at its current prices.
                    charged = sms_delivery.message_cost(
                        message.parts, message.country, prices, gateway.price_default
                    )
            next_attempt = None
            reason = None
            if state == sms_delivery.UNKNOWN_STATE:
                reason = _("The gateway's answer was lost (%s): waiting for the delivery report, not sent again.",
                           lost_reason or _("no answer"))
            if state == "server_error":
                if message.attempts + 1 >= gateway.max_attempts:
                    status, reason = "error", _("The gateway failed %s times.", message.attempts + 1)
                else:
                    next_attempt = now + timedelta(seconds=sms_delivery.backoff_seconds(message.attempts))
            elif state == "invalid_sender":
                reason = _("The gateway does not allow the sender %s on this account.", self.sms_sender_id.name)
            for key, value in (("id", message.trace_id), ("status", status), ("failure", failure or None),
                               ("reason", reason), ("credits", charged), ("next", next_attempt),
                               ("attempts", message.attempts + 1), ("parts", message.parts),
                               ("unknown", state == sms_delivery.UNKNOWN_STATE)):
                rows[key].append(value)
        self.env.cr.execute(SQL(
            """
            UPDATE mailing_trace t
               SET trace_status = CASE WHEN t.sms_report_date IS NOT NULL THEN t.trace_status ELSE r.status END,
                   failure_type = CASE WHEN t.sms_report_date IS NOT NULL THEN t.failure_type ELSE r.failure END,
                   failure_reason = r.reason,
                   sms_credits = r.credits,
                   sms_parts = r.parts,
                   sms_next_attempt = r.next,
                   sms_attempts = r.attempts,
                   sms_gateway_id = %(gateway)s,
                   sms_unknown = r.unknown AND t.sms_report_date IS NULL,
                   sent_datetime = CASE WHEN r.status = 'pending' THEN COALESCE(t.sent_datetime, %(now)s)
                                        ELSE t.sent_datetime END,
                   write_date = %(now)s
              FROM unnest(%(ids)s::int[], %(status)s::varchar[], %(failure)s::varchar[], %(reason)s::text[],
                          %(credits)s::numeric[], %(next)s::timestamp[], %(attempts)s::int[], %(parts)s::int[],
                          %(unknown)s::bool[])
                   AS r(id, status, failure, reason, credits, next, attempts, parts, unknown)
             WHERE t.id = r.id
            """,
            now=now, ids=rows["id"], status=rows["status"], failure=rows["failure"], reason=rows["reason"],
            credits=rows["credits"], next=rows["next"], attempts=rows["attempts"], parts=rows["parts"],
            gateway=gateway.id, unknown=rows["unknown"],
        ))
        self.env["mailing.trace"].invalidate_model()
        ledger.spend(gateway.id, spent)
        gateway._spend_budget(spent)

    @api.model
    def _sms_settle_reported_charges(self, limit=5000):
        """Record what the gateway charged for messages whose delivery report arrived before their
        send result (the answer was lost, or the worker died before recording it): the report
        proves the gateway accepted them, so they are not sent again and the retry that would have
        told us "accepted" never comes. Each costs its rendered text's parts at the gateway's
        price, as the gateway charged it; the retry left behind is cleared."""
        self.env["mailing.trace"].flush_model()
        self.env.cr.execute(SQL(
            """
            SELECT mass_mailing_id, id, res_id, sms_country_code, COALESCE(sms_parts, 1) FROM mailing_trace
             WHERE trace_type = 'sms' AND sms_uuid IS NOT NULL AND sms_credits IS NULL
               AND sms_report_date IS NOT NULL AND trace_status NOT IN ('outgoing', 'process', 'cancel')
             ORDER BY mass_mailing_id, id
             LIMIT %s
            """,
            limit,
        ))
        by_mailing = {}
        for mailing_id, trace_id, res_id, country, stored_parts in self.env.cr.fetchall():
            by_mailing.setdefault(mailing_id, []).append((trace_id, res_id, country, stored_parts))
        for mailing in self.browse(list(by_mailing)):
            gateway = mailing.sms_gateway_id or self.env["sms.gateway"]._get_default_gateway(mailing.company_id)
            if not gateway:
                continue
            rows = by_mailing[mailing.id]
            existing = set(self.env[mailing.mailing_model_real].browse([row[1] for row in rows]).exists().ids)
            try:
                bodies = mailing._sms_render_bodies([(row[0], row[1]) for row in rows if row[1] in existing])
            except UserError as error:  # the text no longer renders (a field was removed...)
                _logger.warning("SMS mailing %s: charges recorded from the stored parts: %s", mailing.id, error)
                bodies = {}
            # A recipient deleted since, or a text that no longer renders: the parts counted at send.
            parts = [sms_segments.billed_parts(bodies[row[0]]) if row[0] in bodies else row[3] for row in rows]
            prices = gateway._price_table()
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace t
                   SET sms_parts = r.parts, sms_credits = r.credits, sms_next_attempt = NULL,
                       failure_reason = NULL
                  FROM unnest(%s::int[], %s::int[], %s::numeric[]) AS r(id, parts, credits)
                 WHERE t.id = r.id AND t.sms_credits IS NULL
                """,
                [row[0] for row in rows],
                parts,
                [sms_delivery.message_cost(count, row[2], prices, gateway.price_default)
                 for count, row in zip(parts, rows, strict=True)],
            ))
            _logger.info("SMS mailing %s: recorded the charge of %s messages reported before their send result",
                         mailing.id, len(rows))
        self.env["mailing.trace"].invalidate_model(["sms_parts", "sms_credits", "sms_next_attempt", "failure_reason"])

    def _sms_record_retry(self, batch, gateway, failure, reason):
        """The whole call failed: every message keeps its uuid and waits for its retry, or fails
        for good after the gateway's maximum number of attempts."""
        now = fields.Datetime.now()
        ids = [message.trace_id for message in batch]
        attempts = [message.attempts + 1 for message in batch]
        nexts = [now + timedelta(seconds=sms_delivery.backoff_seconds(message.attempts)) for message in batch]
        self.env.cr.execute(SQL(
            """
            UPDATE mailing_trace t
               SET sms_attempts = r.attempts,
                   sms_next_attempt = CASE WHEN r.attempts >= %(max)s THEN NULL ELSE r.next END,
                   trace_status = CASE WHEN r.attempts >= %(max)s THEN 'error' ELSE t.trace_status END,
                   failure_type = CASE WHEN r.attempts >= %(max)s THEN %(failure)s ELSE t.failure_type END,
                   failure_reason = %(reason)s,
                   write_date = %(now)s
              FROM unnest(%(ids)s::int[], %(attempts)s::int[], %(nexts)s::timestamp[]) AS r(id, attempts, next)
             WHERE t.id = r.id
            """,
            max=gateway.max_attempts, failure=failure, reason=reason[:1000], now=now,
            ids=ids, attempts=attempts, nexts=nexts,
        ))
        self.env["mailing.trace"].invalidate_model()

    # ------------------------------------------------------------
    # CREDIT
    # ------------------------------------------------------------

    def _sms_balance(self, gateway, ledger):
        """The gateway's balance, fetched with its price list once per cron run (so credit
        checks use the gateway's current prices), then tracked locally in the ``ledger`` as
        batches spend it."""
        if gateway.id not in ledger:
            try:
                ledger.record(gateway.id, gateway._refresh_from_gateway())
            except sms_gateway_api.GatewayError as error:
                _logger.warning("SMS gateway %s: balance unavailable (%s): sending without a credit check",
                                gateway.name, error)
                ledger.record(gateway.id, None)
        return ledger.balance(gateway.id)

    def _sms_pause_for_credit(self, balance, cost):
        self.ensure_one()
        if self.sms_waiting_credit:
            return
        self.sms_waiting_credit = True
        message = _(
            "Sending paused: the gateway's balance (%(balance).2f credits) cannot pay for the next batch "
            "(%(cost).2f credits). It resumes by itself once the balance allows, or use Resume.",
            balance=balance, cost=cost,
        )
        self.message_post(body=message)
        self._sms_notify_responsible(_("SMS mailing waiting for credit"), message)

    def _sms_resume_if_credit(self, ledger):
        """A paused mailing resumes when the balance covers its next batch; one that may no longer
        send meanwhile (its sender refused while it waited...) stops without asking its gateway."""
        self.ensure_one()
        error = self._sms_delivery_error()
        if error:
            self._sms_stop_sending(error)
            return
        gateway = self._sms_get_gateway()
        balance = self._sms_balance(gateway, ledger)
        self.env.cr.execute(SQL(
            """
            SELECT COALESCE(sms_parts, 1), sms_country_code FROM mailing_trace
             WHERE mass_mailing_id = %s AND trace_type = 'sms' AND trace_status = 'outgoing'
               AND sms_uuid IS NOT NULL ORDER BY id LIMIT %s
            """,
            self.id, gateway.batch_size,
        ))
        cost = sms_delivery.batch_cost(self.env.cr.fetchall(), gateway._price_table(), gateway.price_default)
        if sms_delivery.covers(balance, cost):
            self.action_sms_resume()

    def _sms_notify_responsible(self, summary, note):
        self.ensure_one()
        user = self.user_id or self.create_uid
        if user and not user.share:
            self.activity_schedule("mail.mail_activity_data_todo", summary=summary, note=note, user_id=user.id)
