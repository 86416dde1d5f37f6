/** @odoo-module **/
// Browser tours of sms_marketing_ext, run by tests/test_ui_tours.py in headless Chromium.

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

// 95 GSM characters: one SMS part. The same text with an emoji needs Unicode (70 per part): two parts.
const GSM_TEXT = "Spring sale at TourShop: -20% on everything this weekend, in store and online. See you soon!";
const EMOJI_TEXT = `${GSM_TEXT} 🌸`;

/** Open an app from the home menu. */
function openApp(menuXmlid) {
    return [
        stepUtils.showAppsMenuItem(),
        {
            content: "Open the app",
            trigger: `.o_app[data-menu-xmlid="${menuXmlid}"]`,
        },
    ];
}

/** Open a menu of the current app's navbar through its dropdown; wait for its view (breadcrumb). */
function openMenu(parentLabel, menuXmlid, breadcrumb) {
    return [
        {
            content: `Open the ${parentLabel} menu`,
            trigger: `.o_menu_sections .dropdown-toggle:contains("${parentLabel}")`,
        },
        {
            content: `Open ${menuXmlid}`,
            trigger: `.o_menu_sections .dropdown-item[data-menu-xmlid="${menuXmlid}"]`,
        },
        check(`${breadcrumb} is open`, `.o_breadcrumb .active:contains("${breadcrumb}")`),
    ];
}

/** Open the SMS Marketing app and start a new SMS mailing titled `title`. */
function newSmsMailing(title) {
    return [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        {
            content: "Create an SMS mailing",
            trigger: ".o_list_button_add, .o-kanban-button-new",
        },
        {
            content: "Title",
            trigger: 'div[name="sms_subject"] input',
            run: `text ${title}`,
        },
    ];
}

/** Open the Callbacks tab of the tour's gateway. */
function openGatewayCallbacks() {
    return [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Configuration", "sms_marketing_ext.sms_gateway_menu", "Gateways"),
        {
            content: "Open the gateway",
            trigger: '.o_data_row td[name="name"]:contains("Tour gateway")',
        },
        {
            content: "Open the Callbacks tab",
            trigger: '.o_notebook .nav-link[name="callbacks"]',
        },
    ];
}

/**
 * Pick `label` in the many2one or many2many field `name` by typing it. With `onlyMatches`, wait
 * until the dropdown shows the search's results (every item matches) before picking.
 */
function pickRecord(name, label, onlyMatches = false) {
    const menu = onlyMatches
        ? `.o-autocomplete--dropdown-menu:not(:has(.o-autocomplete--dropdown-item:not(.o_m2o_dropdown_option):not(:contains("${label}"))))`
        : ".o-autocomplete--dropdown-menu";
    return [
        {
            content: `Type ${label} in ${name}`,
            trigger: `div[name="${name}"] input`,
            run: `text ${label}`,
        },
        {
            content: `Pick ${label}`,
            trigger: `${menu} .o-autocomplete--dropdown-item a:contains("${label}")`,
        },
    ];
}

/**
 * Put a file in the binary field `name` as if the user had chosen it in the file dialog: the
 * trigger is the visible upload button, the file goes to its hidden <input type="file">.
 */
function uploadFile(name, fileName, content, type) {
    return {
        content: `Upload ${fileName} in ${name}`,
        trigger: `div[name="${name}"] .o_select_file_button`,
        run() {
            const input = this.$anchor[0].closest(`div[name="${name}"]`).querySelector("input.o_input_file");
            const transfer = new DataTransfer();
            transfer.items.add(new File([content], fileName, { type }));
            input.files = transfer.files;
            input.dispatchEvent(new Event("change", { bubbles: true }));
        },
    };
}

