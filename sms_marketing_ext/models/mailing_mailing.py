import ast
import logging
import threading
import time
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL, float_round, split_every

from odoo.addons.link_tracker.models.link_tracker import LINK_TRACKER_MIN_CODE_LENGTH
from odoo.addons.phone_validation.tools import phone_validation

from ..tools import sms_audience, sms_gateway_api, sms_links, sms_quiet_hours, sms_segments, sms_tokens

_logger = logging.getLogger(__name__)

# Recipients whose numbers are normalised in Python (models without a stored phone_sanitized)
# are streamed in chunks of this size, so memory stays flat whatever the audience.
AUDIENCE_CHUNK = 20000
# Retries of transient gateway errors wait 30 s, 1 min, 2 min... up to 1 hour.
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
# A cron run sends for at most this long, then re-triggers itself (other crons get a turn).
SEND_TIME_BUDGET = 50

SMS_CLASSES = [
    ("standard", "Standard"),
    ("flash", "Flash"),
    ("sim", "SIM"),
]


def _raw_number_sql(raw_fields):
    """The first non-blank of the record's number columns (SQL), NULL when all are blank."""
    return SQL("COALESCE(%s)", SQL(", ").join(SQL("NULLIF(btrim(%s), '')", field) for field in raw_fields))


class MailingMailing(models.Model):
    _inherit = "mailing.mailing"

    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        help="The company whose senders, limits and gateway an SMS mailing uses.",
    )
    sms_sender_id = fields.Many2one(
        "sms.sender",
        "Sender",
        compute="_compute_sms_sender_id",
        store=True,
        readonly=False,
        domain="[('state', '=', 'approved'), ('company_id', '=', company_id)]",
        tracking=True,
        ondelete="restrict",
        help="What recipients see as the sender. Only approved senders of the mailing's company.",
    )
    sms_sender_accepts_replies = fields.Boolean(related="sms_sender_id.accepts_replies")
    sms_class = fields.Selection(
        SMS_CLASSES,
        "Message class",
        default="standard",
        required=True,
        help="Standard: the usual SMS, stored in the phone's inbox.\n"
        "Flash: shown at once on the screen and not stored.\n"
        "SIM: stored on the SIM card.",
    )
    # Counting, on the body as it will be sent (tracked links, opt-out footer).
    sms_encoding = fields.Selection(
        [("gsm7", "GSM 7-bit"), ("ucs2", "Unicode (UCS-2)")], "Encoding", compute="_compute_sms_counts"
    )
    sms_length = fields.Integer(
        "Length", compute="_compute_sms_counts", help="Septets in GSM 7-bit, UTF-16 code units in Unicode."
    )
    sms_segment_count = fields.Integer("SMS parts", compute="_compute_sms_counts", help="Parts per recipient.")
    sms_non_gsm_chars = fields.Char(
        "Unicode characters", compute="_compute_sms_counts", help="The characters that force Unicode."
    )
    sms_max_segments = fields.Integer(related="company_id.sms_max_segments")
    sms_optout_required = fields.Boolean(compute="_compute_sms_optout_required")
    sms_gateway_id = fields.Many2one(
        "sms.gateway",
        "Gateway",
        compute="_compute_sms_gateway_id",
        store=True,
        readonly=False,
        domain="[('company_id', '=', company_id)]",
        ondelete="restrict",
        help="The gateway the SMS go through: the company's default one unless chosen.",
    )
    sms_quiet_hours_mode = fields.Selection(
        [("company", "Company setting"), ("custom", "Custom window"), ("off", "Send at any hour")],
        "Quiet hours",
        default="company",
        required=True,
        help="Send only inside a daily window of each recipient's local time; messages outside it wait.",
    )
    sms_send_window_start = fields.Float("Send from", default=8.0)
    sms_send_window_end = fields.Float("Send until", default=21.0)
    sms_cost_estimate = fields.Float(
        "Estimated cost", readonly=True, copy=False, digits=(16, 2),
        help="Credits: valid recipients per country x parts per message x the country's price, "
        "at the last estimate (Check recipients, Send or Schedule).",
    )
    sms_cost_balance = fields.Float("Balance at estimate", readonly=True, copy=False, digits=(16, 2))
    sms_cost_date = fields.Datetime("Estimated on", readonly=True, copy=False)
    sms_cost_covered = fields.Boolean(readonly=True, copy=False)
    # Statistics of a sent SMS mailing (one SQL aggregate, see _compute_statistics)
    sms_stat_recipients = fields.Integer("Recipients", compute="_compute_statistics")
    sms_stat_sent = fields.Integer("SMS sent", compute="_compute_statistics")
    sms_stat_delivered = fields.Integer("SMS delivered", compute="_compute_statistics")
    sms_stat_failed = fields.Integer("SMS failed", compute="_compute_statistics")
    sms_stat_excluded = fields.Integer("Excluded", compute="_compute_statistics")
    sms_stat_clicked = fields.Integer("Unique clicks", compute="_compute_statistics")
    sms_stat_click_rate = fields.Float("Click rate", compute="_compute_statistics")
    sms_stat_optouts = fields.Integer("Opt-outs", compute="_compute_statistics")
    sms_stat_credits = fields.Float("Credits spent", compute="_compute_statistics", digits=(16, 2))
    sms_waiting_credit = fields.Boolean(
        "Waiting for credit",
        readonly=True,
        copy=False,
        tracking=True,
        help="Sending paused: the gateway's balance cannot pay for the next batch. It resumes by itself "
        "when the balance allows, or at once with Resume.",
    )

    @api.depends("company_id", "mailing_type")
    def _compute_sms_sender_id(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.sms_sender_id = False
            elif not mailing.sms_sender_id or mailing.sms_sender_id.company_id != mailing.company_id:
                mailing.sms_sender_id = self.env["sms.sender"]._get_default_sender(
                    mailing.company_id or self.env.company
                )

    # Stock's statistics (_compute_statistics) and click ratio (_compute_clicks_ratio) are two
    # queries over the traces, the click ratio with a COUNT(DISTINCT) join on clicks: 1 s at a
    # million recipients before our own figures. For SMS mailings, all of them come from one
    # aggregate (see _compute_statistics).
    clicks_ratio = fields.Float(compute="_compute_statistics")

    def _compute_statistics(self):
        """Stock's statistics and click ratio, and our SMS figures, for SMS mailings from one
        SQL aggregate over their traces (a million-recipient mailing opens in a fraction of a
        second); unique clicks count recipients, never bots (a bot's click has no trace)."""
        sms_mailings = self.filtered(lambda m: m.mailing_type == "sms" and m.id)
        others = self - sms_mailings
        res = super(MailingMailing, others)._compute_statistics()
        others._compute_clicks_ratio()
        keys = ("recipients", "sent", "delivered", "failed", "excluded", "clicked", "click_rate", "optouts", "credits")
        others.update({f"sms_stat_{key}": 0 for key in keys})
        if sms_mailings:
            sms_mailings._compute_sms_statistics()
        return res

    def _compute_sms_statistics(self):
        self.env["mailing.trace"].flush_model()
        self.env.cr.execute(SQL(
            """
            SELECT mass_mailing_id,
                   count(*),
                   count(sent_datetime),  -- accepted by the gateway, whatever the delivery report said
                   count(*) FILTER (WHERE trace_status = 'outgoing'),
                   count(*) FILTER (WHERE trace_status = 'cancel'),
                   count(*) FILTER (WHERE trace_status = 'process'),
                   count(*) FILTER (WHERE trace_status = 'pending'),
                   count(*) FILTER (WHERE trace_status IN ('sent', 'open', 'reply')),
                   count(*) FILTER (WHERE trace_status IN ('open', 'reply')),
                   count(links_click_datetime),
                   count(links_click_datetime) FILTER (WHERE trace_status <> 'cancel'),
                   count(*) FILTER (WHERE trace_status = 'reply'),
                   count(*) FILTER (WHERE trace_status = 'bounce'),
                   count(*) FILTER (WHERE trace_status = 'error'),
                   COALESCE(sum(sms_credits), 0)
              FROM mailing_trace
             WHERE mass_mailing_id = ANY(%s)
          GROUP BY mass_mailing_id
            """,
            self.ids,
        ))
        rows = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        optouts = {}
        if "sms.consent.event" in self.env:
            self.env["sms.consent.event"].flush_model()
            self.env.cr.execute(SQL(
                "SELECT mailing_id, count(DISTINCT number) FROM sms_consent_event "
                "WHERE mailing_id = ANY(%s) AND action = 'optout' GROUP BY mailing_id",
                self.ids,
            ))
            optouts = dict(self.env.cr.fetchall())

        def ratio(part, whole):
            return float_round(100.0 * part / whole, precision_digits=2) if whole else 0.0

        for mailing in self:
            (expected, sent, scheduled, canceled, process, pending, delivered, opened, clicked, clicked_sent,
             replied, bounced, failed, credits_spent) = rows.get(mailing.id, (0,) * 14)
            total = (expected - canceled) or 1
            mailing.update({
                # stock's figures, as stock computes them
                "expected": expected, "sent": sent, "scheduled": scheduled, "canceled": canceled,
                "process": process, "pending": pending, "delivered": delivered, "opened": opened,
                "clicked": clicked, "replied": replied, "bounced": bounced, "failed": failed,
                "received_ratio": ratio(delivered, total), "opened_ratio": ratio(opened, total),
                "replied_ratio": ratio(replied, total), "bounced_ratio": ratio(bounced, total),
                "clicks_ratio": ratio(clicked_sent, expected - canceled),
                # ours
                "sms_stat_recipients": expected - canceled,
                "sms_stat_sent": sent,
                "sms_stat_delivered": delivered,
                "sms_stat_failed": failed + bounced,
                "sms_stat_excluded": canceled,
                "sms_stat_clicked": clicked,
                "sms_stat_click_rate": ratio(clicked, sent),
                "sms_stat_optouts": optouts.get(mailing.id, 0),
                "sms_stat_credits": float(credits_spent),
            })

    # Failures worth another try: the gateway failed, refused the account or lacked credit.
    # Wrong numbers, refused senders and delivery failures would fail the same way again.
    SMS_RETRYABLE_FAILURES = ("sms_server", "sms_acc", "sms_credit")

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
                mailing.id, self.SMS_RETRYABLE_FAILURES,
            ))
            if self.env.cr.rowcount:
                mailing.write({"state": "sending", "sms_waiting_credit": False})
                mailing.message_post(body=_("%s failed SMS queued again.", self.env.cr.rowcount))
        self.env["mailing.trace"].invalidate_model()
        self._sms_trigger_send_cron()
        return True

    def action_sms_view_failures(self):
        """The failed and excluded recipients, grouped by reason."""
        self.ensure_one()
        action = self._action_view_traces_filtered("bounced")
        action.update({
            "name": _("Failures by reason"),
            "domain": [("mass_mailing_id", "=", self.id), ("trace_status", "in", ("error", "bounce", "cancel"))],
            "context": {"group_by": ["failure_type"], "search_default_mass_mailing_id": self.id},
        })
        return action

    def action_sms_view_optouts(self):
        self.ensure_one()
        action = self.env["ir.actions.actions"]._for_xml_id("sms_marketing_ext.sms_consent_event_action")
        action.update({"domain": [("mailing_id", "=", self.id), ("action", "=", "optout")], "context": {}})
        return action

    def action_sms_view_credits(self):
        self.ensure_one()
        action = self._action_view_traces_filtered("sent")
        action.update({
            "name": _("Credits spent"),
            "domain": [("mass_mailing_id", "=", self.id), ("sms_credits", ">", 0)],
            "context": {"group_by": ["sms_country_code"], "search_default_mass_mailing_id": self.id},
        })
        return action

    def _prepare_statistics_email_values(self):
        values = super()._prepare_statistics_email_values()
        if self.mailing_type == "sms":
            values["kpi_data"].append({
                "kpi_fullname": _("Delivery and consent"),
                "kpi_col1": {"value": f"{self.sms_stat_credits:.2f}", "col_subtitle": _("CREDITS SPENT")},
                "kpi_col2": {"value": str(self.sms_stat_failed), "col_subtitle": _("FAILED")},
                "kpi_col3": {"value": str(self.sms_stat_optouts), "col_subtitle": _("OPT-OUTS")},
                "kpi_action": None,
                "kpi_name": "sms_delivery",
            })
        return values

    @api.depends("company_id", "mailing_type")
    def _compute_sms_gateway_id(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.sms_gateway_id = False
            elif not mailing.sms_gateway_id or mailing.sms_gateway_id.company_id != mailing.company_id:
                mailing.sms_gateway_id = self.env["sms.gateway"]._get_default_gateway(
                    mailing.company_id or self.env.company
                )

    @api.depends("body_plaintext", "sms_allow_unsubscribe", "company_id", "mailing_type")
    def _compute_sms_counts(self):
        for mailing in self:
            if mailing.mailing_type != "sms":
                mailing.update(
                    {"sms_encoding": False, "sms_length": 0, "sms_segment_count": 0, "sms_non_gsm_chars": False}
                )
                continue
            analysis = sms_segments.analyze(mailing._sms_body_as_sent())
            mailing.update(
                {
                    "sms_encoding": analysis["encoding"],
                    "sms_length": analysis["length"],
                    "sms_segment_count": analysis["segments"],
                    "sms_non_gsm_chars": "".join(analysis["non_gsm_chars"]) or False,
                }
            )

    @api.depends("sms_sender_id.accepts_replies", "mailing_type")
    def _compute_sms_optout_required(self):
        for mailing in self:
            mailing.sms_optout_required = mailing.mailing_type == "sms" and not mailing.sms_sender_id.accepts_replies

    # ------------------------------------------------------------
    # Body as sent
    # ------------------------------------------------------------

    def _sms_short_link_base(self):
        self.ensure_one()
        return (self.company_id or self.env.company)._sms_short_link_base()

    def _sms_code_length(self):
        """Length of the link tracker codes this mailing's links get: the longest code so far
        (codes grow with the number of trackers), at least the stock minimum."""
        self.env["link.tracker.code"].flush_model(["code"])
        self.env.cr.execute("SELECT max(length(code)) FROM link_tracker_code")
        return max(self.env.cr.fetchone()[0] or 0, LINK_TRACKER_MIN_CODE_LENGTH)

    def _sms_optout_footer_template(self):
        """The footer appended to each SMS when the opt-out link is on, with %(url)s for the link."""
        return "\n" + self.env["sms.composer"]._get_unsubscribe_info("%(url)s")

    def sms_counter_context(self):
        """What the live counter of the web client needs to count like the server: the tracked
        form of a link and the opt-out footer, with tokens of their real length."""
        mailing = self[:1]
        company = mailing.company_id or self.env.company
        short_base = company._sms_short_link_base()
        link, footer = sms_links.count_placeholders(
            short_base, mailing._sms_code_length(), self._sms_optout_footer_template()
        )
        return {"link": link, "optout_footer": footer}

    def _sms_body_as_sent(self):
        self.ensure_one()
        return sms_links.render_for_count(
            self.body_plaintext or "",
            self._sms_short_link_base(),
            self._sms_code_length(),
            self._sms_optout_footer_template() if self.sms_allow_unsubscribe else None,
        )

    # ------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------

    def action_sms_make_gsm_compatible(self):
        self.ensure_one()
        new_body, changes = sms_segments.to_gsm(self.body_plaintext or "")
        if not changes:
            message = _("Nothing to replace: no character has a GSM 7-bit look-alike.")
        else:
            self.body_plaintext = new_body
            message = _(
                "Replaced: %s.",
                ", ".join(
                    _("%(char)r by %(replacement)r (%(count)s x)", **change) if change["replacement"]
                    else _("%(char)r removed (%(count)s x)", **change)
                    for change in changes
                ),
            )
        left = sms_segments.analyze(self._sms_body_as_sent())["non_gsm_chars"]
        if left:
            message += " " + _("Still Unicode because of: %s", " ".join(left))
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Make GSM-compatible"),
                "message": message,
                "type": "success" if not left else "warning",
                "sticky": bool(left),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def _sms_check_sendable(self):
        """Raise a UserError in the user's terms when an SMS mailing cannot be sent or scheduled."""
        for mailing in self.filtered(lambda m: m.mailing_type == "sms"):
            sender = mailing.sms_sender_id
            if sender and sender.state != "approved":
                raise UserError(
                    _(
                        "The sender %(sender)s of %(mailing)s is not approved (%(state)s): "
                        "only approved senders can send.",
                        sender=sender.name,
                        mailing=mailing.subject,
                        state=dict(sender._fields["state"]._description_selection(self.env))[sender.state],
                    )
                )
            if sender and sender.company_id != mailing.company_id:
                raise UserError(_("The sender %s belongs to another company than the mailing.", sender.name))
            if not (mailing.body_plaintext or "").strip():
                raise UserError(_("The SMS mailing %s has no content.", mailing.subject))
            limit = (mailing.company_id or self.env.company).sms_max_segments
            if mailing.sms_segment_count > limit:
                raise UserError(
                    _(
                        "%(mailing)s needs %(parts)s SMS parts per recipient, more than the maximum of %(max)s. "
                        "Shorten the message or use GSM characters only (Unicode parts hold 67 characters, "
                        "GSM parts 153).",
                        mailing=mailing.subject,
                        parts=mailing.sms_segment_count,
                        max=limit,
                    )
                )
            if mailing.sms_optout_required and not mailing.sms_allow_unsubscribe:
                raise UserError(
                    _(
                        "Recipients cannot reply STOP to %(sender)s: include the opt-out link in %(mailing)s "
                        "so that they can unsubscribe.",
                        sender=sender.name or _("the gateway's default sender"),
                        mailing=mailing.subject,
                    )
                )

    def _sms_cost_estimate(self, summary=None):
        """What sending now would cost: ``{parts, cost, balance, covered, lines}`` with one line per
        destination country (valid recipients x parts x the country's price). Prices and balance
        are fetched from the gateway when it answers, else the last known ones are used. The
        result is also kept on the mailing (shown on its form)."""
        self.ensure_one()
        summary = summary or self._sms_audience_summary()
        gateway = self.sms_gateway_id or self.env["sms.gateway"]._get_default_gateway(self.company_id)
        balance = None
        if gateway:
            try:
                balance = gateway._refresh_from_gateway()
            except (sms_gateway_api.GatewayTransientError, sms_gateway_api.GatewayError) as error:
                _logger.info("SMS gateway %s unreachable for the estimate: %s", gateway.name, error)
                balance = gateway.balance if gateway.balance_date else None
        parts = self.sms_segment_count
        lines = []
        for country, count in sorted(summary["countries"].items(), key=lambda item: (-item[1], item[0])):
            price = gateway._price_for(country) if gateway else 0.0
            lines.append({"country": country, "count": count, "price": price, "cost": count * parts * price})
        cost = sum(line["cost"] for line in lines)
        covered = balance is None or balance + 1e-9 >= cost
        self.sudo().write({
            "sms_cost_estimate": cost, "sms_cost_balance": balance or 0.0,
            "sms_cost_date": fields.Datetime.now(), "sms_cost_covered": covered,
        })
        return {"parts": parts, "cost": cost, "balance": balance, "covered": covered, "lines": lines}

    def _sms_credit_warning(self, confirm_action):
        """A dialog that warns before sending or scheduling when the balance cannot cover the
        estimate (nothing when it can, when it is unknown, or once the user confirmed)."""
        sms_mailings = self.filtered(lambda m: m.mailing_type == "sms")
        if len(sms_mailings) != 1 or self.env.context.get("sms_ext_cost_confirmed"):
            return None
        audience = self.env["mailing.sms.audience"].create({"mailing_id": sms_mailings.id})
        if audience.covered:
            return None
        audience.confirm_action = confirm_action
        return audience._action_open()

    def action_sms_estimate_cost(self):
        self.ensure_one()
        self._sms_cost_estimate()
        return True

    def action_put_in_queue(self):
        self._sms_check_sendable()
        warning = self._sms_credit_warning("put_in_queue")
        if warning:
            return warning
        res = super().action_put_in_queue()
        self.filtered(lambda m: m.mailing_type == "sms")._sms_trigger_send_cron()
        return res

    def action_schedule(self):
        self._sms_check_sendable()
        return self._sms_credit_warning("schedule") or super().action_schedule()

    def action_send_mail(self, res_ids=None):
        self._sms_check_sendable()
        return super().action_send_mail(res_ids=res_ids)

    # ------------------------------------------------------------
    # Audience
    # ------------------------------------------------------------

    @api.constrains("sms_quiet_hours_mode", "sms_send_window_start", "sms_send_window_end")
    def _check_sms_send_window(self):
        for mailing in self.filtered(lambda m: m.sms_quiet_hours_mode == "custom"):
            start, end = mailing.sms_send_window_start, mailing.sms_send_window_end
            if not (0 <= start < 24 and 0 < end <= 24) or start == end:
                raise ValidationError(_("The send window runs between two different hours of the day (0 to 24)."))

    @api.constrains("mailing_domain", "mailing_model_id")
    def _check_mailing_domain_sms(self):
        for mailing in self.filtered(lambda m: m.mailing_model_id and m.mailing_domain):
            mailing._sms_parse_domain()

    def _sms_parse_domain(self):
        """The recipients' filter as a domain, or a ValidationError in the user's terms. Unlike
        stock (which silently sends to nobody), a filter that does not parse, or that names
        unknown fields, is refused."""
        self.ensure_one()
        model_label = self.mailing_model_id.name or self.mailing_model_real
        try:
            domain = ast.literal_eval(self.mailing_domain or "[]")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValidationError(
                _("The recipients filter of %(mailing)s is not a valid filter: %(domain)s",
                  mailing=self.subject or _("this mailing"), domain=self.mailing_domain[:200])
            ) from None
        if not isinstance(domain, list | tuple):
            raise ValidationError(_("The recipients filter must be a list of conditions, not %s.", domain))
        try:
            domain = expression.normalize_domain(list(domain))
            self.env[self.mailing_model_real].sudo()._where_calc(domain)
        except (ValueError, TypeError, KeyError, AssertionError) as error:
            raise ValidationError(
                _("The recipients filter of %(mailing)s does not fit %(model)s: %(error)s",
                  mailing=self.subject or _("this mailing"), model=model_label, error=error)
            ) from None
        return domain

    def _parse_mailing_domain(self):
        if self.mailing_type == "sms":
            return self._sms_parse_domain()
        return super()._parse_mailing_domain()

    def _sms_audience_mailings(self):
        """This mailing and its A/B testing siblings: a number is targeted once across them."""
        self.ensure_one()
        mailings = self
        if self.ab_testing_enabled and self.campaign_id:
            mailings |= self._get_ab_testing_siblings_mailings()
        return mailings

    def _sms_number_source(self):
        """How to find the recipients' numbers on the target model, as
        (kind, raw number SQL expressions, extra FROM SQL, number SQL expression):

        - "sanitized": the model stores phone_sanitized (mail.thread.phone: contacts, leads...);
        - "partner": the numbers of the record's partner (stored phone_sanitized on res.partner);
        - "python": stored number fields normalised with phonenumbers in chunks.
        """
        Target = self.env[self.mailing_model_real]
        table = Target._table
        number_fields = [
            fname for fname in Target._phone_get_number_fields()
            if fname in Target._fields and Target._fields[fname].store and Target._fields[fname].type == "char"
        ]
        raw = [SQL.identifier("t", fname) for fname in number_fields]
        if "phone_sanitized" in Target._fields and Target._fields["phone_sanitized"].store and raw:
            return "sanitized", raw, SQL("%s t", SQL.identifier(table)), SQL("t.phone_sanitized")
        if number_fields:
            return "python", raw, SQL("%s t", SQL.identifier(table)), None
        partner_field = next(
            (fname for fname in Target._mail_get_partner_fields()
             if Target._fields[fname].store and Target._fields[fname].type == "many2one"),
            None,
        )
        if partner_field:
            return (
                "partner",
                [SQL("p.mobile"), SQL("p.phone")],
                SQL("%s t LEFT JOIN res_partner p ON p.id = %s", SQL.identifier(table),
                    SQL.identifier("t", partner_field)),
                SQL("p.phone_sanitized"),
            )
        raise UserError(
            _("%s has no phone number field: it cannot receive SMS.", self.mailing_model_id.name)
        )

    def _sms_candidates_sql(self, id_range=None):
        """SQL of the remaining recipients: (res_id, raw, number) for every record of the
        filter that no trace of this mailing (or its A/B siblings) covers yet. Everything stays
        in PostgreSQL: no id list is loaded into Python."""
        self.ensure_one()
        Target = self.env[self.mailing_model_real]
        query = Target._where_calc(self._parse_mailing_domain())
        kind, raw_fields, from_sql, number_sql = self._sms_number_source()
        raw_sql = _raw_number_sql(raw_fields)
        range_sql = SQL("AND t.id BETWEEN %s AND %s", *id_range) if id_range else SQL()
        sample_sql = SQL()
        if self.ab_testing_enabled and not self.ab_testing_is_winner_mailing:
            # A/B test: this mailing gets its share of the whole filter, picked at random but
            # stable for the mailing (re-running picks the same recipients).
            self.env.cr.execute(SQL("SELECT count(*) FROM (%s) q", query.select()))
            share = max(int(self.env.cr.fetchone()[0] * self.ab_testing_pc / 100), 1)
            sample_sql = SQL("ORDER BY md5(t.id::text || %s) LIMIT %s", str(self.id), share)
        if kind == "python":
            from_sql = SQL("sms_ext_audience_numbers t")
            number_sql = SQL("t.number")
            raw_sql = SQL("t.raw")
        return SQL(
            """
            SELECT t.id AS res_id, %(raw)s AS raw, %(number)s AS number
              FROM %(from)s
             WHERE t.id IN %(ids)s %(range)s
               AND NOT EXISTS (
                   SELECT 1 FROM mailing_trace done
                    WHERE done.mass_mailing_id = ANY(%(mailings)s)
                      AND done.model = %(model)s AND done.res_id = t.id)
             %(sample)s
            """,
            raw=raw_sql,
            number=number_sql,
            ids=query.subselect(),
            range=range_sql,
            sample=sample_sql,
            **{"from": from_sql},
            mailings=self._sms_audience_mailings().ids,
            model=self.mailing_model_real,
        )

    def _sms_prepare_python_numbers(self):
        """For models without a stored normalised number: stream the filter's records in chunks,
        normalise their numbers with phonenumbers (record's country, else the company's) and
        COPY them into a temporary table that the audience SQL reads like a column."""
        self.ensure_one()
        Target = self.env[self.mailing_model_real]
        _kind, raw_fields, from_sql, _number = self._sms_number_source()
        country_field = Target._phone_get_country_field()
        country_sql = (
            SQL("c.code, c.phone_code")
            if country_field and Target._fields[country_field].store else SQL("NULL, NULL")
        )
        country_join = (
            SQL("LEFT JOIN res_country c ON c.id = %s", SQL.identifier("t", country_field))
            if country_field and Target._fields[country_field].store else SQL()
        )
        company_country = (self.company_id or self.env.company).country_id
        cr = self.env.cr
        cr.execute(SQL(
            "CREATE TEMP TABLE IF NOT EXISTS sms_ext_audience_numbers (id int PRIMARY KEY, raw text, number text)"
            " ON COMMIT DROP"
        ))
        cr.execute(SQL("TRUNCATE sms_ext_audience_numbers"))
        query = Target._where_calc(self._parse_mailing_domain())
        raw_sql = _raw_number_sql(raw_fields)
        cursor_name = f"sms_ext_numbers_{self.id}"
        cr.execute(SQL(
            "DECLARE %s NO SCROLL CURSOR FOR SELECT t.id, %s, %s FROM %s %s WHERE t.id IN %s",
            SQL.identifier(cursor_name), raw_sql, country_sql, from_sql, country_join, query.subselect(),
        ))
        cache = {}
        while True:
            cr.execute(SQL("FETCH %s FROM %s", AUDIENCE_CHUNK, SQL.identifier(cursor_name)))
            rows = cr.fetchall()
            if not rows:
                break
            values = []
            for res_id, raw, country_code, phone_code in rows:
                code = country_code or company_country.code
                prefix = phone_code or company_country.phone_code
                key = (raw, code)
                if key not in cache:
                    try:
                        cache[key] = raw and phone_validation.phone_format(
                            raw, code, prefix, force_format="E164", raise_exception=True)
                    except UserError:
                        cache[key] = None
                values.append((res_id, raw, cache[key] or None))
            for chunk in split_every(5000, values):
                cr.execute(SQL(
                    "INSERT INTO sms_ext_audience_numbers (id, raw, number) "
                    "SELECT * FROM unnest(%s::int[], %s::text[], %s::text[])",
                    [v[0] for v in chunk], [v[1] for v in chunk], [v[2] for v in chunk],
                ))
            if len(cache) > 200000:
                cache.clear()
        cr.execute(SQL("CLOSE %s", SQL.identifier(cursor_name)))

    def _sms_optout_sql(self):
        """Condition (on the candidate ``c``) of a recipient opted out of the mailing's lists:
        opted out of every list of the mailing it is subscribed to (as stock decides). Subscriptions
        created through the contact's list_ids have opt_out NULL: that is subscribed."""
        if self.mailing_model_real != "mailing.contact" or not self.contact_list_ids:
            return SQL("FALSE")
        return SQL(
            """(EXISTS (SELECT 1 FROM mailing_subscription s
                         WHERE s.contact_id = c.res_id AND s.list_id = ANY(%(lists)s) AND s.opt_out IS TRUE)
                AND NOT EXISTS (SELECT 1 FROM mailing_subscription s
                         WHERE s.contact_id = c.res_id AND s.list_id = ANY(%(lists)s) AND s.opt_out IS NOT TRUE))""",
            lists=self.contact_list_ids.ids,
        )

    def _sms_cap_sql(self):
        """Condition (on a deduplicated candidate ``d``) of a number that received a marketing
        SMS in the company's frequency-cap window."""
        hours = (self.company_id or self.env.company).sms_frequency_cap_hours
        if not hours:
            return SQL("FALSE")
        return SQL(
            """EXISTS (SELECT 1 FROM mailing_trace h
                        WHERE h.trace_type = 'sms' AND h.sms_number = d.number
                          AND h.sent_datetime >= %(since)s
                          AND h.trace_status IN ('pending', 'sent', 'open', 'reply', 'bounce')
                          AND h.mass_mailing_id <> ALL(%(mailings)s))""",
            since=fields.Datetime.now() - timedelta(hours=hours),
            mailings=self._sms_audience_mailings().ids,
        )

    def _sms_audience_sql(self, id_range=None):
        """SQL of the classified remaining audience: (res_id, number, country, failure_type),
        failure_type NULL for the recipients that will receive the SMS. One statement: missing
        and invalid numbers, blacklist, list opt-outs, duplicates (within the audience and with
        numbers this mailing or its A/B siblings already target) and the frequency cap."""
        codes = sms_audience.calling_codes()
        return SQL(
            """
            WITH codes(code, country) AS (SELECT * FROM unnest(%(codes)s::text[], %(countries)s::text[])),
            c AS (%(candidates)s),
            pre AS (
                SELECT c.res_id, c.number,
                       CASE WHEN c.raw IS NULL THEN 'sms_number_missing'
                            WHEN c.number IS NULL THEN 'sms_number_format'
                            WHEN EXISTS (SELECT 1 FROM phone_blacklist bl
                                          WHERE bl.number = c.number AND bl.active) THEN 'sms_blacklist'
                            WHEN %(optout)s THEN 'sms_optout'
                       END AS reason
                  FROM c
            ),
            d AS (
                SELECT pre.*,
                       CASE WHEN pre.reason IS NULL AND (
                                row_number() OVER (PARTITION BY pre.number, pre.reason IS NULL ORDER BY pre.res_id) > 1
                                OR EXISTS (SELECT 1 FROM mailing_trace seen
                                            WHERE seen.mass_mailing_id = ANY(%(mailings)s)
                                              AND seen.trace_type = 'sms' AND seen.sms_number = pre.number
                                              AND seen.sms_uuid IS NOT NULL))
                            THEN 'sms_duplicate' ELSE pre.reason END AS reason2
                  FROM pre
            )
            SELECT d.res_id, d.number, COALESCE(code1.country, code2.country, code3.country) AS country,
                   CASE WHEN d.reason2 IS NULL AND %(cap)s THEN 'sms_capped' ELSE d.reason2 END AS failure_type
              FROM d
              -- Calling codes have 1 to 3 digits and none is a prefix of another: one of these
              -- matches. Three equality joins (hash joins) rather than one OR: 10x faster at 100k.
              LEFT JOIN codes code1 ON code1.code = substr(d.number, 2, 1)
              LEFT JOIN codes code2 ON code2.code = substr(d.number, 2, 2)
              LEFT JOIN codes code3 ON code3.code = substr(d.number, 2, 3)
            """,
            codes=[code for code, _country in codes],
            countries=[country for _code, country in codes],
            candidates=self._sms_candidates_sql(id_range),
            optout=self._sms_optout_sql(),
            mailings=self._sms_audience_mailings().ids,
            cap=self._sms_cap_sql(),
        )

    def _sms_audience_sql_setup(self):
        """Session settings for the audience queries: PostgreSQL's JIT compiles these one-off
        queries for seconds (5 of 7 s at 100k recipients) and gains nothing, so it is off for
        the rest of the transaction."""
        self.env.cr.execute(SQL("SET LOCAL jit = off"))

    def _sms_audience_summary(self):
        """Who would receive this mailing if it were sent now, computed in one SQL query:
        ``{total, valid, missing, invalid, duplicates, blacklisted, opted_out, capped,
        countries: {ISO code: valid recipients}}`` over the recipients not yet targeted."""
        self.ensure_one()
        self.env.flush_all()  # the SQL below reads contacts, subscriptions, blacklist and traces
        self._sms_audience_sql_setup()
        if self._sms_number_source()[0] == "python":
            self._sms_prepare_python_numbers()
        self.env.cr.execute(SQL(
            "SELECT a.failure_type, a.country, count(*) FROM (%s) a GROUP BY 1, 2",
            self._sms_audience_sql(),
        ))
        summary = dict.fromkeys(["total", "valid", *sms_audience.SUMMARY_KEYS.values()], 0)
        summary["countries"] = {}
        for failure_type, country, count in self.env.cr.fetchall():
            summary["total"] += count
            if failure_type:
                summary[sms_audience.SUMMARY_KEYS[failure_type]] += count
            else:
                summary["valid"] += count
                key = country or "??"
                summary["countries"][key] = summary["countries"].get(key, 0) + count
        return summary

    def _sms_materialize_audience(self):
        """Create the traces of the remaining audience with set-based SQL, in id-range chunks:
        an outgoing trace with a new uuid for each recipient that will receive the SMS, a
        canceled trace with its reason for the others. Runs under a lock on the mailing so two
        workers never materialise it twice; the partial unique index on (mailing, number) makes
        a second target of the same number impossible anyway.

        :return: number of outgoing traces created
        """
        self.ensure_one()
        self.env.flush_all()  # the SQL below reads contacts, subscriptions, blacklist and traces
        self.env.cr.execute(SQL("SELECT id FROM mailing_mailing WHERE id = %s FOR UPDATE", self.id))
        self._sms_audience_sql_setup()
        kind = self._sms_number_source()[0]
        if kind == "python":
            self._sms_prepare_python_numbers()
        Target = self.env[self.mailing_model_real]
        query = Target._where_calc(self._parse_mailing_domain())
        self.env.cr.execute(SQL("SELECT min(id), max(id) FROM (%s) q", query.select()))
        low, high = self.env.cr.fetchone()
        created = 0
        if low is None:
            return created
        # A/B samples are picked over the whole filter: one chunk.
        step = high - low + 1 if self.ab_testing_enabled else 200000
        for start in range(low, high + 1, step):
            self.env.cr.execute(SQL(
                """
                INSERT INTO mailing_trace (
                    trace_type, model, res_id, mass_mailing_id, campaign_id, sms_number, sms_country_code,
                    trace_status, failure_type, sms_uuid, sms_parts,
                    create_uid, create_date, write_uid, write_date)
                SELECT 'sms', %(model)s, a.res_id, %(mailing)s, %(campaign)s, a.number, a.country,
                       CASE WHEN a.failure_type IS NULL THEN 'outgoing' ELSE 'cancel' END,
                       a.failure_type,
                       CASE WHEN a.failure_type IS NULL
                            THEN md5(random()::text || clock_timestamp()::text || a.res_id::text) END,
                       CASE WHEN a.failure_type IS NULL THEN %(parts)s END,
                       %(uid)s, now() AT TIME ZONE 'UTC', %(uid)s, now() AT TIME ZONE 'UTC'
                  FROM (%(audience)s) a
                ON CONFLICT DO NOTHING
                """,
                model=self.mailing_model_real,
                mailing=self.id,
                campaign=self.campaign_id.id or None,
                parts=self.sms_segment_count,
                uid=self.env.uid,
                audience=self._sms_audience_sql(id_range=(start, start + step - 1)),
            ))
            created += self.env.cr.rowcount
        self.env["mailing.trace"].invalidate_model()
        self.invalidate_recordset()
        self.env.cr.execute(SQL(
            "SELECT count(*) FROM mailing_trace WHERE mass_mailing_id = %s AND trace_status = 'outgoing'", self.id
        ))
        _logger.info("SMS mailing %s: audience materialised, %s traces created, %s outgoing",
                     self.id, created, self.env.cr.fetchone()[0])
        return created

    def action_sms_check_recipients(self):
        self.ensure_one()
        return self.env["mailing.sms.audience"].create({"mailing_id": self.id})._action_open()

    # ------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------

    def _sms_get_gateway(self):
        self.ensure_one()
        gateway = self.sms_gateway_id or self.env["sms.gateway"]._get_default_gateway(self.company_id)
        if not gateway:
            raise UserError(
                _("No SMS gateway for %s: configure one in SMS Marketing > Configuration > Gateways.",
                  (self.company_id or self.env.company).name)
            )
        return gateway

    def action_send_sms(self, res_ids=None):
        """Stock sends through the SMS composer and the hourly sms.sms queue; ours materialises
        the audience as traces and hands them to the send cron at once."""
        if res_ids:
            return super().action_send_sms(res_ids=res_ids)
        self._sms_check_sendable()
        for mailing in self:
            mailing._sms_get_gateway()
        self.write({"state": "in_queue", "schedule_type": "now", "schedule_date": False})
        self._sms_trigger_send_cron()
        return True

    def _sms_trigger_send_cron(self, at=None):
        cron = self.env.ref("sms_marketing_ext.ir_cron_sms_marketing_send", raise_if_not_found=False)
        if not cron:
            return
        if at:
            cron._trigger(at)
        else:
            cron._trigger([mailing.schedule_date or fields.Datetime.now() for mailing in self] or None)

    @api.model
    def _search(self, domain, *args, **kwargs):
        # The stock mass-mailing queue leaves SMS mailings to our send cron (see _process_mass_mailing_queue).
        if self.env.context.get("sms_ext_skip_sms_mailings"):
            domain = expression.AND([domain, [("mailing_type", "!=", "sms")]])
        return super()._search(domain, *args, **kwargs)

    @api.model
    def _process_mass_mailing_queue(self):
        return super(MailingMailing, self.with_context(sms_ext_skip_sms_mailings=True))._process_mass_mailing_queue()

    @api.model
    def _sms_cron_send(self, time_budget=SEND_TIME_BUDGET):
        """"SMS Marketing: segment and send". Starts the SMS mailings that are due (materialising
        their audience), resumes those waiting for credit when the balance allows, then sends
        batches until the time budget is spent, committing after each batch. Re-triggers itself
        while work remains, and for the next retry or scheduled mailing."""
        deadline = time.monotonic() + time_budget
        now = fields.Datetime.now()
        due = self.search([
            ("mailing_type", "=", "sms"), ("state", "=", "in_queue"),
            "|", ("schedule_date", "=", False), ("schedule_date", "<=", now),
        ])
        for mailing in due:
            mailing._sms_start_sending()
            self._sms_commit()
        balances = {}
        for mailing in self.search([("mailing_type", "=", "sms"), ("state", "=", "sending"),
                                    ("sms_waiting_credit", "=", True)]):
            mailing._sms_resume_if_credit(balances)
        self._sms_commit()
        mailings = self.search([("mailing_type", "=", "sms"), ("state", "=", "sending"),
                                ("sms_waiting_credit", "=", False)])
        pending = True
        while pending and time.monotonic() < deadline:
            pending = False
            for mailing in mailings.filtered(lambda m: not m.sms_waiting_credit):
                if time.monotonic() >= deadline:
                    break
                if mailing._sms_send_batch(balances):
                    pending = True
                self._sms_commit()
        for mailing in mailings:
            mailing._sms_finish_if_done()
        self._sms_commit()
        self._sms_retrigger(deadline_reached=time.monotonic() >= deadline)

    def _sms_commit(self):
        # Each batch is its own transaction in production (its results are final once committed,
        # its locks released); tests run in one transaction.
        if not getattr(threading.current_thread(), "testing", False):
            self.env.cr.commit()  # pylint: disable=invalid-commit

    def _sms_start_sending(self):
        self.ensure_one()
        try:
            self._sms_check_sendable()
            self._sms_get_gateway()
        except UserError as error:
            self.write({"state": "draft"})
            self.message_post(body=_("Sending canceled: %s", error.args[0]))
            self._sms_notify_responsible(_("SMS mailing not sent"), error.args[0])
            return
        self._sms_link_trackers(sms_links.split_links(self.body_plaintext or "")[1])
        self._sms_materialize_audience()
        self.write({"state": "sending", "sms_waiting_credit": False})

    def _sms_link_trackers(self, urls):
        """The mailing's link tracker of each URL, in order (stock link_tracker, with the
        mailing's UTM values; created on first use and reused after)."""
        values = self._get_link_tracker_values()
        trackers = {url: self.env["link.tracker"].sudo().search_or_create({**values, "url": url})
                    for url in dict.fromkeys(urls)}
        return [trackers[url] for url in urls]

    def _sms_render_bodies(self, rows):
        """Each recipient's SMS text, exactly as sent, for ``rows`` of ``(trace id, res_id)``:
        dynamic placeholders (``{{ object.name }}``) rendered on the recipient's record as stock
        does, then every link in its tracked short form with the recipient's token, and the
        opt-out link with its own token (tokens have a fixed length: the counter's numbers hold).
        """
        self.ensure_one()
        body = self.body_plaintext or ""
        rendered = None
        if "{{" in body:
            rendered = self.env["mail.render.mixin"]._render_template(
                body, self.mailing_model_real, [res_id for _trace_id, res_id in rows], engine="inline_template"
            )
        short_base = self._sms_short_link_base()
        footer = self._sms_optout_footer_template() if self.sms_allow_unsubscribe else ""
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        templates = {}  # text -> (literals, link prefixes)

        def template(text):
            if text not in templates:
                literals, urls = sms_links.split_links(text)
                prefixes = [sms_links.short_link(short_base, tracker.code, "")
                            for tracker in self._sms_link_trackers(urls)]
                templates[text] = (literals, prefixes)
            return templates[text]

        bodies = {}
        for trace_id, res_id in rows:
            literals, prefixes = template(rendered[res_id] if rendered is not None else body)
            link_token = sms_tokens.make_token(secret, "link", trace_id) if prefixes else ""
            footer_text = footer and footer % {
                "url": sms_links.optout_url(short_base, sms_tokens.make_token(secret, "optout", trace_id))
            }
            bodies[trace_id] = sms_links.render(literals, prefixes, link_token, footer_text)
        return bodies

    def _sms_claim_batch(self, size):
        """Lock the next due outgoing traces of this mailing. SKIP LOCKED: two workers never
        take the same message; the locks hold until the batch's results are committed, so a
        worker that dies mid-batch releases its messages untouched (same uuids next time)."""
        self.env.cr.execute(SQL(
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
        ))
        return self.env.cr.fetchall()

    def _sms_send_batch(self, balances):
        """Claim, check credit, send and record one batch. Returns True when a batch went out
        (more may remain), False when there was nothing to send or sending paused."""
        self.ensure_one()
        gateway = self._sms_get_gateway()
        batch = self._sms_claim_batch(gateway.batch_size)
        if not batch:
            return False
        started = time.monotonic()
        balance = self._sms_balance(gateway, balances)
        prices, default_price = gateway._price_table(), gateway.price_default
        cost = sum(row[4] * prices.get(row[3], default_price) for row in batch)
        if balance is not None and cost > balance + 1e-9:
            self._sms_pause_for_credit(balance, cost)
            return False
        batch = self._sms_defer_quiet_hours(batch)
        if not batch:
            return True  # all of it waits for its send window; the next claim takes other messages
        bodies = self._sms_render_bodies([(row[0], row[6]) for row in batch])
        sender = self.sms_sender_id.name or None
        messages = [
            {"uuid": uuid, "number": number, "content": bodies[trace_id], "sender": sender,
             "sms_class": self.sms_class}
            for trace_id, uuid, number, *_rest in batch
        ]
        try:
            with gateway._get_api() as api:
                results = api.send(messages, webhook_url=gateway._webhook_url("status"))
        except sms_gateway_api.GatewayInsufficientCreditError:
            self._sms_pause_for_credit(0.0, cost)
            return False
        except (sms_gateway_api.GatewayTransientError, sms_gateway_api.GatewayError) as error:
            failure = "sms_acc" if isinstance(error, sms_gateway_api.GatewayAccessError) else "sms_server"
            _logger.warning("SMS mailing %s: batch of %s failed, will retry: %s", self.id, len(batch), error)
            self._sms_record_retry(batch, gateway, failure, str(error))
            return True
        by_uuid = {result["uuid"]: result for result in results}
        self._sms_record_results(batch, by_uuid, gateway, balances)
        if any(result["state"] == "insufficient_credit" for result in results):
            self._sms_pause_for_credit(balances.get(gateway.id) or 0.0, cost)
        if gateway.throughput:
            time.sleep(max(0.0, len(batch) / gateway.throughput - (time.monotonic() - started)))
        return True

    def _sms_send_window(self):
        """(start, end) hours of the quiet-hours window that applies, or None."""
        self.ensure_one()
        if self.sms_quiet_hours_mode == "custom":
            return self.sms_send_window_start, self.sms_send_window_end
        company = self.company_id or self.env.company
        if self.sms_quiet_hours_mode == "company" and company.sms_quiet_hours:
            return company.sms_send_window_start, company.sms_send_window_end
        return None

    def _sms_defer_quiet_hours(self, batch):
        """Keep the messages whose recipients are inside the send window now; the others get
        their next attempt at the window's opening in their time zone (no attempt is counted)."""
        window = self._sms_send_window()
        if not window:
            return batch
        now = fields.Datetime.now()
        kept, deferred_ids, deferred_at = [], [], []
        for row in batch:
            when = sms_quiet_hours.next_send_time(now, sms_quiet_hours.timezones_for_number(row[2]), *window)
            if when is None:
                kept.append(row)
            else:
                deferred_ids.append(row[0])
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

    def _sms_balance(self, gateway, balances):
        """The gateway's balance, fetched with its price list once per cron run (so credit
        checks use the gateway's current prices), then tracked locally as batches spend it."""
        if gateway.id not in balances:
            try:
                balances[gateway.id] = gateway._refresh_from_gateway()
            except (sms_gateway_api.GatewayTransientError, sms_gateway_api.GatewayError) as error:
                _logger.warning("SMS gateway %s: balance unavailable (%s): sending without a credit check",
                                gateway.name, error)
                balances[gateway.id] = None
        return balances[gateway.id]

    def _sms_record_results(self, batch, by_uuid, gateway, balances):
        now = fields.Datetime.now()
        prices = gateway._price_table()
        rows = {"id": [], "status": [], "failure": [], "reason": [], "credits": [], "next": [], "attempts": []}
        spent = 0.0
        for trace_id, uuid, _number, country, parts, attempts, _res_id in batch:
            result = by_uuid.get(uuid) or {"state": "server_error", "credits": 0}
            state = result["state"]
            status, failure = self.env["mailing.trace"].GATEWAY_SEND_STATE.get(state, ("error", "unknown"))
            charged = float(result.get("credits") or 0.0)
            if state == "accepted" and not charged and attempts:
                # A retry of a message the gateway already took (our first answer was lost):
                # it charges nothing the second time; record what the first time cost.
                charged = parts * prices.get(country, gateway.price_default)
            spent += float(result.get("credits") or 0.0)
            next_attempt = None
            reason = None
            if state == "server_error":
                if attempts + 1 >= gateway.max_attempts:
                    status, reason = "error", _("The gateway failed %s times.", attempts + 1)
                else:
                    next_attempt = now + timedelta(seconds=self._sms_backoff(attempts))
            elif state == "invalid_sender":
                reason = _("The gateway does not allow the sender %s on this account.", self.sms_sender_id.name)
            for key, value in (("id", trace_id), ("status", status), ("failure", failure or None),
                               ("reason", reason), ("credits", charged), ("next", next_attempt),
                               ("attempts", attempts + 1)):
                rows[key].append(value)
        self.env.cr.execute(SQL(
            """
            UPDATE mailing_trace t
               SET trace_status = CASE WHEN t.sms_report_date IS NOT NULL THEN t.trace_status ELSE r.status END,
                   failure_type = CASE WHEN t.sms_report_date IS NOT NULL THEN t.failure_type ELSE r.failure END,
                   failure_reason = r.reason,
                   sms_credits = r.credits,
                   sms_next_attempt = r.next,
                   sms_attempts = r.attempts,
                   sent_datetime = CASE WHEN r.status = 'pending' THEN COALESCE(t.sent_datetime, %(now)s)
                                        ELSE t.sent_datetime END,
                   write_date = %(now)s
              FROM unnest(%(ids)s::int[], %(status)s::varchar[], %(failure)s::varchar[], %(reason)s::text[],
                          %(credits)s::numeric[], %(next)s::timestamp[], %(attempts)s::int[])
                   AS r(id, status, failure, reason, credits, next, attempts)
             WHERE t.id = r.id
            """,
            now=now, ids=rows["id"], status=rows["status"], failure=rows["failure"], reason=rows["reason"],
            credits=rows["credits"], next=rows["next"], attempts=rows["attempts"],
        ))
        self.env["mailing.trace"].invalidate_model()
        if balances.get(gateway.id) is not None:
            balances[gateway.id] -= spent

    def _sms_backoff(self, attempts):
        return min(RETRY_BASE_SECONDS * 2 ** attempts, RETRY_MAX_SECONDS)

    def _sms_record_retry(self, batch, gateway, failure, reason):
        """The whole call failed: every message keeps its uuid and waits for its retry, or fails
        for good after the gateway's maximum number of attempts."""
        now = fields.Datetime.now()
        ids = [row[0] for row in batch]
        attempts = [row[5] + 1 for row in batch]
        nexts = [now + timedelta(seconds=self._sms_backoff(row[5])) for row in batch]
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

    def _sms_notify_responsible(self, summary, note):
        self.ensure_one()
        user = self.user_id or self.create_uid
        if user and not user.share:
            self.activity_schedule("mail.mail_activity_data_todo", summary=summary, note=note, user_id=user.id)

    def _sms_resume_if_credit(self, balances):
        """A paused mailing resumes when the balance covers its next batch."""
        self.ensure_one()
        gateway = self._sms_get_gateway()
        balance = self._sms_balance(gateway, balances)
        self.env.cr.execute(SQL(
            """
            SELECT COALESCE(sms_parts, 1), sms_country_code FROM mailing_trace
             WHERE mass_mailing_id = %s AND trace_type = 'sms' AND trace_status = 'outgoing'
               AND sms_uuid IS NOT NULL ORDER BY id LIMIT %s
            """,
            self.id, gateway.batch_size,
        ))
        prices = gateway._price_table()
        cost = sum(parts * prices.get(country, gateway.price_default) for parts, country in self.env.cr.fetchall())
        if balance is None or balance + 1e-9 >= cost:
            self.action_sms_resume()

    def action_sms_resume(self):
        for mailing in self.filtered("sms_waiting_credit"):
            mailing.sms_waiting_credit = False
            mailing.message_post(body=_("Sending resumed."))
            mailing.activity_feedback(["mail.mail_activity_data_todo"], feedback=_("Resumed"))
        self._sms_trigger_send_cron()
        return True

    def _sms_finish_if_done(self):
        """Done when no message of the mailing waits to be sent or retried."""
        self.ensure_one()
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
             WHERE m.state = 'sending' AND NOT m.sms_waiting_credit AND t.trace_type = 'sms'
               AND t.trace_status = 'outgoing' AND t.sms_next_attempt IS NOT NULL
            """
        ))
        next_retry = self.env.cr.fetchone()[0]
        scheduled = self.search([("mailing_type", "=", "sms"), ("state", "=", "in_queue"),
                                 ("schedule_date", ">", fields.Datetime.now())], order="schedule_date", limit=1)
        for moment in (next_retry, scheduled.schedule_date):
            if moment:
                self._sms_trigger_send_cron(moment)
