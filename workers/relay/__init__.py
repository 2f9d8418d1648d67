"""The outbox relay process: PENDING records to RabbitMQ jobs, with publisher confirms."""
