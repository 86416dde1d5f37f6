import pytz

from odoo import api, fields, models


class LinkTrackerClick(models.Model):
    """Clicks of tracked SMS links, with what analytics need stored on each click: whether a bot
    (link preview, scanner, crawler) made it, whether it is the recipient's first click on that
    link, and its local day and hour."""

    _inherit = "link.tracker.click"

    is_bot = fields.Boolean(
        "Bot click",
        readonly=True,
        index=True,
        help="Made by a link preview, a security scanner or a crawler, not by a person: never counted "
        "as the recipient's click.",
    )
    sms_clicked_by = fields.Selection(
        [("person", "Person"), ("bot", "Bot")],
        "Clicked by",
        compute="_compute_sms_clicked_by",
        store=True,
        help="A person, or a bot (link preview, scanner, crawler): the analytics' columns and legends.",
    )
    sms_destination = fields.Char(
        "Destination", related="link_id.url", store=True, help="The page the link leads to."
    )
    sms_unique = fields.Boolean(
        "Unique click",
        readonly=True,
        help="The recipient's first click on this link (bots excluded).",
    )
    sms_unique_count = fields.Integer(
        "Unique clicks", compute="_compute_click_counts", store=True, help="1 for a recipient's first click."
    )
    human_count = fields.Integer(
        "Human clicks", compute="_compute_click_counts", store=True, help="1 for a click made by a person."
    )
    click_date = fields.Date(
        "Click day",
        compute="_compute_click_moment",
        store=True,
        help="Day of the click in the time zone of the mailing's responsible (UTC without one).",
    )
    click_hour = fields.Integer(
        "Click hour",
        compute="_compute_click_moment",
        store=True,
        group_operator=None,
        help="Hour of the day (0-23) of the click in the time zone of the mailing's responsible "
        "(UTC without one).",
    )

    @api.depends("is_bot")
    def _compute_sms_clicked_by(self):
        for click in self:
            click.sms_clicked_by = "bot" if click.is_bot else "person"

    @api.depends("is_bot", "sms_unique")
    def _compute_click_counts(self):
        for click in self:
            click.human_count = 0 if click.is_bot else 1
            click.sms_unique_count = 1 if click.sms_unique and not click.is_bot else 0

    @api.depends("create_date", "mass_mailing_id.user_id.tz")
    def _compute_click_moment(self):
        for click in self:
            moment = click.create_date or fields.Datetime.now()
            tz_name = click.mass_mailing_id.user_id.tz or "UTC"
            try:
                local = pytz.utc.localize(moment).astimezone(pytz.timezone(tz_name))
            except pytz.UnknownTimeZoneError:
                local = moment
            click.click_date = local.date()
            click.click_hour = local.hour

    def _prepare_click_values_from_route(self, **route_values):
        values = super()._prepare_click_values_from_route(**route_values)
        if values.get("is_bot"):
            # A bot's visit is never the recipient's: no trace, so no stock statistic counts it.
            values["mailing_trace_id"] = False
        if values.get("mailing_trace_id") and values.get("link_id"):
            values["sms_unique"] = not self.sudo().search_count(
                [
                    ("mailing_trace_id", "=", values["mailing_trace_id"]),
                    ("link_id", "=", values["link_id"]),
                    ("is_bot", "=", False),
                ],
                limit=1,
            )
        else:
            values["sms_unique"] = False
        return values

    @api.model
    def _sms_add_click(self, code, trace=None, is_bot=False, ip=None, country_code=None):
        """Record a click on the SMS link of tracker ``code`` made for ``trace`` (None: the link's
        token was not valid, the click is nobody's). A person's click marks the trace as clicked
        (stock ``add_click``); a bot's is kept apart, on the mailing only.

        :return: the click, or None for an unknown code.
        """
        values = {"ip": ip, "country_code": country_code}
        if is_bot:
            values.update(is_bot=True, mass_mailing_id=trace.mass_mailing_id.id if trace else False)
        elif trace:
            values["mailing_trace_id"] = trace.id
        return self.sudo().add_click(code, **values)

    @api.model
    def _sms_click_stats(self, mailing_ids):
        """Per mailing id: ``{"clicks", "human_clicks", "bot_clicks", "unique_clicks", "recipients"}``
        (``recipients``: how many recipients clicked at least once), from SQL aggregates."""
        groups = self.sudo()._read_group(
            [("mass_mailing_id", "in", list(mailing_ids))],
            ["mass_mailing_id"],
            ["__count", "human_count:sum", "sms_unique_count:sum", "mailing_trace_id:count_distinct"],
        )
        stats = {
            mailing_id: {"clicks": 0, "human_clicks": 0, "bot_clicks": 0, "unique_clicks": 0, "recipients": 0}
            for mailing_id in mailing_ids
        }
        for mailing, count, human, unique, recipients in groups:
            stats[mailing.id] = {
                "clicks": count,
                "human_clicks": human,
                "bot_clicks": count - human,
                "unique_clicks": unique,
                "recipients": recipients,
            }
        return stats
