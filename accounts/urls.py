from django.urls import path

from accounts import api, keys_api, views

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/tokens/", views.api_tokens, name="api_tokens"),
    path("profile/sessions/end/", views.sessions_end_others, name="sessions_end_others"),
    path("profile/avatar/remove/", views.avatar_remove, name="avatar_remove"),
    path("users/<int:user_id>/avatar/", views.avatar, name="avatar"),
    path("api/me/", api.me, name="api_me"),
    path("api/users/", api.users, name="api_users"),
    path("api/users/<str:username>/", api.user_profile, name="api_user_profile"),
    path("api/keys/", keys_api.own_key, name="api_own_key"),
    path("api/keys/<str:username>/", keys_api.public_key, name="api_public_key"),
]
