"""A Python client for Chatterbox: end-to-end encryption that interoperates with the browser."""
