import re
from pathlib import Path

from odoo import tools
from odoo.tests import tagged
from odoo.tests.common import BaseCase
from odoo.tools.rendering_tools import INLINE_TEMPLATE_REGEX

from ..tools import sms_links, sms_tokens
from ..tools.sms_redirect import with_utm_params

TRICKY_URL = "https://ex.com/a,b?x=1&y=2,3#frag"
SECRET = "database-secret-for-tests"  # noqa: S105 - an HMAC key of these tests, not a credential


@tagged("at_install", "sms_tools", "sms_links")
class TestSmsLinksTools(BaseCase):
    """tools/sms_links.py, sms_tokens.py and sms_redirect.py: how links look in a sent SMS, the
    per-recipient tokens and where a click leads (no database)."""

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

    def test_rendered_length_is_counted_length(self):
        """What the counter measures (placeholders) and what a recipient gets have the same length."""
        body = f"Sale at {TRICKY_URL} and https://shop.example.com/p/42, see you!"
        footer = "\nSTOP: %(url)s"
        counted = sms_links.render_for_count(body, "https://go.example.com/", 6, footer)
        literals, urls = sms_links.split_links(body)
        prefixes = [sms_links.short_link("https://go.example.com", code, "") for code in ("abc123", "def456")]
        self.assertEqual(len(prefixes), len(urls))
        token = sms_tokens.make_token(SECRET, "link", 42)
        sent = sms_links.render(literals, prefixes, token, footer % {
            "url": sms_links.optout_url("https://go.example.com", sms_tokens.make_token(SECRET, "optout", 42)),
        })
        self.assertEqual(len(sent), len(counted))
        self.assertEqual(sent, "Sale at https://go.example.com/r/abc123/" + token
                         + " and https://go.example.com/r/def456/" + token + ", see you!"
                         + "\nSTOP: https://go.example.com/sms/o/" + sms_tokens.make_token(SECRET, "optout", 42))
        self.assertEqual(sms_links.count_placeholders("https://go.example.com", 6), (
            "https://go.example.com/r/xxxxxx/" + "x" * sms_links.LINK_TOKEN_LENGTH, ""))

    def test_tokens(self):
        self.assertEqual((sms_links.LINK_TOKEN_LENGTH, sms_links.OPTOUT_TOKEN_LENGTH), (12, 16))
        for purpose in ("link", "optout"):
            for trace_id in (1, 42, sms_tokens.MAX_ID):
                with self.subTest(purpose=purpose, trace_id=trace_id):
                    token = sms_tokens.make_token(SECRET, purpose, trace_id)
                    self.assertEqual(len(token), sms_tokens.token_length(purpose))
                    self.assertRegex(token, r"^[A-Za-z0-9_-]+$", "URL-safe, no padding")
                    self.assertEqual(sms_tokens.read_token(SECRET, purpose, token), trace_id)
        token = sms_tokens.make_token(SECRET, "optout", 42)
        for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:10], "", None, "!" * 16,
                    sms_tokens.make_token("another-secret", "optout", 42)):
            with self.subTest(token=bad):
                self.assertIsNone(sms_tokens.read_token(SECRET, "optout", bad))
        self.assertIsNone(sms_tokens.read_token(SECRET, "link", token), "an opt-out token is no link token")
        self.assertNotEqual(sms_tokens.make_token(SECRET, "link", 42), sms_tokens.make_token(SECRET, "link", 43))
        for trace_id in (0, -1, sms_tokens.MAX_ID + 1):
            with self.subTest(trace_id=trace_id), self.assertRaises(ValueError):
                sms_tokens.make_token(SECRET, "link", trace_id)

    def test_with_utm_params(self):
        utms = [("utm_source", "Spring"), ("utm_medium", "SMS")]
        self.assertEqual(with_utm_params(TRICKY_URL, utms),
                         "https://ex.com/a,b?x=1&y=2,3&utm_source=Spring&utm_medium=SMS#frag")
        self.assertEqual(
            with_utm_params("https://ex.com/?utm_source=mine&a=1", [("utm_source", "x"), ("utm_medium", "SMS")]),
            "https://ex.com/?utm_source=mine&a=1&utm_medium=SMS",
            "UTM parameters already in the URL are kept as they are",
        )
        self.assertEqual(with_utm_params("https://ex.com/p#f", [("utm_medium", "SMS")]),
                         "https://ex.com/p?utm_medium=SMS#f")
        self.assertEqual(with_utm_params("https://ex.com/p?a=1&", [("utm_medium", "SMS")]),
                         "https://ex.com/p?a=1&utm_medium=SMS")
        self.assertEqual(with_utm_params("https://ex.com/p", [("utm_medium", False)]), "https://ex.com/p",
                         "empty values are not added")
