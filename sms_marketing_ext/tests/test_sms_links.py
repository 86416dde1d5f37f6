import re
from pathlib import Path
from urllib.parse import urlencode

from odoo import tools
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged
from odoo.tools.rendering_tools import INLINE_TEMPLATE_REGEX
from odoo.tools.safe_eval import safe_eval

from ..tools import sms_links, sms_tokens
from ..tools.sms_bots import is_bot
from ..tools.sms_redirect import with_utm_params
from .common import SmsMarketingUsersMixin

SHORT_BASE = "https://go.example.com"
TRICKY_URL = "https://ex.com/a,b?x=1&y=2,3#frag"
PLAIN_URL = "https://shop.example.com/p/42"
BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)
WHATSAPP = "WhatsApp/2.23.20.0 A"
LINK_RE = re.compile(re.escape(SHORT_BASE) + r"(/r/[A-Za-z0-9]+/[A-Za-z0-9_-]+)")


class SmsLinksCase(SmsMarketingUsersMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._create_sms_users()
        cls.env.company.sms_short_link_base = SHORT_BASE
        cls.partner = cls.env["res.partner"].create({"name": "Sam Recipient", "mobile": "+33612345678"})
        cls.other_partner = cls.env["res.partner"].create({"name": "Lou Recipient", "mobile": "+33612345679"})
        cls.mailing = cls._new_mailing(f"Sale at {TRICKY_URL} and {PLAIN_URL}, see you!")

    @classmethod
    def _new_mailing(cls, body, subject="Links mailing"):
        return cls.env["mailing.mailing"].create(
            {
                "subject": subject,
                "mailing_type": "sms",
                "body_plaintext": body,
                "mailing_model_id": cls.env["ir.model"]._get_id("res.partner"),
            }
        )

    def _trace(self, partner=None, mailing=None):
        partner = partner or self.partner
        return self.env["mailing.trace"].create(
            {
                "trace_type": "sms",
                "model": "res.partner",
                "res_id": partner.id,
                "mass_mailing_id": (mailing or self.mailing).id,
                "trace_status": "pending",
                "sms_number": partner.mobile,
            }
        )

    def _links(self, trace):
        """The paths of the tracked links in ``trace``'s SMS, as sent."""
        body = trace.mass_mailing_id._sms_render_bodies([(trace.id, trace.res_id)])[trace.id]
        return LINK_RE.findall(body)

    def _click(self, path, user_agent=BROWSER, head=False):
        return self.url_open(path, headers={"User-Agent": user_agent}, allow_redirects=False, head=head)

    def _clicks(self, mailing=None):
        tracker_ids = self.env["link.tracker"].search([("mass_mailing_id", "=", (mailing or self.mailing).id)]).ids
        return self.env["link.tracker.click"].search([("link_id", "in", tracker_ids)], order="id")

    def _no_utm(self):
        # Stock parameter: no UTM parameters on links to other sites, so the URL comes back verbatim.
        self.env["ir.config_parameter"].sudo().set_param("link_tracker.no_external_tracking", "1")


@tagged("post_install", "-at_install", "sms_links")
class TestSmsLinks(SmsLinksCase):
    # ------------------------------------------------------------
    # URL detection
    # ------------------------------------------------------------

    def test_url_regex_keeps_commas_in_paths(self):
        self.assertEqual(re.findall(tools.TEXT_URL_REGEX, f"Go {TRICKY_URL} now"), ["https://ex.com/a"],
                         "stock's pattern cuts the URL at the comma of its path")
        cases = {
            f"Go {TRICKY_URL} now": [TRICKY_URL],
            f"{TRICKY_URL}": [TRICKY_URL],
            "Photos https://cdn.ex.com/img/w_300,h_200/cat.jpg!": ["https://cdn.ex.com/img/w_300,h_200/cat.jpg"],
            "Matrix https://ex.com/map;lat=1;lon=2 here": ["https://ex.com/map;lat=1;lon=2"],
            "See https://ex.com/a, then https://ex.com/b; or https://ex.com/c!": [
                "https://ex.com/a", "https://ex.com/b", "https://ex.com/c"
            ],
            # As stock, a query runs to the next space.
            "Query https://ex.com/s?q=a,b&r=1#top, bye": ["https://ex.com/s?q=a,b&r=1#top,"],
            "Fragment https://ex.com/doc#part-2 end": ["https://ex.com/doc#part-2"],
            "no link here, http:/broken": [],
        }
        for body, urls in cases.items():
            with self.subTest(body=body):
                self.assertEqual(sms_links.split_links(body)[1], urls)
                literals, found = sms_links.split_links(body)
                rebuilt = "".join(literal + url for literal, url in zip(literals, [*found, ""], strict=True))
                self.assertEqual(rebuilt, body, "cutting the body around its links loses nothing")

    def test_url_regex_same_in_js(self):
        js = (Path(__file__).parents[1] / "static/src/js/sms_counter_field.js").read_text()
        match = re.search(r"^const TEXT_URL_REGEX = /(.+)/g;$", js, re.MULTILINE)
        self.assertTrue(match, "the JS counter declares TEXT_URL_REGEX")
        self.assertEqual(match.group(1).replace("\\/", "/"), sms_links.TEXT_URL_REGEX)

    def test_placeholder_regex_same_as_odoo_and_js(self):
        self.assertEqual(sms_links.PLACEHOLDER_REGEX, INLINE_TEMPLATE_REGEX.pattern)
        js = (Path(__file__).parents[1] / "static/src/js/sms_counter_field.js").read_text()
        match = re.search(r"^const PLACEHOLDER_REGEX = /(.+)/g;$", js, re.MULTILINE)
        self.assertTrue(match, "the JS counter declares PLACEHOLDER_REGEX")
        self.assertEqual(match.group(1), sms_links.PLACEHOLDER_REGEX)

    def test_counted_length_is_sent_length_with_tricky_urls(self):
        trace = self._trace()
        body = self.mailing._sms_render_bodies([(trace.id, trace.res_id)])[trace.id]
        self.assertEqual(len(body), len(self.mailing._sms_body_as_sent()))
        self.assertNotIn(",b?x=1", body, "the whole URL is shortened, not its beginning")
        self.assertTrue(body.endswith(", see you!"), "the comma after a URL stays text")

    # ------------------------------------------------------------
    # Redirects and attribution
    # ------------------------------------------------------------

    def test_click_redirects_to_exact_url_and_is_attributed(self):
        self._no_utm()
        trace = self._trace()
        tricky, plain = self._links(trace)
        response = self._click(tricky)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(response.headers["Location"], TRICKY_URL)
        self.assertEqual(self._click(plain).headers["Location"], PLAIN_URL)

        clicks = self._clicks()
        self.assertEqual(len(clicks), 2)
        self.assertEqual(clicks.mailing_trace_id, trace)
        self.assertEqual(clicks.mass_mailing_id, self.mailing)
        self.assertEqual(clicks.mapped("link_id.url"), [TRICKY_URL, PLAIN_URL])
        self.assertEqual(clicks.mapped("is_bot"), [False, False])
        self.assertEqual(clicks.mapped("sms_unique"), [True, True], "first click on each link")
        self.assertTrue(clicks[0].click_date)
        self.assertIn(clicks[0].click_hour, range(24))
        trace.invalidate_recordset()
        self.assertTrue(trace.links_click_datetime)
        self.assertEqual(trace.trace_status, "open")

        again = self._click(tricky)
        self.assertEqual(again.headers["Location"], TRICKY_URL)
        clicks = self._clicks()
        self.assertEqual(len(clicks), 3)
        self.assertFalse(clicks[-1].sms_unique, "a second click on the same link is not unique")
        self.assertEqual(clicks[0].link_id.count, 2)

    def test_redirect_appends_utm_parameters_only(self):
        trace = self._trace()
        tricky = self._links(trace)[0]
        location = self._click(tricky).headers["Location"]
        mailing = self.mailing
        utms = urlencode([("utm_source", mailing.source_id.name), ("utm_medium", mailing.medium_id.name)])
        self.assertEqual(location, f"https://ex.com/a,b?x=1&y=2,3&{utms}#frag")
        self.assertEqual(
            with_utm_params("https://ex.com/?utm_source=mine&a=1", [("utm_source", "x"), ("utm_medium", "SMS")]),
            "https://ex.com/?utm_source=mine&a=1&utm_medium=SMS",
            "UTM parameters already in the URL are kept as they are",
        )
        self.assertEqual(with_utm_params("https://ex.com/p#f", [("utm_medium", "SMS")]),
                         "https://ex.com/p?utm_medium=SMS#f")

    def test_click_attributed_to_the_right_trace(self):
        self._no_utm()
        trace, other = self._trace(), self._trace(self.other_partner)
        self._click(self._links(other)[1])
        clicks = self._clicks()
        self.assertEqual(clicks.mailing_trace_id, other)
        (trace | other).invalidate_recordset()
        self.assertFalse(trace.links_click_datetime)
        self.assertTrue(other.links_click_datetime)

    def test_wrong_token_redirects_but_attributes_nothing(self):
        self._no_utm()
        trace = self._trace()
        path = self._links(trace)[0]
        code, token = path.split("/")[2:4]
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        other_secret = sms_tokens.make_token("not-the-database-secret", "link", trace.id)
        other_mailing = self._new_mailing(f"Other {PLAIN_URL}", subject="Other mailing")
        foreign = self._links(self._trace(mailing=other_mailing))[0].split("/")[3]
        for bad in (forged, other_secret, token[:6], "x" * len(token), foreign):
            with self.subTest(token=bad):
                response = self._click(f"/r/{code}/{bad}")
                self.assertEqual(response.status_code, 302)
                self.assertEqual(response.headers["Location"], TRICKY_URL)
        clicks = self._clicks()
        self.assertEqual(len(clicks), 5, "the clicks happened")
        self.assertFalse(clicks.mailing_trace_id, "but are nobody's")
        self.assertFalse(clicks.mass_mailing_id)
        trace.invalidate_recordset()
        self.assertFalse(trace.links_click_datetime)
        self.assertEqual(trace.trace_status, "pending")

    def test_unknown_code(self):
        trace = self._trace()
        token = self._links(trace)[0].split("/")[3]
        self.assertEqual(self._click(f"/r/nosuchcode/{token}").status_code, 404)
        self.assertFalse(self._clicks())

    # ------------------------------------------------------------
    # Bots
    # ------------------------------------------------------------

    def test_bot_click_not_counted(self):
        self._no_utm()
        trace = self._trace()
        tricky = self._links(trace)[0]
        for user_agent in (WHATSAPP, "facebookexternalhit/1.1 Facebot Twitterbot/1.0", "Slackbot-LinkExpanding 1.0"):
            response = self._click(tricky, user_agent=user_agent)
            self.assertEqual((response.status_code, response.headers["Location"]), (302, TRICKY_URL),
                             "previews are redirected too")
        head = self._click(tricky, head=True)
        self.assertEqual(head.status_code, 302)
        clicks = self._clicks()
        self.assertEqual(len(clicks), 4)
        self.assertTrue(all(clicks.mapped("is_bot")))
        self.assertFalse(clicks.mailing_trace_id, "a bot's click is never the recipient's")
        self.assertEqual(clicks.mass_mailing_id, self.mailing, "but it is counted apart on the mailing")
        self.assertFalse(any(clicks.mapped("sms_unique")))
        trace.invalidate_recordset()
        self.assertFalse(trace.links_click_datetime)
        self.assertEqual(trace.trace_status, "pending")
        self.assertEqual(clicks[0].link_id.count, 0, "the tracker counts people only")
        self.assertEqual(self.mailing.clicks_ratio, 0, "stock click rate ignores bots")

        self._click(tricky)
        trace.invalidate_recordset()
        self.assertTrue(trace.links_click_datetime, "the person's click after the preview counts")
        human = self._clicks()[-1]
        self.assertTrue(human.sms_unique, "the first human click is the unique one, bots before it or not")
        stats = self.env["link.tracker.click"]._sms_click_stats([self.mailing.id])[self.mailing.id]
        self.assertEqual(stats, {"clicks": 5, "human_clicks": 1, "bot_clicks": 4, "unique_clicks": 1,
                                 "recipients": 1})

    def test_campaign_click_count_ignores_bots(self):
        campaign = self.env["utm.campaign"].create({"name": "Bots apart"})
        tracker = self.env["link.tracker"].search_or_create(
            {"url": "https://example.com/c", "campaign_id": campaign.id}
        )
        self.env["link.tracker.click"].create([
            {"link_id": tracker.id, "campaign_id": campaign.id, "is_bot": True},
            {"link_id": tracker.id, "campaign_id": campaign.id, "is_bot": False},
        ])
        self.assertEqual(campaign.click_count, 1)

    def test_is_bot(self):
        bots = [
            WHATSAPP,
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Twitterbot/1.0",
            "TelegramBot (like TwitterBot)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
            "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
            "Microsoft-CryptoAPI/10.0",
            "Mozilla/5.0 (Linux; Android 11) AppleWebKit/537.36 (KHTML, like Gecko) Google-Read-Aloud",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko; Google-PageRenderer "
            "Google (+https://developers.google.com/+/web/snippet/))",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) HeadlessChrome/120.0.0.0 Safari/537.36",
            "curl/8.4.0",
            "Wget/1.21.4",
            "python-requests/2.31.0",
            "Go-http-client/2.0",
            "",
            None,
        ]
        people = [
            BROWSER,
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile "
            "Safari/537.36",
            "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0 Mobile "
            "Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Mobile/15E148 [FBAN/FBIOS;FBAV/430.0]",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/23.0 Chrome/115.0 Mobile Safari/537.36",
        ]
        for user_agent in bots:
            with self.subTest(bot=user_agent):
                self.assertTrue(is_bot(user_agent))
        for user_agent in people:
            with self.subTest(person=user_agent):
                self.assertFalse(is_bot(user_agent))
                self.assertTrue(is_bot(user_agent, "HEAD"), "browsers follow links with GET")

    # ------------------------------------------------------------
    # Analytics
    # ------------------------------------------------------------

    def test_link_analytics_access(self):
        self._no_utm()
        trace, other = self._trace(), self._trace(self.other_partner)
        tricky, plain = self._links(trace)
        self._click(tricky)
        self._click(tricky)
        self._click(plain)
        self._click(self._links(other)[0])
        self._click(tricky, user_agent=WHATSAPP)

        action = self.env.ref("sms_marketing_ext.link_tracker_click_action_sms")
        menu = self.env.ref("sms_marketing_ext.link_tracker_click_menu_sms")
        domain = safe_eval(action.domain)
        admin_menus = self.env["ir.ui.menu"].with_user(self.user_sms_admin)._visible_menu_ids()
        self.assertIn(menu.id, admin_menus, "SMS administrators see Link Analytics")
        self.assertEqual(menu.parent_id, self.env.ref("mass_mailing_sms.mass_mailing_sms_menu_reporting"))
        user_menus = self.env["ir.ui.menu"].with_user(self.user_marketing)._visible_menu_ids()
        self.assertNotIn(menu.id, user_menus, "marketing users do not have the menu")
        self.assertIn(self.env.ref("sms_marketing_ext.sms_statistics_menu").id, user_menus,
                      "stock's SMS statistics stay under Reporting for them")

        Click = self.env["link.tracker.click"].with_user(self.user_sms_admin)
        views = Click.get_views([(False, "pivot"), (False, "graph"), (False, "search")])
        self.assertIn("human_count", views["views"]["pivot"]["arch"])
        groups = Click.read_group(
            [*domain, ("mass_mailing_id", "=", self.mailing.id)],
            ["human_count:sum", "sms_unique_count:sum"],
            ["is_bot"],
            lazy=False,
        )
        by_bot = {group["is_bot"]: group for group in groups}
        self.assertEqual(by_bot[False]["__count"], 4)
        self.assertEqual(by_bot[False]["sms_unique_count"], 3, "two recipients, three first clicks per link")
        self.assertEqual(by_bot[True]["__count"], 1)
        self.assertEqual(by_bot[True]["human_count"], 0)
        by_hour = Click.read_group(domain, ["human_count:sum"], ["click_hour", "click_date:day", "link_id"])
        self.assertTrue(by_hour)
        self.assertNotIn("click_hour", Click.fields_get(["click_hour"], ["group_operator"])["click_hour"],
                         "the hour is a dimension, not a measure")

        # Marketing users read the clicks of mailings (the stock ACL gives it to employees).
        ClickUser = self.env["link.tracker.click"].with_user(self.user_marketing)
        self.assertEqual(ClickUser.search_count([("mass_mailing_id", "=", self.mailing.id)]), 5)
        self.assertTrue(ClickUser.read_group([("mass_mailing_id", "=", self.mailing.id)], [], ["is_bot"]))
        with self.assertRaises(AccessError):
            ClickUser.search([])[:1].write({"is_bot": False})
        with self.assertRaises(AccessError):
            self.env["link.tracker.click"].with_user(self.user_portal).search([])
