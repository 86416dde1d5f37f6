/** @odoo-module **/
// The SMS content field of mailings: the stock SMS widget (textarea, emojis) with an exact live
// counter. It counts the text as it will be sent (links in their tracked short form, opt-out
// footer when enabled, what the gateway appends) with the same rules and vectors as tools/sms_segments.py on the server.

import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { SmsWidget, smsWidget } from "@sms/components/sms_widget/fields_sms_widget";
import { onWillStart, useState } from "@odoo/owl";

import { _t } from "@web/core/l10n/translation";
import { analyzeSms, invisibleCode } from "./sms_segments";

// Same pattern as TEXT_URL_REGEX in tools/sms_links.py (odoo.tools.TEXT_URL_REGEX, widened to
// keep commas inside a URL's path); a test checks that both are identical.
const TEXT_URL_REGEX = /https?:\/\/[\w@:%.+&~#=/-]+(?:[,;!*$]+[\w@:%.+&~#=/-]+)*(?:\?\S+)?/g;
const HAS_URL_REGEX = new RegExp(TEXT_URL_REGEX.source);
// Same pattern as PLACEHOLDER_REGEX in tools/sms_links.py (Odoo's inline_template placeholders,
// rendered per recipient: counted as empty, the counter then says "at least"); a test compares them.
const PLACEHOLDER_REGEX = /\{\{(.+?)\}\}/g;
const HAS_PLACEHOLDER_REGEX = new RegExp(PLACEHOLDER_REGEX.source);

export class SmsCounterField extends SmsWidget {
    static template = "sms_marketing_ext.SmsCounterField";

    setup() {
        super.setup();
        this.orm = useService("orm");
        this.countContext = { link: "", optout_footer: "", provider_suffix: "" };
        // Issue 13 §2: the text as typed, counted on every keystroke (the record only gets it on change).
        this.live = useState({ typed: null, committed: null });
        onWillStart(async () => {
            if (this.props.record.resModel === "mailing.mailing") {
                this.countContext = await this.orm.call("mailing.mailing", "sms_counter_context", [
                    this.props.record.resId ? [this.props.record.resId] : [],
                ]);
            }
        });
    }

    // --- Live counting on every keystroke (issue 13 §2) -------------------------------------------
    /** The textarea's input event: keep what is typed, without committing it to the record. */
    onLiveInput(ev) {
        this.live.typed = ev.target.value;
        this.live.committed = this.props.record.data[this.props.name] || "";
    }

    /** What the user sees in the textarea: the typed text until the record's value changes. */
    get body() {
        const committed = this.props.record.data[this.props.name] || "";
        return this.live.typed !== null && this.live.committed === committed ? this.live.typed : committed;
    }
    // --- end of issue 13 §2 ------------------------------------------------------------------------

    get textAsSent() {
        const body = this.body.replace(PLACEHOLDER_REGEX, "");
        let text = this.countContext.link ? body.replace(TEXT_URL_REGEX, () => this.countContext.link) : body;
        if (this.props.record.data.sms_allow_unsubscribe && this.countContext.optout_footer) {
            text += this.countContext.optout_footer;
        }
        // What the gateway appends (OVHcloud's STOP mention), as counted by the server.
        return text + this.providerSuffix;
    }

    /** The mailing's field when the form has it (follows the gateway and the sender of an
     * unsaved form through onchange), else what the server said when the form opened. */
    get providerSuffix() {
        const data = this.props.record.data;
        return ("sms_provider_suffix" in data ? data.sms_provider_suffix : this.countContext.provider_suffix) || "";
    }

    get hasLinks() {
        return Boolean(this.countContext.link) && HAS_URL_REGEX.test(this.body);
    }

    get hasOptout() {
        return Boolean(this.props.record.data.sms_allow_unsubscribe && this.countContext.optout_footer);
    }

    get lengthVaries() {
        return HAS_PLACEHOLDER_REGEX.test(this.props.record.data[this.props.name] || "");
    }

    get analysis() {
        return analyzeSms(this.textAsSent);
    }

    // --- Naming the characters that force Unicode (issue 13 §1) ---------------------------------
    /** The non-GSM characters as shown: themselves, or a name and code point when invisible. */
    get nonGsmLabels() {
        return this.analysis.nonGsmChars.map((char) => {
            const code = invisibleCode(char);
            return { char, code, label: code ? `${invisibleCharName(char)} (${code})` : char };
        });
    }
    // --- end of issue 13 §1 ------------------------------------------------------------------------
}

/** The name of an invisible character, same words as _sms_char_label() of mailing.mailing. */
function invisibleCharName(char) {
    const names = {
        "\t": _t("tab"),
        "\u00a0": _t("non-breaking space"),
        "\u202f": _t("narrow non-breaking space"),
        "\u200b": _t("zero-width space"),
        "\u200c": _t("zero-width non-joiner"),
        "\u200d": _t("zero-width joiner"),
        "\ufeff": _t("zero-width no-break space"),
    };
    return names[char] || (/\s/u.test(char) ? _t("special space") : _t("invisible character"));
}

export const smsCounterField = {
    ...smsWidget,
    component: SmsCounterField,
};

registry.category("fields").add("sms_counter", smsCounterField);
