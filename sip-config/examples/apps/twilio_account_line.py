"""An account line written as for Twilio, with Twilio's own helper library: VoiceResponse
writes every reply, RequestValidator checks the IVR's X-Twilio-Signature on every request.
The PIN is gathered secret and checked by <Verify> (our two extensions), so it never comes here.

Usage: twiml_app.py PORT AUTH_TOKEN LOG   (LOG gets one JSON line per request)
"""
import io
import json
import math
import sys
import wave
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

PORT, TOKEN, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
validator = RequestValidator(TOKEN)


ACCOUNTS = {}  # CallSid -> the account its caller keyed


def pin_gather(response, question):
    """The PIN, gathered as secret (our extension to TwiML): the IVR keeps the digits and
    <Verify> checks them; this app is never sent them."""
    gather = Gather(num_digits=4, action="/pin", timeout=8, secret="true", into="pin")
    gather.play(f"http://127.0.0.1:{PORT}/hello.wav")
    gather.say(question)
    response.append(gather)
    response.say("We did not get your PIN.")
    response.hangup()


def reply(path, params):
    response = VoiceResponse()
    if path == "/voice":
        gather = Gather(num_digits=5, action="/account", timeout=8)
        gather.play(f"http://127.0.0.1:{PORT}/hello.wav")
        gather.say("Please enter your five digit account number.")
        gather.play("enter_account")
        response.append(gather)
        response.say("We did not get your account.")
        response.hangup()
    elif path == "/account":
        ACCOUNTS[params["CallSid"]] = params["Digits"]
        pin_gather(response, "Now your four digit PIN.")
    elif path == "/pin":
        response.add_child("Verify", account=ACCOUNTS[params["CallSid"]], pin="pin", action="/verified")
    elif path == "/verified" and params.get("Verified") == "true":
        response.say(params.get("Greeting", "Welcome."))
        response.play("balance_is")
        response.pause(length=1)
        response.redirect("/goodbye")
    elif path == "/verified":
        pin_gather(response, "That PIN was wrong. Try again.")
    else:
        response.play("goodbye")
        response.hangup()
    return str(response)


def hello_wav():
    """Half a second of a 440 Hz tone, 8 kHz 16-bit mono: a recording the app hosts."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(4000))
        w.writeframes(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
    return out.getvalue()


class App(BaseHTTPRequestHandler):
    def do_GET(self):
        with open(LOG, "a") as log:
            log.write(json.dumps({"path": self.path, "method": "GET"}) + "\n")
        wav = hello_wav()
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(wav)))
        self.end_headers()
        self.wfile.write(wav)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        params = dict(parse_qsl(body, keep_blank_values=True))
        url = f"http://127.0.0.1:{PORT}{self.path}"
        valid = validator.validate(url, params, self.headers.get("X-Twilio-Signature", ""))
        with open(LOG, "a") as log:
            log.write(json.dumps({"path": self.path, "valid": valid, "params": params}) + "\n")
        twiml = reply(self.path, params).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(twiml)))
        self.end_headers()
        self.wfile.write(twiml)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), App).serve_forever()