/** Wait (up to 10 s) until `predicate()` holds; fail the tour with `message()` otherwise. */
async function waitUntil(predicate, message) {
    for (let waited = 0; waited < 10000; waited += 100) {
        if (predicate()) {
            return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(message());
}

/** A step checking that the input under `trigger` comes to hold `expected`. */
function checkInputValue(content, trigger, expected) {
    return check(content, trigger, {
        async run() {
            // Queried again each time: an onchange may render the field anew.
            const value = () => document.querySelector(trigger)?.value;
            await waitUntil(
                () => (value() || "").includes(expected),
                () => `${content}: the field shows "${value()}", not "${expected}"`
            );
        },
    });
}

/** Put `text` in a textarea as keystrokes do: input events only, nothing committed to the record. */
function liveInput(textarea, text) {
    textarea.value = text;
    textarea.dispatchEvent(new InputEvent("input", { bubbles: true }));
}

/** A step typing `text` in the SMS content without committing it (no change event, no blur). */
function typeWithoutCommitting(text) {
    return {
        content: `Type "${text}" without leaving the field`,
        trigger: 'div[name="body_plaintext"] textarea',
        run() {
            liveInput(this.$anchor[0], text);
        },
    };
}

/** A step emptying the input under `trigger` as a user deleting its text would. */
function clearInput(trigger) {
    return {
        content: `Clear ${trigger}`,
        trigger,
        run() {
            const input = this.$anchor[0];
            input.value = "";
            input.dispatchEvent(new InputEvent("input", { bubbles: true }));
            input.dispatchEvent(new Event("change", { bubbles: true }));
        },
    };
}

/** Click Suggest from company on a sender whose name is empty: the name comes back, nothing is refused. */
function suggestFromCompany() {
    return [
        check("The name is empty", 'div[name="name"] input', {
            async run() {
                const input = () => document.querySelector('div[name="name"] input');
                await waitUntil(() => input()?.value === "", () => `the name is "${input()?.value}"`);
            },
        }),
        {
            content: "Suggest from company",
            trigger: ".o_sms_ext_suggest_sender",
        },
        checkInputValue("The company's suggestion is the name", 'div[name="name"] input', "TourFlora"),
        check("No invalid field", ".o_form_view", {
            async run() {
                await new Promise((resolve) => setTimeout(resolve, 300));
                const refused = [...document.querySelectorAll(".o_notification, .o_field_invalid")];
                if (refused.length) {
                    throw new Error(`refused: ${refused.map((element) => element.textContent).join(" | ")}`);
                }
            },
        }),
    ];
}

function check(content, trigger, extra = {}) {
    return { content, trigger, isCheck: true, ...extra };
}

// ------------------------------------------------------------------------------------------------
// A marketer writes an SMS mailing: live counter, sender, recipients check, test, schedule
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_marketing_mailing", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        {
            content: "Create an SMS mailing",
            trigger: ".o_list_button_add, .o-kanban-button-new",
        },
        {
            content: "Title",
            trigger: 'div[name="sms_subject"] input',
            run: "text Tour spring sale",
        },
        ...pickRecord("contact_list_ids", "Tour list"),
        check("The list is selected", 'div[name="contact_list_ids"] .o_tag:contains("Tour list")'),
        // Issue 13 §2: the counter follows every keystroke (input events only, no change, no blur),
        // in plain words, with correct plurals.
        typeWithoutCommitting("Hi €"),
        check("Counted as typed, before leaving the field", ".o_sms_ext_counter", {
            async run() {
                const counter = this.$anchor[0];
                await waitUntil(
                    () => counter.querySelector(".o_sms_ext_length") && !/septet|UTF-16/.test(counter.textContent),
                    () => `the counter did not follow the keystroke, or speaks jargon: ${counter.textContent}`
                );
            },
        }),
        {
            content: "Type up to one character left in the part",
            trigger: ".o_sms_ext_remaining[data-remaining]",
            async run() {
                const remaining = Number(this.$anchor[0].dataset.remaining);
                const textarea = document.querySelector('div[name="body_plaintext"] textarea');
                liveInput(textarea, `Hi €${"a".repeat(remaining - 1)}`);
                await waitUntil(
                    () => document.querySelector(".o_sms_ext_remaining")?.dataset.remaining === "1",
                    () => `still ${document.querySelector(".o_sms_ext_remaining")?.dataset.remaining} left, not 1`
                );
            },
        },
        check(
            "Singular for one",
            '.o_sms_ext_remaining:contains("1 character left"):not(:contains("1 characters"))'
        ),
        {
            content: "Open the Settings tab",
            trigger: '.o_notebook .nav-link[name="settings"]',
        },
        {
            content: "The gateway's default sender takes no replies: the opt-out link is on by default; untick it",
            trigger: 'div[name="sms_allow_unsubscribe"] input[type="checkbox"]:checked',
        },
        check("The opt-out warning shows", ".o_sms_ext_optout_warning"),
        {
            content: "Back to the SMS content",
            trigger: '.o_notebook .nav-link[name="sms_body"]',
        },
        {
            content: "Type a message in GSM characters",
            trigger: 'div[name="body_plaintext"] textarea',
            run: `text ${GSM_TEXT}`,
        },
        check(
            "GSM 7-bit, one part",
            '.o_sms_ext_counter:has(.o_sms_ext_encoding[data-encoding="gsm7"]):has(.o_sms_ext_parts[data-parts="1"])'
        ),
        {
            content: "Add an emoji",
            trigger: 'div[name="body_plaintext"] textarea',
            run: `text ${EMOJI_TEXT}`,
        },
        check(
            "The counter switches to Unicode: two parts, and names the emoji",
            '.o_sms_ext_counter:has(.o_sms_ext_encoding[data-encoding="ucs2"]):has(.o_sms_ext_parts[data-parts="2"]) ' +
                '.o_sms_ext_non_gsm:contains("🌸")'
        ),
        {
            content: "Open the Settings tab",
            trigger: '.o_notebook .nav-link[name="settings"]',
        },
        // Issue 13 §11: the message-class help sits under Message class, not under Gateway.
        check("The message-class help follows its field", ".o_sms_ext_class_help", {
            run() {
                const help = this.$anchor[0];
                const smsClass = document.querySelector('div[name="sms_class"]');
                const gateway = document.querySelector('div[name="sms_gateway_id"]');
                const follows = (a, b) => Boolean(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
                if (!follows(smsClass, help) || !follows(help, gateway)) {
                    throw new Error("the message-class help is not between Message class and Gateway");
                }
            },
        }),
        ...pickRecord("sms_sender_id", "TourShop", true),
        checkInputValue("TourShop is the sender", 'div[name="sms_sender_id"] input', "TourShop"),
        check(
            "Recipients cannot reply to an alphanumeric sender: choosing it ticks the opt-out link again",
            'div[name="sms_allow_unsubscribe"] input[type="checkbox"]:checked'
        ),
        check("The opt-out warning is gone", "body:not(:has(.o_sms_ext_optout_warning))"),
        ...stepUtils.saveForm(),
        {
            content: "Check the recipients",
            trigger: 'button[name="action_sms_check_recipients"]',
        },
        check(
            "3 of the 4 contacts of the list will receive it",
            '.o_sms_ext_audience:has(.o_sms_ext_audience_valid:contains("3")):has(.o_sms_ext_audience_total:contains("4"))'
        ),
        check("The invalid number is counted", 'div[name="invalid"]:contains("1")'),
        {
            content: "Close the recipients dialog",
            trigger: '.modal-footer button:contains("Close")',
        },
        check("The dialog is closed", "body:not(:has(.modal))"),
        // Issue 13 §11: the estimate's date stays on one line.
        {
            content: "Back to the SMS Content tab",
            trigger: '.o_notebook .nav-link[name="sms_body"]',
        },
        // Check recipients made the estimate: its date shows once the form has reloaded.
        check("The estimate's date is on one line", ".o_sms_ext_cost_date:visible", {
            run() {
                // The distinct tops of its text's boxes: one line, one top.
                const walker = document.createTreeWalker(this.$anchor[0], NodeFilter.SHOW_TEXT);
                const tops = new Set();
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    const range = document.createRange();
                    range.selectNodeContents(node);
                    for (const rect of range.getClientRects()) {
                        if (rect.width > 0) {
                            tops.add(Math.round(rect.top));
                        }
                    }
                }
                if (tops.size !== 1) {
                    throw new Error(`the estimate's date wraps over ${tops.size} lines`);
                }
            },
        }),
        check("A fresh estimate is not marked outdated", ".o_sms_ext_cost:not(:has(.o_sms_ext_cost_outdated:visible))"),
        // Issue 13 §3: once the text needs more parts, the estimate says it is outdated.
        {
            content: "Make the message longer",
            trigger: 'div[name="body_plaintext"] textarea',
            run: `text ${EMOJI_TEXT} ${GSM_TEXT}`,
        },
        check("The estimate is marked outdated", ".o_sms_ext_cost_outdated:visible"),
        {
            content: "Back to the shorter message",
            trigger: 'div[name="body_plaintext"] textarea',
            run: `text ${EMOJI_TEXT}`,
        },
        check("The estimate holds again", ".o_sms_ext_cost:not(:has(.o_sms_ext_cost_outdated:visible))"),
        {
            content: "Send a test",
            trigger: 'button[name="action_test"]',
        },
        {
            content: "Test number",
            trigger: 'div[name="numbers"] textarea',
            run: "text +33612345678",
        },
        {
            content: "Send the test",
            trigger: '.modal-footer button[name="action_send_sms"]',
        },
        check("The test went through the gateway", '.o_notification:contains("Test SMS sent to +33612345678")'),
        // Issue 13 §11: the opt-out link of the test SMS opens a harmless demonstration page.
        check("The test is in the chatter, opt-out link included", '.o-mail-Message-body:contains("/sms/o/")', {
            async run() {
                const body = [...document.querySelectorAll(".o-mail-Message-body")]
                    .map((element) => element.textContent)
                    .find((text) => text.includes("/sms/o/"));
                const token = body.match(/\/sms\/o\/([\w=-]+)/)[1];
                const response = await fetch(`/sms/o/${token}`);
                const page = await response.text();
                if (!response.ok || !page.includes('id="sms_optout_test"') || page.includes("not valid")) {
                    throw new Error(`the test SMS's opt-out link answers ${response.status}: ${page.slice(0, 300)}`);
                }
            },
        }),
        {
            content: "Schedule",
            trigger: 'button[name="action_schedule"]',
            extra_trigger: "body:not(:has(.modal))",
        },
        {
            content: "Pick the date",
            trigger: 'div[name="schedule_date"] input',
            run: "text 12/24/2099 10:00:00",
        },
        {
            content: "Confirm the schedule",
            trigger: '.modal-footer button[name="action_schedule_date"]',
        },
        check("The mailing is in the queue", '.o_statusbar_status .o_arrow_button_current:contains("In Queue")', {
            extra_trigger: "body:not(:has(.modal))",
        }),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §1: Make GSM-compatible on a never-saved mailing stays on it; invisible characters are named
// ------------------------------------------------------------------------------------------------
const INVISIBLE_TEXT = "\u201cSoldes\u201d\tjusqu\u2019\u00e0\u00a0-50 %\u200b ce week-end";
const INVISIBLE_TEXT_GSM = "\"Soldes\" jusqu'\u00e0 -50 % ce week-end";

registry.category("web_tour.tours").add("sms_ext_tour_make_gsm_compatible", {
    test: true,
    url: "/web",
    steps: () => [
        ...newSmsMailing("Tour GSM fix"),
        ...pickRecord("contact_list_ids", "Tour list"),
        {
            content: "Paste a text with a tab, a non-breaking space and a zero-width space",
            trigger: 'div[name="body_plaintext"] textarea',
            run: `text ${INVISIBLE_TEXT}`,
        },
        check("The tab is named", '.o_sms_ext_non_gsm .o_sms_ext_invisible_char[data-code="U+0009"]:contains("tab")'),
        check(
            "The non-breaking space is named",
            '.o_sms_ext_non_gsm .o_sms_ext_invisible_char[data-code="U+00A0"]:contains("non-breaking space")'
        ),
        check(
            "The zero-width space is named",
            '.o_sms_ext_non_gsm .o_sms_ext_invisible_char[data-code="U+200B"]:contains("zero-width space")'
        ),
        check("The curly quote is shown as itself", '.o_sms_ext_non_gsm code:contains("\u201c")'),
        {
            content: "Make GSM-compatible (the mailing was never saved)",
            trigger: 'button[name="action_sms_make_gsm_compatible"]',
        },
        check("What was replaced is said in words", '.o_notification:contains("non-breaking space")'),
        check("The form still shows the mailing, now saved", '.o_breadcrumb .active:contains("Tour GSM fix")'),
        check("The record is the saved one, not a new one", ".o_form_view", {
            async run() {
                await waitUntil(
                    () => /[#&]id=\d+/.test(window.location.hash),
                    () => `the URL has no record id: ${window.location.hash}`
                );
            },
        }),
        checkInputValue("The text is replaced", 'div[name="body_plaintext"] textarea', INVISIBLE_TEXT_GSM),
        check(
            "GSM 7-bit now, nothing forces Unicode",
            '.o_sms_ext_counter:has(.o_sms_ext_encoding[data-encoding="gsm7"]):not(:has(.o_sms_ext_non_gsm))'
        ),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §8: a marketer without an e-mail address saves an SMS mailing (no hidden Reply To blocks it)
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_mailing_without_email", {
    test: true,
    url: "/web",
    steps: () => [
        ...newSmsMailing("Tour no e-mail"),
        ...pickRecord("contact_list_ids", "Tour list"),
        {
            content: "Message",
            trigger: 'div[name="body_plaintext"] textarea',
            run: "text Hello from a marketer without an e-mail address",
        },
        ...stepUtils.saveForm(),
        check("No field blocks the save", "body:not(:has(.o_notification:contains('Invalid fields')))"),
        check("Saved", ".o_form_view .o_form_saved"),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §9: an administrator reads and copies the webhook secret the form tells him to give away
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_webhook_secret", {
    test: true,
    url: "/web",
    steps: () => [
        ...openGatewayCallbacks(),
        check("The secret is readable", 'div[name="webhook_secret"]:contains("tour-webhook-secret")'),
        {
            content: "Copy it (headless Chromium has no clipboard permission: keep what is written to it)",
            trigger: 'div[name="webhook_secret"] .o_clipboard_button',
            run() {
                navigator.clipboard.writeText = async (text) => {
                    window.smsExtCopiedText = text;
                };
                this.$anchor[0].click();
            },
        },
        check("Copied", ".popover:contains('Copied')", {
            run() {
                if (window.smsExtCopiedText !== "tour-webhook-secret") {
                    throw new Error(`copied "${window.smsExtCopiedText}", not the secret`);
                }
            },
        }),
    ],
});

// A marketer (not an administrator) does not see it.
registry.category("web_tour.tours").add("sms_ext_tour_webhook_secret_hidden", {
    test: true,
    url: "/web",
    steps: () => [
        ...openGatewayCallbacks(),
        check("The URLs can be copied", 'div[name="status_webhook_url"] .o_clipboard_button'),
        check("No secret for a marketer", 'body:not(:has(div[name="webhook_secret"]))'),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §11: the chatter of a mailing paused for credit says so in a sentence, no raw values
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_paused_chatter", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMailingFromList("Tour paused mailing"),
        check("The pause is told in words", '.o-mail-Message-body:contains("Sending paused")'),
        check("No raw tracking values", "body:not(:has(.o-mail-Message-tracking))"),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §4: Send blocks before confirming, then one dialog with recipients, parts, cost and balance
// ------------------------------------------------------------------------------------------------
function openMailingFromList(subject) {
    return [
        {
            content: "Switch to the list view",
            trigger: ".o_switch_view.o_list",
        },
        {
            content: `Open ${subject}`,
            trigger: `.o_data_row td:contains("${subject}")`,
        },
        check(`${subject} is open`, `.o_breadcrumb .active:contains("${subject}")`),
    ];
}

registry.category("web_tour.tours").add("sms_ext_tour_send_confirm", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMailingFromList("Tour too long"),
        {
            content: "Send a mailing over the part limit",
            trigger: '.o_form_statusbar button[name="action_sms_send_confirm"]',
        },
        check("Blocked at once, with the reason, before any confirmation", '.modal-body:contains("maximum of 6")', {
            extra_trigger: "body:not(:has(.o_sms_ext_send_summary))",
        }),
        {
            content: "Close the message",
            trigger: ".modal-footer .btn-primary",
        },
        {
            content: "Back to the mailings",
            trigger: ".o_breadcrumb a:first",
            extra_trigger: "body:not(:has(.modal))",
        },
        ...openMailingFromList("Tour ready"),
        {
            content: "Send",
            trigger: '.o_form_statusbar button[name="action_sms_send_confirm"]',
        },
        check(
            "One dialog: recipients, parts, cost and balance",
            '.o_sms_ext_send_summary:contains("3 SMS"):contains("1 part"):contains("credits")' +
                ':contains("covers it")'
        ),
        check("The cost is worked out", 'div[name="cost"]:contains("0.")'),
        {
            content: "Send it",
            trigger: '.modal-footer button[name="action_confirm"]:contains("Send")',
        },
        check("Queued, without a second question", ".o_statusbar_status .o_arrow_button_current", {
            extra_trigger: "body:not(:has(.modal))",
            async run() {
                await waitUntil(
                    () => /In Queue|Sending|Sent/.test(this.$anchor[0].closest(".o_statusbar_status").textContent),
                    () => "the mailing was not queued"
                );
            },
        }),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §5: a French viewer sees (and counts) the footer in the mailing's language, not in his own
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_footer_language", {
    test: true,
    steps: () => [
        check("The footer is shown in the mailing's language (English)", ".o_sms_ext_optout_footer", {
            async run() {
                const footer = () => document.querySelector('.o_sms_ext_optout_footer div[name="sms_optout_footer_text"]');
                await waitUntil(
                    () => footer()?.textContent.trim().startsWith("STOP SMS: http"),
                    () => `the footer reads "${footer()?.textContent}"`
                );
            },
        }),
        check("The counter counts that footer", ".o_sms_ext_chars[data-chars]", {
            run() {
                const body = document.querySelector('div[name="body_plaintext"] textarea').value;
                const footer = document
                    .querySelector('.o_sms_ext_optout_footer div[name="sms_optout_footer_text"]')
                    .textContent.trim();
                const expected = [...body].length + 1 + [...footer].length; // "\n" + footer
                const counted = Number(this.$anchor[0].dataset.chars);
                if (counted !== expected) {
                    throw new Error(`the counter counts ${counted} characters, the text as sent has ${expected}`);
                }
            },
        }),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13 §6: the statistics of a sent mailing agree on the list, the form and its buttons
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_statistics", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        {
            content: "Switch to the list view",
            trigger: ".o_switch_view.o_list",
        },
        check(
            "The list's Clicked (%) is the click rate",
            '.o_data_row:contains("Tour stats mailing") td[name="sms_stat_click_rate"]:contains("33")'
        ),
        {
            content: "Open the mailing",
            trigger: '.o_data_row td:contains("Tour stats mailing")',
        },
        check("Pending is shown and the figures add up", ".o_sms_ext_stats", {
            run() {
                const value = (name) => Number(this.$anchor[0].querySelector(`div[name="${name}"]`).textContent.trim());
                const [recipients, delivered, failed, pending] = [
                    "sms_stat_recipients", "sms_stat_delivered", "sms_stat_failed", "sms_stat_pending",
                ].map(value);
                if (pending !== 1 || delivered + failed + pending !== recipients) {
                    throw new Error(`${recipients} recipients, ${delivered} delivered, ${failed} failed, ${pending} pending`);
                }
            },
        }),
        check("The form's click rate is the list's", '.o_sms_ext_stats div[name="sms_stat_click_rate"]:contains("33.33")'),
        check("Stock's banner, pies and our buttons show the same figures", ".o_mails_failed", {
            run() {
                const text = (selector) => {
                    const element = document.querySelector(selector);
                    if (!element) {
                        throw new Error(`${selector} is not on the form`);
                    }
                    return element.textContent.trim();
                };
                const number = (selector) => parseFloat(text(selector).replace(/[^0-9.]/g, ""));
                const stat = (name) => number(`.o_sms_ext_stats div[name="${name}"]`);
                const [recipients, delivered, failed, clickRate] = [
                    "sms_stat_recipients", "sms_stat_delivered", "sms_stat_failed", "sms_stat_click_rate",
                ].map(stat);
                const shown = {
                    "stock's 'could not be delivered' banner": [number('.o_mails_failed div[name="failed"]'), failed],
                    "the Failed button": [number('button[name="action_sms_view_failures"] .o_stat_value'), failed],
                    "the Received pie (%)": [
                        number('button[name="action_view_delivered"] .o_pie_value'),
                        Math.round((10000 * delivered) / recipients) / 100,
                    ],
                    "the Clicked pie (%)": [number('button[name="action_view_clicked"] .o_pie_value'), clickRate],
                };
                for (const [where, [value, expected]] of Object.entries(shown)) {
                    if (Math.abs(value - expected) > 0.01) {
                        throw new Error(`${where} shows ${value}, the statistics say ${expected}`);
                    }
                }
                if (document.querySelector('button[name="action_view_bounced"]')) {
                    throw new Error("stock's Bounced button is shown next to our Failed button");
                }
            },
        }),
        {
            content: "Stock's 'could not be delivered' banner opens our failures",
            trigger: '.o_mails_failed button[name="action_view_traces_failed"]',
        },
        check("The banner opens as many recipients as it counts", ".o_list_view", {
            async run() {
                const rows = () => document.querySelectorAll(".o_list_view .o_data_row").length;
                const groups = () =>
                    [...document.querySelectorAll(".o_list_view .o_group_header .o_group_name")].map((group) =>
                        Number(group.textContent.match(/\((\d+)\)/)?.[1] || 0)
                    );
                await waitUntil(
                    () => groups().reduce((sum, count) => sum + count, 0) === 2 || rows() === 2,
                    () => `the banner's list shows ${groups().join("+") || rows()} records, not 2`
                );
            },
        }),
        {
            content: "Back to the mailing",
            trigger: '.o_breadcrumb .breadcrumb-item a:contains("Tour stats mailing")',
        },
        {
            content: "Open the failures",
            trigger: 'button[name="action_sms_view_failures"]',
        },
        check("The Failed button opens as many recipients as it counts", ".o_list_view", {
            async run() {
                const rows = () => document.querySelectorAll(".o_list_view .o_data_row").length;
                const groups = () =>
                    [...document.querySelectorAll(".o_list_view .o_group_header .o_group_name")].map((group) =>
                        Number(group.textContent.match(/\((\d+)\)/)?.[1] || 0)
                    );
                await waitUntil(
                    () => groups().reduce((sum, count) => sum + count, 0) === 2 || rows() === 2,
                    () => `the failures list shows ${groups().join("+") || rows()} records, not 2`
                );
            },
        }),
    ],
});

// ------------------------------------------------------------------------------------------------
// A marketer requests an alphanumeric sender with its justification document
// ------------------------------------------------------------------------------------------------
const JUSTIFICATION_PDF = [
    "%PDF-1.4",
    "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj",
    "2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj",
    "trailer << /Root 1 0 R >>",
    "%%EOF",
].join("\n");

registry.category("web_tour.tours").add("sms_ext_tour_sender_request", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Configuration", "sms_marketing_ext.sms_sender_menu", "Senders"),
        // Issue 13 §11: the kanban shows every state in the workflow's order, Draft included.
        {
            content: "Switch to the kanban view",
            trigger: ".o_switch_view.o_kanban",
        },
        check("Columns: Draft, Submitted, Approved, Refused", ".o_kanban_view .o_kanban_group", {
            async run() {
                const titles = () =>
                    [...document.querySelectorAll(".o_kanban_view .o_kanban_group .o_column_title")].map((title) =>
                        title.textContent.trim()
                    );
                await waitUntil(
                    () => titles().join() === "Draft,Submitted,Approved,Refused",
                    () => `kanban columns: ${titles().join(", ")}`
                );
            },
        }),
        {
            content: "Request a sender",
            trigger: ".o_list_button_add, .o-kanban-button-new",
        },
        // Issue 13 §11: Suggest from company works on a sender nobody has named yet, and on one whose
        // name was cleared (the button used to save first: "Invalid fields: Sender").
        checkInputValue("A new sender starts with the company's suggestion", 'div[name="name"] input', "TourFlora"),
        clearInput('div[name="name"] input'),
        ...suggestFromCompany(),
        {
            content: "Name",
            trigger: 'div[name="name"] input',
            run: "text TourBrand",
        },
        ...stepUtils.saveForm(),
        clearInput('div[name="name"] input'),
        ...suggestFromCompany(),
        {
            content: "Name it again",
            trigger: 'div[name="name"] input',
            run: "text TourBrand",
        },
        check("Alphanumeric by default", 'div[name="sender_type"] input[data-value="alphanumeric"]:checked'),
        {
            content: "Description",
            trigger: 'div[name="description"] textarea',
            run: "text The brand of the tour shop",
        },
        {
            content: "Reason",
            trigger: 'div[name="reason"] textarea',
            run: "text Promotions to our newsletter subscribers",
        },
        uploadFile("justification_document", "tourbrand_letterhead.pdf", JUSTIFICATION_PDF, "application/pdf"),
        checkInputValue(
            "The document is attached",
            'div[name="justification_document"] input.o_input',
            "tourbrand_letterhead.pdf"
        ),
        {
            content: "Submit for approval",
            trigger: 'button[name="action_submit"]',
        },
        check("Submitted", '.o_statusbar_status .o_arrow_button_current:contains("Submitted")'),
        check("No approve button for a marketer", 'body:not(:has(button[name="action_approve"]))'),
    ],
});

// An SMS administrator approves it.
registry.category("web_tour.tours").add("sms_ext_tour_sender_approve", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Configuration", "sms_marketing_ext.sms_sender_menu", "Senders"),
        {
            content: "Open the requested sender",
            trigger: '.o_data_row td[name="name"]:contains("TourBrand")',
        },
        check("Its document is there", 'div[name="justification_document"]:contains("tourbrand_letterhead.pdf")'),
        {
            content: "Approve",
            trigger: 'button[name="action_approve"]',
        },
        check("Approved", '.o_statusbar_status .o_arrow_button_current:contains("Approved")'),
        check("Decided by the administrator", 'div[name="decided_by_id"]:contains("Adam SMS Admin")'),
    ],
});

// ------------------------------------------------------------------------------------------------
// Importing a CSV file with bad lines shows what is rejected and why
// ------------------------------------------------------------------------------------------------
const CSV_WITH_BAD_LINES = [
    "name;number;country",
    "Alice Martin;+33 6 12 34 56 01;FR",
    "Bruno Rossi;347 123 4502;IT",
    "Carla Peeters;0470 12 34 03;BE",
    "Nobody;12345;FR",
    "Not a phone;call me maybe;DE",
    "Paris office;+33 1 42 68 53 00;FR",
    "Alice again;+33612345601;FR",
    "",
].join("\n");

registry.category("web_tour.tours").add("sms_ext_tour_csv_import", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Mailing Lists", "mass_mailing_sms.mailing_list_menu_sms", "Mailing Lists"),
        // Issue 13 §7: number import straight from the list's kanban card (not stock's e-mail importer),
        // and from the list view.
        check(
            "The card offers Import numbers, not stock's Import Contacts",
            '.o_kanban_record:contains("Tour import list"):not(:has(button:contains("Import Contacts")))'
        ),
        {
            content: "Switch to the list view",
            trigger: ".o_switch_view.o_list",
        },
        check("The list view offers it too", '.o_list_view .o_control_panel button:contains("Import numbers")'),
        {
            content: "Back to the kanban view",
            trigger: ".o_switch_view.o_kanban",
        },
        {
            content: "Import numbers from the list's card",
            trigger: '.o_kanban_record:contains("Tour import list") button:contains("Import numbers")',
        },
        checkInputValue("The wizard is for that list", 'div[name="mailing_list_id"] input', "Tour import list"),
        uploadFile("file_data", "contacts.csv", CSV_WITH_BAD_LINES, "text/csv"),
        checkInputValue("The file is chosen", 'div[name="file_data"] input.o_input', "contacts.csv"),
        {
            content: "Preview",
            trigger: '.modal-footer button[name="action_preview"]',
        },
        check("3 valid new numbers", 'div[name="new_count"]:contains("3")'),
        check("3 rejected lines", 'div[name="rejected_count"]:contains("3")'),
        check(
            "The landline is refused, and the preview says why",
            'div[name="preview_html"]:contains("+33 1 42 68 53 00"):contains("landline")'
        ),
        check("1 duplicate", 'div[name="duplicate_count"]:contains("1")'),
        check(
            "The rejected lines are listed with their values",
            'div[name="preview_html"]:contains("Rejected lines"):contains("12345"):contains("call me maybe")'
        ),
        check(
            "The rejected lines can be downloaded",
            '.modal-footer button[name="action_download_rejected"]'
        ),
        {
            content: "Import",
            trigger: '.modal-footer button[name="action_import"]',
        },
        check("The result is reported", '.o_notification:contains("Phone numbers imported")', {
            extra_trigger: "body:not(:has(.modal))",
        }),
        check("with a link to the rejected lines", '.o_notification a:contains("Download the rejected lines")'),
    ],
});

