from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.incident_list, name="incidents"),
    path("login/", views.login_page, name="login"),
    path("logout/", views.logout_page, name="logout"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident"),
    path("incidents/<int:incident_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("incidents/<int:incident_id>/resolve/", views.resolve, name="resolve"),
    path("incidents/<int:incident_id>/escalate/", views.escalate, name="escalate"),
]
