"""Real Kannel for the tests: bearerbox, smsbox and the SMSC simulator fakesmsc (Debian's ``kannel``
and ``kannel-extras``), started on free loopback ports with a configuration generated in a
temporary directory. ``scripts/test`` installs the packages when they are missing; a missing
Kannel is an error, never a skip.

Two fake SMSCs: ``mt`` receives what we send (its fakesmsc prints every message it gets), except
the numbers starting with :data:`UNROUTABLE_PREFIX` (no SMSC takes them: smsbox answers 403 "Not
routable"); ``mo`` is where a fakesmsc run injects a reply from a phone (inbound SMS).
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from .common import stop_process

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
# fakesmsc: "Got message 1: <sender receiver type data>". The fake SMSC protocol is line-based and
# sends a one-part GSM text raw: a text with a new line arrives as two "messages", the second one
# not of the form "sender receiver type data" (joined back by KannelProcess.received()).
GOT_RE = re.compile(r"Got message \d+: <(.*?)>\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d |\Z)", re.DOTALL)
MESSAGE_RE = re.compile(r"(\S+) (\+?\d+) (text|data|ucs-2|udh) (.*)", re.DOTALL)
# bearerbox's access log: "Sent SMS [SMSC:mt] ... [from:X] [to:Y] [flags:mclass:coding:mwi:compress:dlrmask] [msg:..."
SENT_RE = re.compile(r"Sent SMS \[SMSC:(?P<smsc>[^\]]*)\].*?\[from:(?P<from>[^\]]*)\] \[to:(?P<to>[^\]]*)\] "
                     r"\[flags:(?P<mclass>-?\d+):(?P<coding>-?\d+):")
SMSBOX_USER = "odoo"
SMSBOX_PASSWORD = "kannel-test-password"  # noqa: S105 - throw-away password of the test's own smsbox
# Receivers the mt SMSC refuses (denied-prefix): Kannel cannot route them.
UNROUTABLE_PREFIX = "+33750"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing():
    """The Kannel programs that are not installed (the tests need all of them)."""
    return [path for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]


class KannelProcess:
    """bearerbox + smsbox + a fakesmsc receiving on the ``mt`` SMSC; :meth:`stop` and :meth:`start`
    again keep the same ports and message store (what Kannel accepted survives a restart)."""

    def __init__(self, inbound_url):
        if missing():
            raise AssertionError(f"Kannel is not installed ({', '.join(missing())}): "
                                 "apt-get install kannel kannel-extras (scripts/test does it)")
        self.dir = tempfile.mkdtemp(prefix="kannel_test_")
        self.ports = {name: free_port() for name in ("admin", "smsbox", "mt", "mo", "sendsms")}
        self.sendsms_url = f"http://127.0.0.1:{self.ports['sendsms']}"
        self.inbound_url = inbound_url
        self.processes = {}
        self.password = SMSBOX_PASSWORD
        self.fakesmsc_logs = []
        self._marks = (0, 0)
        self._write_config()

    def _write_config(self):
        conf = f"""
group = core
admin-port = {self.ports['admin']}
admin-password = admin
admin-interface = 127.0.0.1
smsbox-port = {self.ports['smsbox']}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{self.dir}/bearerbox.log"
log-level = 1
access-log = "{self.dir}/access.log"
dlr-storage = internal
store-type = file
store-location = "{self.dir}/store"

group = smsc
smsc = fake
smsc-id = mt
port = {self.ports['mt']}
connect-allow-ip = 127.0.0.1
allowed-smsc-id = mt
denied-prefix = "{UNROUTABLE_PREFIX}"

group = smsc
smsc = fake
smsc-id = mo
port = {self.ports['mo']}
connect-allow-ip = 127.0.0.1
allowed-smsc-id = mo

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.ports['smsbox']}
sendsms-port = {self.ports['sendsms']}
sendsms-interface = 127.0.0.1
log-file = "{self.dir}/smsbox.log"
log-level = 1
mo-recode = true
http-request-retry = 10
http-queue-delay = 1
# Delivery reports and replies posted to Odoo a few at a time (Odoo's test server serialises them).
max-pending-requests = 4

