"""Write sms_marketing_ext/README.rst from the readme/ fragments and the manifest, in the form
OCA's ``oca-gen-addon-readme`` gives 17.0 addons (title, generated-file banner, badges,
description, table of contents, the fragments' sections, bug tracker, credits).

OCA's tool is not on PyPI (it lives in OCA/maintainer-tools), so this standard-library script
produces the same structure for the Markdown the fragments use: paragraphs, numbered and bullet
lists, ``*emphasis*``, ``**strong**``, ```code```, ``[links](url)``, ``#`` headings and fenced code.
Anything else stops it with the line at fault rather than writing a wrong page.

    python3 scripts/gen_addon_readme.py          # rewrite README.rst
    python3 scripts/gen_addon_readme.py --check  # exit 1 when README.rst differs (scripts/test)

When docutils is importable (Odoo's virtualenv has it) the result is also parsed as reStructuredText
with warnings as errors, as OCA's tool does.
"""

import argparse
import ast
import difflib
import hashlib
import re
import sys
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent.parent / "sms_marketing_ext"
BRANCH = "17.0"
# Sections in OCA's order: (fragment, title); DESCRIPTION opens the page, the credits close it.
SECTIONS = [
    ("CONTEXT", "Use Cases / Context"),
    ("INSTALL", "Installation"),
    ("CONFIGURE", "Configuration"),
    ("USAGE", "Usage"),
    ("DEVELOP", "Development"),
    ("ROADMAP", "Known issues / Roadmap"),
    ("HISTORY", "Changelog"),
]
CREDIT_SECTIONS = [("CONTRIBUTORS", "Contributors"), ("CREDITS", "Other credits")]
FRAGMENTS = ["DESCRIPTION"] + [name for name, _title in SECTIONS + CREDIT_SECTIONS]
LEVEL3 = "-"
README_MANIFEST_KEYS = ("name", "license", "author", "website", "development_status", "maintainers")
STATUS_BADGES = {
    "alpha": ("Alpha", "red"),
    "beta": ("Beta", "yellow"),
    "production/stable": ("Production%2FStable", "green"),
    "mature": ("Mature", "brightgreen"),
}


class FragmentError(ValueError):
    """A fragment uses Markdown this converter does not know."""


def inline(text):
    """Markdown inline markup to reStructuredText.

    >>> inline("the `sms` app, *User* and [docs](https://example.com/a)")
    'the ``sms`` app, *User* and `docs <https://example.com/a>`__'
    """
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"``{part[1:-1]}``")
            continue
        out.append(re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"`\1 <\2>`__", part))
    return "".join(out)


def md_to_rst(markdown, name):
    """Convert one fragment; headings inside a fragment are one level below its section.

    >>> print(md_to_rst("Intro `x`.\\n\\n1. one\\n   more\\n2. two\\n\\n- a\\n", "T"), end="")
    Intro ``x``.
    <BLANKLINE>
    1. one
       more
    2. two
    <BLANKLINE>
    - a
    """
    lines = markdown.rstrip("\n").split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            language = line[3:].strip()
            out.append(f".. code-block:: {language}" if language else "::")
            out.append("")
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                out.append(f"   {lines[i]}" if lines[i] else "")
                i += 1
            if i == len(lines):
                raise FragmentError(f"readme/{name}.md: unclosed code block")
            i += 1
            continue
        heading = re.match(r"^(#{1,3})\s+(.*)$", line)
        if heading:
            title = inline(heading.group(2).strip())
            out += [title, "~^"[min(len(heading.group(1)), 2) - 1] * len(title)]
        elif re.match(r"^\s*(\||<|>|\+\s|\*\s|={3,}|-{3,})", line):
            raise FragmentError(f"readme/{name}.md line {i + 1}: unsupported Markdown: {line!r}")
        else:
            out.append(inline(line))
        i += 1
    return "\n".join(out) + "\n"


def read_manifest(addon_dir):
    return ast.literal_eval((addon_dir / "__manifest__.py").read_text(encoding="utf-8"))


def github_repo(manifest):
    """(organisation, repository) from the manifest's GitHub website.

    >>> github_repo({"website": "https://github.com/acme/sms-tools"})
    ('acme', 'sms-tools')
    """
    match = re.match(r"^https://github\.com/([^/]+)/([^/]+?)/?$", manifest.get("website", ""))
    if not match:
        raise SystemExit("the manifest's website must be the GitHub repository (https://github.com/ORG/REPO)")
    return match.group(1), match.group(2)


def source_digest(addon_dir, manifest):
    """sha256 of what the page is made of: the fragments and the manifest keys it shows (a new data
    file in the manifest leaves README.rst as it is)."""
    shown = {key: manifest.get(key) for key in README_MANIFEST_KEYS}
    digest = hashlib.sha256(repr(sorted(shown.items())).encode())
    for name in FRAGMENTS:
        path = addon_dir / "readme" / f"{name}.md"
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def make_badges(manifest, status, org, repo, addon):
    """(image, target, alt) of the development status, licence and repository badges."""
    badges = []
    if status in STATUS_BADGES:
        label, colour = STATUS_BADGES[status]
        badges.append((f"https://img.shields.io/badge/maturity-{label}-{colour}.png",
                       "https://odoo-community.org/page/development-status", label.replace("%2F", "/")))
    licence = manifest.get("license", "")
    if licence:
        spdx = licence.replace("-", "--")
        slug = licence.lower() + ".0"
        badges.append((f"https://img.shields.io/badge/licence-{spdx}-blue.png",
                       f"http://www.gnu.org/licenses/{slug}-standalone.html", f"License: {licence}"))
    badges.append((f"https://img.shields.io/badge/github-{org.replace('-', '--')}%2F{repo.replace('-', '--')}"
                   "-lightgray.png?logo=github",
                   f"https://github.com/{org}/{repo}/tree/{BRANCH}/{addon}", f"{org}/{repo}"))

    return badges


