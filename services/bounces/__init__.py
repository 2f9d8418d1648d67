"""The bounce receiver: inbound SMTP for the bounce domain, recording bounces and receipts."""
