"""Example bots built on the client library (see docs/client.md)."""
