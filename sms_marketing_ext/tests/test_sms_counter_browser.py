import unittest

from odoo.tests import HttpCase, tagged

# Runs in the real browser: loads the JS counter module from the assets and checks it
# against the same vector file as test_sms_segments.TestSmsSegments.test_shared_vectors.
BROWSER_CHECK = """
(async () => {
    const { analyzeSms, toGsm } = odoo.loader.modules.get("@sms_marketing_ext/js/sms_segments");
    const response = await fetch("/sms_marketing_ext/static/tests/sms_segments_vectors.json");
    const vectors = await response.json();
    const failures = [];
    for (const vector of vectors) {
        const result = analyzeSms(vector.text);
        const got = [result.encoding, result.length, result.segments, JSON.stringify(result.nonGsmChars)];
        const want = [vector.encoding, vector.length, vector.segments, JSON.stringify(vector.non_gsm_chars)];
        if (JSON.stringify(got) !== JSON.stringify(want)) {
            failures.push(`${vector.name}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
        }
        if (vector.to_gsm) {
            const converted = toGsm(vector.text);
            const changed = converted.changes.map((change) => change.char);
            if (converted.text !== vector.to_gsm.text
                    || JSON.stringify(changed) !== JSON.stringify(vector.to_gsm.changed)) {
                failures.push(`${vector.name}: toGsm gave ${JSON.stringify(converted)}`);
            }
        }
    }
    if (failures.length || vectors.length < 30) {
        console.error(`SMS counter vectors failed in the browser (${vectors.length} vectors):\\n`
                      + failures.join("\\n"));
    } else {
        console.log("test successful");
    }
})();
"""


@tagged("post_install", "-at_install", "sms_counting")
class TestSmsCounterBrowser(HttpCase):
    def test_shared_vectors_in_browser(self):
        # Odoo skips browser tests when Chromium cannot start: here that is a failure.
        try:
            self.browser_js("/web", BROWSER_CHECK, ready="odoo.isReady", login="admin")
        except unittest.SkipTest as exc:
            self.fail(f"The SMS counter could not be checked in headless Chromium: {exc}")
