"""Prism (``@stoplight/prism-cli``) serving Twilio's published OpenAPI description, as a real
process on a free loopback port, for the Twilio provider's tests.

``scripts/test`` installs Prism and the spec files (``ensure_prism`` in scripts/lib.sh, into
``SMS_EXT_NPM_DIR``, outside the repository); a missing Prism is an error, never a skip. Prism runs
with ``--errors``: a request the spec rejects (a missing ``To``, no Basic credentials, a wrong
type) is answered 422 (or 401) with the violations, instead of a mocked answer, so every request
our client builds is validated against the spec. Answers are the spec's examples: Prism keeps no
state.

Requests are validated with or without ``--errors`` (an invalid request is answered 422 either
way); ``--errors`` also turns an answer that contradicts the spec into a 500. Twilio's Pricing v1
description has such an example (prices as strings, ``"0.05"``, where its schema says number: the
live API sends strings), so the pricing Prism runs without it (``errors=False``).
"""

import os
import re
import socket
import subprocess
import tempfile
import time

from .common import stop_process
from .kannel_process import free_port

NPM_DIR = os.environ.get("SMS_EXT_NPM_DIR", "/opt/sms-ext-npm")
PRISM = os.path.join(NPM_DIR, "node_modules", ".bin", "prism")
SPEC_DIR = os.path.join(NPM_DIR, "node_modules", "@twilio-alpha", "mcp", "twilio-oai", "spec", "json")
API_SPEC = os.path.join(SPEC_DIR, "twilio_api_v2010.json")
PRICING_SPEC = os.path.join(SPEC_DIR, "twilio_pricing_v1.json")
# "[HTTP SERVER] post /2010-04-01/Accounts/AC.../Messages.json (info sign)  info      Request received"
RECEIVED_RE = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) \S+\s+info\s+Request received")


class PrismProcess:
    """``prism mock [--errors] <spec>`` on 127.0.0.1:<free port>; :attr:`url` is its base URL."""

    def __init__(self, spec, errors=True):
        for path in (PRISM, spec):
            if not os.path.exists(path):
                raise AssertionError(f"{path} is missing: scripts/test installs Prism and Twilio's OpenAPI "
                                     f"description (ensure_prism in scripts/lib.sh, SMS_EXT_NPM_DIR={NPM_DIR})")
        self.spec, self.errors = spec, errors
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="prism_", suffix=".log", delete=False)  # noqa: SIM115
        self.process = None

    def start(self, timeout=90):
        self.process = subprocess.Popen(  # noqa: S603 - our own test tool, fixed arguments
            [PRISM, "mock", *(["--errors"] if self.errors else []), "-h", "127.0.0.1", "-p", str(self.port),
             self.spec],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"Prism exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"Prism did not listen on {self.port} within {timeout} s:\n{self.tail()}")

    def tail(self, size=4000):
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-size:]

    def received(self):
        """``(method, path)`` of every request Prism received so far, in order."""
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return RECEIVED_RE.findall(handle.read())

    def validated(self):
        """How many requests Prism found valid against the spec so far."""
        with open(self.log.name, encoding="utf-8", errors="replace") as handle:
            return handle.read().count("The request passed the validation rules")

    def stop(self):
        if self.process is not None:
            stop_process(self.process, grace=5)
            self.process = None
        self.log.close()
        os.unlink(self.log.name)
