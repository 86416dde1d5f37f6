"""Write the addon's generated demo data: sms_marketing_ext/demo/mailing_list_demo.xml and
mailing_mailing_demo.xml (the two lists, 369 contacts, three mailings, the sent campaign's 334
traces, 91 clicks, opt-outs and blacklist). sms_sender_demo.xml and sms_gateway_demo.xml are
short and written by hand.

Deterministic: standard library only, one seeded random.Random, so the same script always writes
the same bytes. Change the scenario here (the ROLES table, the countries, the texts), run

    python3 scripts/generate_demo_data.py          # rewrite the two files
    python3 scripts/generate_demo_data.py --check  # exit 1 when they differ (scripts/test)

and commit the script with its output. The names and numbers are random; what the docs and the
screenshots show is fixed by ROLES: per country, how many contacts are in which list, what the
winter campaign did with each (delivered, clicked n times, failed, left out and why), who replied
STOP or opted out, which numbers were already on the STOP list. Dates are relative to the day the
demo data is loaded (DateTime.today() in the XML), so the demo always looks recent.
"""

import argparse
import difflib
import random
import sys
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape

DEMO_DIR = Path(__file__).resolve().parent.parent / "sms_marketing_ext" / "demo"
SEED = 20251117
PARTS = 2  # the winter campaign's body with its tracked link and opt-out link: 2 GSM parts
SENT_DAYS_AGO = 6

# code: (Odoo country xml id, ISO code, E.164 prefix, credits per part at the demo gateway,
#        client IP prefix, first names, last names)
COUNTRIES = {
    "fr": ("base.fr", "FR", "+33", 0.045, "90.12",
           ["Alice", "Arthur", "Camille", "Chloé", "Emma", "Gabriel", "Hugo", "Inès", "Jade", "Jules", "Louis",
            "Louise", "Lucas", "Léa", "Manon", "Nathan", "Paul", "Raphaël", "Théo", "Zoé"],
           ["Bernard", "Bonnet", "Dubois", "Durand", "Fournier", "Garcia", "Girard", "Laurent", "Lefebvre",
            "Leroy", "Martin", "Michel", "Moreau", "Petit", "Richard", "Robert", "Simon", "Thomas"]),
    "be": ("base.be", "BE", "+32", 0.06, "81.240",
           ["Amélie", "Arne", "Elise", "Fien", "Julie", "Lars", "Lotte", "Maxime", "Noor", "Simon", "Thomas", "Wout"],
           ["Claes", "Dubois", "Dupont", "Goossens", "Jacobs", "Janssens", "Lambert", "Maes", "Mertens", "Peeters",
            "Willems", "Wouters"]),
    "it": ("base.it", "IT", "+39", 0.055, "79.20",
           ["Alessandro", "Aurora", "Chiara", "Davide", "Francesca", "Giulia", "Lorenzo", "Luca", "Marco",
            "Martina", "Matteo", "Sofia"],
           ["Bianchi", "Bruno", "Colombo", "Esposito", "Ferrari", "Gallo", "Greco", "Marino", "Ricci", "Romano",
            "Rossi", "Russo"]),
    "de": ("base.de", "DE", "+49", 0.07, "91.64",
           ["Anna", "Elias", "Felix", "Hannah", "Jonas", "Lea", "Lena", "Leon", "Marie", "Mia", "Noah", "Paul"],
           ["Becker", "Fischer", "Hoffmann", "Koch", "Meyer", "Müller", "Richter", "Schmidt", "Schneider", "Schulz",
            "Wagner", "Weber"]),
    "es": ("base.es", "ES", "+34", 0.05, "83.44",
           ["Carmen", "Diego", "Hugo", "Javier", "Lucía", "Martina", "Mateo", "Pablo", "Paula", "Sofía", "Valeria",
            "Álvaro"],
           ["Fernández", "García", "González", "Gómez", "Jiménez", "López", "Martín", "Martínez", "Pérez",
            "Rodríguez", "Ruiz", "Sánchez"]),
    "uk": ("base.uk", "GB", "+44", 0.04, "86.150",
           ["Amelia", "Ava", "Charlie", "Emily", "Freddie", "George", "Grace", "Harry", "Isla", "Jack", "Oliver",
            "Olivia"],
           ["Brown", "Davies", "Johnson", "Jones", "Patel", "Robinson", "Smith", "Taylor", "Walker", "Williams",
            "Wilson", "Wright"]),
}

