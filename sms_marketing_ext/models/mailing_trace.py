import logging

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools import sms_delivery

_logger = logging.getLogger(__name__)


class MailingTrace(models.Model):
    """One trace per recipient of an SMS mailing is the unit of delivery: it keeps the message's
    uuid for life (reused on every retry, so the gateway de-duplicates), its destination
    country, parts and credits, and its retry schedule. No sms.sms row is created for marketing
    SMS: the body is rendered per batch at send time from the mailing."""

    _inherit = "mailing.trace"

    failure_type = fields.Selection(
        selection_add=[
            ("sms_sender_invalid", "Sender not allowed by the gateway"),
            ("sms_capped", "Frequency cap"),
        ]
    )
    sms_uuid = fields.Char("SMS UUID", copy=False, readonly=True, help="Identifies the message at the gateway.")
    sms_country_code = fields.Char("Destination country", size=2, readonly=True)
    sms_parts = fields.Integer("SMS parts", readonly=True)
    sms_credits = fields.Float("Credits", readonly=True, digits=(16, 4))
    sms_attempts = fields.Integer("Send attempts", readonly=True)
    sms_next_attempt = fields.Datetime("Next attempt", readonly=True)
    sms_report_date = fields.Datetime("Delivery report", readonly=True)

    def init(self):
        res = super().init()
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS mailing_trace_sms_uuid_uniq "
                "ON mailing_trace (sms_uuid) WHERE sms_uuid IS NOT NULL"
            )
        )
        # One SMS per number per mailing, whatever retries or concurrent workers do.
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS mailing_trace_sms_mailing_number_uniq "
                "ON mailing_trace (mass_mailing_id, sms_number) WHERE sms_uuid IS NOT NULL"
            )
        )
        # Duplicates across A/B siblings and the frequency cap look traces up by number.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mailing_trace_sms_number_idx "
                "ON mailing_trace (sms_number, sent_datetime) WHERE trace_type = 'sms'"
            )
        )
        # Materialisation skips the records a mailing already traced, chunk by chunk: one probe
        # per record (without it, each chunk scans every trace of the mailing so far). res_id
        # first: no query by mailing alone (the duplicate check by number) mistakes it for
        # the unique index above.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mailing_trace_sms_res_mailing_idx "
                "ON mailing_trace (res_id, mass_mailing_id) WHERE trace_type = 'sms'"
            )
        )
        # The send cron claims outgoing SMS traces of a mailing in id order.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mailing_trace_sms_outgoing_idx "
                "ON mailing_trace (mass_mailing_id, id) WHERE trace_type = 'sms' AND trace_status = 'outgoing'"
            )
        )
        return res

    @api.model
    def _sms_apply_delivery_report(self, uuid, state, report_date=None):
        """Apply one delivery report from a gateway. Reports can repeat and can arrive before the
        send call that produced the message has returned: a report is applied at most once per
        final state, and a later 'accepted' send result never overwrites it (see the send cron).

        :return: True when a trace with this uuid exists (known message), else False.
        """
        status, failure_type = sms_delivery.trace_state_for_report(state)
        self.env.cr.execute(
            SQL(
                """
                UPDATE mailing_trace
                   SET trace_status = %(status)s,
                       failure_type = %(failure_type)s,
                       sms_report_date = %(report_date)s,
                       sent_datetime = COALESCE(sent_datetime, %(report_date)s),
                       write_date = now() AT TIME ZONE 'UTC'
                 WHERE sms_uuid = %(uuid)s
                   AND trace_type = 'sms'
                   AND trace_status NOT IN ('open', 'reply', 'cancel')
                   AND (sms_report_date IS NULL OR sms_report_date <= %(report_date)s)
             RETURNING id
                """,
                status=status,
                failure_type=failure_type or None,
                report_date=report_date or fields.Datetime.now(),
                uuid=uuid,
            )
        )
        updated = self.env.cr.fetchall()
        if updated:
            self.invalidate_model(["trace_status", "failure_type", "sms_report_date", "sent_datetime"])
            return True
        return bool(self.search_count([("sms_uuid", "=", uuid)], limit=1))
