"""Where a tracked SMS link sends people (no Odoo import).

Stock link trackers rebuild the target URL to add their UTM parameters: the query is decoded and
re-encoded (``y=2,3`` becomes ``y=2%2C3``, repeated keys keep one value). SMS links redirect to
the URL exactly as written in the message instead, the UTM parameters the URL does not already
have appended to its query, before its fragment.
"""

from urllib.parse import parse_qsl, urlencode


def with_utm_params(url, params):
    """``url`` unchanged but for ``params`` (ordered ``(name, value)`` pairs) appended to its query,
    except those whose name the query already has.

    >>> with_utm_params("https://ex.com/a,b?x=1&y=2,3#frag", [("utm_medium", "SMS")])
    'https://ex.com/a,b?x=1&y=2,3&utm_medium=SMS#frag'
    """
    base, hash_mark, fragment = url.partition("#")
    path, _question_mark, query = base.partition("?")
    present = {name for name, _value in parse_qsl(query, keep_blank_values=True)}
    extra = [(name, value) for name, value in params if value and name not in present]
    if not extra:
        return url
    separator = "" if not query or query.endswith("&") else "&"
    return f"{path}?{query}{separator}{urlencode(extra)}{hash_mark}{fragment}"
