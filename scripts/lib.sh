# shellcheck shell=bash
# Shared helpers for scripts/serve, scripts/test and .ci/run. Source it; do not run it.
#
# Where things live (override with environment variables):
#   ODOO_PATH   Odoo 17 source tree              default /opt/odoo17 (fetched when missing)
#   ODOO_REPO   where to fetch it from           default https://github.com/odoo/odoo.git
#   ODOO_REF    branch (or tag) to fetch         default 17.0
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
# When $ODOO_PATH holds no Odoo tree, it is fetched: a shallow clone of $ODOO_REF from $ODOO_REPO,
# made in a temporary sibling directory and moved into place only once complete, so that an
# interrupted clone never leaves a tree that looks valid. Never inside this repository, and never
# over a directory that holds something else.
ODOO_REPO="${ODOO_REPO:-https://github.com/odoo/odoo.git}"
ODOO_REF="${ODOO_REF:-17.0}"
ODOO_REACH_TIMEOUT="${ODOO_REACH_TIMEOUT:-30}"     # seconds to reach $ODOO_REPO and find $ODOO_REF
ODOO_CLONE_TIMEOUT="${ODOO_CLONE_TIMEOUT:-3600}"   # seconds for the whole clone

is_odoo_tree() { [[ -f "$1/odoo-bin" && -f "$1/odoo/release.py" ]]; }
odoo_series() { sed -n "s/^version_info = (\([0-9]*\), \([0-9]*\).*/\1.\2/p" "$1/odoo/release.py"; }

require_odoo() {
    if ! is_odoo_tree "$ODOO_PATH"; then
        fetch_odoo
    fi
    local series; series=$(odoo_series "$ODOO_PATH")
    [[ "$series" == "17.0" ]] || die "$ODOO_PATH holds Odoo $series, this addon needs Odoo 17.0."
}

odoo_fetch_failed() {  # odoo_fetch_failed WHY [GIT_OUTPUT]: the "what to do" message, then exit 1
    {
        echo "ERROR: no Odoo 17 source tree at $ODOO_PATH, and it could not be fetched:"
        echo "  $1"
        [[ -n "${2:-}" ]] && sed -n '/./{s/^/      /;p}' <<<"$2" | tail -n 3
        cat <<MSG
  What to do, any one of:
    - give this machine access to $ODOO_REPO and run the same command again;
    - fetch Odoo elsewhere and put the tree at $ODOO_PATH, e.g.
          git clone --depth 1 --branch $ODOO_REF $ODOO_REPO $ODOO_PATH
    - point ODOO_PATH at an existing Odoo 17.0 tree, or ODOO_REPO (and ODOO_REF) at a reachable
      copy of Odoo's repository (see README.md, "Prerequisites").
MSG
    } >&2
    exit 1
}

