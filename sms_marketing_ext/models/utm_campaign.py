from odoo import models


class UtmCampaign(models.Model):
    _inherit = "utm.campaign"

    def _compute_clicks_count(self):
        """Clicks made by people: link previews, scanners and crawlers do not count."""
        click_data = self.env["link.tracker.click"]._read_group(
            [("campaign_id", "in", self.ids), ("is_bot", "=", False)], ["campaign_id"], ["__count"]
        )
        counts = {campaign.id: count for campaign, count in click_data}
        for campaign in self:
            campaign.click_count = counts.get(campaign.id, 0)
