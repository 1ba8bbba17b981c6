"""Sign up in a real browser, upload a profile picture, and see it in the header."""

import io

from PIL import Image
from playwright.sync_api import expect


def png_bytes(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), colour).save(out, format="PNG")
    return out.getvalue()


def test_sign_up_and_upload_profile_picture(page, live_url, artifacts_dir, django_user_model):
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_url}/accounts/signup/")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_label("Password", exact=True).fill("a long and unusual passphrase")
    page.get_by_label("Password (again)").fill("a long and unusual passphrase")
    page.get_by_role("button", name="Sign Up").click()
    expect(page.locator("#header-avatar")).to_be_visible()
    default_src = page.locator("#header-avatar").get_attribute("src")

    page.goto(f"{live_url}/profile/")
    page.get_by_label("New picture").set_input_files({"name": "me.png", "mimeType": "image/png", "buffer": png_bytes()})
    page.get_by_role("button", name="Upload picture").click()
    expect(page.get_by_text("Your profile picture was updated.")).to_be_visible()
    header = page.locator("#header-avatar")
    assert header.get_attribute("src") != default_src
    # The header shows the processed picture: it loaded, and it is the square size we encode.
    # (The new src starts loading only now; wait for it rather than read a half-loaded image.)
    expect(header).to_have_js_property("complete", True)
    size = header.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
    assert size == [True, 256, 256]
    page.screenshot(path=str(artifacts_dir / "profile-picture.png"), full_page=True)

    user = django_user_model.objects.get(username="carol")
    assert user.avatar.name.endswith(".webp")
    assert errors == []
