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
            const input = this.$anchor[0];
            await waitUntil(
                () => input.isConnected && input.value.includes(expected),
                () => `${content}: the field shows "${input.value}", not "${expected}"`
            );
        },
    });
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
        {
            content: "Request a sender",
            trigger: ".o_list_button_add, .o-kanban-button-new",
        },
        {
            content: "Name",
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
    "Alice again;+33612345601;FR",
    "",
].join("\n");

registry.category("web_tour.tours").add("sms_ext_tour_csv_import", {
    test: true,
    url: "/web",
    steps: () => [
        ...openApp("mass_mailing_sms.mass_mailing_sms_menu_root"),
        ...openMenu("Mailing Lists", "mass_mailing_sms.mailing_list_menu_sms", "Mailing Lists"),
        {
            content: "Switch to the list view",
            trigger: ".o_switch_view.o_list",
        },
        check("The list view is shown", ".o_list_view"),
        {
            content: "Open the list",
            trigger: '.o_data_row td[name="name"]:contains("Tour import list")',
        },
        {
            content: "Import numbers",
            trigger: '.o_form_view .o_statusbar_buttons button:contains("Import numbers")',
            extra_trigger: '.o_breadcrumb .active:contains("Tour import list")',
        },
        uploadFile("file_data", "contacts.csv", CSV_WITH_BAD_LINES, "text/csv"),
        checkInputValue("The file is chosen", 'div[name="file_data"] input.o_input', "contacts.csv"),
        {
            content: "Preview",
            trigger: '.modal-footer button[name="action_preview"]',
        },
        check("3 valid new numbers", 'div[name="new_count"]:contains("3")'),
        check("2 rejected lines", 'div[name="rejected_count"]:contains("2")'),
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
// An SMS administrator reads the link analytics of a mailing
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
        {
            content: "Show the clicks one by one",
            trigger: ".o_switch_view.o_list",
        },
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
