// Check sms_marketing_ext/static/src/js/sms_segments.js against the shared SMS test vectors.
// Usage: node scripts/check_sms_vectors_js.mjs   (Node >= 18; prints "N passed, N failed", exits 1 on failure)
//
// The addon tree has no package.json with "type": "module", so Node would load the .js file as CommonJS:
// import its source through a data: URL instead, which is always evaluated as an ES module.
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";

const addon = new URL("../sms_marketing_ext/", import.meta.url);
const source = readFileSync(new URL("static/src/js/sms_segments.js", addon), "utf8");
const { analyzeSms, toGsm } = await import(
    `data:text/javascript;base64,${Buffer.from(source).toString("base64")}`
);
const vectors = JSON.parse(readFileSync(new URL("static/tests/sms_segments_vectors.json", addon), "utf8"));

// vector key -> analyzeSms() key; "chars" and "remaining" are optional in a vector.
const FIELDS = {
    encoding: "encoding",
    length: "length",
    segments: "segments",
    non_gsm_chars: "nonGsmChars",
    chars: "chars",
    remaining: "remaining",
};

let passed = 0;
let failed = 0;
for (const vector of vectors) {
    const errors = [];
    const check = (label, actual, expected) => {
        if (!isDeepStrictEqual(actual, expected)) {
            errors.push(`${label}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
        }
    };
    const result = analyzeSms(vector.text);
    for (const [vectorKey, resultKey] of Object.entries(FIELDS)) {
        if (vectorKey in vector) {
            check(vectorKey, result[resultKey], vector[vectorKey]);
        }
    }
    if (vector.to_gsm) {
        const converted = toGsm(vector.text);
        check("to_gsm.text", converted.text, vector.to_gsm.text);
        check(
            "to_gsm.changed",
            converted.changes.map((change) => change.char),
            vector.to_gsm.changed
        );
    }
    if (errors.length) {
        failed++;
        console.log(`FAIL ${vector.name}\n    ${errors.join("\n    ")}`);
    } else {
        passed++;
    }
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