def render(addon_dir):
    manifest = read_manifest(addon_dir)
    addon = addon_dir.name
    org, repo = github_repo(manifest)
    fragments = {}
    for name in FRAGMENTS:
        path = addon_dir / "readme" / f"{name}.md"
        if path.exists() and path.read_text(encoding="utf-8").strip():
            fragments[name] = md_to_rst(path.read_text(encoding="utf-8"), name)
    if "DESCRIPTION" not in fragments:
        raise SystemExit(f"{addon_dir}/readme/DESCRIPTION.md is missing or empty")

    status = manifest.get("development_status", "Beta").lower()
    badges = make_badges(manifest, status, org, repo, addon)
    name = manifest["name"]
    out = ["=" * len(name), name, "=" * len(name), ""]
    out += [
        ".. ",
        "   !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "   !! This file is generated by scripts/gen_addon_readme.py from      !!",
        "   !! readme/*.md and the manifest: edit those, then run              !!",
        "   !!     python3 scripts/gen_addon_readme.py                         !!",
        "   !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        f"   !! source digest: sha256:{source_digest(addon_dir, manifest)}",
        "   !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        "",
    ]
    for index, (image, target, alt) in enumerate(badges, 1):
        out += [f".. |badge{index}| image:: {image}", f"    :target: {target}", f"    :alt: {alt}"]
    out += ["", " ".join(f"|badge{index}|" for index in range(1, len(badges) + 1)), ""]
    out += [fragments["DESCRIPTION"]]
    if status == "alpha":
        out += [".. IMPORTANT::",
                "   This is an alpha version, the data model and design can change at any time without warning.",
                "   Only for development or testing purpose, do not use in production.", ""]
    out += ["**Table of contents**", "", ".. contents::", "   :local:", ""]
    for key, title in SECTIONS:
        if key in fragments:
            out += [title, "=" * len(title), "", fragments[key]]
    out += [
        "Bug Tracker",
        "===========",
        "",
        f"Bugs are tracked on `GitHub Issues <https://github.com/{org}/{repo}/issues>`_.",
        "In case of trouble, please check there if your issue has already been reported.",
        "If you spotted it first, help us to smash it by providing a detailed and welcomed",
        f"`feedback <https://github.com/{org}/{repo}/issues/new?body=module:%20{addon}%0Aversion:%20{BRANCH}"
        "%0A%0A**Steps%20to%20reproduce**%0A-%20...%0A%0A**Current%20behavior**%0A%0A**Expected%20behavior**>`_.",
        "",
        "Do not contact contributors directly about support or help with technical issues.",
        "",
        "Credits",
        "=======",
        "",
    ]
    authors = [a.strip() for a in manifest.get("author", "").split(",") if a.strip() and "(OCA)" not in a]
    if authors:
        out += ["Authors", LEVEL3 * 7, ""] + [f"* {author}" for author in authors] + [""]
    for key, title in CREDIT_SECTIONS:
        if key in fragments:
            out += [title, LEVEL3 * len(title), "", fragments[key]]
    out += ["Maintainers", LEVEL3 * 11, ""]
    maintainers = manifest.get("maintainers", [])
    if maintainers:
        for login in maintainers:
            out += [f".. |maintainer-{login}| image:: https://github.com/{login}.png?size=40px",
                    f"    :target: https://github.com/{login}", f"    :alt: {login}"]
        plural = "s" if len(maintainers) > 1 else ""
        out += ["", f"Current maintainer{plural}:", "",
                " ".join(f"|maintainer-{login}|" for login in maintainers), ""]
    out += [
        f"This module is part of the `{org}/{repo} <https://github.com/{org}/{repo}/tree/{BRANCH}/{addon}>`_ "
        "project on GitHub.",
        "",
        "You are welcome to contribute.",
        "",
    ]
    return "\n".join(out)


def check_rst(text):
    """Parse with docutils, warnings as errors, when docutils is there; returns a problem or None."""
    try:
        from docutils.core import publish_string  # optional: only for the check
        from docutils.utils import SystemMessage
    except ImportError:
        print("docutils not importable: README.rst not parsed (Odoo's virtualenv has it)", file=sys.stderr)
        return None
    try:
        publish_string(text, writer_name="html4css1", settings_overrides={
            "halt_level": 2, "report_level": 2, "file_insertion_enabled": False, "raw_enabled": False,
        })
    except SystemMessage as exc:
        return f"README.rst is not valid reStructuredText: {exc}"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when README.rst is not up to date")
    parser.add_argument("--addon-dir", type=Path, default=ADDON_DIR)
    args = parser.parse_args(argv)
    try:
        text = render(args.addon_dir)
    except FragmentError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    problem = check_rst(text)
    if problem:
        print(f"ERROR: {problem}", file=sys.stderr)
        return 1
    readme = args.addon_dir / "README.rst"
    current = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if args.check:
        if current != text:
            sys.stderr.writelines(difflib.unified_diff(
                current.splitlines(True), text.splitlines(True), "README.rst (committed)", "README.rst (generated)"))
            print("ERROR: README.rst is not up to date with readme/: run python3 scripts/gen_addon_readme.py",
                  file=sys.stderr)
            return 1
        print("README.rst is up to date with readme/")
        return 0
    if current != text:
        readme.write_text(text, encoding="utf-8")
        print(f"wrote {readme}")
    else:
        print(f"{readme} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
