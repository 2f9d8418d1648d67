"""After the send: VERP envelope senders, bounce and receipt parsing, delivery states."""
