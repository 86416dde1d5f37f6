"""How URLs and the opt-out footer look in a sent SMS, so that counting measures the real text.

Each URL of an SMS body becomes ``<short base>/r/<tracker code>/<recipient token>``; the
opt-out footer carries ``<short base>/sms/o/<opt-out token>``. Both tokens have a fixed length,
so the counter knows the exact length of every recipient's SMS before any is rendered.
"""

import re

from .sms_tokens import token_length

# odoo.tools.TEXT_URL_REGEX, widened: stock stops a URL's path at its first comma (or ; ! * $),
# so https://ex.com/a,b?x=1 would be shortened to https://ex.com/a and ",b?x=1" left in the text.
# Here those characters belong to the path when more path follows them; at the end ("see
# https://ex.com/a, then...") they stay punctuation. Keep identical to TEXT_URL_REGEX in
# static/src/js/sms_counter_field.js (a test compares them).
TEXT_URL_REGEX = r"https?://[\w@:%.+&~#=/-]+(?:[,;!*$]+[\w@:%.+&~#=/-]+)*(?:\?\S+)?"

# Odoo's inline_template placeholders (odoo.tools.rendering_tools.INLINE_TEMPLATE_REGEX): their
# text depends on each recipient. Keep identical to PLACEHOLDER_REGEX in
# static/src/js/sms_counter_field.js (a test compares them).
PLACEHOLDER_REGEX = r"\{\{(.+?)\}\}"

LINK_TOKEN_LENGTH = token_length("link")
OPTOUT_TOKEN_LENGTH = token_length("optout")


def short_link(short_base, code, token):
    """The tracked form of a link for one recipient."""
    return f"{short_base.rstrip('/')}/r/{code}/{token}"


def optout_url(short_base, token):
    return f"{short_base.rstrip('/')}/sms/o/{token}"


def count_placeholders(short_base, code_length, optout_footer_template=None):
    """``(link, footer)``: a tracked link and the opt-out footer with tokens as placeholders of
    their exact length (the footer is "" when ``optout_footer_template`` is None)."""
    link = short_link(short_base, "x" * code_length, "x" * LINK_TOKEN_LENGTH)
    footer = ""
    if optout_footer_template:
        footer = optout_footer_template % {"url": optout_url(short_base, "x" * OPTOUT_TOKEN_LENGTH)}
    return link, footer


def render_for_count(body, short_base, code_length, optout_footer_template=None):
    """``body`` as every recipient will receive it, with tokens as placeholders of their exact length.

    :param optout_footer_template: footer text with ``%(url)s`` where the opt-out URL goes, or
        None when the mailing has no opt-out link.
    """
    link, footer = count_placeholders(short_base, code_length, optout_footer_template)
    return re.sub(TEXT_URL_REGEX, lambda _match: link, body or "") + footer


def has_placeholders(body):
    """Whether ``body`` holds placeholders rendered per recipient (its length then varies).

    >>> has_placeholders("Hi {{ object.name }}!"), has_placeholders("Hi {name}!"), has_placeholders("")
    (True, False, False)
    """
    return bool(re.search(PLACEHOLDER_REGEX, body or ""))


def strip_placeholders(body):
    """``body`` with its placeholders rendered empty: the text every recipient gets at least.

    >>> strip_placeholders("Hi {{ object.name }}, {{ object.city or '' }}!")
    'Hi , !'
    """
    return re.sub(PLACEHOLDER_REGEX, "", body or "")


def split_links(body):
    """``(literals, urls)``: the body cut around its URLs, ``len(literals) == len(urls) + 1``."""
    literals, urls, position = [], [], 0
    for match in re.finditer(TEXT_URL_REGEX, body or ""):
        literals.append(body[position:match.start()])
        urls.append(match.group(0))
        position = match.end()
    literals.append((body or "")[position:])
    return literals, urls


def render(literals, link_prefixes, link_token, footer=""):
    """One recipient's SMS: the literals joined by the tracked links (``link_prefixes`` are the
    ``<short base>/r/<code>/`` of each URL, in order) carrying the recipient's token."""
    pieces = [literals[0]]
    for prefix, literal in zip(link_prefixes, literals[1:], strict=True):
        pieces.append(prefix + link_token)
        pieces.append(literal)
    pieces.append(footer)
    return "".join(pieces)