# The scenario. Per country, the contacts of the newsletter (some also VIP; shuffled), each with
# what the winter campaign did: (lists, outcome, how many) where outcome is
#   "sent" delivered · "open:N" delivered and its link clicked N times · "unreported" no report ever came:
#   expired by the settle cron's give-up rule, as the crons leave a mailing sent days ago (never "pending",
#   which the first cron run would expire) ·
#   "not_delivered", "expired", "rejected" failed · "stop" delivered, then replied STOP ·
#   "link_optout" delivered, then opted out through the link · "optout" opted out before (left out) ·
#   "blacklist" on the imported STOP list before (left out).
NL, BOTH = "newsletter", "newsletter+vip"
ROLES = {
    "fr": [(NL, "sent", 36), (NL, "stop", 4), (NL, "link_optout", 5), (NL, "open:1", 11), (NL, "open:2", 2),
           (NL, "open:3", 2), (NL, "unreported", 4), (NL, "not_delivered", 4), (NL, "rejected", 4),
           (NL, "blacklist", 4), (NL, "optout", 1),
           (BOTH, "sent", 8), (BOTH, "open:1", 2), (BOTH, "open:3", 1), (BOTH, "rejected", 2)],
    "be": [(NL, "sent", 16), (NL, "open:1", 5), (NL, "open:2", 1), (NL, "unreported", 2), (NL, "not_delivered", 1),
           (NL, "expired", 2), (NL, "rejected", 3), (NL, "optout", 1),
           (BOTH, "sent", 6), (BOTH, "open:1", 1), (BOTH, "open:2", 1), (BOTH, "open:3", 1)],
    "it": [(NL, "sent", 27), (NL, "open:1", 11), (NL, "open:3", 1), (NL, "unreported", 1), (NL, "optout", 1),
           (BOTH, "sent", 4), (BOTH, "open:1", 2), (BOTH, "expired", 1), (BOTH, "rejected", 2)],
    "de": [(NL, "sent", 20), (NL, "open:1", 3), (NL, "open:2", 2), (NL, "open:3", 1), (NL, "unreported", 4),
           (NL, "not_delivered", 5), (NL, "expired", 2), (NL, "rejected", 1), (NL, "blacklist", 1),
           (NL, "optout", 1),
           (BOTH, "sent", 3), (BOTH, "open:1", 2), (BOTH, "not_delivered", 3), (BOTH, "rejected", 1),
           (BOTH, "blacklist", 1)],
    "es": [(NL, "sent", 19), (NL, "open:1", 8), (NL, "open:3", 1), (NL, "unreported", 2), (NL, "not_delivered", 3),
           (NL, "blacklist", 1), (NL, "optout", 1),
           (BOTH, "sent", 4), (BOTH, "open:1", 1)],
    "uk": [(NL, "sent", 21), (NL, "open:1", 6), (NL, "unreported", 2), (NL, "not_delivered", 1), (NL, "expired", 1),
           (NL, "rejected", 3), (NL, "blacklist", 1), (NL, "optout", 1),
           (BOTH, "sent", 4)],
}
VIP_ONLY = {"fr": 12, "be": 5, "it": 5, "de": 5, "es": 4, "uk": 4}
# Newsletter contacts whose number cannot be used, as people type them.
INVALID_NUMBERS = [("fr", "06 12 34"), ("fr", "+33 1"), ("be", "0470 12"), ("it", "347 12 345"), ("de", "+49 000"),
                   ("es", "123"), ("uk", "07700 900"), ("fr", "n/a"), ("it", "+39 12"), ("de", "0151 1")]
MISSING_NUMBERS = ["fr", "be", "uk", "es", "de", "it"]
# Newsletter contacts whose number (typed another way) is already another contact's: the campaign
# sent it once. (country, outcome of the contact whose number is repeated)
DUPLICATES = [("it", "delivered"), ("fr", "delivered"), ("es", "delivered"), ("fr", "blacklist"),
              ("fr", "delivered"), ("fr", "delivered"), ("uk", "delivered"), ("fr", "delivered")]
