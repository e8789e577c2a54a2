"""A small Sphinx extension for the course's book (issue 17): each page loads every script once.

sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``) each time
``env-before-read-docs`` fires, and a jupyter-book build fires it twice: the page then declares the
same ``const`` twice, a SyntaxError in every reader's console. This extension drops repeated
scripts (same file or same inline body, same attributes) from each page's script list.
"""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    filename = getattr(script, "filename", script) or ""  # None and "" both mean inline
    return (str(filename), tuple(sorted(attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after the others
    return {"parallel_read_safe": True, "parallel_write_safe": True}