// ------------------------------------------------------------------------------------------------
// A marketer (SMS Marketing / User) reads the link analytics of a mailing
// ------------------------------------------------------------------------------------------------
registry.category("web_tour.tours").add("sms_ext_tour_link_analytics", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Reporting", "sms_marketing_ext.link_tracker_click_menu_sms", "Link Analytics"),
        check("The pivot groups clicks by mailing", ".o_pivot"),
        {
            content: "Search the tour's mailing",
            trigger: ".o_searchview_input",
            run: "text Tour analytics mailing",
        },
        {
            content: "Search it as the mailing",
            trigger: '.o_searchview_autocomplete .o_menu_item:contains("Mailing")',
        },
        check(
            "The mailing is a row of the pivot",
            '.o_pivot .o_pivot_header_cell_closed:contains("Tour analytics mailing"), ' +
                '.o_pivot .o_pivot_header_cell_opened:contains("Tour analytics mailing")'
        ),
        // Issue 13 §10: columns say who clicked, not "No" / "Yes".
        check(
            "The pivot's columns say Person",
            '.o_pivot thead:contains("Person"):not(:contains("No")):not(:contains("Yes"))'
        ),
        {
            content: "Show the graph",
            trigger: ".o_switch_view.o_graph",
        },
        check("The graph's legend names its series, never \"false\"", ".o_graph_renderer canvas", {
            async run() {
                const canvas = this.$anchor[0];
                const labels = () => (window.Chart?.getChart(canvas)?.data.datasets || []).map((d) => d.label);
                await waitUntil(
                    () => labels().length && labels().every((label) => label && !/^(false|true|undefined)$/i.test(label)),
                    () => `graph legend: ${JSON.stringify(labels())}`
                );
            },
        }),
        {
            content: "Show the clicks one by one",
            trigger: ".o_switch_view.o_list",
        },
        check(
            "Each click shows its destination, not the short link",
            '.o_list_view .o_data_row td[name="sms_destination"]:contains("https://shop.example.com/sale")'
        ),
        check("Latest clicks first", ".o_list_view", {
            async run() {
                const names = () =>
                    [...document.querySelectorAll('.o_list_view .o_data_row td[name="mass_mailing_id"]')].map(
                        (cell) => cell.closest("tr").querySelector('td[name="country_id"]').textContent.trim()
                    );
                // The test dates the clicks: Belgium (newest), France, France (oldest).
                await waitUntil(
                    () => names().join() === "Belgium,France,France",
                    () => `clicks in the order ${names().join(", ")}`
                );
            },
        }),
        check("People's clicks only (bots are filtered out by default)", ".o_list_view", {
            async run() {
                await waitUntil(
                    () => document.querySelectorAll(".o_list_view .o_data_row").length === 3,
                    () => `${document.querySelectorAll(".o_list_view .o_data_row").length} clicks listed, not 3`
                );
            },
        }),
        check("Clicks carry their country", '.o_list_view .o_data_row td[name="country_id"]:contains("Belgium")'),
        {
            content: "Show the bots instead",
            trigger: ".o_searchview_dropdown_toggler",
        },
        {
            content: "Filter bots",
            trigger: '.o_filter_menu .o_menu_item:contains("Bots")',
        },
        {
            content: "Remove the People filter",
            trigger: '.o_filter_menu .o_menu_item.selected:contains("People")',
        },
        check("One bot click (a link preview)", ".o_list_view", {
            async run() {
                await waitUntil(
                    () => document.querySelectorAll(".o_list_view .o_data_row").length === 1,
                    () => `${document.querySelectorAll(".o_list_view .o_data_row").length} bot clicks, not 1`
                );
            },
        }),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 12 §6: a JSON-RPC gateway configured from scratch through its form in under two minutes:
// create, fill, Test connection, Refresh balance and prices, copy the webhook URL. The local
// gateway listens on a port of the test's choosing: the tour reads it, as a user would, in the
// Base URL column of the existing "Tour gateway" (another account of the same gateway).
// ------------------------------------------------------------------------------------------------

registry.category("web_tour.tours").add("sms_ext_tour_gateway_setup", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Configuration", "sms_marketing_ext.sms_gateway_menu", "Gateways"),
        check("Read the local gateway's base URL", '.o_data_row:contains("Tour gateway") td[name="base_url"]', {
            run() {
                window.smsExtTourGatewayUrl = this.$anchor[0].textContent.trim();
                if (!window.smsExtTourGatewayUrl.startsWith("http://127.0.0.1:")) {
                    throw new Error(`unexpected base URL "${window.smsExtTourGatewayUrl}"`);
                }
            },
        }),
        { content: "Create a gateway", trigger: ".o_list_button_add" },
        { content: "Name it", trigger: 'div[name="name"] input', run: "text Tour new gateway" },
        {
            content: "Choose the JSON-RPC provider",
            trigger: 'div[name="provider"] input[data-value="jsonrpc"]',
        },
        {
            content: "Paste the gateway's base URL",
            trigger: 'div[name="base_url"] input',
            run() {
                const input = this.$anchor[0];
                input.value = window.smsExtTourGatewayUrl;
                input.dispatchEvent(new InputEvent("input", { bubbles: true }));
                input.dispatchEvent(new Event("change", { bubbles: true }));
            },
        },
        { content: "Paste the account token", trigger: 'div[name="account_token"] input', run: "text tour-new-token" },
        ...testAndRefresh("250", 3),
        ...showWebhookUrls("/sms_marketing_ext/webhook/"),
        ...copyInboundUrl(/^https?:\/\/.+\/sms_marketing_ext\/webhook\/\d+\/inbound$/),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 12 §6: OVHcloud and Twilio gateways configured from their form: fill, Test connection,
// Refresh balance and prices, the webhook URLs (Twilio) or the poll (OVH, which calls nothing
// back). The test opens /web?<name>=<url> with the addresses of its local servers (the OVH API
// stand-in, Prism): what a user pastes from the provider's console.
// ------------------------------------------------------------------------------------------------

/** A step keeping the `names` query parameters of the tour's first URL (before any navigation). */
function readTourUrls(...names) {
    return check("Read the servers' addresses", "body", {
        run() {
            const params = new URLSearchParams(window.location.search);
            window.smsExtTourUrls = Object.fromEntries(names.map((name) => [name, params.get(name)]));
            for (const name of names) {
                if (!(window.smsExtTourUrls[name] || "").startsWith("http://127.0.0.1:")) {
                    throw new Error(`no local address for ${name} in ${window.location.search}`);
                }
            }
        },
    });
}

/** A step putting the address read by readTourUrls() in the input of field `field`. */
function pasteTourUrl(field, name) {
    return {
        content: `Paste the ${name} address`,
        trigger: `div[name="${field}"] input`,
        run() {
            const input = this.$anchor[0];
            input.value = window.smsExtTourUrls[name];
            input.dispatchEvent(new InputEvent("input", { bubbles: true }));
            input.dispatchEvent(new Event("change", { bubbles: true }));
        },
    };
}

/** Create a gateway named `name` with `provider` from the Gateways list. */
function newGateway(name, provider) {
    return [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Configuration", "sms_marketing_ext.sms_gateway_menu", "Gateways"),
        { content: "Create a gateway", trigger: ".o_list_button_add" },
        { content: "Name it", trigger: 'div[name="name"] input', run: `text ${name}` },
        { content: `Choose the ${provider} provider`, trigger: `div[name="provider"] input[data-value="${provider}"]` },
    ];
}

/** Open the Callbacks tab: the delivery report URL (containing `statusUrl`) and the inbound URL show. */
function showWebhookUrls(statusUrl) {
    return [
        { content: "Open the Callbacks tab", trigger: '.o_notebook .nav-link[name="callbacks"]' },
        check("The delivery report URL is shown", `div[name="status_webhook_url"]:contains("${statusUrl}")`),
        check("The inbound URL is shown", 'div[name="inbound_webhook_url"]:contains("/inbound")'),
    ];
}

/**
 * Copy the gateway's inbound URL with its copy button; the text copied must match `pattern`.
 * Headless Chromium has no clipboard permission: what is written is kept instead.
 */
function copyInboundUrl(pattern) {
    return [
        {
            content: "Copy the inbound URL",
            trigger: 'div[name="inbound_webhook_url"] .o_clipboard_button',
            run() {
                navigator.clipboard.writeText = async (text) => {
                    window.smsExtCopiedText = text;
                };
                this.$anchor[0].click();
            },
        },
        check("Copied", ".popover:contains('Copied')", {
            run() {
                const copied = window.smsExtCopiedText || "";
                if (!pattern.test(copied)) {
                    throw new Error(`copied "${copied}", not the inbound URL`);
                }
            },
        }),
    ];
}

/** Test connection, then Refresh balance and prices: each says what it found. */
function testAndRefresh(balance, countryPrices) {
    return [
        { content: "Test connection (saves first)", trigger: 'button[name="action_test_connection"]' },
        check(
            "The connection works and the balance is told",
            `.o_notification:contains('Connection successful'):contains('${balance}')`
        ),
        check("Saved", ".o_form_view .o_form_saved"),
        { content: "Refresh balance and prices", trigger: 'button[name="action_refresh_balance"]' },
        check(
            "The refresh says what it found",
            `.o_notification:contains('Balance and prices'):contains('${balance}'):contains('${countryPrices} country prices')`
        ),
        check("The balance is on the form", `div[name="balance"]:contains("${balance}")`),
    ];
}

registry.category("web_tour.tours").add("sms_ext_tour_ovh_setup", {
    test: true,
    // No url: the tour starts where the test opened it, with the servers' addresses in the query.
    steps: () => [
        readTourUrls("ovh_url"),
        ...newGateway("Tour OVH", "ovh"),
        pasteTourUrl("ovh_endpoint", "ovh_url"),
        { content: "SMS service", trigger: 'div[name="ovh_service_name"] input', run: "text sms-tr12345-1" },
        { content: "Application key", trigger: 'div[name="ovh_application_key"] input', run: "text tour_ak" },
        {
            content: "Application secret",
            trigger: 'div[name="ovh_application_secret"] input',
            run: "text tour_as_secret",
        },
        { content: "Consumer key", trigger: 'div[name="ovh_consumer_key"] input', run: "text tour_ck" },
        { content: "Priced countries", trigger: 'div[name="ovh_price_countries"] input', run: "text FR, BE" },
        ...testAndRefresh("321", 2),
        { content: "Open the Prices tab", trigger: '.o_notebook .nav-link[name="prices"]' },
        check("Belgium's rate from OVH", '.o_field_one2many[name="price_ids"] .o_data_row:contains("BE"):contains("2.5")'),
        check("OVH calls nothing back: no webhook URL to copy", 'body:not(:has(.o_notebook .nav-link[name="callbacks"]))'),
        { content: "Open the Capabilities tab", trigger: '.o_notebook .nav-link[name="capabilities"]' },
        check("No delivery report is posted by OVH", 'div[name="cap_delivery_reports"] input:not(:checked)'),
        check("Its status query is used", 'div[name="cap_status_query"] input:checked'),
        { content: "Fetch deliveries and replies now", trigger: 'button[name="action_ovh_poll"]' },
        check("The poll says what it applied", ".o_notification:contains('OVHcloud'):contains('delivery results')"),
        { content: "Sync senders", trigger: 'button[name="action_ovh_sync_senders"]' },
        check("Synced without error", ".o_form_view .o_form_saved", {
            extra_trigger: "body:not(:has(.o_error_dialog))",
        }),
    ],
});

registry.category("web_tour.tours").add("sms_ext_tour_twilio_setup", {
    test: true,
    // No url: the tour starts where the test opened it, with the servers' addresses in the query.
    steps: () => [
        readTourUrls("api_url", "pricing_url"),
        ...newGateway("Tour Twilio", "twilio"),
        {
            content: "Account SID",
            trigger: 'div[name="twilio_account_sid"] input',
            run: "text AC0123456789abcdef0123456789abcdef",
        },
        { content: "Auth token", trigger: 'div[name="twilio_auth_token"] input', run: "text tour-auth-token" },
        { content: "From", trigger: 'div[name="twilio_from"] input', run: "text +15005550006" },
        { content: "Priced countries", trigger: 'div[name="twilio_price_countries"] input', run: "text FR, BE" },
        { content: "Open the Twilio tab", trigger: '.o_notebook .nav-link[name="twilio"]' },
        pasteTourUrl("twilio_api_base", "api_url"),
        pasteTourUrl("twilio_pricing_base", "pricing_url"),
        {
            content: "Public callback base URL",
            trigger: 'div[name="twilio_callback_base_url"] input',
            run: "text https://erp.example.com",
        },
        ...testAndRefresh("0.05", 2),
        ...showWebhookUrls("https://erp.example.com/sms_marketing_ext/twilio/"),
        check("Where to paste it is said", 'div[name="webhook_urls_note"]:contains("A message comes in")'),
        check("A public base: no warning about this machine", "body:not(:has(.o_form_view .alert-warning:visible))"),
        ...copyInboundUrl(/^https:\/\/erp\.example\.com\/sms_marketing_ext\/twilio\/\d+\/inbound$/),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 12 §3: OVHcloud's STOP mention is counted live when the gateway or the sender of an
// unsaved mailing changes (not only after saving).
// ------------------------------------------------------------------------------------------------

/** A step keeping what the live counter shows now as the baseline of counterShows(). */
function counterBaseline(content) {
    return check(content, ".o_sms_ext_chars[data-chars]", {
        run() {
            window.smsExtTourBaseChars = Number(this.$anchor[0].dataset.chars);
        },
    });
}

/** A step waiting until the live counter shows the baseline plus `more` characters. */
function counterShows(content, more) {
    return check(content, ".o_sms_ext_counter", {
        async run() {
            const expected = String(window.smsExtTourBaseChars + more);
            const shown = () => document.querySelector(".o_sms_ext_chars")?.dataset.chars;
            await waitUntil(
                () => shown() === expected,
                () => `${content}: the counter shows ${shown()} characters, not ${expected}`
            );
        },
    });
}

registry.category("web_tour.tours").add("sms_ext_tour_counter_follows_gateway", {
    test: true,
    url: "/web",
    steps: () => [
        ...newSmsMailing("Tour STOP mention"),
        { content: "Type a message", trigger: 'div[name="body_plaintext"] textarea', run: "text Soldes -20% ce soir" },
        { content: "Open the Settings tab", trigger: '.o_notebook .nav-link[name="settings"]' },
        ...pickRecord("sms_sender_id", "TourShop", true),
        checkInputValue("TourShop is the sender", 'div[name="sms_sender_id"] input', "TourShop"),
        { content: "Back to the SMS content", trigger: '.o_notebook .nav-link[name="sms_body"]' },
        counterBaseline("The local gateway appends nothing: the text and its opt-out link"),
        { content: "Open the Settings tab", trigger: '.o_notebook .nav-link[name="settings"]' },
        ...pickRecord("sms_gateway_id", "Tour OVH counter", true),
        checkInputValue("The OVH gateway is chosen", 'div[name="sms_gateway_id"] input', "Tour OVH counter"),
        { content: "Back to the SMS content", trigger: '.o_notebook .nav-link[name="sms_body"]' },
        // "\nSTOP au 36180": 14 more characters, before any save.
        counterShows("OVH's STOP mention is counted at once", 14),
        check("Still unsaved", ".o_form_view .o_form_status_indicator_new_record"),
        { content: "Open the Settings tab", trigger: '.o_notebook .nav-link[name="settings"]' },
        ...pickRecord("sms_sender_id", "+33612000999", true),
        checkInputValue("The numeric sender is chosen", 'div[name="sms_sender_id"] input', "+33612000999"),
        { content: "Back to the SMS content", trigger: '.o_notebook .nav-link[name="sms_body"]' },
        counterShows("No mention for a numeric sender", 0),
        { content: "Open the Settings tab", trigger: '.o_notebook .nav-link[name="settings"]' },
        ...pickRecord("sms_sender_id", "TourShop", true),
        checkInputValue("TourShop again", 'div[name="sms_sender_id"] input', "TourShop"),
        { content: "Back to the SMS content", trigger: '.o_notebook .nav-link[name="sms_body"]' },
        counterShows("The mention again with the alphanumeric sender", 14),
        { content: "Open the Settings tab", trigger: '.o_notebook .nav-link[name="settings"]' },
        ...pickRecord("sms_gateway_id", "Tour gateway", true),
        checkInputValue("The local gateway again", 'div[name="sms_gateway_id"] input', "Tour gateway"),
        { content: "Back to the SMS content", trigger: '.o_notebook .nav-link[name="sms_body"]' },
        counterShows("Back to the text alone", 0),
        { content: "Discard the new mailing", trigger: ".o_form_button_cancel" },
        check("Back to the mailings, nothing saved", ".o_kanban_view, .o_list_view"),
    ],
});

// ------------------------------------------------------------------------------------------------
// Issue 13: the main journeys on a phone (390×844, tests/test_ui_tours.py TestUiToursMobile): the
// mailing form and its counter, Check recipients, the senders kanban and form, the mailing lists
// and the number import. Odoo folds the form's header buttons into its Action menu there.
// ------------------------------------------------------------------------------------------------

/** Nothing in `scope` sticks out of the screen (horizontal scrollers, such as tables, excepted). */
function fitsTheScreen(content, scope) {
    return check(content, scope, {
        run() {
            // What Odoo lays out to scroll sideways on a phone: tables, tabs, kanban columns, the statusbar.
            const sideways = ".table-responsive, .o_list_renderer, .o_notebook_headers, .o_kanban_renderer, " +
                ".o_statusbar_status, .o_x2m_control_panel";
            const scrolls = (element) => Boolean(element.closest(sideways));
            const width = document.documentElement.clientWidth;
            const outside = [...this.$anchor[0].querySelectorAll("*")].filter((element) => {
                const rect = element.getBoundingClientRect();
                return rect.width > 0 && rect.height > 0 && rect.right > width + 1 && !scrolls(element);
            });
            // The deepest ones name the culprit.
            const culprits = outside.filter((element) => !outside.some((other) => other !== element && element.contains(other)));
            if (culprits.length) {
                throw new Error(
                    `${content}: ${culprits.length} elements stick out of the ${width}px screen, e.g. ` +
                        culprits.slice(0, 3).map((element) => element.outerHTML.slice(0, 160)).join(" | ")
                );
            }
        },
    });
}

/** `element`'s text sits on one line (one distinct top among its text boxes). */
function onOneLine(content, trigger) {
    return check(content, trigger, {
        run() {
            const walker = document.createTreeWalker(this.$anchor[0], NodeFilter.SHOW_TEXT);
            const tops = new Set();
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const range = document.createRange();
                range.selectNodeContents(node);
                for (const rect of range.getClientRects()) {
                    if (rect.width > 0) {
                        tops.add(Math.round(rect.top));
                    }
                }
            }
            if (tops.size !== 1) {
                throw new Error(`${content}: ${tops.size} lines`);
            }
        },
    });
}

/** Click a button of the form's header: on a phone, from the Action menu. */
function headerButton(content, name) {
    return [
        {
            content: "Open the Action menu",
            trigger: ".o_statusbar_buttons .dropdown-toggle",
            mobile: true,
        },
        {
            content,
            trigger: `button[name="${name}"]`,
        },
    ];
}

registry.category("web_tour.tours").add("sms_ext_tour_mobile", {
    test: true,
    url: "/web#action=mass_mailing_sms.mailing_mailing_action_sms",
    steps: () => [
        check("The phone layout is on", ".o_web_client", {
            run() {
                if (window.innerWidth > 400) {
                    throw new Error(`the screen is ${window.innerWidth}px wide, not a phone's`);
                }
            },
        }),
        {
            content: "Create an SMS mailing",
            trigger: ".o_list_button_add, .o-kanban-button-new",
        },
        {
            content: "Title",
            trigger: 'div[name="sms_subject"] input',
            run: "text Tour mobile mailing",
        },
        // On a phone, Odoo picks records in a full-screen dialog rather than a dropdown.
        {
            content: "Choose the mailing lists",
            trigger: 'div[name="contact_list_ids"] input',
        },
        {
            content: "Pick Tour list",
            trigger: '.o_kanban_record:contains("Tour list")', // looked up in the dialog
        },
        check("The list is selected", 'div[name="contact_list_ids"] .o_tag:contains("Tour list")', {
            extra_trigger: "body:not(:has(.modal))",
        }),
        typeWithoutCommitting(`${EMOJI_TEXT} https://shop.example.com/spring`),
        check(
            "The counter follows the typing",
            '.o_sms_ext_counter:has(.o_sms_ext_encoding[data-encoding="ucs2"]) .o_sms_ext_non_gsm:contains("🌸")'
        ),
        {
            content: "Commit the text",
            trigger: 'div[name="body_plaintext"] textarea',
            run: `text ${EMOJI_TEXT} https://shop.example.com/spring`,
        },
        check("The opt-out footer is shown", '.o_sms_ext_optout_footer div[name="sms_optout_footer_text"]:contains("/sms/o/")'),
        fitsTheScreen("The SMS content fits the phone's screen", ".o_form_sheet"),
        {
            content: "Estimate the cost (saves the mailing)",
            trigger: 'button[name="action_sms_estimate_cost"]',
        },
        check("Estimated", ".o_sms_ext_cost_date:visible"),
        onOneLine("The estimate's date is on one line", ".o_sms_ext_cost_date"),
        onOneLine("Estimate cost is on one line", 'button[name="action_sms_estimate_cost"]'),
        fitsTheScreen("The estimate fits the phone's screen", ".o_form_sheet"),
        {
            content: "Open the Settings tab",
            trigger: '.o_notebook .nav-link[name="settings"]',
        },
        check("The message-class help is under Message class", '.o_sms_ext_class_help:visible'),
        fitsTheScreen("The settings fit the phone's screen", ".o_form_sheet"),
        ...headerButton("Check recipients", "action_sms_check_recipients"),
        check(
            "3 of the 4 contacts of the list will receive it",
            '.o_sms_ext_audience:has(.o_sms_ext_audience_valid:contains("3")):has(.o_sms_ext_audience_total:contains("4"))'
        ),
        fitsTheScreen("The recipients check fits the phone's screen", ".modal-content"),
        {
            content: "Close the recipients dialog",
            trigger: '.modal-footer button:contains("Close")',
        },
        check("The dialog is closed", "body:not(:has(.modal))"),

        // The senders: kanban by state, then a new one.
        {
            content: "Go to the senders",
            trigger: ".o_form_view",
            run() {
                window.location.hash = "action=sms_marketing_ext.sms_sender_action&view_type=kanban";
            },
        },
        check("Columns: Draft, Submitted, Approved, Refused", ".o_kanban_view .o_kanban_group", {
            async run() {
                const titles = () =>
                    [...document.querySelectorAll(".o_kanban_view .o_kanban_group .o_column_title")].map((title) =>
                        title.textContent.trim()
                    );
                await waitUntil(
                    () => titles().join() === "Draft,Submitted,Approved,Refused",
                    () => `kanban columns: ${titles().join(", ")}`
                );
            },
        }),
        check("The sender's card is in its column", '.o_kanban_group:contains("Approved") .o_kanban_record:contains("TourShop")'),
        {
            content: "Request a sender",
            trigger: ".o-kanban-button-new, .o_list_button_add",
        },
        checkInputValue("The company's suggestion", 'div[name="name"] input', "TourFlora"),
        clearInput('div[name="name"] input'),
        ...suggestFromCompany(),
        onOneLine("Suggest from company is on one line", ".o_sms_ext_suggest_sender"),
        check("The name keeps room to type", 'div[name="name"] input', {
            run() {
                const width = this.$anchor[0].getBoundingClientRect().width;
                if (width < 150) {
                    throw new Error(`the sender's name input is ${width}px wide`);
                }
            },
        }),
        fitsTheScreen("The sender form fits the phone's screen", ".o_form_sheet"),
        {
            content: "Discard the new sender",
            trigger: ".o_form_button_cancel",
        },

        // The mailing lists and the number import.
        {
            content: "Go to the mailing lists",
            trigger: "body",
            run() {
                window.location.hash = "action=mass_mailing_sms.mailing_list_action_sms";
            },
        },
        // On a phone, Odoo's mailing-list cards show no buttons (stock hides them below the md size):
        // the list's form has Import numbers, in its Action menu.
        {
            content: "Open the list",
            trigger: '.o_kanban_record:contains("Tour import list")',
        },
        check("The list is open", '.o_breadcrumb .active:contains("Tour import list")'),
        {
            content: "Open the Action menu",
            trigger: ".o_statusbar_buttons .dropdown-toggle",
        },
        {
            content: "Import numbers",
            trigger: '.o_statusbar_buttons button:contains("Import numbers"), .dropdown-menu button:contains("Import numbers")',
        },
        uploadFile("file_data", "contacts.csv", CSV_WITH_BAD_LINES, "text/csv"),
        checkInputValue("The file is chosen", 'div[name="file_data"] input.o_input', "contacts.csv"),
        {
            content: "Preview",
            trigger: '.modal-footer button[name="action_preview"]',
        },
        check("3 valid new numbers", 'div[name="new_count"]:contains("3")'),
        check("The rejected lines are listed", 'div[name="preview_html"]:contains("call me maybe")'),
        fitsTheScreen("The preview fits the phone's screen", ".modal-content"),
        {
            content: "Import",
            trigger: '.modal-footer button[name="action_import"]',
        },
        check("The result is reported", '.o_notification:contains("Phone numbers imported")', {
            extra_trigger: "body:not(:has(.modal))",
        }),

        // A list view: the SMS mailings.
        {
            content: "Go to the SMS mailings' list",
            trigger: "body",
            run() {
                window.location.hash = "action=mass_mailing_sms.mailing_mailing_action_sms&view_type=list";
            },
        },
        check("The mailing is listed", '.o_list_view .o_data_row:contains("Tour mobile mailing"), ' +
            '.o_kanban_view .o_kanban_record:contains("Tour mobile mailing")'),
        fitsTheScreen("The mailings fit the phone's screen", ".o_action_manager"),
    ],
});