# Security scanners and link previews: (country, IP prefix) of each bot click, seconds after the send.
BOTS = [("nl", "40.77"), ("nl", "66.249"), ("nl", "52.114"), ("nl", "66.249"), ("nl", "40.77"), ("us", "40.77")]
OPTOUT_REASONS = [f"mass_mailing.mailing_subscription_optout_data_{index}" for index in range(4)]
FAILURES = {"not_delivered": ("error", "sms_not_delivered"), "expired": ("error", "sms_expired"),
            "rejected": ("bounce", "sms_rejected")}
# What the settle cron (models/sms_gateway_settle.py, _sms_expire_batch) writes on a message still without a
# final state past its gateway's "give up after" horizon (72 h, the demo gateway's): the campaign was sent
# SENT_DAYS_AGO days ago, so its messages that never got a report are already expired, and the crons leave
# the demo as it is.
UNREPORTED_REASON = ("No delivery report and no final state from the gateway within the horizon: recorded as expired"
                     " (72 h)")


# The hand-written parts of the two files, as they are.
XML_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<odoo>"""
LISTS_XML = """\
    <record id="sms_demo_list_newsletter" model="mailing.list">
        <field name="name">SMS Newsletter (Europe)</field>
        <field name="is_public" eval="True"/>
    </record>
    <record id="sms_demo_list_vip" model="mailing.list">
        <field name="name">VIP Customers</field>
        <field name="is_public" eval="False"/>
    </record>"""
CONTACTS_COMMENT = """\
    <!-- Contacts in France, Belgium, Italy, Germany, Spain and the United Kingdom, their numbers typed
         as people do (E.164, international, national); some invalid, some missing, some duplicated. -->"""
OPTOUTS_COMMENT = """\
    <!-- Opted out of the newsletter: before the winter campaign (left out of it), and through the
         campaign's opt-out link after it. -->"""
STOP_LIST_COMMENT = """\
    <!-- SMS blacklist before the winter campaign, imported from the previous provider's STOP list
         (the numbers that replied STOP to the campaign are in mailing_mailing_demo.xml). -->"""