group = sendsms-user
username = {SMSBOX_USER}
password = {self.password}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{self.inbound_url}&from=%p&to=%P&text=%a&at=%T"
"""
        self.conf = os.path.join(self.dir, "kannel.conf")
        with open(self.conf, "w", encoding="utf-8") as file:
            file.write(conf)

    def _spawn(self, name, args):
        log = open(os.path.join(self.dir, f"{name}.out"), "ab")  # noqa: SIM115 - closed in stop()
        self.processes[name] = (subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,  # noqa: S603
                                                 stderr=subprocess.STDOUT, cwd=self.dir), log)

    def start(self):
        self._spawn("bearerbox", [BEARERBOX, self.conf])
        self._wait_port(self.ports["smsbox"], "bearerbox")
        self._spawn("smsbox", [SMSBOX, self.conf])
        self._wait_port(self.ports["sendsms"], "smsbox")
        log_path = os.path.join(self.dir, f"fakesmsc-{len(self.fakesmsc_logs)}.log")
        self.fakesmsc_logs.append(log_path)
        log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # -m 0: generates no message of its own, prints what it receives
        self.processes["fakesmsc"] = (subprocess.Popen(  # noqa: S603
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["mt"]), "-m", "0", "1 2 text unused"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir), log)
        self._wait_smsc_online("mt")
        return self

    def restart_smsbox(self, password):
        """Restart smsbox alone with another sendsms password (bearerbox keeps what it took): our
        calls are then refused with 403 "Authorization failed for sendsms", as after a password
        change on the Kannel side."""
        process, log = self.processes.pop("smsbox")
        stop_process(process, 10)
        log.close()
        self.password = password
        self._write_config()
        self._spawn("smsbox", [SMSBOX, self.conf])
        self._wait_port(self.ports["sendsms"], "smsbox")

    def stop(self):
        """Stop every box (SIGTERM: bearerbox writes its store), the SMSC simulator last."""
        for name in ("smsbox", "bearerbox", "fakesmsc"):
            process, log = self.processes.pop(name, (None, None))
            if process is None:
                continue
            stop_process(process, 10)
            log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _wait_port(self, port, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"Kannel's {what} did not listen on port {port}:\n{self.tail()}")

    def _wait_smsc_online(self, smsc_id, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(rf"^\s*{smsc_id}\[{smsc_id}\]\s+\S+\s+\(online", self.status(), re.MULTILINE):
                return
            time.sleep(0.2)
        raise AssertionError(f"SMSC {smsc_id} not online:\n{self.status()}\n{self.tail()}")

    def status(self):
        """bearerbox's status page (plain text)."""
        url = f"http://127.0.0.1:{self.ports['admin']}/status.txt?password=admin"
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5) as response:
                return response.read().decode(errors="replace")
        except OSError as exc:
            return f"no status: {exc}"

    def inject_mo(self, sender, receiver, text, timeout=15):
        """A phone ``sender`` replies ``text`` to ``receiver``: one MO message through the ``mo`` SMSC."""
        log_path = os.path.join(self.dir, "fakesmsc-mo.log")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603
                [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["mo"]), "-m", "1",
                 f"{sender} {receiver} text {text}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline:
                    with open(log_path, "rb") as read:
                        if b"sent message 1" in read.read():
                            time.sleep(0.5)  # let bearerbox take it before the SMSC goes away
                            return
                    time.sleep(0.1)
                raise AssertionError(f"fakesmsc did not send the MO message:\n{self.tail()}")
            finally:
                process.terminate()
                process.wait(10)

    def mark(self):
        """From now on, :meth:`received` and :meth:`sent_log` tell only what comes next."""
        self._marks = (0, 0)
        self._marks = (len(self.received()), len(self.sent_log()))

    def received(self):
        """Every message the ``mt`` fakesmsc got since :meth:`mark`, its concatenated parts joined:
        ``(sender, receiver, text, parts)`` in order of arrival of their first part."""
        messages, concatenated = [], {}
        for path in self.fakesmsc_logs:
            with open(path, encoding="utf-8", errors="replace") as log:
                content = log.read()
            for match in GOT_RE.finditer(content):
                message = MESSAGE_RE.fullmatch(match.group(1))
                if message is None:  # the next line of the previous one-part text
                    sender, receiver, text, parts = messages.pop()
                    messages.append((sender, receiver, f"{text}\n{match.group(1)}", parts))
                    continue
                sender, receiver, kind, data = message.groups()
                if kind == "udh":  # "<udh> data <payload>": one part of a concatenated message
                    udh, _data, payload = data.partition(" data ")
                    udh = _unquote(udh)
                    ref, total, seq = udh[3], udh[4], udh[5]
                    key = ("udh", path, sender, receiver, ref)
                    if key not in concatenated:
                        concatenated[key] = {}
                        messages.append(key)
                    concatenated[key][seq] = (_unquote(payload), total)
                else:
                    payload = _unquote(data) if kind in ("ucs-2", "data") else data.encode()
                    messages.append((sender, receiver, _decode(payload), 1))
        result = []
        for item in messages:
            if item in concatenated:
                parts = concatenated[item]
                payload = b"".join(parts[seq][0] for seq in sorted(parts))
                result.append((item[2], item[3], _decode(payload), len(parts)))
            else:
                result.append(item)
        return result[self._marks[0]:]

    def sent_log(self):
        """bearerbox's access-log lines of messages sent to an SMSC: ``{"smsc", "from", "to", "mclass", "coding"}``."""
        path = os.path.join(self.dir, "access.log")
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8", errors="replace") as log:
            return [match.groupdict() for match in map(SENT_RE.search, log) if match][self._marks[1]:]

    def tail(self, size=3000):
        out = []
        for name in ("bearerbox.log", "smsbox.log", "bearerbox.out", "smsbox.out"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, "rb") as log:
                    out.append(f"--- {name}\n" + log.read()[-size:].decode(errors="replace"))
        return "\n".join(out)


def _unquote(data):
    """fakesmsc's URL-encoding of bytes ('+' is a space)."""
    return urllib.parse.unquote_to_bytes(data.replace("+", "%20"))


def _decode(payload):
    """A payload as text: UCS-2 (UTF-16BE, surrogates joined) when it holds NUL bytes, else UTF-8."""
    return payload.decode("utf-16-be") if b"\x00" in payload else payload.decode("utf-8")
