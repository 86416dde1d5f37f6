import json
import random

from odoo.tests import tagged
from odoo.tests.common import BaseCase
from odoo.tools.misc import file_path

from ..tools import sms_segments
from ..tools.sms_segments import analyze, split_parts, to_gsm

VECTORS_PATH = "sms_marketing_ext/static/tests/sms_segments_vectors.json"

NON_GSM = "ł"  # Polish l with stroke: not in GSM 03.38, one UTF-16 unit
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, two UTF-16 units


@tagged("at_install", "sms_counting")
class TestSmsSegments(BaseCase):
    def assertAnalysis(self, text, encoding, length, segments):
        result = analyze(text)
        self.assertEqual(
            (result["encoding"], result["length"], result["segments"]),
            (encoding, length, segments),
            f"analysis of a {len(text)}-character text",
        )
        parts = split_parts(text)
        self.assertEqual("".join(parts), text)
        self.assertEqual(len(parts), segments)

    def test_shared_vectors(self):
        """The vectors the browser is checked against too (see test_sms_counter_browser)."""
        with open(file_path(VECTORS_PATH), encoding="utf-8") as vectors_file:
            vectors = json.load(vectors_file)
        self.assertGreaterEqual(len(vectors), 30)
        for vector in vectors:
            with self.subTest(vector=vector["name"]):
                result = analyze(vector["text"])
                self.assertEqual(result["encoding"], vector["encoding"])
                self.assertEqual(result["length"], vector["length"])
                self.assertEqual(result["segments"], vector["segments"])
                self.assertEqual(result["non_gsm_chars"], vector["non_gsm_chars"])
                if "to_gsm" in vector:
                    new_text, changes = to_gsm(vector["text"])
                    self.assertEqual(new_text, vector["to_gsm"]["text"])
                    self.assertEqual([change["char"] for change in changes], vector["to_gsm"]["changed"])

    def test_billed_parts_same_as_analyze(self):
        """The fast count of the send and the estimate agrees with the packing count: on the
        shared vectors and on random texts mixing basic, extension, Unicode and astral characters."""
        with open(file_path(VECTORS_PATH), encoding="utf-8") as vectors_file:
            texts = [vector["text"] for vector in json.load(vectors_file)]
        draw = random.Random(11)  # noqa: S311 - reproducible test texts, not secrets
        for alphabet in ("abc €[^", "abcŁé", "ab 😀Ł€", "abcdef"):
            texts += ["".join(draw.choice(alphabet) for _i in range(draw.randint(0, 420))) for _j in range(300)]
        for text in texts:
            with self.subTest(text=text[:40]):
                self.assertEqual(sms_segments.billed_parts(text), max(analyze(text)["segments"], 1))

    def test_gsm7_boundaries(self):
        self.assertAnalysis("", "gsm7", 0, 0)
        self.assertAnalysis("a" * 160, "gsm7", 160, 1)
        self.assertAnalysis("a" * 161, "gsm7", 161, 2)
        self.assertAnalysis("a" * 306, "gsm7", 306, 2)
        self.assertAnalysis("a" * 307, "gsm7", 307, 3)

    def test_ucs2_boundaries(self):
        self.assertAnalysis(NON_GSM * 70, "ucs2", 70, 1)
        self.assertAnalysis(NON_GSM * 71, "ucs2", 71, 2)
        self.assertAnalysis(NON_GSM * 134, "ucs2", 134, 2)
        self.assertAnalysis(NON_GSM * 135, "ucs2", 135, 3)

    def test_extension_characters_count_double(self):
        self.assertAnalysis("€" * 80, "gsm7", 160, 1)
        self.assertAnalysis("a" * 159 + "{", "gsm7", 161, 2)
        for char in "^{}\\[]~|€\f":
            with self.subTest(char=char):
                self.assertEqual(analyze(char)["length"], 2)
        self.assertEqual(analyze("a\nb\rc")["length"], 5)

    def test_escape_pair_never_split(self):
        # 152 septets then an escape pair: it does not fit in the 153rd septet, which is wasted.
        text = "a" * 152 + "€" + "a" * 152  # 306 septets: naive division says 2 parts
        self.assertAnalysis(text, "gsm7", 306, 3)
        first, second, _third = split_parts(text)
        self.assertEqual(first, "a" * 152)
        self.assertTrue(second.startswith("€"))
        # 151 + pair fills the 153 septets exactly: no waste.
        self.assertAnalysis("a" * 151 + "€" + "a" * 153, "gsm7", 306, 2)

    def test_surrogate_pair_never_split(self):
        text = NON_GSM * 66 + EMOJI + NON_GSM * 66  # 134 units: naive division says 2 parts
        self.assertAnalysis(text, "ucs2", 134, 3)
        self.assertEqual(split_parts(text)[1][0], EMOJI)
        self.assertAnalysis(EMOJI, "ucs2", 2, 1)
        self.assertAnalysis(NON_GSM * 69 + EMOJI, "ucs2", 71, 2)

    def test_mixed_text_names_non_gsm_characters(self):
        result = analyze("Ça coûte 5€ — “promo” 😀 coûte")
        self.assertEqual(result["encoding"], "ucs2")
        self.assertEqual(result["non_gsm_chars"], ["û", "—", "“", "”", EMOJI])
        self.assertEqual(analyze("ΔΦΓΛΩΠΨΣΘΞ")["encoding"], "gsm7")
        self.assertEqual(analyze("α")["non_gsm_chars"], ["α"])

    def test_to_gsm(self):
        text, changes = to_gsm("“Hello” it’s 50\u00a0% off… — now")
        self.assertEqual(text, "\"Hello\" it's 50 % off... - now")
        self.assertEqual(analyze(text)["encoding"], "gsm7")
        by_char = {change["char"]: change for change in changes}
        self.assertEqual(by_char["…"]["replacement"], "...")
        self.assertEqual(by_char["\u00a0"]["count"], 1)
        # Emoji and non-Latin scripts are kept: the text stays Unicode.
        text, changes = to_gsm("Привет 😀")
        self.assertEqual((text, changes), ("Привет 😀", []))
        self.assertIn("€", sms_segments.GSM7_EXTENDED)
