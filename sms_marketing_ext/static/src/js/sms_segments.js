/** @odoo-module **/
// Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
//
// Exact SMS length / part counting (3GPP TS 23.038, a.k.a. GSM 03.38). JavaScript twin of
// tools/sms_segments.py: both are checked against static/tests/sms_segments_vectors.json, keep them in sync.
// No imports, so that scripts/check_sms_vectors_js.mjs can load it under plain Node.
//
// Counting rules:
// - GSM-7 when every character is in the basic or extension table, otherwise the whole text is UCS-2.
// - GSM-7 length is in septets: basic character 1, extension character 2 (ESC + char).
// - UCS-2 length is in UTF-16 code units: a character outside the BMP (most emoji) costs 2.
// - One part holds 160 septets / 70 units; a longer text is split in parts of 153 septets / 67 units.
// - An escape pair or surrogate pair is never split across two parts: if it does not fit in the last
//   free unit of a part it starts the next part and that unit is wasted, so parts are counted by packing.
// Strings are iterated by code point (for...of / spread), so a "character" is what Python's len() counts.

// GSM 03.38 basic table in code order 0x00..0x7F, one row of 16 per line. 0x1B is the escape to the
// extension table, not a character. 0x09 is the capital "Ç" (lowercase "ç" is NOT in the alphabet).
const GSM7_BASIC = new Set(
    "@£$¥èéùìòÇ\nØø\rÅå" +
        "Δ_ΦΓΛΩΠΨΣΘΞ" + // ESC (0x1B) sits between "Ξ" and "Æ"
        "ÆæßÉ" +
        " !\"#¤%&'()*+,-./" +
        "0123456789:;<=>?" +
        "¡ABCDEFGHIJKLMNO" +
        "PQRSTUVWXYZÄÖÑÜ§" +
        "¿abcdefghijklmno" +
        "pqrstuvwxyzäöñüà"
);

// Extension table characters, each sent as ESC + code, so they cost 2 septets: form feed, ^ { } \ [ ~ ] | €.
const GSM7_EXTENDED = new Set("\f^{}\\[~]|€");

// [units in a single-part message, units per part of a multipart message]
const PART_SIZES = { gsm7: [160, 153], ucs2: [70, 67] };

// "Make GSM-compatible" replacements, same table as _GSM_REPLACEMENTS in tools/sms_segments.py. Anything
// not listed (emoji, non-Latin scripts, ...) is left untouched. An empty replacement removes the character.
// prettier-ignore
const GSM_REPLACEMENTS = new Map(
    Object.entries({
        // Typographic single quotes, primes and accents used as apostrophes.
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
        // Typographic double quotes, guillemets and double prime.
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
        // Hyphens, dashes, minus sign and bullet.
        "\u2010": "-", "\u2011": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-", "\u2022": "-",
        "\u2026": "...",
        // Tab, no-break space and the other Unicode spaces (U+2000..U+200A, U+202F, U+205F, U+3000).
        "\t": " ", "\u00a0": " ", "\u2000": " ", "\u2001": " ", "\u2002": " ", "\u2003": " ", "\u2004": " ", "\u2005": " ",
        "\u2006": " ", "\u2007": " ", "\u2008": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u205f": " ",
        "\u3000": " ",
        // Zero-width characters (including the BOM / zero-width no-break space) are dropped, except the
        // joiners inside emoji sequences and non-Latin scripts, see JOINERS.
        "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
        // Accented Latin letters missing from GSM-7. "ç" maps to "Ç", the only c-cedilla GSM-7 has (the usual
        // gateway convention); the accented letters that GSM-7 does have (é è ù ì ò à Ä Ö Ñ Ü Å É ...) stay.
        "á": "a", "â": "a", "ã": "a", "ê": "e", "ë": "e", "í": "i", "î": "i", "ï": "i",
        "ó": "o", "ô": "o", "õ": "o", "ú": "u", "û": "u", "ç": "Ç",
        "Á": "A", "À": "A", "Â": "A", "Ã": "A", "È": "E", "Ê": "E", "Ë": "E", "Í": "I", "Ì": "I", "Î": "I", "Ï": "I",
        "Ó": "O", "Ò": "O", "Ô": "O", "Õ": "O", "Ú": "U", "Ù": "U", "Û": "U",
        "œ": "oe", "Œ": "OE",
    })
);

