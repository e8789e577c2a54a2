# The course's commands. Every target creates .venv when it is missing, or re-installs when
# pyproject.toml is newer than the last install, so a fresh clone needs nothing done first.
#   make test   unit tests, every notebook under nbval (solutions checked strictly), the student
#               edition under nbval, the strict executed book build and the real-browser test of
#               every page of it
#   make book   execute every notebook and build the HTML book into book/_build/html
#   make lab    JupyterLab on notebooks/ (.md chapters open as notebooks, MyST rendered)
#   make sync   bring each notebooks/*.md and its paired .ipynb up to date (jupytext), write the
#               repository URL, § line and install cell everywhere (tools/course_links.py), and
#               regenerate the plain-CommonMark (Colab) edition in colab/
#   make bench  run the benchmark scripts in bench/ and record their results
#   make student        write the student edition student/NN_slug.ipynb (tools/student_edition.py):
#                       each exercise's solution replaced by `answer_K = ...  # your answer`
#   make student-check  run the student edition under nbval (checks say "not answered yet")

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
# Notebook kernels resolve `python` through PATH: make it the course's environment.
export PATH := $(BIN):$(PATH)
export PYTHONHASHSEED := 0
# Kernels must use matplotlib's inline backend, or figures vanish from the book.
unexport MPLBACKEND

BOOK_ARGS  := . --toc book/_toc.yml
CELL_LIMIT ?= 600
# MathJax, require.js and the ipywidgets HTML manager, vendored from pinned npm packages (not
# committed): the built book makes no request outside its own folder.
VENDOR     := book/_static/vendor/.vendored.json
# A book build precomputes every widget state (vlm_course.static_widgets), so the published
# widgets respond without a kernel.
BOOK_ENV   := VLM_COURSE_STATIC_WIDGETS=1 VLM_COURSE_QUIET=1

.PHONY: setup hooks test unit notebooks lint book book-check book-browser vendor lab sync bench \
	student student-check \
	clean

setup: $(STAMP) hooks

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ref]'
	@touch $(STAMP)
	@echo "Installed the course into $(VENV)"

# Notebook outputs never reach a commit: git strips them from every .ipynb as it stages it
# (nbstripout as the clean filter that .gitattributes names). --keep-id keeps jupytext's cell ids
# and language_info is dropped, so a clean notebook stages byte for byte as it is.
hooks: $(STAMP)
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
		git config filter.nbstripout.clean \
			"'$(PY)' -m nbstripout --keep-id --extra-keys metadata.language_info" && \
		git config filter.nbstripout.smudge cat && \
		git config diff.ipynb.textconv "'$(PY)' -m nbstripout --keep-id -t" && \
		echo "git now strips notebook outputs when you stage a .ipynb (nbstripout filter)"; \
	else echo "not a git checkout: no output-stripping filter installed"; fi

test: $(STAMP) lint unit notebooks student-check book-check book-browser
	@echo "make test: all checks passed"

lint: $(STAMP)
	$(PY) -m ruff check vlm_course tests bench notebooks tools

# Includes the real-browser JupyterLab test (tests/test_jupyterlab.py): it needs the system
# Chromium, is skipped with instructions without it, and is required on CI (.ci/run installs it).
# tests/book/ (the built book's browser test) is not collected here: see book-browser.
unit: $(STAMP)
	$(PY) -m pytest tests -p no:cacheprovider

# VLM_COURSE_CHECKS=strict: a wrong exercise answer raises, so every shipped solution is proven.
notebooks: $(STAMP)
	VLM_COURSE_CHECKS=strict CI=$${CI:-true} $(PY) -m pytest notebooks --nbval-lax \
		--nbval-current-env --nbval-cell-timeout=$(CELL_LIMIT) -p no:cacheprovider

$(VENDOR): tools/vendor_js.py | $(STAMP)
	$(PY) tools/vendor_js.py

vendor: $(VENDOR)

# The strict build of the published book: every notebook executed (widget states precomputed),
# warnings are errors, nitpicky references, every shipped exercise solution checked
# (VLM_COURSE_CHECKS=strict). Its output, book/_build/html, is what book-browser tests.
book-check: $(STAMP) $(VENDOR)
	$(BOOK_ENV) VLM_COURSE_CHECKS=strict $(BIN)/jupyter-book build $(BOOK_ARGS) \
		--config book/_config.yml --path-output book -W -n --keep-going --all
	@grep -q '<img' book/_build/html/notebooks/00_start_here.html || \
		{ echo "make book-check: chapter 00 rendered without its figures"; exit 1; }

# Every page of the built book in the system Chromium (tests/book/test_built_book.py): no request
# outside 127.0.0.1, no console error, math typeset, images loaded and legible, every widget
# control moved, internal links; screenshots and a per-page report in book/_build/screenshots/.
# A hung browser fails after 20 minutes instead of eating CI's whole budget (one run takes ~1-2).
book-browser: $(STAMP) book-check
	timeout 1200 $(PY) -m pytest tests/book -p no:cacheprovider -s

book: $(STAMP) $(VENDOR)
	$(BOOK_ENV) $(BIN)/jupyter-book build $(BOOK_ARGS) --config book/_config.yml \
		--path-output book --all
	@grep -q '<img' book/_build/html/notebooks/00_start_here.html || \
		{ echo "make book: chapter 00 rendered without its figures"; exit 1; }
	@echo "The book is in book/_build/html: open $(CURDIR)/book/_build/html/index.html"

# jupyter-config/ holds the settings override that opens .md chapters as notebooks (Binder's
# postBuild installs the same file).
lab: $(STAMP) hooks
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab notebooks

# tools/course_links.py writes the repository URL (book/_config.yml) into the README, chapter
# 00, pyproject.toml and every chapter's install cell, and the § line under every title.
sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.md
	$(PY) tools/course_links.py
	$(BIN)/jupytext --sync notebooks/*.md
	$(PY) tools/plain_edition.py

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# The student edition (gitignored): solutions stubbed, everything else kept. Its checks run
# non-strict, so an unanswered exercise reports "not answered yet" and every other cell must pass.
student: $(STAMP)
	$(PY) tools/student_edition.py

student-check: student
	VLM_COURSE_CHECKS= CI=$${CI:-true} $(PY) -m pytest student --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=$(CELL_LIMIT) -p no:cacheprovider

clean:
	rm -rf book/_build book/_static/vendor .pytest_cache student
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
