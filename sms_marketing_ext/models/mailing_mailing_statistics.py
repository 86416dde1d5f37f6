from odoo import _, fields, models
from odoo.tools import SQL, float_round


class MailingMailingStatistics(models.Model):
    """Figures of a sent SMS mailing (recipients, sent, delivered, failed, clicks, opt-outs,
    credits) from one SQL aggregate over its traces, their stat buttons and the statistics
    e-mail."""

    _inherit = "mailing.mailing"  # split by concern on purpose: pylint: disable=consider-merging-classes-inherited

    # Statistics of a sent SMS mailing (one SQL aggregate, see _compute_statistics)
    sms_stat_recipients = fields.Integer("Recipients", compute="_compute_statistics")
    sms_stat_sent = fields.Integer("SMS sent", compute="_compute_statistics")
    sms_stat_delivered = fields.Integer("SMS delivered", compute="_compute_statistics")
    sms_stat_failed = fields.Integer("SMS failed", compute="_compute_statistics")
    sms_stat_pending = fields.Integer(
        "SMS pending", compute="_compute_statistics",
        help="Neither delivered nor failed yet: queued, being sent, or waiting for the delivery report. "
        "Recipients = delivered + failed + pending.",
    )
    sms_stat_excluded = fields.Integer("Excluded", compute="_compute_statistics")
    sms_stat_clicked = fields.Integer("Unique clicks", compute="_compute_statistics")
    sms_stat_click_rate = fields.Float("Click rate", compute="_compute_statistics")
    sms_stat_optouts = fields.Integer("Opt-outs", compute="_compute_statistics")
    sms_stat_credits = fields.Float("Credits spent", compute="_compute_statistics", digits=(16, 2))

    # Stock's statistics (_compute_statistics) and click ratio (_compute_clicks_ratio) are two
    # queries over the traces, the click ratio with a COUNT(DISTINCT) join on clicks: 1 s at a
    # million recipients before our own figures. For SMS mailings, all of them come from one
    # aggregate (see _compute_statistics).
    clicks_ratio = fields.Float(compute="_compute_statistics")
    sms_uses_own_pipeline = fields.Boolean(
        compute="_compute_sms_uses_own_pipeline",
        help="Sent by the addon's gateways (not stock's IAP pipeline): the form shows the addon's figures "
        "instead of stock's differently counted ones.",
    )

    def _compute_sms_uses_own_pipeline(self):
        for mailing in self:
            mailing.sms_uses_own_pipeline = mailing.mailing_type == "sms" and not mailing._sms_uses_stock_pipeline()

    def _compute_statistics(self):
        """Stock's statistics and click ratio, and our SMS figures, for SMS mailings from one
        SQL aggregate over their traces (a million-recipient mailing opens in a fraction of a
        second); unique clicks count recipients, never bots (a bot's click has no trace)."""
        sms_mailings = self.filtered(lambda m: m.mailing_type == "sms" and m.id)
        others = self - sms_mailings
        res = super(MailingMailingStatistics, others)._compute_statistics()
        others._compute_clicks_ratio()
        keys = ("recipients", "sent", "delivered", "failed", "pending", "excluded", "clicked", "click_rate", "optouts",
                "credits")
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

        own_pipeline = {}  # per (company, gateway): one default-gateway lookup per company, not per mailing
        for mailing in self:
            pipeline_key = (mailing.company_id.id, mailing.sms_gateway_id.id)
            if pipeline_key not in own_pipeline:
                own_pipeline[pipeline_key] = not mailing._sms_uses_stock_pipeline()
            (expected, sent, scheduled, canceled, process, pending, delivered, opened, clicked, clicked_sent,
             replied, bounced, failed, credits_spent) = rows.get(mailing.id, (0,) * 14)
            total = (expected - canceled) or 1
            # Issue 13 §6: one click rate (stock's clicks_ratio: recipients who clicked, of the
            # recipients) on the form, its stat button and the list.
            click_rate = ratio(clicked_sent, expected - canceled)
            not_delivered = failed + bounced
            if own_pipeline[pipeline_key]:
                # Issue 13 §6: on a mailing sent through our gateways, stock's "could not be delivered"
                # banner (failed) and its Bounced figures (bounced, bounced_ratio, the statistics
                # e-mail) count what our Failed counts: errors and bounces alike (a gateway's
                # rejection and an operator's non-delivery report are both "not delivered"). Stock's
                # own pipeline keeps stock's figures.
                failed = bounced = not_delivered
            mailing.update({
                # stock's figures, as stock computes them (but failed and bounced on our pipeline)
                "expected": expected, "sent": sent, "scheduled": scheduled, "canceled": canceled,
                "process": process, "pending": pending, "delivered": delivered, "opened": opened,
                "clicked": clicked, "replied": replied, "bounced": bounced, "failed": failed,
                "received_ratio": ratio(delivered, total), "opened_ratio": ratio(opened, total),
                "replied_ratio": ratio(replied, total), "bounced_ratio": ratio(bounced, total),
                "clicks_ratio": click_rate,
                # ours
                "sms_stat_recipients": expected - canceled,
                "sms_stat_sent": sent,
                "sms_stat_delivered": delivered,
                "sms_stat_failed": not_delivered,
                "sms_stat_pending": scheduled + process + pending,
                "sms_stat_excluded": canceled,
                "sms_stat_clicked": clicked,
                "sms_stat_click_rate": click_rate,
                "sms_stat_optouts": optouts.get(mailing.id, 0),
                "sms_stat_credits": float(credits_spent),
            })

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_sms_view_failures(self):
        """The failed recipients (the button's number: errors and bounces), grouped by reason."""
        self.ensure_one()
        action = self._action_view_traces_filtered("bounced")
        action.update({
            "name": _("Failures by reason"),
            "domain": [("mass_mailing_id", "=", self.id), ("trace_status", "in", ("error", "bounce"))],
            "context": {"group_by": ["failure_type"], "search_default_mass_mailing_id": self.id},
        })
        return action

    def action_view_traces_failed(self):
        """Stock's "could not be delivered" banner: on our pipeline it counts errors and bounces (see
        _compute_sms_statistics), so it opens our failures, which are exactly those."""
        if len(self) == 1 and self.sms_uses_own_pipeline:
            return self.action_sms_view_failures()
        return super().action_view_traces_failed()

    def action_view_bounced(self):
        """Stock's Bounced button (and its list figure) counts our failures on our pipeline."""
        if len(self) == 1 and self.sms_uses_own_pipeline:
            return self.action_sms_view_failures()
        return super().action_view_bounced()

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

    # ------------------------------------------------------------
    # STATISTICS E-MAIL
    # ------------------------------------------------------------

    def _prepare_statistics_email_values(self):
        values = super()._prepare_statistics_email_values()
        if self.mailing_type == "sms":
            if self.sms_uses_own_pipeline and values["kpi_data"] and values["kpi_data"][0].get("kpi_name") == "sms":
                # Issue 13 §6: the figures of the form: recipients (not stock's "expected", which
                # counts the excluded) with the pending ones, and failed (errors and bounces; stock's
                # "bounced" counts only the latter), so that delivered + failed + pending = recipients.
                report = values["kpi_data"][0]
                report["kpi_fullname"] = _(
                    "Report for %(recipients)i recipients (%(pending)i pending)",
                    recipients=self.sms_stat_recipients, pending=self.sms_stat_pending,
                )
                report["kpi_col3"] = {
                    "value": f"{self.bounced_ratio}%", "col_subtitle": _("FAILED (%i)", self.sms_stat_failed),
                }
            values["kpi_data"].append({
                "kpi_fullname": _("Delivery and consent"),
                "kpi_col1": {"value": f"{self.sms_stat_credits:.2f}", "col_subtitle": _("CREDITS SPENT")},
                "kpi_col2": {"value": str(self.sms_stat_failed), "col_subtitle": _("FAILED")},
                "kpi_col3": {"value": str(self.sms_stat_optouts), "col_subtitle": _("OPT-OUTS")},
                "kpi_action": None,
                "kpi_name": "sms_delivery",
            })
        return values
