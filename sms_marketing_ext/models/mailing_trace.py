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
            ("sms_too_long", "Too long once rendered"),
        ]
    )
    sms_uuid = fields.Char("SMS UUID", copy=False, readonly=True, help="Identifies the message at the gateway.")
    sms_country_code = fields.Char("Destination country", size=2, readonly=True)
    sms_parts = fields.Integer("SMS parts", readonly=True)
    sms_credits = fields.Float("Credits", readonly=True, digits=(16, 4))
    sms_attempts = fields.Integer("Send attempts", readonly=True)
    sms_next_attempt = fields.Datetime("Next attempt", readonly=True)
    sms_report_date = fields.Datetime("Delivery report", readonly=True)
    sms_gateway_id = fields.Many2one(
        "sms.gateway", "Sent through", readonly=True, ondelete="set null",
        help="The gateway that answered the send call of this message; only its reports apply.",
    )
    sms_provider_ref = fields.Char(
        "Provider message id", readonly=True, copy=False,
        help="The operator's own id of the message (Twilio's message SID), for its support and console.",
    )
    sms_unknown = fields.Boolean(
        "Outcome unknown", readonly=True, copy=False,
        help="The gateway's answer to the send was lost and its provider cannot de-duplicate: the message is "
        "not sent again, and waits for its delivery report.",
    )

    sms_sending_since = fields.Datetime(
        "Handed to the gateway on", readonly=True, copy=False,
        help="Set and committed just before a gateway that cannot de-duplicate gets the message, cleared when "
        "its answer is recorded. Still set on a message waiting to be sent: the worker died meanwhile, and the "
        "message is looked up at the gateway by its reference before anything is sent again.",
    )
    sms_status_date = fields.Datetime(
        "Status asked on", readonly=True, copy=False,
        help="When the gateway was last asked the state of this message (see the settle cron).",
    )

    def init(self):
        res = super().init()
        # The settle cron looks up the messages still pending long after sending.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mailing_trace_sms_pending_idx ON mailing_trace (sent_datetime, id) "
                "WHERE trace_type = 'sms' AND trace_status = 'pending' AND sms_uuid IS NOT NULL"
            )
        )
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
        # Messages handed to a gateway by a worker that died before recording the answer (see
        # mailing_mailing_delivery_recovery.py), looked up before every batch: rare, so tiny.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mailing_trace_sms_handed_over_idx ON mailing_trace (mass_mailing_id, id) "
                "WHERE trace_type = 'sms' AND trace_status = 'outgoing' AND sms_sending_since IS NOT NULL"
            )
        )
        # Messages a delivery report showed accepted before their send result was recorded: the
        # send cron records what they cost (see _sms_settle_reported_charges). Rare, so tiny.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mailing_trace_sms_unsettled_idx ON mailing_trace (mass_mailing_id, id) "
                "WHERE trace_type = 'sms' AND sms_uuid IS NOT NULL AND sms_credits IS NULL "
                "AND sms_report_date IS NOT NULL"
            )
        )
        return res

    @api.model
    def _sms_apply_delivery_report(self, uuid, state, report_date=None, gateway=None):
        """Apply one delivery report from a gateway. Reports can repeat and can arrive before the
        send call that produced the message has returned: a report is applied at most once per
        final state, and a later 'accepted' send result never overwrites it (see the send cron).

        :param gateway: the gateway that signed the report, if any: then only a message sent
            through it moves (the gateway that answered its send call, else its mailing's gateway).
        :return: True when a trace with this uuid exists (of ``gateway``, when given), else False.
        """
        status, failure_type = sms_delivery.trace_state_for_report(state)
        of_gateway = SQL("TRUE")
        known_domain = [("sms_uuid", "=", uuid)]
        if gateway:
            of_gateway = SQL(
                """EXISTS (SELECT 1 FROM mailing_mailing m
                            WHERE m.id = mailing_trace.mass_mailing_id
                              AND COALESCE(mailing_trace.sms_gateway_id, m.sms_gateway_id) = %s)""",
                gateway.id,
            )
            known_domain += ["|", ("sms_gateway_id", "=", gateway.id),
                             "&", ("sms_gateway_id", "=", False), ("mass_mailing_id.sms_gateway_id", "=", gateway.id)]
        self.env.cr.execute(
            SQL(
                """
                UPDATE mailing_trace
                   SET trace_status = %(status)s,
                       failure_type = %(failure_type)s,
                       sms_report_date = %(report_date)s,
                       sms_unknown = false,
                       sent_datetime = COALESCE(sent_datetime, %(report_date)s),
                       write_date = now() AT TIME ZONE 'UTC'
                 WHERE sms_uuid = %(uuid)s
                   AND trace_type = 'sms'
                   AND trace_status NOT IN ('open', 'reply', 'cancel')
                   AND (sms_report_date IS NULL OR sms_report_date <= %(report_date)s)
                   AND %(of_gateway)s
             RETURNING id
                """,
                status=status,
                failure_type=failure_type or None,
                report_date=report_date or fields.Datetime.now(),
                uuid=uuid,
                of_gateway=of_gateway,
            )
        )
        updated = self.env.cr.fetchall()
        if updated:
            self.invalidate_model(["trace_status", "failure_type", "sms_report_date", "sent_datetime", "sms_unknown"])
            return True
        return bool(self.search_count(known_domain, limit=1))

    @api.model
    def _sms_apply_iap_reports(self, states):
        """Apply the delivery reports Odoo IAP posts to stock's unsigned ``/sms/status``, in one
        statement: ``states`` maps uuids to report states. Only traces sent through an Odoo IAP
        gateway move: the gateway that answered their send call, else (messages sent before it was
        recorded, or whose send result is not committed yet) their mailing's gateway. Rules of
        :meth:`_sms_apply_delivery_report` (final states kept, an older report never wins).

        :return: the number of traces updated.
        """
        if not states:
            return 0
        uuids = list(states)
        statuses, failures = zip(*(sms_delivery.trace_state_for_report(states[uuid]) for uuid in uuids), strict=True)
        now = fields.Datetime.now()
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                UPDATE mailing_trace t
                   SET trace_status = r.status,
                       failure_type = r.failure,
                       sms_report_date = %(now)s,
                       sent_datetime = COALESCE(t.sent_datetime, %(now)s),
                       sms_unknown = false,
                       write_date = %(now)s
                  FROM unnest(%(uuids)s::varchar[], %(statuses)s::varchar[], %(failures)s::varchar[])
                           AS r(uuid, status, failure),
                       mailing_mailing m, sms_gateway g
                 WHERE t.sms_uuid = r.uuid
                   AND t.sms_uuid IS NOT NULL
                   AND t.trace_type = 'sms'
                   AND m.id = t.mass_mailing_id
                   AND g.id = COALESCE(t.sms_gateway_id, m.sms_gateway_id)
                   AND g.provider = 'odoo_iap'
                   AND t.trace_status NOT IN ('open', 'reply', 'cancel')
                   AND (t.sms_report_date IS NULL OR t.sms_report_date <= %(now)s)
                """,
                now=now,
                uuids=uuids,
                statuses=list(statuses),
                failures=[failure or None for failure in failures],
            )
        )
        updated = self.env.cr.rowcount
        if updated:
            self.invalidate_model(["trace_status", "failure_type", "sms_report_date", "sent_datetime", "sms_unknown"])
        return updated
