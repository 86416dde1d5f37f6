from odoo.tests import tagged
from odoo.tests.common import BaseCase

from ..tools.sms_bots import is_bot
from .common import BROWSER, PREVIEW, WHATSAPP


@tagged("at_install", "sms_tools", "sms_links")
class TestSmsBots(BaseCase):
    """tools/sms_bots.py: which requests for an SMS link are previews, scanners or crawlers (no database)."""

    def test_is_bot(self):
        bots = [
            WHATSAPP,
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            PREVIEW,
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
                self.assertFalse(is_bot(user_agent, "get"), "the method is case-insensitive")
                self.assertTrue(is_bot(user_agent, "HEAD"), "browsers follow links with GET")
