import logging
import threading
import time

import psycopg2

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression
from odoo.tools import SQL, config

from ..tools import sms_delivery, sms_gateway_api, sms_links, sms_quiet_hours

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
        positions = {}  # where each mailing's claim continues (see _sms_claim_batch)
        pending = True
        while pending and time.monotonic() < deadline:
            pending = False
            for mailing in mailings.filtered(lambda m: not m.sms_waiting_credit):
                if time.monotonic() >= deadline:
                    break
                if mailing.state == "sending" and mailing.sms_audience_pending:
                    mailing._sms_materialize_next(plans.setdefault(mailing.id, mailing._sms_chunk_plan()), deadline)
                    pending = True
                if mailing._sms_send_batch(ledger, positions):
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
            try:
                with self.env.cr.savepoint():
                    # Not logged as a bad query: expected when several workers send this mailing.
                    self.env.cr.execute(
                        SQL("SELECT id FROM mailing_mailing WHERE id = %s FOR NO KEY UPDATE NOWAIT", self.id),
                        log_exceptions=False,
                    )
                    self.write({"state": "done", "sent_date": fields.Datetime.now(),
                                "kpi_mail_required": not self.sent_date})
                    self.flush_recordset()
            except (psycopg2.errors.SerializationFailure, psycopg2.errors.LockNotAvailable):
                # Another worker sending this mailing finished it at the same moment (or holds
                # it): it is done either way, and that worker's commit says so.
                _logger.info("SMS mailing %s: finished by another worker", self.id)
                self.invalidate_recordset()

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

    def _sms_claim_batch(self, size, positions=None):
        """Lock the next due outgoing traces of this mailing. SKIP LOCKED: two workers never
        take the same message; the locks hold until the batch's results are committed, so a
        worker that dies mid-batch releases its messages untouched (same uuids next time).

        :param positions: the cron run's ``{mailing id: last trace id claimed}``, updated. The claim
            continues after that id, in id order: the index of outgoing traces still holds the
            entries of the traces sent since the last vacuum, and walking them from the mailing's
            first trace at every batch costs more than the rest of the claim. A trace below that
            id that is due again (a retry, messages a dead worker released, the end of quiet
            hours) is claimed when the claim reaches the end of the mailing and starts over.
        :return: list of :class:`~..tools.sms_delivery.SmsMessage`
        """
        after = (positions or {}).get(self.id, 0)
        try:
            with self.env.cr.savepoint(flush=False):
                rows, last = self._sms_claim_rows(size, after)
        except psycopg2.errors.SerializationFailure:
            # This transaction's snapshot (taken by the checks before the claim) predates another
            # worker's commit on these rows: nothing was written since the last commit, so start a
            # fresh transaction and claim again. Tests run in one transaction: they never get here.
            if getattr(threading.current_thread(), "testing", False):
                raise
            self.env.cr.rollback()
            self.env.invalidate_all()
            rows, last = self._sms_claim_rows(size, after)
        if positions is not None:
            positions[self.id] = last
        return [sms_delivery.SmsMessage._make(row) for row in rows]

    def _sms_claim_rows(self, size, after):
        """The claim's rows: up to ``size`` due outgoing traces with an id above ``after``, then,
        when those run out, from the mailing's first trace up to ``after`` (a trace locked by this
        transaction is not skipped by SKIP LOCKED: the two ranges never overlap). Return the rows
        and the id to continue after (0 when the mailing's end was reached: start over)."""
        cr = self.env.cr
        # The plan must walk the index of outgoing traces in id order and stop at ``size`` rows; a
        # bitmap scan then a sort would read every remaining trace of the mailing at every batch.
        cr.execute(SQL("SELECT current_setting('enable_sort'), set_config('enable_sort', 'off', true)"))
        enable_sort = cr.fetchone()[0]
        rows = self._sms_claim_query(size, SQL("id > %s", after))
        last = rows[-1][0] if len(rows) == size else 0
        if len(rows) < size and after:
            wrapped = self._sms_claim_query(size - len(rows), SQL("id <= %s", after))
            last = wrapped[-1][0] if len(wrapped) == size - len(rows) else 0
            rows += wrapped
        cr.execute(SQL("SELECT set_config('enable_sort', %s, true)", enable_sort))
        return rows, last

    def _sms_claim_query(self, size, id_range):
        self.env.cr.execute(SQL(
            """
            SELECT id, sms_uuid, sms_number, sms_country_code, COALESCE(sms_parts, 1), COALESCE(sms_attempts, 0),
                   res_id
              FROM mailing_trace
             WHERE mass_mailing_id = %(mailing)s AND trace_type = 'sms' AND trace_status = 'outgoing'
               AND sms_uuid IS NOT NULL AND sms_sending_since IS NULL AND %(id_range)s
               AND (sms_next_attempt IS NULL OR sms_next_attempt <= %(now)s)
             ORDER BY id
             LIMIT %(size)s
               FOR UPDATE SKIP LOCKED
            """,
            mailing=self.id, now=fields.Datetime.now(), size=size, id_range=id_range,
        ))
        return self.env.cr.fetchall()

    def _sms_send_batch(self, ledger=None, positions=None):
        """Claim, check credit, send and record one batch. Returns True when a batch went out
        (more may remain), False when there was nothing to send or sending paused.

        :param ledger: the cron run's :class:`~..tools.sms_delivery.CreditLedger` (a new one when None)
        :param positions: the cron run's claim positions (see :meth:`_sms_claim_batch`)
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
        # A worker that died after handing messages to a gateway that cannot de-duplicate left
        # them marked: looked up there first, never sent blindly again.
        recovered = self._sms_recover_handed_over(ledger=ledger)
        batch = self._sms_claim_batch(gateway.batch_size, positions)
        if not batch:
            return bool(recovered)
        started = time.monotonic()
        batch, bodies = self._sms_prepare_batch(batch)
        if not batch:
            return True  # waiting for its send window, or too long: the next claim takes other messages
        balance = self._sms_balance(gateway, ledger)
        cost = sms_delivery.batch_cost(
            [(message.parts, message.country) for message in batch], gateway._price_table(), gateway.price_default
        )
        if not sms_delivery.covers(balance, cost):
            self._sms_pause_for_credit(balance, cost)
            return False
        batch = self._sms_mark_handed_over(batch, gateway)
        if not batch:
            return True
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
            self._sms_clear_handed_over(batch)  # refused as a whole: nothing was sent
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

    def _sms_prepare_batch(self, batch):
        """The messages of ``batch`` to send now (the others wait for their send window or are
        canceled as too long once rendered), and their rendered texts by trace id."""
        batch = self._sms_defer_quiet_hours(batch)
        if not batch:
            return batch, {}
        bodies = self._sms_render_bodies([(message.trace_id, message.res_id) for message in batch])
        return self._sms_cancel_too_long(batch, bodies), bodies

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
