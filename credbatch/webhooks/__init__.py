"""Webhooks: endpoints, their secrets, event signing and the address rules for delivery."""
