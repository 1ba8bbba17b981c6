"""allauth's pages in the app's frame: labelled fields, no sideways scrolling on a phone, keyboard sign-in."""

from playwright.sync_api import expect

from tests.conftest import PASSWORD

# Each visible field must have a <label> (or an aria-label) a screen reader can announce.
UNLABELLED_FIELDS = """() => [...document.querySelectorAll('#main input, #main textarea, #main select')]
  .filter((field) => field.type !== 'hidden' && field.offsetParent !== null)
  .filter((field) => field.labels.length === 0 && !field.getAttribute('aria-label'))
  .map((field) => field.outerHTML)"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def check_page(page, path: str, artifacts_dir):
    if path:
        page.goto(path)
    assert page.evaluate(UNLABELLED_FIELDS) == [], page.url
    assert page.evaluate(OVERFLOW) <= 0, f"{page.url} scrolls sideways at {page.viewport_size['width']} px"
    name = page.url.split("/accounts/", 1)[1].strip("/").replace("/", "-") or "index"
    page.screenshot(path=str(artifacts_dir / f"account-{name}-390.png"), full_page=True)


def test_account_pages_are_labelled_and_fit_a_phone(browser, live_url, alice, artifacts_dir):
    context = browser.new_context(base_url=live_url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))

    for path in ["/accounts/signup/", "/accounts/password/reset/", "/accounts/login/"]:
        check_page(page, path, artifacts_dir)

    # Sign in with the keyboard alone: type, Tab to the password, Enter to submit.
    page.get_by_label("Username or email").focus()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#header-avatar")).to_be_visible()

    check_page(page, "/accounts/2fa/", artifacts_dir)
    page.goto("/accounts/2fa/totp/activate/")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_label("Authenticator secret")).to_have_attribute("readonly", "")
    check_page(page, "", artifacts_dir)
    context.close()
    assert errors == []
