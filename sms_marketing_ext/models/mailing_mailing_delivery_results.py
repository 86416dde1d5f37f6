import logging
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import sms_delivery, sms_gateway_api, sms_segments
from ..tools.sms_delivery import SmsMessage

_logger = logging.getLogger(__name__)

# What _sms_record_results stores per message, besides the trace id: (name, PostgreSQL type).
RESULT_COLUMNS = (
    ("status", "varchar"), ("failure", "varchar"), ("reason", "text"), ("credits", "numeric"),
    ("next", "timestamp"), ("attempts", "int4"), ("parts", "int4"), ("unknown", "bool"), ("ref", "varchar"),
)


class MailingMailingDeliveryResults(models.Model):
    """What the send pipeline records after a batch: each message's result, the retries, the
    charges settled from the gateway's reports, and the pause and resume for credit."""

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    # ------------------------------------------------------------
    # RESULTS
    # ------------------------------------------------------------

    def _sms_cancel_too_long(self, batch, bodies):
        """Count each rendered SMS (``bodies`` by trace id): a message longer than the company's
        maximum number of parts is canceled with that reason and never sent.

        :return: the other messages, each with the parts of its rendered text
        """
        limit = (self.company_id or self.env.company).sms_max_segments
        suffix = self._sms_provider_suffix()  # what the gateway appends counts, as it bills it
        kept, too_long = [], []
        billed_parts = sms_segments.billed_parts
        for claimed in batch:
            trace_id, uuid, number, country, _parts, attempts, res_id = claimed
            # As claimed._replace(parts=...), without its per-call overhead (one per SMS).
            message = SmsMessage(trace_id, uuid, number, country, billed_parts(bodies[trace_id] + suffix), attempts,
                                 res_id)
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
        if not batch:
            return
        now = fields.Datetime.now()
        prices = gateway._price_table()
        local_prices = not gateway._get_capabilities().prices
        rows = {"id": [], "status": [], "failure": [], "reason": [], "credits": [], "next": [], "attempts": [],
                "unknown": [], "parts": [], "ref": []}
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
                if state in ("accepted", sms_delivery.UNKNOWN_STATE) and not charged:
                    # The gateway took this uuid before (our answer was lost, or the worker died
                    # before recording it): it answers "accepted, 0 credits" and charged the first
                    # time, for this rendered text at its current prices. A provider that prices
                    # later (Twilio) answers 0 too; a lost answer is counted as sent, at that price.
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
                               ("unknown", state == sms_delivery.UNKNOWN_STATE),
                               ("ref", result.get("provider_ref") or None)):
                rows[key].append(value)
        self._sms_store_results(rows, gateway, now)
        self.env["mailing.trace"].invalidate_model()
        ledger.spend(gateway.id, spent)
        gateway._spend_budget(spent)

    def _sms_store_results(self, rows, gateway, now):
        """One UPDATE of the batch's traces from ``rows`` (lists by RESULT_COLUMNS name, and ``id``).
        A column whose value is the same for the whole batch (the usual case: every message
        accepted, at the same price) is one parameter, not an array of the batch's size: the
        statement PostgreSQL parses is a few kB instead of tens, and the update does less."""
        value = {}
        arrays, names = [SQL("%s::int4[]", rows["id"])], [SQL("id")]
        for name, column_type in RESULT_COLUMNS:
            values = rows[name]
            if all(item == values[0] for item in values):
                value[name] = SQL("%s::%s", values[0], SQL(column_type))
            else:
                arrays.append(SQL("%s::%s[]", values, SQL(column_type)))
                names.append(SQL.identifier(name))
                value[name] = SQL.identifier("r", name)
        self.env.cr.execute(SQL(
            """
            UPDATE mailing_trace t
               SET trace_status = CASE WHEN t.sms_report_date IS NOT NULL THEN t.trace_status ELSE %(status)s END,
                   failure_type = CASE WHEN t.sms_report_date IS NOT NULL THEN t.failure_type ELSE %(failure)s END,
                   failure_reason = %(reason)s,
                   sms_credits = %(credits)s,
                   sms_parts = %(parts)s,
                   sms_next_attempt = %(next)s,
                   sms_attempts = %(attempts)s,
                   sms_gateway_id = %(gateway)s,
                   sms_unknown = %(unknown)s AND t.sms_report_date IS NULL,
                   sms_provider_ref = COALESCE(%(ref)s, t.sms_provider_ref),
                   sms_sending_since = NULL,
                   sent_datetime = CASE WHEN %(status)s = 'pending' THEN COALESCE(t.sent_datetime, %(now)s)
                                        ELSE t.sent_datetime END,
                   write_date = %(now)s
              FROM unnest(%(arrays)s) AS r(%(names)s)
             WHERE t.id = r.id
            """,
            now=now, gateway=gateway.id, arrays=SQL(", ").join(arrays), names=SQL(", ").join(names), **value,
        ))

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
            suffix = mailing._sms_provider_suffix()
            parts = [sms_segments.billed_parts(bodies[row[0]] + suffix) if row[0] in bodies else row[3] for row in rows]
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
                   sms_sending_since = NULL,
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
