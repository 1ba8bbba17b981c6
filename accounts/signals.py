from django.dispatch import Signal

# Sent after the ban is committed, with user_id; the chat app closes that user's sockets.
user_banned = Signal()
