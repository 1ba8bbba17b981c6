"""The Chatterbox desktop app (Tkinter): `python -m client.desktop`."""
