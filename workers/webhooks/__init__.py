"""The webhook dispatcher: delivers due webhook deliveries of every tenant."""
