"""Entry point for ``python3 -m gateway ...`` (same CLI as ``python3 gateway/sms_gateway.py ...``)."""

import sys

from gateway.cli import main

sys.exit(main())
