from werkzeug import urls

from odoo import api, models

from ..tools.sms_redirect import with_utm_params


class LinkTracker(models.Model):
    _inherit = "link.tracker"

    @api.depends("link_click_ids.link_id", "link_click_ids.is_bot")
    def _compute_count(self):
        """Clicks made by people: link previews, scanners and crawlers do not count."""
        clicks_data = self.env["link.tracker.click"]._read_group(
            [("link_id", "in", self.ids), ("is_bot", "=", False)],
            ["link_id"],
            ["__count"],
        )
        counts = {link.id: count for link, count in clicks_data}
        for tracker in self:
            tracker.count = counts.get(tracker.id, 0)

    def _sms_belongs_to(self, mailing):
        """Whether this tracker is one of ``mailing``'s links: made for it, or shared with it (link
        trackers are reused across mailings with the same URL and UTM values)."""
        self.ensure_one()
        if self.mass_mailing_id == mailing:
            return True
        values = mailing._get_link_tracker_values()
        return all(
            self[fname].id == values.get(fname, False) for fname in ("campaign_id", "source_id", "medium_id")
        )

    def _sms_redirect_url(self):
        """The URL an SMS link sends people to: the tracker's URL exactly as written in the message,
        plus the UTM parameters it does not have (none for external sites when the stock
        ``link_tracker.no_external_tracking`` parameter is set)."""
        self.ensure_one()
        url = self.url
        if self.env["ir.config_parameter"].sudo().get_param("link_tracker.no_external_tracking"):
            netloc = urls.url_parse(url).netloc
            if netloc and netloc != urls.url_parse(self.get_base_url()).netloc:
                return url
        params = []
        for param, fname, _cookie in self.env["utm.mixin"].tracking_fields():
            record = self[fname]
            if record:
                params.append((param, record.name))
        return with_utm_params(url, params)
