"""Sign-in and sign-out (Django's auth views with the console's templates)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views

from siyu.accounts.forms import LoginForm


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): the top bar's sign-out button is a small form."""
