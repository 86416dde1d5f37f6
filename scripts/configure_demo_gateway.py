# Runs inside `odoo-bin shell` (``env`` is defined), through scripts/lib.sh:
#     odoo_shell_script DB scripts/configure_demo_gateway.py GATEWAY_URL GATEWAY_SQLITE ODOO_URL
# (the arguments arrive in $SMS_EXT_SCRIPT_ARGS). Called by scripts/serve once the local gateway runs.
#
# Points the demo gateway record ("Local gateway") at the running local gateway and creates its account
# there (token, webhook secret, inbound URL, credits and prices). Idempotent: an existing account keeps
# its credits and prices; only its webhook secret and inbound URL follow the Odoo record. Then refreshes
# the record's balance and prices from the gateway and commits.
# ruff: noqa: F821 - env comes from odoo-bin shell
import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

from odoo.modules.module import get_module_path

DEMO_TOKEN = "demo-token"  # noqa: S105 - the documented token of the local demo account
DEMO_CREDITS = 500
DEMO_DEFAULT_PRICE = 0.05
DEMO_COUNTRY_PRICES = {
    "BE": 0.06, "CH": 0.065, "DE": 0.07, "ES": 0.05, "FR": 0.045, "GB": 0.04, "IT": 0.055, "NL": 0.065, "PT": 0.05,
}


def _log(message):
    print(f"==> configure_demo_gateway: {message}", file=sys.stderr, flush=True)


def _gateway_cli(script, sqlite_path, *args):
    completed = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, script, *args, "--db", sqlite_path],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if completed.returncode:
        raise SystemExit(f"sms_gateway.py {args[0]} failed: {completed.stderr or completed.stdout}")
    return completed.stdout


def configure(env, gateway_url, sqlite_path, odoo_url):
    script = os.path.join(os.path.dirname(get_module_path("sms_marketing_ext")), "gateway", "sms_gateway.py")
    if not os.path.isfile(script):
        raise SystemExit(f"the local gateway is missing: {script}")

    # Webhook URLs are built on web.base.url: make it this Odoo when it is unset or a local address.
    params = env["ir.config_parameter"].sudo()
    base_url = params.get_param("web.base.url") or ""
    if not base_url or (urlsplit(base_url).hostname in ("localhost", "127.0.0.1") and base_url.rstrip("/") != odoo_url):
        params.set_param("web.base.url", odoo_url)
        _log(f"web.base.url set to {odoo_url}")

    Gateway = env["sms.gateway"].sudo().with_context(active_test=False)
    gateway = env.ref("sms_marketing_ext.sms_demo_gateway_local", raise_if_not_found=False)
    if not gateway:
        gateway = Gateway.search([("name", "=", "Local gateway"), ("provider", "=", "jsonrpc")], limit=1)
    if not gateway:
        gateway = Gateway.create({"name": "Local gateway", "provider": "jsonrpc", "base_url": gateway_url,
                                  "account_token": DEMO_TOKEN, "is_default": True})
        _log(f"created the gateway record {gateway.name} ({gateway.id})")
    gateway = gateway.sudo()
    vals = {"base_url": gateway_url, "active": True}
    if not gateway.account_token:
        vals["account_token"] = DEMO_TOKEN
    gateway.write(vals)
    token = gateway.account_token

    accounts = json.loads(_gateway_cli(script, sqlite_path, "accounts", "--json") or "[]")
    account = next((acc for acc in accounts if acc["token"] == token), None)
    common = ["--token", token, "--webhook-secret", gateway.webhook_secret,
              "--inbound-url", gateway._webhook_url("inbound")]
    if account:
        # Keep the credits and prices it has (spent or topped up since): only the callbacks follow Odoo.
        _gateway_cli(script, sqlite_path, "account-create", "--name", account["name"],
                     "--credits", str(account["credits"]), *common)
        _log(f"gateway account '{account['name']}' kept ({account['credits']} credits)")
    else:
        prices = [arg for code, price in sorted(DEMO_COUNTRY_PRICES.items())
                  for arg in ("--country-price", f"{code}={price}")]
        _gateway_cli(script, sqlite_path, "account-create", "--name", "Demo", "--credits", str(DEMO_CREDITS),
                     "--price", str(DEMO_DEFAULT_PRICE), *prices, *common)
        _log(f"gateway account 'Demo' created with {DEMO_CREDITS} credits")

    balance = gateway._refresh_from_gateway()
    env.cr.commit()  # pylint: disable=invalid-commit
    _log(f"{gateway.name} -> {gateway_url}: {balance} credits, {len(gateway.price_ids)} country prices")


_args = os.environ.get("SMS_EXT_SCRIPT_ARGS", "").split()
if len(_args) != 3:
    raise SystemExit("SMS_EXT_SCRIPT_ARGS must be: <gateway base url> <gateway sqlite path> <odoo url>")
configure(env, _args[0], _args[1], _args[2].rstrip("/"))
