"""The transactional outbox: messages written with the change that caused them, delivered by a worker."""
