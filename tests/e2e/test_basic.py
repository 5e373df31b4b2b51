"""Smoke test: one message through smtplib lands in the queue byte for byte."""
import smtplib

from conftest import strip_received


def test_smtplib_one_message(hatod):
    body = b"Subject: hello\r\n\r\nfirst line\r\n.leading dot\r\n"
    with smtplib.SMTP(hatod.host, hatod.port) as s:
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert s.sendmail("alice@localhost", ["bob@localhost"], body) == {}
    [(env, msg)] = hatod.queued()
    assert env["sender"] == "<alice@localhost>"
    assert env["rcpt"] == ["<bob@localhost>"]
    assert strip_received(msg) == body
