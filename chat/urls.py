from django.urls import path

from chat import api, attachments_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/conversations/", api.conversations, name="api_conversations"),
    path("api/conversations/<int:conversation_id>/", api.conversation, name="api_conversation"),
    path("api/conversations/<int:conversation_id>/join/", api.conversation_join, name="api_conversation_join"),
    path("api/conversations/<int:conversation_id>/members/", api.conversation_members, name="api_conversation_members"),
    path(
        "api/conversations/<int:conversation_id>/members/<str:username>/",
        api.conversation_member,
        name="api_conversation_member",
    ),
    path(
        "api/conversations/<int:conversation_id>/messages/",
        api.conversation_messages,
        name="api_conversation_messages",
    ),
    path("api/conversations/<int:conversation_id>/read/", api.conversation_read, name="api_conversation_read"),
    path("api/channels/", api.channels, name="api_channels"),
    path("api/search/", api.message_search, name="api_search"),
    path("api/messages/<int:message_id>/preview/", api.message_preview, name="api_message_preview"),
    path("api/attachments/", attachments_views.attachments, name="api_attachments"),
    path("api/attachments/<int:attachment_id>/file/", attachments_views.attachment_file, name="api_attachment_file"),
    path(
        "api/attachments/<int:attachment_id>/thumbnail/",
        attachments_views.attachment_thumbnail,
        name="api_attachment_thumbnail",
    ),
]