MAILINGS_XML = """\
    <record id="sms_demo_campaign_winter" model="utm.campaign">
        <field name="name">Winter Sales</field>
        <field name="user_id" ref="base.user_admin"/>
        <field name="stage_id" ref="utm.campaign_stage_2"/>
    </record>
    <record id="sms_demo_campaign_spring" model="utm.campaign">
        <field name="name">Spring Collection</field>
        <field name="user_id" ref="base.user_admin"/>
        <field name="stage_id" ref="utm.campaign_stage_1"/>
    </record>
    <record id="sms_demo_source_winter" model="utm.source">
        <field name="name">SMS Winter Sales: last days</field>
    </record>

    <!-- Sent 6 days ago to the newsletter: delivery results, clicks and opt-outs below. -->
    <record id="sms_demo_mailing_sent" model="mailing.mailing">
        <field name="subject">Winter Sales: last days</field>
        <field name="mailing_type">sms</field>
        <field name="campaign_id" ref="sms_demo_campaign_winter"/>
        <field name="source_id" ref="sms_demo_source_winter"/>
        <field name="medium_id" ref="mass_mailing_sms.utm_medium_sms"/>
        <field name="user_id" ref="base.user_admin"/>
        <field name="mailing_model_id" ref="mass_mailing.model_mailing_list"/>
        <field name="contact_list_ids" eval="[Command.set([ref('sms_demo_list_newsletter')])]"/>
        <field name="body_plaintext">Last days of the Winter Sales at YourShop: up to 50% off coats, boots and scarves until Sunday. Shop now: https://www.example.com/winter-sales</field>
        <field name="sms_allow_unsubscribe" eval="True"/>
        <field name="sms_sender_id" ref="sms_demo_sender_yourshop"/>
        <field name="sms_gateway_id" ref="sms_demo_gateway_local"/>
        <field name="schedule_type">now</field>
        <field name="state">done</field>
        <field name="sent_date" eval="(DateTime.today().replace(hour=0, minute=0, second=0, microsecond=0) - relativedelta(days=6) + relativedelta(hours=10, minutes=20, seconds=0)).strftime('%Y-%m-%d %H:%M:%S')"/>
    </record>
    <record id="sms_demo_link_winter" model="link.tracker">
        <field name="url">https://www.example.com/winter-sales</field>
        <field name="title">Winter Sales: up to 50% off</field>
        <field name="mass_mailing_id" ref="sms_demo_mailing_sent"/>
        <field name="campaign_id" ref="sms_demo_campaign_winter"/>
        <field name="source_id" ref="sms_demo_source_winter"/>
        <field name="medium_id" ref="mass_mailing_sms.utm_medium_sms"/>
    </record>

    <!-- Being written: a draft for the VIP customers. -->
    <record id="sms_demo_mailing_draft" model="mailing.mailing">
        <field name="subject">VIP preview: Spring Collection</field>
        <field name="mailing_type">sms</field>
        <field name="campaign_id" ref="sms_demo_campaign_spring"/>
        <field name="user_id" ref="base.user_admin"/>
        <field name="mailing_model_id" ref="mass_mailing.model_mailing_list"/>
        <field name="contact_list_ids" eval="[Command.set([ref('sms_demo_list_vip')])]"/>
        <field name="body_plaintext">VIP preview 🌸 The Spring Collection is online for you 2 days before everyone else, with free delivery: https://www.example.com/spring-vip</field>
        <field name="sms_allow_unsubscribe" eval="True"/>
        <field name="sms_sender_id" ref="sms_demo_sender_yourshop"/>
        <field name="sms_gateway_id" ref="sms_demo_gateway_local"/>
    </record>

    <!-- Scheduled next month for both lists (duplicates across the lists are sent once). -->
    <record id="sms_demo_mailing_scheduled" model="mailing.mailing">
        <field name="subject">Spring Collection launch</field>
        <field name="mailing_type">sms</field>
        <field name="campaign_id" ref="sms_demo_campaign_spring"/>
        <field name="user_id" ref="base.user_admin"/>
        <field name="mailing_model_id" ref="mass_mailing.model_mailing_list"/>
        <field name="contact_list_ids" eval="[Command.set([ref('sms_demo_list_newsletter'), ref('sms_demo_list_vip')])]"/>
        <field name="body_plaintext">The Spring Collection has arrived at YourShop! Discover it in store or online: https://www.example.com/spring</field>
        <field name="sms_allow_unsubscribe" eval="True"/>
        <field name="sms_sender_id" ref="sms_demo_sender_yourshop"/>
        <field name="sms_gateway_id" ref="sms_demo_gateway_local"/>
        <field name="schedule_type">scheduled</field>
        <field name="schedule_date" eval="(DateTime.today() + relativedelta(days=30, hours=9)).strftime('%Y-%m-%d %H:%M:%S')"/>
        <field name="state">in_queue</field>
    </record>"""  # noqa: E501 - the XML as it is, long lines included
TRACES_COMMENT = """\
    <!-- One trace per recipient of the winter campaign: delivered, failed, rejected, expired (by the
         operator's report, or by the settle cron when no report ever came), and left out (missing or
         invalid number, blacklisted, opted out, duplicate). -->"""
CLICKS_COMMENT = """\
    <!-- Clicks on the campaign's tracked link, each attributed to its recipient's trace. -->"""
STOP_REPLY_COMMENT = """\
    <!-- Replied STOP to the campaign: blacklisted, the consent record names the mailing. -->"""
LINK_OPTOUT_COMMENT = """\
    <!-- Unsubscribed from the newsletter through the campaign's opt-out link. -->"""
BOTS_COMMENT = """\
    <!-- Link previews and security scanners open the link seconds after delivery: bots, kept apart. -->"""


STYLES = ["e164", "e164", "e164", "international", "international", "national"]
DAY0 = "DateTime.today().replace(hour=0, minute=0, second=0, microsecond=0)"


def when(days_ago, hours, minutes, seconds=0):
    """An eval expression: days_ago days before the load date, at hours:minutes:seconds (minutes may
    pass 59: a click the next day is hours=10, minutes=1500)."""
    return (f"({DAY0} - relativedelta(days={days_ago}) + relativedelta(hours={hours}, minutes={minutes}, "
            f"seconds={seconds})).strftime('%Y-%m-%d %H:%M:%S')")


