from django.dispatch import Signal

# Sent after the ban is committed, with user_id; the chat app closes that user's sockets.
user_banned = Signal()

# Sent after a changed public key (a key reset) is committed, with user_id, public_key and
# previous_public_key; the chat app can tell that user's contacts "X's key changed".
user_key_changed = Signal()
