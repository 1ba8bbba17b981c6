from django.urls import path

from moderation import api, views

urlpatterns = [
    path("api/blocks/", api.blocks, name="api_blocks"),
    path("api/blocks/<str:username>/", api.block, name="api_block"),
    path("api/reports/", api.reports, name="api_reports"),
    path("profile/blocks/<str:username>/remove/", views.block_remove, name="block_remove"),
]
