/** @odoo-module **/
// The SMS content field of mailings: the stock SMS widget (textarea, emojis) with an exact live
// counter. It counts the text as it will be sent (links in their tracked short form, opt-out
// footer when enabled) with the same rules and vectors as tools/sms_segments.py on the server.

import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { SmsWidget, smsWidget } from "@sms/components/sms_widget/fields_sms_widget";
import { onWillStart } from "@odoo/owl";

import { analyzeSms } from "./sms_segments";

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
        this.countContext = { link: "", optout_footer: "" };
        onWillStart(async () => {
            if (this.props.record.resModel === "mailing.mailing") {
                this.countContext = await this.orm.call("mailing.mailing", "sms_counter_context", [
                    this.props.record.resId ? [this.props.record.resId] : [],
                ]);
            }
        });
    }

    get textAsSent() {
        const body = (this.props.record.data[this.props.name] || "").replace(PLACEHOLDER_REGEX, "");
        let text = this.countContext.link ? body.replace(TEXT_URL_REGEX, () => this.countContext.link) : body;
        if (this.props.record.data.sms_allow_unsubscribe && this.countContext.optout_footer) {
            text += this.countContext.optout_footer;
        }
        return text;
    }

    get hasLinks() {
        return Boolean(this.countContext.link) && HAS_URL_REGEX.test(this.props.record.data[this.props.name] || "");
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
}

export const smsCounterField = {
    ...smsWidget,
    component: SmsCounterField,
};

registry.category("fields").add("sms_counter", smsCounterField);
