"""Invitation delivery: email over SMTP and SMS through a Twilio-style HTTP API."""
