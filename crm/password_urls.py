"""Changing a password, and resetting a forgotten one by e-mail: Django's views, our pages.

The names are Django's own (`password_reset_done` and so on), which its views redirect to.
"""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

PAGE = "registration/password_page.html"


def page(view, heading, **options):
    return view.as_view(template_name=PAGE, extra_context={"heading": heading}, **options)


urlpatterns = [
    path("password/change/", page(auth_views.PasswordChangeView, _("Change your password")),
         name="password_change"),
    path("password/change/done/",
         page(auth_views.PasswordChangeDoneView, _("Your password was changed")),
         name="password_change_done"),
    path("password/reset/", page(
        auth_views.PasswordResetView, _("Forgot your password?"),
        email_template_name="registration/password_reset_email.txt",
        subject_template_name="registration/password_reset_subject.txt",
    ), name="password_reset"),
    # The admin's login page offers "Forgotten your password?" when this name exists.
    path("admin/password_reset/", RedirectView.as_view(pattern_name="password_reset"),
         name="admin_password_reset"),
    path("password/reset/sent/", page(auth_views.PasswordResetDoneView, _("Check your e-mail")),
         name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/",
         page(auth_views.PasswordResetConfirmView, _("Choose a new password")),
         name="password_reset_confirm"),
    path("password/reset/done/",
         page(auth_views.PasswordResetCompleteView, _("Your password was reset")),
         name="password_reset_complete"),
]
