# Part of sms_marketing_ext. License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "SMS Marketing Extended",
    "summary": "SMS campaigns at scale: exact GSM counting, approved senders, "
    "credit-checked exactly-once delivery, tracked links and consent",
    "version": "17.0.1.2.0",
    "category": "Marketing/SMS Marketing",
    "website": "https://github.com/sms-marketing-ext/sms_marketing_ext",
    "author": "sms_marketing_ext contributors",
    "license": "LGPL-3",
    "depends": [
        "mass_mailing_sms",
        "link_tracker",
        "phone_validation",
        "iap",
    ],
    "external_dependencies": {
        "python": ["phonenumbers", "ovh"],
    },
    "data": [
        "security/sms_marketing_security.xml",
        "security/ir.model.access.csv",
        "security/sms_marketing_rules.xml",
        "data/ir_cron_data.xml",
        "views/sms_sender_views.xml",
        "views/sms_gateway_views.xml",
        "views/sms_gateway_kannel_views.xml",
        "views/sms_gateway_twilio_views.xml",
        "views/sms_gateway_ovh_views.xml",
        "views/mailing_mailing_views.xml",
        "views/res_config_settings_views.xml",
        "views/link_tracker_click_views.xml",
        "views/sms_consent_event_views.xml",
        "wizard/phone_blacklist_import_views.xml",
        "views/phone_blacklist_views.xml",
        "views/sms_optout_templates.xml",
        "views/sms_marketing_menus.xml",
        "wizard/mailing_sms_audience_views.xml",
        "wizard/mailing_list_sms_import_views.xml",
    ],
    "demo": [
        "demo/sms_sender_demo.xml",
        "demo/sms_gateway_demo.xml",
        "demo/mailing_list_demo.xml",
        "demo/mailing_mailing_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "sms_marketing_ext/static/src/js/**/*",
            "sms_marketing_ext/static/src/xml/**/*",
        ],
        "web.assets_tests": [
            "sms_marketing_ext/static/tests/tours/**/*",
        ],
    },
}
