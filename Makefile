# Two commands: `make run` runs the product, `make test` runs the tests. Both create .venv first.
# Management commands for a development machine, with the same defaults (DEBUG on, .env read):
#   make api-key NAME=alertmanager SCOPES=alerts:write,incidents:read
#   make drill POLICY=demo
#   make manage CMD="createsuperuser"
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
# Development defaults; the environment or .env can override them.
export DEBUG ?= true

.PHONY: install run test lint bench clean migrate api-key drill manage

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput -v 0

run: migrate
	$(BIN)/python manage.py seed_demo
	PATH="$(BIN):$$PATH" $(BIN)/honcho start -f Procfile $$($(BIN)/python -m config.devrun procs)

api-key: migrate
	@test -n "$(NAME)" -a -n "$(SCOPES)" || { echo "usage: make api-key NAME=alertmanager SCOPES=alerts:write,incidents:read" >&2; exit 2; }
	$(BIN)/python manage.py create_api_key "$(NAME)" --scopes "$(SCOPES)"

drill: migrate
	@test -n "$(POLICY)" || { echo "usage: make drill POLICY=demo   (needs make run going in another terminal)" >&2; exit 2; }
	$(BIN)/python manage.py drill --policy "$(POLICY)"

manage: migrate
	$(BIN)/python manage.py $(CMD)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var/*.sqlite3* var/redis .pytest_cache
