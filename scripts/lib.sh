# shellcheck shell=bash
# Shared helpers for scripts/serve, scripts/test and .ci/run. Source it; do not run it.
#
# Where things live (override with environment variables):
#   ODOO_PATH   Odoo 17 source tree              default /opt/odoo17
#   ODOO_VENV   virtualenv with Odoo's deps+ours default /opt/odoo17-venv
#   PGHOST/PGUSER/PGPORT                         default: local socket, role = current user
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ODOO_PATH="${ODOO_PATH:-/opt/odoo17}"
ODOO_VENV="${ODOO_VENV:-/opt/odoo17-venv}"
ADDON_NAME="sms_marketing_ext"
STATE_DIR="${SMS_EXT_STATE_DIR:-$HOME/.local/share/sms_marketing_ext}"

die() { echo "ERROR: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

# 1. Odoo 17 source tree --------------------------------------------------------------------
require_odoo() {
    if [[ ! -f "$ODOO_PATH/odoo-bin" || ! -f "$ODOO_PATH/odoo/release.py" ]]; then
        cat >&2 <<MSG
ERROR: Odoo 17 source tree not found at $ODOO_PATH.
  Put an Odoo 17.0 source tree there, or point ODOO_PATH at one, e.g.:
      git clone --depth 1 --branch 17.0 https://github.com/odoo/odoo.git $ODOO_PATH
  (the scripts never download Odoo themselves; see README.md, "Prerequisites").
MSG
        exit 1
    fi
    local series
    series=$(sed -n "s/^version_info = (\([0-9]*\), \([0-9]*\).*/\1.\2/p" "$ODOO_PATH/odoo/release.py")
    [[ "$series" == "17.0" ]] || die "$ODOO_PATH holds Odoo $series, this addon needs Odoo 17.0."
}

# 2. Virtualenv with Odoo's requirements and ours -------------------------------------------
ensure_system_packages() {
    # Headers needed to build Odoo's psycopg2 / python-ldap wheels; chromium for the tours.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
        die "missing Debian packages: ${missing[*]} (install them with apt-get as root)"
    fi
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

ensure_venv() {
    require_odoo
    local stamp="$ODOO_VENV/.sms_marketing_ext.stamp"
    local want
    want=$(cat "$ODOO_PATH/requirements.txt" "$REPO_ROOT/requirements.txt" "$REPO_ROOT/requirements-dev.txt" | sha1sum | cut -c1-40)
    if [[ -x "$ODOO_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    ensure_system_packages libpq-dev libldap2-dev libsasl2-dev
    local py="${PYTHON:-python3}"
    "$py" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' 2>/dev/null \
        || die "$py is $("$py" --version 2>&1); Odoo 17 needs Python 3.10 to 3.12 (set PYTHON=...)."
    [[ -x "$ODOO_VENV/bin/python" ]] || { log "creating virtualenv $ODOO_VENV"; "$py" -m venv "$ODOO_VENV"; }
    log "installing Odoo's requirements and ours into $ODOO_VENV (first run takes a few minutes)"
    "$ODOO_VENV/bin/pip" install -q --upgrade pip wheel "setuptools<70" >/dev/null
    "$ODOO_VENV/bin/pip" install -q -r "$ODOO_PATH/requirements.txt" \
        || die "pip could not install Odoo's requirements.txt"
    "$ODOO_VENV/bin/pip" install -q -r "$REPO_ROOT/requirements-dev.txt" \
        || die "pip could not install requirements-dev.txt"
    echo "$want" > "$stamp"
}

# 3. PostgreSQL --------------------------------------------------------------------------------
ensure_postgres() {
    command -v psql >/dev/null || die "PostgreSQL client (psql) not found: install PostgreSQL 12+ (apt-get install postgresql)."
    if ! pg_isready -q 2>/dev/null; then
        if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1; then
            local ver; ver=$(ls /etc/postgresql | sort -V | tail -n1)
            log "starting PostgreSQL $ver cluster 'main'"
            pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 \
                || pg_ctlcluster "$ver" main start >/dev/null 2>&1 || true
            for _ in $(seq 1 30); do pg_isready -q && break; sleep 1; done
        fi
        pg_isready -q || die "PostgreSQL is not running and could not be started (no local cluster?). Start it, or set PGHOST/PGPORT."
    fi
    # Make sure our role exists: Odoo refuses to run as the 'postgres' superuser role.
    DB_USER="${PGUSER:-$(id -un)}"
    if [[ "$DB_USER" == "postgres" ]]; then DB_USER=odoo; fi
    if ! psql -d postgres -U "$DB_USER" -tAc 'select 1' >/dev/null 2>&1; then
        log "creating PostgreSQL role $DB_USER"
        if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1; then
            su postgres -c "psql -q -c \"CREATE ROLE \\\"$DB_USER\\\" LOGIN CREATEDB\"" >/dev/null \
                || die "could not create PostgreSQL role $DB_USER"
        else
            die "PostgreSQL role $DB_USER does not exist or cannot log in; create it with CREATEDB."
        fi
    fi
    export DB_USER
}

db_exists() { psql -d postgres -U "$DB_USER" -tAc "select 1 from pg_database where datname='$1'" | grep -q 1; }
drop_db() { dropdb -U "$DB_USER" --if-exists "$1" >/dev/null 2>&1 || true; }

# 4. Running Odoo ------------------------------------------------------------------------------
addons_path() { echo "$ODOO_PATH/addons,$ODOO_PATH/odoo/addons,$REPO_ROOT"; }

odoo_bin() {
    # Runs odoo-bin from the venv with our addons path and database user.
    "$ODOO_VENV/bin/python" "$ODOO_PATH/odoo-bin" --addons-path="$(addons_path)" \
        --db_user="$DB_USER" ${PGHOST:+--db_host="$PGHOST"} ${PGPORT:+--db_port="$PGPORT"} "$@"
}

# A database with the addon's dependencies already installed (demo data included), reused as
# the template of every throw-away test database. Its name carries a hash of the Odoo tree and
# of our manifest's depends, so a change of either builds a new one.
ensure_template_db() {
    local key depends
    depends=$("$ODOO_VENV/bin/python" -c "import ast,sys; print(','.join(ast.literal_eval(open(sys.argv[1]).read())['depends']))" \
        "$REPO_ROOT/$ADDON_NAME/__manifest__.py")
    key=$( { git -C "$ODOO_PATH" rev-parse HEAD 2>/dev/null || sha1sum "$ODOO_PATH/odoo/release.py"; echo "$depends"; } | sha1sum | cut -c1-10)
    local tpl="sms_ext_tpl_$key"
    if ! db_exists "$tpl"; then
        log "building template database $tpl with: $depends (once; a few minutes)"
        local tmp="${tpl}_building"
        drop_db "$tmp"
        odoo_bin -d "$tmp" -i "$depends" --stop-after-init --workers=0 --max-cron-threads=0 \
            --log-level=warn >&2 || die "could not install $depends into $tmp"
        psql -d postgres -U "$DB_USER" -qc "ALTER DATABASE \"$tmp\" RENAME TO \"$tpl\"" >/dev/null \
            || die "could not rename $tmp"
    fi
    echo "$tpl"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Odoo's browser tours need a Chromium on PATH (and websocket-client, from requirements-dev.txt).
ensure_chromium() {
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
        || ensure_system_packages chromium
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
        || die "Chromium is needed for the browser tours and could not be installed."
}

# The local SMS gateway (gateway/), started in the background for the demo database; it
# stops with the shell that started it. Configures the demo gateway record when the addon has
# one (sms.gateway) so that mailings sent from the demo go to it.
start_demo_gateway() {
    local db="$1" gw_port="$2" odoo_port="$3"
    local gw="$REPO_ROOT/gateway/sms_gateway.py"
    [[ -f "$gw" ]] || { log "no local gateway in this checkout yet: skipping"; return 0; }
    local gwdb="$STATE_DIR/gateway-$db.sqlite3" gwlog="$STATE_DIR/gateway-$db.log"
    if curl -fsS "http://127.0.0.1:$gw_port/_admin/health" >/dev/null 2>&1; then
        log "a local gateway already answers on port $gw_port: reusing it"
    else
        log "starting the local SMS gateway on 127.0.0.1:$gw_port (log: $gwlog)"
        python3 "$gw" serve --port "$gw_port" --db "$gwdb" >>"$gwlog" 2>&1 &
        GATEWAY_PID=$!
        # shellcheck disable=SC2064
        trap "kill $GATEWAY_PID 2>/dev/null || true" EXIT
        for _ in $(seq 1 50); do
            curl -fsS "http://127.0.0.1:$gw_port/_admin/health" >/dev/null 2>&1 && break
            sleep 0.2
        done
        curl -fsS "http://127.0.0.1:$gw_port/_admin/health" >/dev/null 2>&1 || die "the local gateway did not start (see $gwlog)"
    fi
    if [[ -f "$REPO_ROOT/scripts/configure_demo_gateway.py" ]]; then
        odoo_shell_script "$db" "$REPO_ROOT/scripts/configure_demo_gateway.py" \
            "http://127.0.0.1:$gw_port" "$gwdb" "http://localhost:$odoo_port" \
            || die "could not configure the demo gateway in $db"
    fi
}

odoo_shell_script() {
    # odoo_shell_script DB SCRIPT [ARGS...]: runs SCRIPT in `odoo-bin shell` (env is defined).
    local db="$1" script="$2"; shift 2
    # The subcommand comes first on odoo-bin's command line, before the options odoo_bin adds.
    SMS_EXT_SCRIPT_ARGS="$*" "$ODOO_VENV/bin/python" "$ODOO_PATH/odoo-bin" shell --addons-path="$(addons_path)" \
        --db_user="$DB_USER" ${PGHOST:+--db_host="$PGHOST"} ${PGPORT:+--db_port="$PGPORT"} \
        -d "$db" --no-http --log-level=warn <"$script"
}
