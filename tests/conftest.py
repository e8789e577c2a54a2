"""Shared pytest configuration of the unit tests.

``tests/book/`` holds the browser test of the *built* book (issue 17): it needs the output of the
executed strict build, so a plain ``pytest tests`` (``make unit``) does not collect it; ``make
book-browser`` runs it as ``pytest tests/book`` after ``make book-check``.
"""

collect_ignore = ["book"]