fetch_odoo() {
    local target repo_root
    target=$(realpath -m -- "$ODOO_PATH")
    repo_root=$(realpath -- "$REPO_ROOT")
    if [[ "$target" == "$repo_root" || "$target" == "$repo_root"/* ]]; then
        die "ODOO_PATH=$ODOO_PATH is inside this repository ($repo_root): put Odoo outside it (default /opt/odoo17)."
    fi
    if [[ -e "$target" && ! -d "$target" ]]; then
        die "ODOO_PATH=$ODOO_PATH exists but is not a directory: remove it or point ODOO_PATH elsewhere."
    fi
    if [[ -d "$target" && -n "$(ls -A -- "$target")" ]]; then
        die "ODOO_PATH=$ODOO_PATH is not empty but holds no Odoo tree (no odoo-bin, odoo/release.py); it is left untouched: empty it, or point ODOO_PATH at an Odoo 17.0 tree or at a new directory."
    fi
    local parent; parent=$(dirname -- "$target")
    mkdir -p -- "$parent" 2>/dev/null && [[ -w "$parent" ]] \
        || die "cannot write to $parent to fetch Odoo into $ODOO_PATH: run as a user who can, or set ODOO_PATH (and ODOO_VENV) to a writable place, e.g. \$HOME/odoo17."
    command -v git >/dev/null || ensure_system_packages git

    log "no Odoo tree at $ODOO_PATH: fetching Odoo $ODOO_REF from $ODOO_REPO"
    # Fail fast where the network cannot reach the repository: a bounded look-up of the branch.
    local out rc=0
    out=$(GIT_TERMINAL_PROMPT=0 timeout "$ODOO_REACH_TIMEOUT" \
          git ls-remote --exit-code --heads --tags "$ODOO_REPO" "$ODOO_REF" 2>&1) || rc=$?
    case $rc in
        0) ;;
        2) odoo_fetch_failed "$ODOO_REPO has no branch or tag $ODOO_REF." ;;
        124) odoo_fetch_failed "no answer from $ODOO_REPO within ${ODOO_REACH_TIMEOUT}s (no network access?)." ;;
        *) odoo_fetch_failed "git could not reach $ODOO_REPO (no network access?):" "$out" ;;
    esac

    # The clone goes to a sibling named after this process; leftovers of runs that were killed
    # (their process is gone) are removed first.
    local base tmp start stale
    base=$(basename -- "$target")
    for stale in "$parent/.$base.fetching."*; do
        [[ -d "$stale" && "${stale##*.}" =~ ^[0-9]+$ ]] && ! kill -0 "${stale##*.}" 2>/dev/null \
            && rm -rf -- "$stale"
    done
    tmp="$parent/.$base.fetching.$$"
    rm -rf -- "$tmp"; mkdir -- "$tmp"
    local progress=--quiet; [[ -t 2 ]] && progress=--progress
    log "cloning (shallow: about 200 MB to download, 1.1 GB on disk)"
    start=$SECONDS
    # In the background so that Ctrl-C or a TERM is acted on at once: `timeout` (in its own
    # process group) passes the signal to git and its helpers, then the partial clone is removed.
    # A transfer slower than 1 kB/s for 60 s, or longer than ODOO_CLONE_TIMEOUT, is abandoned.
    GIT_TERMINAL_PROMPT=0 GIT_HTTP_LOW_SPEED_LIMIT=1000 GIT_HTTP_LOW_SPEED_TIME=60 \
        timeout "$ODOO_CLONE_TIMEOUT" git clone "$progress" --depth 1 --branch "$ODOO_REF" -- "$ODOO_REPO" "$tmp/odoo" &
    local pid=$! stopped=""
    # A signal only stops the clone here; the clean-up below then runs as for any failure.
    # shellcheck disable=SC2064
    trap "stopped=1; kill $pid 2>/dev/null" INT TERM HUP
    rc=0; wait "$pid" || rc=$?
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
    trap - INT TERM HUP
    if [[ -n "$stopped" ]]; then
        rm -rf -- "$tmp"
        die "interrupted while fetching Odoo; nothing was left at $ODOO_PATH."
    fi
    if ((rc == 0)) && ! is_odoo_tree "$tmp/odoo"; then
        rm -rf -- "$tmp"
        odoo_fetch_failed "$ODOO_REPO at $ODOO_REF is not an Odoo tree (no odoo-bin, odoo/release.py)."
    fi
    if ((rc == 0)) && [[ "$(odoo_series "$tmp/odoo")" != "17.0" ]]; then
        local got; got=$(odoo_series "$tmp/odoo"); rm -rf -- "$tmp"
        odoo_fetch_failed "$ODOO_REPO at $ODOO_REF is Odoo ${got:-of unknown version}, this addon needs Odoo 17.0."
    fi
    if ((rc != 0)); then
        rm -rf -- "$tmp"
        odoo_fetch_failed "git clone of $ODOO_REPO ($ODOO_REF) failed after $((SECONDS - start))s (exit $rc); nothing was left at $ODOO_PATH."
    fi
    # mv -T renames over an empty directory and refuses a non-empty one (another run may have won).
    if ! mv -T -- "$tmp/odoo" "$target" 2>/dev/null; then
        rm -rf -- "$tmp"
        is_odoo_tree "$target" || die "could not move the fetched Odoo tree into $ODOO_PATH."
        log "another run fetched Odoo into $ODOO_PATH meanwhile: using it"
        return 0
    fi
    rmdir -- "$tmp"
    local took=$((SECONDS - start))
    log "fetched Odoo $ODOO_REF into $ODOO_PATH in $((took / 60))m$((took % 60))s"
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
    local py="${PYTHON:-python3}"
    "$py" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), sys.version' 2>/dev/null \
        || die "$py is $("$py" --version 2>&1); Odoo 17 needs Python 3.10 to 3.12 (set PYTHON=...)."
    # A compiler and headers to build Odoo's psycopg2 and python-ldap (no wheels for them);
    # Debian's own Python keeps its headers and venv module in packages of their own.
    local pkgs=(build-essential libpq-dev libldap2-dev libsasl2-dev)
    [[ "$(command -v "$py")" == /usr/bin/* ]] && pkgs+=(python3-dev python3-venv)
    ensure_system_packages "${pkgs[@]}"
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
    # Debian's postgresql package also creates (and, with systemd, starts) the cluster 'main'.
    command -v psql >/dev/null || ensure_system_packages postgresql
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
        elif command -v sudo >/dev/null && id postgres >/dev/null 2>&1; then
            sudo -u postgres psql -q -c "CREATE ROLE \"$DB_USER\" LOGIN CREATEDB" >/dev/null \
                || die "could not create PostgreSQL role $DB_USER (sudo -u postgres psql failed)"
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

# Real Kannel for the Kannel provider's end-to-end tests: bearerbox and smsbox (kannel) and the
# SMSC simulator fakesmsc (kannel-extras). The tests start them on free ports; the packages' own
# service is not used.
ensure_kannel() {
    [[ -x /usr/sbin/bearerbox && -x /usr/sbin/smsbox && -x /usr/lib/kannel/test/fakesmsc ]] \
        || ensure_system_packages kannel kannel-extras
    [[ -x /usr/sbin/bearerbox && -x /usr/lib/kannel/test/fakesmsc ]] \
        || die "Kannel (bearerbox, smsbox, fakesmsc) is needed for the Kannel tests and could not be installed."
}

# Prism (Stoplight's OpenAPI mock and request validator) and Twilio's published OpenAPI
# description (twilio-oai's spec/json, shipped by @twilio-alpha/mcp) for the Twilio provider's
# tests, installed with npm into a cache folder outside the repository (SMS_EXT_NPM_DIR, exported
# for the tests). Pinned versions; installed only when missing.
PRISM_VERSION="5.16.0"
TWILIO_OAI_PACKAGE="@twilio-alpha/mcp@0.7.0"
export SMS_EXT_NPM_DIR="${SMS_EXT_NPM_DIR:-/opt/sms-ext-npm}"
ensure_prism() {
    local spec="$SMS_EXT_NPM_DIR/node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json"
    local prism="$SMS_EXT_NPM_DIR/node_modules/.bin/prism"
    if [[ -x "$prism" && -f "$spec" && -f "$SMS_EXT_NPM_DIR/.versions" \
          && "$(cat "$SMS_EXT_NPM_DIR/.versions")" == "$PRISM_VERSION $TWILIO_OAI_PACKAGE" ]]; then
        return 0
    fi
    command -v npm >/dev/null || ensure_system_packages nodejs npm
    command -v npm >/dev/null || die "npm is needed to install Prism for the Twilio tests and could not be installed."
    mkdir -p "$SMS_EXT_NPM_DIR" || die "cannot create $SMS_EXT_NPM_DIR (set SMS_EXT_NPM_DIR to a writable folder)"
    log "installing @stoplight/prism-cli@$PRISM_VERSION and $TWILIO_OAI_PACKAGE (Twilio's OpenAPI files) into $SMS_EXT_NPM_DIR"
    npm install --no-audit --no-fund --loglevel=error --prefix "$SMS_EXT_NPM_DIR" \
        "@stoplight/prism-cli@$PRISM_VERSION" "$TWILIO_OAI_PACKAGE" >/dev/null \
        || die "npm could not install Prism and Twilio's OpenAPI description (needed by the Twilio tests)."
    [[ -x "$prism" && -f "$spec" ]] \
        || die "Prism or Twilio's OpenAPI description is missing from $SMS_EXT_NPM_DIR after npm install."
    echo "$PRISM_VERSION $TWILIO_OAI_PACKAGE" > "$SMS_EXT_NPM_DIR/.versions"
}

# The local SMS gateway (gateway/), started in the background for the demo database; it
# stops with the shell that started it. Configures the demo gateway record when the addon has
# one (sms.gateway) so that mailings sent from the demo go to it.
start_demo_gateway() {
    local db="$1" gw_port="$2" odoo_port="$3"
    local gw="$REPO_ROOT/gateway/sms_gateway.py"
    [[ -f "$gw" ]] || { log "no local gateway in this checkout yet: skipping"; return 0; }
    command -v curl >/dev/null || ensure_system_packages curl
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
