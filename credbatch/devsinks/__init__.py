"""Local stand-ins for the outside world: an SMTP sink and a Twilio-style SMS sink.

Both store what they receive under a directory and can be told to fail, so tests and
``make run`` exercise the real SMTP and HTTP paths without sending anything anywhere.
"""