def email_of(name):
    """The address of a demo contact.

    >>> email_of("Inès Martin")
    'ines.martin@example.com'
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return ascii_name.lower().replace(" ", ".") + "@example.com"


def random_mobile(rng, country):
    """The national significant number of a random mobile phone of the country."""
    def digits(count):
        return "".join(rng.choice("0123456789") for _ in range(count))
    if country == "fr":  # 06 and 07 numbers in ranges allocated to mobiles
        return rng.choice(["60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77", "78",
                           "79"]) + digits(7)
    if country == "be":
        return "4" + rng.choice("789") + digits(7)
    if country == "it":
        return "3" + rng.choice("234") + digits(8)
    if country == "de":
        prefix = rng.choice(["151", "160", "170", "176"])
        return prefix + digits(8 if prefix in ("151", "176") else 7)
    if country == "es":
        return "6" + digits(8)
    first = rng.choice(["75", "77", "79"])  # 076 and 0791 are not mobile ranges
    return first + rng.choice("023456789" if first == "79" else "0123456789") + digits(7)


def typed_as(country, national, style):
    """A mobile number written the way people do.

    >>> typed_as("fr", "611496371", "international"), typed_as("fr", "611496371", "national")
    ('+33 6 11 49 63 71', '06 11 49 63 71')
    >>> typed_as("it", "3213015839", "national"), typed_as("uk", "7734104455", "international")
    ('321 301 5839', '+44 7734 104455')
    """
    prefix = COUNTRIES[country][2]
    if style == "e164":
        return prefix + national
    if country == "fr":
        spaced = f"{national[0]} " + " ".join(national[i:i + 2] for i in range(1, 9, 2))
    elif country == "be":
        spaced = f"{national[:3]} {national[3:5]} {national[5:7]} {national[7:]}"
    elif country == "it":
        spaced = f"{national[:3]} {national[3:6]} {national[6:]}"
    elif country == "de":
        cut = 4 if national.startswith("151") else 3  # 0151 numbers are written 01515 1234567
        spaced = f"{national[:cut]} {national[cut:]}"
    elif country == "es":
        spaced = f"{national[:3]} {national[3:5]} {national[5:7]} {national[7:]}"
    else:
        spaced = f"{national[:4]} {national[4:]}"
    if style == "international":
        return f"{prefix} {spaced}"
    return spaced if country in ("it", "es") else f"0{spaced}"  # no trunk 0 in Italy and Spain


class Scenario:
    """The contacts and what the winter campaign left behind, drawn from one seeded generator in a
    fixed order."""

    def __init__(self, seed=SEED):
        self.rng = random.Random(seed)  # noqa: S311 - demo data, reproducible on purpose
        self.contacts = []
        self.used = set()
        self.names = set()

    def add_contact(self, country, lists, outcome, national=None, typed=None):
        first_names, last_names = COUNTRIES[country][5], COUNTRIES[country][6]
        name = f"{self.rng.choice(first_names)} {self.rng.choice(last_names)}"
        while name in self.names:  # one person per name
            name = f"{self.rng.choice(first_names)} {self.rng.choice(last_names)}"
        self.names.add(name)
        contact = {
            "n": len(self.contacts) + 1, "country": country, "name": name, "lists": lists, "outcome": outcome,
            "national": national, "mobile": typed, "email": email_of(name) if self.rng.random() < 0.6 else None,
            "number": COUNTRIES[country][2] + national if national else None,
        }
        self.contacts.append(contact)
        return contact

    def add_with_new_number(self, country, lists, outcome):
        national = random_mobile(self.rng, country)
        while national in self.used:
            national = random_mobile(self.rng, country)
        self.used.add(national)
        return self.add_contact(country, lists, outcome, national, typed_as(country, national, self.rng.choice(STYLES)))

    def build(self):
        for country, roles in ROLES.items():
            slots = [(lists, outcome) for lists, outcome, count in roles for _ in range(count)]
            self.rng.shuffle(slots)
            for lists, outcome in slots:
                self.add_with_new_number(country, lists, outcome)
        for country, count in VIP_ONLY.items():
            for _ in range(count):
                self.add_with_new_number(country, "vip", None)
        for country, typed in INVALID_NUMBERS:
            self.add_contact(country, NL, "invalid", typed=typed)
        for country in MISSING_NUMBERS:
            self.add_contact(country, NL, "missing")
        for country, source_outcome in DUPLICATES:
            sources = [c for c in self.contacts if c["country"] == country and c["lists"] != "vip"
                       and c["national"] and not c.get("duplicated") and self.matches(c["outcome"], source_outcome)]
            source = self.rng.choice(sources)
            source["duplicated"] = True
            national = source["national"]
            styles = [s for s in dict.fromkeys(STYLES) if typed_as(country, national, s) != source["mobile"]]
            outcome = "blacklist" if source_outcome == "blacklist" else "duplicate"
            repeat = self.add_contact(country, NL, outcome, national,
                                      typed_as(country, national, self.rng.choice(styles)))
            repeat["repeats"] = source["n"]
        self.draw_campaign()
        return self

    @staticmethod
    def matches(outcome, wanted):
        """A duplicate repeats the number of a contact the campaign reached (and who did not opt out
        since: then the repeat would be a recipient of the next mailing), or of a blacklisted one."""
        if wanted == "blacklist":
            return outcome == "blacklist"
        return outcome in ("sent", "unreported", *FAILURES) or outcome.startswith("open:")

    def draw_campaign(self):
        """Send and report times, uuids, clicks and opt-out dates, in contact order."""
        rng = self.rng
        for contact in self.contacts:
            outcome = contact["outcome"] or ""
            if outcome in ("sent", "unreported", "stop", "link_optout", *FAILURES) or outcome.startswith("open:"):
                contact["uuid"] = f"{rng.getrandbits(128):032x}"
                contact["sent_at"] = rng.randint(60, 900)  # seconds after 10:20, when the campaign started
            if outcome.startswith("open:"):
                minutes = sorted(rng.sample(range(40, 1830), int(outcome[5:])))
                octets = [f"{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in minutes]
                contact["clicks"] = list(zip(minutes, octets, strict=True))
            if outcome in ("link_optout", "optout"):
                days = rng.randint(1, 4) if outcome == "link_optout" else 26
                contact["optout"] = (days, rng.randint(0, 59), rng.choice(OPTOUT_REASONS))
        self.bots = []
        second = 60
        for country, prefix in BOTS:
            second += rng.randint(40, 100)
            self.bots.append((country, f"{prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", second))


GENERATED = "<!-- Generated by scripts/generate_demo_data.py: change the script and run it, do not edit this file. -->"
LIST_REFS = {"newsletter": "ref('sms_demo_list_newsletter')", "vip": "ref('sms_demo_list_vip')",
             BOTH: "ref('sms_demo_list_newsletter'), ref('sms_demo_list_vip')"}
TRACE_HEAD = ('<field name="trace_type">sms</field><field name="mass_mailing_id" ref="sms_demo_mailing_sent"/>'
              '<field name="model">mailing.contact</field>')
CLICK_HEAD = ('<field name="link_id" ref="sms_demo_link_winter"/>'
              '<field name="campaign_id" ref="sms_demo_campaign_winter"/>'
              '<field name="mass_mailing_id" ref="sms_demo_mailing_sent"/>')
STOP_LIST = ("{'sms_consent_source': 'import', 'sms_consent_note': 'STOP list of the previous SMS provider'}")
STOP_REPLY = ("{'sms_consent_source': 'reply', 'sms_consent_mailing_id': ref('sms_demo_mailing_sent'), "
              "'sms_consent_note': 'Replied STOP to YourShop'}")


def field(name, value):
    return f'<field name="{name}">{escape(value)}</field>'


def ref_field(name, xmlid):
    return f'<field name="{name}" ref="{xmlid}"/>'


def eval_field(name, expression):
    return f'<field name="{name}" eval="{escape(expression, {chr(34): "&quot;"})}"/>'


def contact_xml(contact):
    fields = [field("name", contact["name"]), ref_field("country_id", COUNTRIES[contact["country"]][0])]
    if contact["mobile"]:
        fields.append(field("mobile", contact["mobile"]))
    if contact["email"]:
        fields.append(field("email", contact["email"]))
    fields.append(eval_field("list_ids", f"[Command.set([{LIST_REFS[contact['lists']]}])]"))
    return f'    <record id="sms_demo_contact_{contact["n"]:03d}" model="mailing.contact">{"".join(fields)}</record>'


def trace_xml(contact):
    """The winter campaign's trace of a newsletter contact."""
    outcome = contact["outcome"]
    country = COUNTRIES[contact["country"]]
    fields = [TRACE_HEAD, ref_field("res_id", f"sms_demo_contact_{contact['n']:03d}")]
    if outcome in ("invalid", "missing", "blacklist", "optout", "duplicate"):
        failure = {"invalid": "sms_number_format", "missing": "sms_number_missing", "blacklist": "sms_blacklist",
                   "optout": "sms_optout", "duplicate": "sms_duplicate"}[outcome]
        fields += [field("trace_status", "cancel"), field("failure_type", failure)]
        if contact["number"]:
            fields += [field("sms_number", contact["number"]), field("sms_country_code", country[1])]
    else:
        status, failure = FAILURES.get(outcome, ("open" if outcome.startswith("open:") else "sent", None))
        if outcome == "unreported":
            status, failure = "error", "sms_expired"
        fields.append(field("trace_status", status))
        if failure:
            fields.append(field("failure_type", failure))
        if outcome == "unreported":
            fields.append(field("failure_reason", UNREPORTED_REASON))
        minutes, seconds = divmod(20 * 60 + contact["sent_at"], 60)
        fields += [field("sms_number", contact["number"]), field("sms_country_code", country[1]),
                   field("sms_uuid", contact["uuid"]), field("sms_parts", str(PARTS)),
                   field("sms_credits", f"{round(country[3] * PARTS, 4):g}"), field("sms_attempts", "1"),
                   eval_field("sent_datetime", when(SENT_DAYS_AGO, 10, minutes, seconds))]
        if outcome != "unreported":  # the delivery report a minute later
            fields.append(eval_field("sms_report_date", when(SENT_DAYS_AGO, 10, minutes + 1, seconds)))
        if status == "open":
            clicks = contact["clicks"]
            fields += [eval_field("open_datetime", when(SENT_DAYS_AGO, 10, clicks[0][0])),
                       eval_field("links_click_datetime", when(SENT_DAYS_AGO, 10, clicks[-1][0]))]
    return (f'    <record id="sms_demo_trace_winter_{contact["n"]:03d}" model="mailing.trace">'
            f'{"".join(fields)}</record>')


