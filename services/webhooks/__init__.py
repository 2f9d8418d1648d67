"""The WebhookService process: a tenant's webhook endpoints and their deliveries."""