// Zero-width non-joiner / joiner are part of emoji ZWJ sequences (👨‍👩‍👧) and of Arabic or Indic spelling:
// toGsm() keeps them when both neighbours are characters it keeps as non-GSM, so it never breaks what it
// deliberately leaves alone, and removes them everywhere else.
const JOINERS = new Set("\u200c\u200d");

/**
 * Describe how `text` is sent as SMS.
 *
 * @param {string} text
 * @returns {{encoding: "gsm7"|"ucs2", length: number, segments: number, nonGsmChars: string[],
 *            chars: number, perPart: number, remaining: number}}
 *   length is in septets (gsm7) or UTF-16 units (ucs2); segments is 0 for an empty text; nonGsmChars are
 *   the distinct characters that forced UCS-2, in order of first appearance; remaining is the number of
 *   free units left in the last part.
 */
export function analyzeSms(text) {
    const chars = [...text];
    const nonGsmChars = [...new Set(chars.filter((c) => !GSM7_BASIC.has(c) && !GSM7_EXTENDED.has(c)))];
    const encoding = nonGsmChars.length ? "ucs2" : "gsm7";
    // c.length is the number of UTF-16 units of the code point: 2 for a surrogate pair.
    const costs = chars.map((c) => (encoding === "ucs2" ? c.length : GSM7_EXTENDED.has(c) ? 2 : 1));
    const length = costs.reduce((sum, cost) => sum + cost, 0);
    const [single, multi] = PART_SIZES[encoding];
    const perPart = length <= single ? single : multi;
    let segments = 0;
    let used = 0; // units used in the current (last) part
    for (const cost of costs) {
        if (!segments || used + cost > perPart) {
            segments++;
            used = 0;
        }
        used += cost;
    }
    return { encoding, length, segments, nonGsmChars, chars: chars.length, perPart, remaining: perPart - used };
}

/**
 * Replace look-alike characters by their GSM-7 equivalent ("Make GSM-compatible").
 *
 * @param {string} text
 * @returns {{text: string, changes: {char: string, replacement: string, count: number}[]}}
 *   changes has one entry per replaced character, in order of first appearance.
 */
export function toGsm(text) {
    const chars = [...text];
    // Whether toGsm() leaves the character as is although it is not GSM-7 (emoji, non-Latin letter, ...).
    const isKeptNonGsm = (c) => !GSM7_BASIC.has(c) && !GSM7_EXTENDED.has(c) && !GSM_REPLACEMENTS.has(c);
    const changes = new Map();
    let out = "";
    chars.forEach((char, index) => {
        const replacement = GSM_REPLACEMENTS.get(char);
        const joinsKeptChars =
            JOINERS.has(char) &&
            index > 0 &&
            index < chars.length - 1 &&
            isKeptNonGsm(chars[index - 1]) &&
            isKeptNonGsm(chars[index + 1]);
        if (replacement === undefined || joinsKeptChars) {
            out += char;
            return;
        }
        out += replacement;
        if (!changes.has(char)) {
            changes.set(char, { char, replacement, count: 0 });
        }
        changes.get(char).count++;
    });
    return { text: out, changes: [...changes.values()] };
}

/**
 * The code point ("U+00A0") of a character that shows nothing by itself: a space other than the plain
 * one, a tab, a zero-width or other format / control character; "" for any other one. Twin of
 * invisible_code() in tools/sms_segments.py.
 *
 * @param {string} char
 * @returns {string}
 */
export function invisibleCode(char) {
    if (GSM7_BASIC.has(char) || !/^[\p{Z}\p{C}]$/u.test(char)) {
        return "";
    }
    return `U+${char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}
