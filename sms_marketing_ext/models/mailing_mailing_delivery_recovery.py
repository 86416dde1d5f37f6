import logging
from datetime import timedelta

from odoo import _, fields, models
from odoo.tools import SQL

from ..tools import sms_delivery, sms_segments
from ..tools.providers.base import MAX_BATCH, GatewayError

_logger = logging.getLogger(__name__)

# A message the gateway says it never received, handed to it this long ago at least, is sent again;
# a younger one waits (the gateway may not list a message it just took yet).
REQUEUE_AFTER = timedelta(minutes=2)
# A message whose lookup did not settle it is asked again at most this often (not before every batch).
ASK_AGAIN_AFTER = timedelta(minutes=1)


class MailingMailingDeliveryRecovery(models.Model):
    """Exactly once through a gateway that cannot de-duplicate (issue 12 §1): the messages of a
    batch are marked *handed to the gateway* (``sms_sending_since``) and the mark committed before
    the call; their results clear it. A mark left on an outgoing message means its worker died
    between the call and the commit of its results (SIGKILL, the server's time limit, a crash):
    the gateway may have sent it. The next send of the mailing looks such messages up at the
    gateway by our reference (the provider's status query, :meth:`SmsProvider.status_of`) before
    claiming anything:

    * found (a final state, or a ``pending`` answer that names the provider's id): accepted, its
      id kept, its final state applied as a report; never sent again;
    * ``unknown`` (the gateway never took it) and handed over :data:`REQUEUE_AFTER` ago: the
      mark is cleared and the message is sent like any other (once);
    * anything else (``pending`` without proof, a provider without status query): recorded as
      *outcome unknown*, counted as sent, settled by the lost-answer machinery (the OVH poll, the
      settle cron, a delivery report) and never sent again;
    * the query failing: the mark stays, asked again (at most every :data:`ASK_AGAIN_AFTER`).

    A worker alive holds the row locks of its batch again right after the commit of the mark,
    so the recovery (``SKIP LOCKED``) never takes a batch being sent.
    """

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    def _sms_mark_handed_over(self, batch, gateway):
        """Commit ``batch`` as handed to ``gateway`` (not idempotent), then lock its messages again.

        :return: the messages of ``batch`` still this worker's (another worker's recovery may
            have taken some in the instant between the commit and the lock)
        """
        if gateway._get_capabilities().idempotent_send or not batch:
            return batch
        stamp = fields.Datetime.now()
        ids = [message.trace_id for message in batch]
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_sending_since = %s, sms_gateway_id = %s WHERE id = ANY(%s)",
            stamp, gateway.id, ids,
        ))
        self._sms_commit()
        self.env.cr.execute(SQL(
            """
            SELECT id FROM mailing_trace
             WHERE id = ANY(%s) AND trace_status = 'outgoing' AND sms_sending_since = %s
               FOR UPDATE SKIP LOCKED
            """,
            ids, stamp,
        ))
        mine = {row[0] for row in self.env.cr.fetchall()}
        return [message for message in batch if message.trace_id in mine]

    def _sms_clear_handed_over(self, batch):
        """The gateway refused the whole call: ``batch`` was not handed over after all."""
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_sending_since = NULL WHERE id = ANY(%s)",
            [message.trace_id for message in batch],
        ))

    def _sms_recover_handed_over(self, ledger=None, now=None):
        """Settle this mailing's messages left handed to a gateway by a worker that died (see the
        class docstring). Return how many were settled or sent back to the queue."""
        self.ensure_one()
        now = now or fields.Datetime.now()
        self.env["mailing.trace"].flush_model()
        self.env.cr.execute(SQL(
            """
            SELECT t.id, t.sms_uuid, t.sms_number, t.sms_country_code, COALESCE(t.sms_parts, 1),
                   COALESCE(t.sms_attempts, 0), t.res_id, t.sms_sending_since, t.sms_gateway_id
              FROM mailing_trace t
             WHERE t.mass_mailing_id = %(mailing)s AND t.trace_type = 'sms' AND t.trace_status = 'outgoing'
               AND t.sms_sending_since IS NOT NULL AND t.sms_uuid IS NOT NULL
               AND (t.sms_status_date IS NULL OR t.sms_status_date < t.sms_sending_since
                    OR (t.sms_status_date <= %(asked_before)s AND t.sms_sending_since <= %(handed_before)s))
             ORDER BY t.id
             LIMIT %(limit)s
               FOR UPDATE OF t SKIP LOCKED
            """,
            mailing=self.id, limit=MAX_BATCH, asked_before=now - ASK_AGAIN_AFTER, handed_before=now - REQUEUE_AFTER,
        ))
        rows = self.env.cr.fetchall()
        if not rows:
            return 0
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_status_date = %s WHERE id = ANY(%s)", now, [row[0] for row in rows],
        ))
        by_gateway = {}
        for row in rows:
            by_gateway.setdefault(row[8], []).append(row)
        done = 0
        for gateway_id, gateway_rows in by_gateway.items():
            # A gateway deleted since cannot be asked: its messages wait as outcome unknown.
            gateway = self.env["sms.gateway"].sudo().browse(gateway_id or []).exists()
            done += self._sms_recover_rows(gateway, gateway_rows, now, ledger)
        self.env["mailing.trace"].invalidate_model()
        return done

    def _sms_recover_rows(self, gateway, rows, now, ledger):
        messages = [sms_delivery.SmsMessage._make(row[:7]) for row in rows]
        handed = {row[0]: row[7] for row in rows}
        answers = {}
        if gateway and gateway._get_capabilities().status_query:
            sender = self.sms_sender_id.name or None
            try:
                with gateway._get_api() as api_client:
                    answers = api_client.status_of([
                        {"uuid": message.uuid, "provider_ref": None, "number": message.number, "sender": sender,
                         "sent_at": handed[message.trace_id]}
                        for message in messages
                    ])
            except GatewayError as error:
                _logger.warning("SMS mailing %s: %s messages handed to gateway %s by a worker that died could "
                                "not be looked up, asked again later: %s", self.id, len(messages), gateway.id, error)
                return 0
        results, reports, requeue, later = {}, {}, [], []
        for message in messages:
            answer = answers.get(message.uuid.lower()) or answers.get(message.uuid)
            state = (answer or {}).get("state")
            if state == "unknown":
                (requeue if handed[message.trace_id] <= now - REQUEUE_AFTER else later).append(message.trace_id)
                continue
            found = state in sms_delivery.GATEWAY_REPORT_STATE or bool((answer or {}).get("provider_ref"))
            results[message.uuid] = {
                "state": "accepted" if found else sms_delivery.UNKNOWN_STATE, "credits": 0.0,
                "provider_ref": (answer or {}).get("provider_ref"),
            }
            if state in sms_delivery.GATEWAY_REPORT_STATE:
                reports[message.uuid] = (state, answer.get("at") or now)
        if requeue:
            self.env.cr.execute(SQL(
                "UPDATE mailing_trace SET sms_sending_since = NULL WHERE id = ANY(%s) AND trace_status = 'outgoing'",
                requeue,
            ))
        if later:
            self._sms_trigger_send_cron(min(handed[trace_id] for trace_id in later) + REQUEUE_AFTER)
        recorded = [message for message in messages if message.uuid in results]
        if recorded:
            bodies = self._sms_render_bodies([(message.trace_id, message.res_id) for message in recorded])
            suffix = self._sms_provider_suffix()
            recorded = [message._replace(parts=sms_segments.billed_parts(bodies[message.trace_id] + suffix))
                        for message in recorded]
            self._sms_record_results(recorded, results, gateway or self._sms_get_gateway(),
                                     ledger or sms_delivery.CreditLedger(),
                                     reason=_("the worker sending it stopped before recording the answer"))
            Trace = self.env["mailing.trace"].sudo()
            for uuid, (state, at) in reports.items():
                Trace._sms_apply_delivery_report(uuid, state, at, gateway)  # reports: only with a gateway
        _logger.info("SMS mailing %s: %s messages handed to gateway %s by a worker that died: %s found there, "
                     "%s never received (sent again), %s outcome unknown", self.id, len(messages), gateway.id or None,
                     sum(1 for result in results.values() if result["state"] == "accepted"), len(requeue),
                     sum(1 for result in results.values() if result["state"] != "accepted"))
        return len(recorded) + len(requeue)
