from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.mfa.base.forms import AuthenticateForm as AllauthAuthenticateForm
from allauth.mfa.models import Authenticator
from django import forms

from accounts.models import User


class LoginForm(AllauthLoginForm):
    """allauth's login form with a label that says what to type."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        login = self.fields["login"]
        login.label = "Username or email"
        # "username" is the autofill token for any account identifier, email included.
        login.widget.attrs.update({"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "status", "bio"]
        widgets = {"bio": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"status": "A short line others see next to your name."}


class AvatarForm(forms.Form):
    avatar = forms.FileField(
        label="New picture",
        help_text="JPEG, PNG, GIF or WebP. It is cropped to a square and stripped of metadata.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}),
    )


class AuthenticateForm(AllauthAuthenticateForm):
    """The two-factor step: one box takes an authenticator code or a recovery code."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        code = self.fields["code"]
        code.label = "Authenticator or recovery code"
        code.help_text = "The 6-digit code from your authenticator app, or one of your recovery codes."
        code.widget.attrs.update({"placeholder": "123456", "autocapitalize": "none", "spellcheck": "false"})

    @property
    def has_security_key(self) -> bool:
        """Whether to offer "Use a security key": only to people who added one."""
        return Authenticator.objects.filter(user=self.user, type=Authenticator.Type.WEBAUTHN).exists()
