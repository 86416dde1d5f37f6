"""How URLs and the opt-out footer look in a sent SMS, so that counting measures the real text.

Each URL of an SMS body becomes ``<short base>/r/<tracker code>/<recipient token>``; the
opt-out footer carries ``<short base>/sms/o/<opt-out token>``. Both tokens have a fixed length,
so the counter knows the exact length of every recipient's SMS before any is rendered.
"""

import re

# Same URL pattern as odoo.tools.TEXT_URL_REGEX (kept here so this module stays Odoo-free).
TEXT_URL_REGEX = r"https?://[\w@:%.+&~#=/-]+(?:\?\S+)?"

LINK_TOKEN_LENGTH = 12
OPTOUT_TOKEN_LENGTH = 16


def short_link(short_base, code, token):
    """The tracked form of a link for one recipient."""
    return f"{short_base.rstrip('/')}/r/{code}/{token}"


def optout_url(short_base, token):
    return f"{short_base.rstrip('/')}/sms/o/{token}"


def render_for_count(body, short_base, code_length, optout_footer_template=None):
    """``body`` as every recipient will receive it, with tokens as placeholders of their exact length.

    :param optout_footer_template: footer text with ``%(url)s`` where the opt-out URL goes, or
        None when the mailing has no opt-out link.
    """
    placeholder_link = short_link(short_base, "x" * code_length, "x" * LINK_TOKEN_LENGTH)
    rendered = re.sub(TEXT_URL_REGEX, lambda _match: placeholder_link, body or "")
    if optout_footer_template:
        rendered += optout_footer_template % {"url": optout_url(short_base, "x" * OPTOUT_TOKEN_LENGTH)}
    return rendered
