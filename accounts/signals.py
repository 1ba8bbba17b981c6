from django.dispatch import Signal

# Sent after the ban is committed, with user_id; the chat app closes that user's sockets.
user_banned = Signal()

# Sent after a new public key (the first one, or a key reset) is committed, with user_id,
# public_key and previous_public_key (None for the first key); the chat app tells that user's
# contacts: "X's key changed", or that X can now be written to.
user_key_changed = Signal()
