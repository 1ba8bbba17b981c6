from django.dispatch import Signal

# Sent after the ban is committed, with user_id; the chat app closes that user's sockets.
user_banned = Signal()

# Sent after a new public key (the first one, or a key reset) is committed, with user_id,
# public_key and previous_public_key (None for the first key); the chat app tells that user's
# contacts: "X's key changed", or that X can now be written to.
user_key_changed = Signal()

# Sent after the commit that ends credentials, so the chat app closes the sockets opened with
# them (code 4401). Arguments, all optional: session_keys (sessions that ended), token_ids
# (revoked tokens), and user_id with keep_session_keys (every session socket of that user but
# those of the kept sessions, as after a password change).
signed_out = Signal()

# Sent after the commit when a signed-in session got a new key (Django cycles it when the
# password changes), with old_key and new_key: its sockets follow it to the new key.
session_moved = Signal()
