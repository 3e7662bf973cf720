from django import forms
from django.utils.translation import gettext_lazy as _


class SignInForm(forms.Form):
    username = forms.CharField(label=_("Username"), max_length=150)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput, max_length=4096)
    code = forms.CharField(
        label=_("MFA code"),
        required=False,
        max_length=32,
        help_text=_("The 6-digit code of your authenticator app, or a recovery code. Empty if you do not use MFA."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
