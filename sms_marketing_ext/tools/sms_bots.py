"""Tell link-preview fetchers and crawlers from people clicking an SMS link (no Odoo import).

Messaging apps fetch a link as soon as a message containing it is shown (to draw a preview),
security gateways fetch it to scan it, and crawlers follow it: none of these is the recipient
clicking. Their requests are still redirected (the preview must work) and recorded, but as bot
clicks: they never mark the recipient's trace as clicked and never count in click rates.

``BOT_PATTERNS`` is matched, case-insensitively, anywhere in the User-Agent header:

- chat and social link previews: WhatsApp, Facebook and iMessage (iMessage sends
  ``facebookexternalhit/1.1 Facebot Twitterbot/1.0``), Slack (``Slackbot-LinkExpanding``),
  Twitter/X, Telegram, Discord, LinkedIn, Skype and Teams (``SkypeUriPreview``), Pinterest,
  Reddit, Embedly, Iframely;
- Google previews: Read Aloud, the page renderer behind Messages/Chat previews, Messages itself;
- Microsoft Outlook and Safe Links: ``Microsoft Office``, ``ms-office``, ``BingPreview``,
  ``Microsoft-CryptoAPI`` (certificate checks of the link's host);
- generic crawlers and tools: ``bot``, ``crawl`` (crawler), ``spider``, ``slurp``, ``preview``,
  ``headless`` browsers, PhantomJS, Lighthouse, and HTTP libraries and tools (curl, wget,
  python-requests, urllib, httpx, aiohttp, Go, Java, Apache HttpClient, okhttp, axios,
  node-fetch, libwww-perl, scrapy).

``bot`` is matched at the end of a name (``Googlebot``, ``bingbot/2.0``, ``Applebot``) but not in
``Cubot``, a phone brand whose Android user agents say ``CUBOT``. A missing User-Agent (no browser
omits it) and any HEAD request (browsers follow links with GET) are bots too.
"""

import re

BOT_PATTERNS = (
    # Chat and social link previews
    r"whatsapp",
    r"facebookexternalhit",
    r"facebot",
    r"facebookcatalog",
    r"slackbot",
    r"slack-imgproxy",
    r"twitterbot",
    r"telegrambot",
    r"discordbot",
    r"linkedinbot",
    r"skypeuripreview",
    r"pinterestbot",
    r"redditbot",
    r"embedly",
    r"iframely",
    # Google previews
    r"google-read-aloud",
    r"google-pagerenderer",
    r"googlemessages",
    r"google-inspectiontool",
    r"googleother",
    # Microsoft Outlook, Safe Links and Teams
    r"microsoft office",
    r"ms-office",
    r"bingpreview",
    r"microsoft-cryptoapi",
    # Generic crawlers
    r"(?<!cu)bot\b",
    r"crawl",
    r"spider",
    r"slurp",
    r"preview",
    r"headless",
    r"phantomjs",
    r"lighthouse",
    # HTTP libraries and command-line tools
    r"curl",
    r"wget",
    r"python-requests",
    r"python-urllib",
    r"python-httpx",
    r"aiohttp",
    r"go-http-client",
    r"okhttp",
    r"java/",
    r"apache-httpclient",
    r"axios",
    r"node-fetch",
    r"libwww-perl",
    r"scrapy",
)

_BOT_RE = re.compile("|".join(f"(?:{pattern})" for pattern in BOT_PATTERNS), re.IGNORECASE)


def is_bot(user_agent, method="GET"):
    """Whether a request for an SMS link comes from a preview fetcher, scanner or crawler
    rather than from a person: see the module's documentation for what counts."""
    if (method or "GET").upper() == "HEAD":
        return True
    if not user_agent or not user_agent.strip():
        return True
    return bool(_BOT_RE.search(user_agent))
