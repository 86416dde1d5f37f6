import logging
import time
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..tools import sms_delivery
from ..tools.providers.base import MAX_BATCH, GatewayError

_logger = logging.getLogger(__name__)

# Horizon of a message whose gateway was deleted since (no settings left to read).
DEFAULT_EXPIRE_HOURS = 72


class SmsGatewaySettle(models.Model):
    """Nothing stays pending forever (issue 12 §5). The *SMS Marketing: settle pending messages*
    cron settles the messages sent through a gateway that still have no final state some hours
    after sending (reports lost: the receiver was down longer than the provider retries, or the
    provider never sends them):

    * **Settle after** (``settle_after_hours``): from then on, a provider with a status query is
      asked the state of each such message, in batches, again every *settle after* hours while it
      answers ``pending``. A final state is applied as a delivery report would be. ``unknown``
      (the provider never took the message) settles a message whose send answer was lost
      (``sms_unknown``) as not sent: ``sms_server`` failure, no credits, the credit budget given
      back; the provider's word is the only proof there is.
    * **Give up after** (``settle_expire_hours``): a message still without a final state is
      recorded as expired (``error`` / ``sms_expired``, with the reason), as an operator would do
      by hand, for every provider (those without a status query only get this step). It keeps
      its credits: the provider may well have sent and charged it. A real report arriving later
      still wins (``sms_report_date`` stays empty).

    The settings are per gateway: how long reports take is a property of the provider and its
    operator. The cron is set-based (one UPDATE per batch), commits per batch, takes at most the
    send cron's time budget and runs again at once while work remains; running it twice changes
    nothing more.
    """

    _inherit = "sms.gateway"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    settle_after_hours = fields.Integer(
        "Settle after (hours)", default=4, tracking=True,
        help="Messages still without a delivery report this many hours after sending are asked to the "
        "gateway (when its provider has a status query), and again every as many hours.",
    )
    settle_expire_hours = fields.Integer(
        "Give up after (hours)", default=DEFAULT_EXPIRE_HOURS, tracking=True,
        help="Messages still without a final state this many hours after sending are recorded as expired "
        "(failure 'Expired'); a delivery report arriving later still applies.",
    )

    @api.constrains("settle_after_hours", "settle_expire_hours")
    def _check_settle_hours(self):
        for gateway in self:
            if not 1 <= gateway.settle_after_hours <= gateway.settle_expire_hours:
                raise ValidationError(_(
                    "Gateway %(name)s: messages are settled at least 1 hour after sending, and given up no "
                    "sooner than they are settled (settle after %(after)s h, give up after %(expire)s h).",
                    name=gateway.name, after=gateway.settle_after_hours, expire=gateway.settle_expire_hours,
                ))

    # ------------------------------------------------------------
    # CRON
    # ------------------------------------------------------------

    @api.model
    def _cron_sms_settle(self, time_budget=None, now=None, gateways=None):
        """"SMS Marketing: settle pending messages" (see the class docstring).

        :param time_budget: seconds; by default the send cron's
        :param now: the current time (tests)
        :param gateways: only the messages of these gateways (default: every gateway's)
        :return: ``{"queried": n, "settled": n, "expired": n}`` for this run
        """
        mailing_model = self.env["mailing.mailing"]
        if time_budget is None:
            time_budget = mailing_model._sms_cron_time_budget()
        deadline = time.monotonic() + time_budget
        now = now or fields.Datetime.now()
        counts = {"queried": 0, "settled": 0, "expired": 0}
        self.env["mailing.trace"].flush_model()
        if gateways is None:
            gateways = self.sudo().search([("active", "=", True)])
        for gateway in gateways.sudo().filtered(lambda g: g.active and g._get_capabilities().status_query):
            while time.monotonic() < deadline:
                done = gateway._sms_settle_status_batch(now, counts)
                mailing_model._sms_commit()
                if done:
                    break
        while time.monotonic() < deadline:
            expired = self._sms_expire_batch(now, gateway_ids=None if gateways is None else gateways.ids)
            counts["expired"] += expired
            mailing_model._sms_commit()
            if expired < MAX_BATCH:
                break
        if time.monotonic() >= deadline:
            self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_settle")._trigger()
        if any(counts.values()):
            _logger.info("SMS settle: %(queried)s messages asked, %(settled)s settled, %(expired)s expired", counts)
        return counts

    def _sms_settle_status_batch(self, now, counts, sent_before=None, asked_before=None, unknown_only=False):
        """Ask the provider the state of the next batch of this gateway's messages due for a
        status query; apply the answers. Return True when none is left for this run.

        Due: sent before ``sent_before`` and not asked since ``asked_before`` (both default to
        *settle after* hours ago; a provider polled more often passes its own); only the messages
        whose send answer was lost when ``unknown_only``."""
        self.ensure_one()
        due = now - timedelta(hours=self.settle_after_hours)
        sent_before = sent_before or due
        asked_before = asked_before or due
        size = min(self.batch_size or MAX_BATCH, MAX_BATCH)
        self.env.cr.execute(SQL(
            """
            SELECT t.id, t.sms_uuid, t.sms_unknown, COALESCE(t.sms_credits, 0),
                   t.sms_provider_ref, t.sms_number, t.sent_datetime, s.name
              FROM mailing_trace t
              JOIN mailing_mailing m ON m.id = t.mass_mailing_id
              LEFT JOIN sms_sender s ON s.id = m.sms_sender_id
             WHERE t.trace_type = 'sms' AND t.trace_status = 'pending' AND t.sms_uuid IS NOT NULL
               AND t.sent_datetime <= %(sent_before)s
               AND (t.sms_status_date IS NULL OR t.sms_status_date <= %(asked_before)s)
               AND (t.sms_unknown OR NOT %(unknown_only)s)
               AND COALESCE(t.sms_gateway_id, m.sms_gateway_id) = %(gateway)s
             ORDER BY t.sent_datetime, t.id
             LIMIT %(size)s
               FOR UPDATE OF t SKIP LOCKED
            """,
            sent_before=sent_before, asked_before=asked_before, unknown_only=unknown_only, gateway=self.id,
            size=size,
        ))
        rows = self.env.cr.fetchall()
        if not rows:
            return True
        try:
            with self._get_api() as api_client:
                answers = api_client.status_of([
                    {"uuid": row[1], "provider_ref": row[4], "number": row[5], "sent_at": row[6], "sender": row[7]}
                    for row in rows
                ])
        except GatewayError as error:
            _logger.warning("SMS gateway %s (%s): status query failed, settling later: %s", self.name, self.id, error)
            return True
        counts["queried"] += len(rows)
        final = {"id": [], "status": [], "failure": [], "at": []}
        never_taken, refund, found = [], 0.0, {}
        for trace_id, uuid, unknown, charged, *_known in rows:
            answer = answers.get(uuid.lower()) or answers.get(uuid) or {"state": "pending", "at": None}
            if answer.get("provider_ref"):  # the provider found it by other means than its id
                found[trace_id] = answer["provider_ref"]
            if answer["state"] in sms_delivery.GATEWAY_REPORT_STATE:
                status, failure = sms_delivery.trace_state_for_report(answer["state"])
                for key, value in (("id", trace_id), ("status", status), ("failure", failure or None),
                                   ("at", answer.get("at") or now)):
                    final[key].append(value)
            elif answer["state"] == "unknown" and unknown:
                never_taken.append(trace_id)
                refund += float(charged)
        self.env.cr.execute(SQL(
            "UPDATE mailing_trace SET sms_status_date = %s WHERE id = ANY(%s)", now, [row[0] for row in rows],
        ))
        if found:
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace t SET sms_provider_ref = r.ref
                  FROM unnest(%s::int[], %s::varchar[]) AS r(id, ref)
                 WHERE t.id = r.id AND t.sms_provider_ref IS NULL
                """,
                list(found), list(found.values()),
            ))
        if final["id"]:
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace t
                   SET trace_status = r.status, failure_type = r.failure, sms_report_date = r.at,
                       sms_unknown = false, write_date = %(now)s
                  FROM unnest(%(ids)s::int[], %(status)s::varchar[], %(failure)s::varchar[], %(at)s::timestamp[])
                       AS r(id, status, failure, at)
                 WHERE t.id = r.id AND t.trace_status = 'pending'
                """,
                now=now, ids=final["id"], status=final["status"], failure=final["failure"], at=final["at"],
            ))
            counts["settled"] += self.env.cr.rowcount
        if never_taken:
            self.env.cr.execute(SQL(
                """
                UPDATE mailing_trace
                   SET trace_status = 'error', failure_type = 'sms_server', sms_unknown = false, sms_credits = 0,
                       failure_reason = %(reason)s, write_date = %(now)s
                 WHERE id = ANY(%(ids)s) AND trace_status = 'pending' AND sms_unknown
                """,
                now=now, ids=never_taken,
                reason=_("The gateway's answer to the send was lost and the gateway says it never received "
                         "the message: not sent, not charged."),
            ))
            counts["settled"] += self.env.cr.rowcount
            self._spend_budget(-refund)
        self.env["mailing.trace"].invalidate_model()
        return len(rows) < size

    @api.model
    def _sms_expire_batch(self, now, limit=MAX_BATCH, gateway_ids=None):
        """Record as expired up to ``limit`` messages past their gateway's *give up after*
        horizon (only those of ``gateway_ids`` when given); return how many."""
        of_gateways = SQL("TRUE") if gateway_ids is None else SQL("g.id = ANY(%s)", list(gateway_ids))
        self.env.cr.execute(SQL(
            """
            WITH due AS (
                SELECT t.id, COALESCE(g.settle_expire_hours, %(default)s) AS hours
                  FROM mailing_trace t
                  JOIN mailing_mailing m ON m.id = t.mass_mailing_id
                  LEFT JOIN sms_gateway g ON g.id = COALESCE(t.sms_gateway_id, m.sms_gateway_id)
                 WHERE t.trace_type = 'sms' AND t.trace_status = 'pending' AND t.sms_uuid IS NOT NULL
                   AND %(of_gateways)s
                   AND t.sent_datetime <= %(now)s - make_interval(hours => COALESCE(g.settle_expire_hours,
                                                                                     %(default)s))
                 ORDER BY t.sent_datetime, t.id
                 LIMIT %(limit)s
                   FOR UPDATE OF t SKIP LOCKED
            )
            UPDATE mailing_trace t
               SET trace_status = 'error', failure_type = 'sms_expired', sms_unknown = false,
                   failure_reason = CASE WHEN t.sms_unknown THEN %(lost)s ELSE %(silent)s END
                                    || ' (' || due.hours || ' h)',
                   write_date = %(now)s
              FROM due
             WHERE t.id = due.id
            """,
            now=now, limit=limit, default=DEFAULT_EXPIRE_HOURS, of_gateways=of_gateways,
            lost=_("The gateway's answer to the send was lost and no delivery report came within the horizon: "
                   "recorded as expired, credits kept (the gateway may have sent it)"),
            silent=_("No delivery report and no final state from the gateway within the horizon: recorded as "
                     "expired"),
        ))
        expired = self.env.cr.rowcount
        if expired:
            self.env["mailing.trace"].invalidate_model()
        return expired
