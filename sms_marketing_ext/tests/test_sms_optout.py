import re

from odoo.tests import HttpCase, tagged

from ..tools import sms_tokens
from .common import BROWSER, NUMBER, PREVIEW, SHORT_BASE, SmsMailingMixin, SmsMarketingUsersMixin

OPTOUT_RE = re.compile(re.escape(SHORT_BASE) + r"(/sms/o/[A-Za-z0-9_-]+)")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@tagged("post_install", "-at_install", "sms_optout")
class TestSmsOptout(SmsMarketingUsersMixin, SmsMailingMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.company.sms_short_link_base = SHORT_BASE
        cls.list_a = cls.env["mailing.list"].create({"name": "Newsletter A"})
        cls.list_b = cls.env["mailing.list"].create({"name": "Promotions B"})
        cls.list_other = cls.env["mailing.list"].create({"name": "Other list"})
        cls.contact = cls.env["mailing.contact"].create(
            {"name": "Sam", "mobile": NUMBER, "list_ids": [(6, 0, (cls.list_a | cls.list_b | cls.list_other).ids)]}
        )
        cls.twin = cls.env["mailing.contact"].create(
            {"name": "Sam again", "mobile": "+33 6 12 34 56 78", "list_ids": [(6, 0, cls.list_b.ids)]}
        )
        cls.list_mailing = cls._create_sms_mailing(
            "Hello", cls.list_a | cls.list_b, subject="List mailing", sms_allow_unsubscribe=True
        )
        cls.partner = cls.env["res.partner"].create({"name": "Pat", "mobile": "+33612345699"})
        cls.partner_mailing = cls._create_sms_mailing(
            "Hello", model="res.partner", subject="Partner mailing", sms_allow_unsubscribe=True
        )

    def _optout_path(self, trace):
        body = trace.mass_mailing_id._sms_render_bodies([(trace.id, trace.res_id)])[trace.id]
        [path] = OPTOUT_RE.findall(body)
        return path

    def _get(self, path, user_agent=BROWSER):
        return self.url_open(path, headers={"User-Agent": user_agent})

    def _post(self, path, action, csrf=True):
        page = self._get(path, PREVIEW)  # the form and its CSRF token, without opening the link as a person
        data = {"action": action}
        if csrf:
            data["csrf_token"] = CSRF_RE.search(page.text).group(1)
        return self.url_open(path, data=data, headers={"User-Agent": BROWSER})

    def _subscriptions(self):
        return self.env["mailing.subscription"].search(
            [("contact_id", "in", (self.contact | self.twin).ids)]
        )

    def _opted_out_lists(self):
        self.env.invalidate_all()
        return self._subscriptions().filtered("opt_out").list_id

    def test_previews_show_the_page_and_change_nothing(self):
        path = self._optout_path(self._create_sms_trace(self.list_mailing, self.contact, NUMBER))
        for user_agent in (PREVIEW, "WhatsApp/2.23.20.0", "Slackbot-LinkExpanding 1.0", ""):
            response = self._get(path, user_agent)
            self.assertEqual(response.status_code, 200)
            self.assertIn("+33 ••••••• 78", response.text, "the number is shown masked")
            self.assertNotIn(NUMBER, response.text)
            self.assertIn("Newsletter A", response.text)
            self.assertIn("Promotions B", response.text)
            self.assertNotIn("Other list", response.text)
            self.assertIn('id="sms_optout_button"', response.text)
        self.assertFalse(self._opted_out_lists(), "link previews unsubscribe nobody")
        self.assertFalse(self._sms_consent_events())

    def test_one_click_optout_and_undo(self):
        trace = self._create_sms_trace(self.list_mailing, self.contact, NUMBER)
        path = self._optout_path(trace)
        response = self._get(path)
        self.assertEqual(response.status_code, 200)
        self.assertIn('id="sms_optout_done"', response.text, "one click: the person is opted out")
        self.assertIn("Undo", response.text)
        self.assertEqual(self._opted_out_lists(), self.list_a | self.list_b)
        event = self._sms_consent_events()
        self.assertEqual((event.action, event.source, event.mailing_id), ("optout", "link", self.list_mailing))
        again = self._get(path)
        self.assertIn("It already was", again.text)
        self.assertEqual(len(self._sms_consent_events()), 1, "opening the link again records nothing more")
        undo = self._post(path, "optin")
        self.assertIn('id="sms_optin_done"', undo.text)
        self.assertFalse(self._opted_out_lists())
        self.assertEqual(self._sms_consent_events().mapped("action"), ["optout", "optin"])

    def test_optout_lists_replay_and_undo(self):
        trace = self._create_sms_trace(self.list_mailing, self.contact, NUMBER)
        path = self._optout_path(trace)
        response = self._post(path, "optout")
        self.assertEqual(response.status_code, 200)
        self.assertIn('id="sms_optout_done"', response.text)
        self.assertIn("Undo", response.text)
        self.assertEqual(self._opted_out_lists(), self.list_a | self.list_b,
                         "both contacts with the number are out of the mailing's lists, not of others")
        event = self._sms_consent_events()
        self.assertEqual(len(event), 1)
        self.assertEqual((event.action, event.source, event.mailing_id), ("optout", "link", self.list_mailing))
        self.assertEqual(event.list_ids, self.list_a | self.list_b)
        self.assertFalse(event.user_id)
        self.assertFalse(self.env["phone.blacklist"].search([("number", "=", NUMBER)]), "lists, not the blacklist")

        replay = self._post(path, "optout")
        self.assertEqual(replay.status_code, 200)
        self.assertIn("It already was", replay.text)
        self.assertEqual(len(self._sms_consent_events()), 1, "a replayed token records nothing more")
        self.assertEqual(self._opted_out_lists(), self.list_a | self.list_b)

        page = self._get(path, PREVIEW)
        self.assertIn("already unsubscribed", page.text)
        self.assertIn('id="sms_optin_button"', page.text)

        undo = self._post(path, "optin")
        self.assertEqual(undo.status_code, 200)
        self.assertIn('id="sms_optin_done"', undo.text)
        self.assertFalse(self._opted_out_lists())
        events = self._sms_consent_events()
        self.assertEqual(events.mapped("action"), ["optout", "optin"])
        self.assertEqual(events[1].source, "link")
        self.assertEqual(events[1].list_ids, self.list_a | self.list_b)

    def test_optout_blacklists_without_lists(self):
        number = self.partner.mobile
        path = self._optout_path(self._create_sms_trace(self.partner_mailing, self.partner, number))
        page = self._get(path, PREVIEW)
        self.assertIn("Stop all SMS", page.text)
        self._post(path, "optout")
        entry = self.env["phone.blacklist"].search([("number", "=", number)])
        self.assertTrue(entry.active)
        event = self._sms_consent_events(number)
        self.assertEqual((event.action, event.source, event.mailing_id, event.blacklist_id),
                         ("optout", "link", self.partner_mailing, entry))
        self.assertIn("opt-out link", entry.message_ids[:1].body)

        self._post(path, "optout")
        self.assertEqual(len(self._sms_consent_events(number)), 1, "replay: nothing more")

        self._post(path, "optin")
        entry.invalidate_recordset()
        self.assertFalse(entry.active, "Undo lifts the blacklist")
        self.assertEqual(self._sms_consent_events(number).mapped("action"), ["optout", "optin"])
        self.assertEqual(self._sms_consent_events(number).mapped("source"), ["link", "link"])

    def test_wrong_or_tampered_token(self):
        trace = self._create_sms_trace(self.list_mailing, self.contact, NUMBER)
        path = self._optout_path(trace)
        token = path.rsplit("/", 1)[1]
        secret = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        bad_tokens = [
            token[:-1] + ("A" if token[-1] != "A" else "B"),
            token[:10],
            sms_tokens.make_token(secret, "link", trace.id),  # a link token is no opt-out token
            sms_tokens.make_token("another-secret", "optout", trace.id),
            sms_tokens.make_token(secret, "optout", trace.id + 100000),  # valid, but no such trace
        ]
        for bad in bad_tokens:
            with self.subTest(token=bad):
                response = self._get(f"/sms/o/{bad}")
                self.assertEqual(response.status_code, 404)
                self.assertIn("This link is not valid", response.text)
                self.assertNotIn('id="sms_optout_button"', response.text)
                csrf = CSRF_RE.search(self._get(path, PREVIEW).text).group(1)
                posted = self.url_open(f"/sms/o/{bad}", data={"action": "optout", "csrf_token": csrf})
                self.assertEqual(posted.status_code, 404)
        self.assertFalse(self._opted_out_lists())
        self.assertFalse(self._sms_consent_events())

    def test_post_needs_csrf_and_action(self):
        path = self._optout_path(self._create_sms_trace(self.list_mailing, self.contact, NUMBER))
        self.assertEqual(self._post(path, "optout", csrf=False).status_code, 400, "forged cross-site form")
        self.assertEqual(self._post(path, "delete").status_code, 400, "unknown action")
        self.assertFalse(self._opted_out_lists())
        self.assertFalse(self._sms_consent_events())
