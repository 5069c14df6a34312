"""The bank login as a JSON application for the IVR's remote step (README: "A web application
drives the call"). Python's standard library only. It checks the IVR's X-IVR-Signature on every
request, asks for the account, has the IVR gather the PIN as a secret and verify it: this app
is never sent the PIN, only whether it was right.

Usage: bank_app.py PORT SECRET [LOG]   (LOG gets one JSON line per request)
"""
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT, SECRET = int(sys.argv[1]), sys.argv[2].encode()
LOG = sys.argv[3] if len(sys.argv) > 3 else None


def signed(header, body):
    """X-IVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>,
    at most five minutes old."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
        return False
    mac = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts.get("v1", ""))


def pin_gather(question):
    return {"gather": {"min_digits": 4, "max_digits": 4, "say": question,
                       "into": "pin", "secret": True, "action": "/pin"}}


def reply(path, request):
    if path == "/app":
        return [{"gather": {"max_digits": 10, "say": [{"prompt": "enter_account"}],
                            "into": "account", "action": "/account"}}]
    if path == "/account":
        return [pin_gather([{"prompt": "enter_pin"}])]
    if path == "/pin":
        return [{"verify": {"account": request["vars"].get("account", ""), "pin": "pin",
                            "action": "/verified"}}]
    if path == "/verified" and request.get("verified"):
        return [{"play": {"prompt": "balance_is"}}, {"say": {"amount": "1234.56"}},
                {"play": {"prompt": "goodbye"}}, {"hangup": {}}]
    if path == "/verified" and request.get("reason") == "wrong_credentials":
        return [pin_gather([{"prompt": "try_again"}, {"prompt": "enter_pin"}])]
    return [{"play": {"prompt": "goodbye"}}, {"hangup": {}}]


class App(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        valid = signed(self.headers.get("X-IVR-Signature", ""), body)
        request = json.loads(body) if valid else {}
        if LOG:
            with open(LOG, "a") as log:
                log.write(json.dumps({"path": self.path, "valid": valid, "request": request}) + "\n")
        if not valid:
            self.send_response(403)
            self.end_headers()
            return
        answer = json.dumps({"verbs": reply(self.path, request)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), App).serve_forever()
