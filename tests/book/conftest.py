"""The built book's browser test lives here, apart from the unit tests: ``tests/conftest.py``
keeps this folder out of a plain ``pytest tests`` run (there may be no built book); run it with
``pytest tests/book`` (``make book-browser`` does, after the strict executed build)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/browser.py