def blacklist_xml(contact, context):
    return (f'    <record id="sms_demo_blacklist_{contact["n"]:03d}" model="phone.blacklist" '
            f'context="{escape(context, {chr(34): "&quot;"})}">{field("number", contact["number"])}</record>')


def optout_xml(contact):
    days, minute, reason = contact["optout"]
    values = (f"{{'opt_out': True, 'opt_out_reason_id': ref('{reason}'), 'opt_out_datetime': "
              f"{when(days, 11, minute)}}}")
    search = (f"[('contact_id', '=', ref('sms_demo_contact_{contact['n']:03d}')), "
              "('list_id', '=', ref('sms_demo_list_newsletter'))]")
    return (f'    <function model="mailing.subscription" name="write"><value model="mailing.subscription" '
            f'search="{escape(search)}"/><value eval="{escape(values)}"/></function>')


def mailing_list_xml(scenario):
    contacts = scenario.contacts
    lines = [XML_HEAD, GENERATED, '<data noupdate="1">', LISTS_XML, "", CONTACTS_COMMENT]
    lines += [contact_xml(contact) for contact in contacts]
    lines += ["", OPTOUTS_COMMENT]
    lines += [optout_xml(contact) for contact in contacts if "optout" in contact]
    lines += ["", STOP_LIST_COMMENT]
    lines += [blacklist_xml(contact, STOP_LIST) for contact in contacts
              if contact["outcome"] == "blacklist" and not contact.get("repeats")]
    lines += ["</data>", "</odoo>", ""]
    return "\n".join(lines)


def click_xml(number, contact, minute, octets, unique):
    country = COUNTRIES[contact["country"]]
    fields = [CLICK_HEAD, ref_field("mailing_trace_id", f"sms_demo_trace_winter_{contact['n']:03d}"),
              ref_field("country_id", country[0]), field("ip", f"{country[4]}.{octets}"),
              eval_field("create_date", when(SENT_DAYS_AGO, 10, minute))]
    if unique:
        fields.append(eval_field("sms_unique", "True"))
    return f'    <record id="sms_demo_click_{number:03d}" model="link.tracker.click">{"".join(fields)}</record>'


def mailing_mailing_xml(scenario):
    contacts = scenario.contacts
    lines = [XML_HEAD, GENERATED, '<data noupdate="1">', MAILINGS_XML, "", TRACES_COMMENT]
    lines += [trace_xml(contact) for contact in contacts if contact["lists"] != "vip"]
    lines += ["", CLICKS_COMMENT]
    number = 0
    for contact in contacts:
        for index, (minute, octets) in enumerate(contact.get("clicks", [])):
            number += 1
            lines.append(click_xml(number, contact, minute, octets, unique=index == 0))
    lines += ["", STOP_REPLY_COMMENT]
    lines += [blacklist_xml(contact, STOP_REPLY) for contact in contacts if contact["outcome"] == "stop"]
    lines += ["", LINK_OPTOUT_COMMENT]
    for contact in contacts:
        if contact["outcome"] == "link_optout":
            days, minute, _reason = contact["optout"]
            fields = [field("number", contact["number"]), field("action", "optout"), field("source", "link"),
                      eval_field("date", when(days, 11, minute)), ref_field("mailing_id", "sms_demo_mailing_sent"),
                      eval_field("list_ids", f"[Command.set([{LIST_REFS['newsletter']}])]")]
            lines.append(f'    <record id="sms_demo_consent_link_{contact["n"]:03d}" model="sms.consent.event">'
                         f'{"".join(fields)}</record>')
    lines += ["", BOTS_COMMENT]
    for country, ip, second in scenario.bots:
        number += 1
        minutes, seconds = divmod(20 * 60 + second, 60)
        fields = [CLICK_HEAD, eval_field("is_bot", "True"), ref_field("country_id", f"base.{country}"),
                  field("ip", ip), eval_field("create_date", when(SENT_DAYS_AGO, 10, minutes, seconds))]
        lines.append(f'    <record id="sms_demo_click_{number:03d}" model="link.tracker.click">'
                     f'{"".join(fields)}</record>')
    lines += ["</data>", "</odoo>", ""]
    return "\n".join(lines)


def number_problems(scenario):
    """Contacts whose number does not say what the scenario means (Odoo rejects an invalid number
    in the blacklist, and the audience counts rest on it), checked with phonenumbers, the addon's
    own dependency, when it is importable (scripts/test runs this in Odoo's virtualenv)."""
    try:
        import phonenumbers  # optional: the generator itself is standard library only
    except ImportError:
        print("phonenumbers not importable: the numbers were not validated", file=sys.stderr)
        return []
    problems = []
    for contact in scenario.contacts:
        if not contact["mobile"]:
            continue
        region = COUNTRIES[contact["country"]][1]
        try:
            parsed = phonenumbers.parse(contact["mobile"], region)
            valid = phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in (
                phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            valid, e164 = False, None
        if contact["outcome"] == "invalid":
            if valid:
                problems.append(f"contact {contact['n']}: {contact['mobile']!r} is meant to be invalid")
        elif not valid or e164 != contact["number"]:
            problems.append(f"contact {contact['n']}: {contact['mobile']!r} is not the mobile {contact['number']}")
    return problems


def generate(seed=SEED):
    """{file name: content} of the generated demo files; SystemExit when a number is wrong."""
    scenario = Scenario(seed).build()
    problems = number_problems(scenario)
    if problems:
        raise SystemExit("ERROR: " + "\n".join(problems))
    return {"mailing_list_demo.xml": mailing_list_xml(scenario),
            "mailing_mailing_demo.xml": mailing_mailing_xml(scenario)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed files differ")
    parser.add_argument("--demo-dir", type=Path, default=DEMO_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name, text in generate().items():
        path = args.demo_dir / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            continue
        stale.append(name)
        if args.check:
            diff = list(difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                             f"{name} (committed)", f"{name} (generated)", n=0))
            sys.stderr.writelines(diff[:40])
            if len(diff) > 40:
                print(f"... {len(diff) - 40} more diff lines", file=sys.stderr)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if args.check and stale:
        print(f"ERROR: {', '.join(stale)} differ from scripts/generate_demo_data.py's output: "
              "run python3 scripts/generate_demo_data.py (and do not edit them by hand)", file=sys.stderr)
        return 1
    if args.check:
        print("demo XML is the generator's output")
    elif not stale:
        print("demo XML already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
