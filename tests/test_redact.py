"""The one place secrets are masked: registered tokens, URL credentials, auth headers."""

from analyzer.redact import MASK, redact, register


def test_registered_secrets_urls_and_headers_are_masked():
    register("glpat-abcdefghij0123")
    text = ("push to https://oauth2:glpat-abcdefghij0123@gitlab.example/x.git failed; header "
            "Authorization: Bearer sometoken123 and PRIVATE-TOKEN: other456; plain glpat-abcdefghij0123")
    out = redact(text)
    assert "glpat-abcdefghij0123" not in out and "sometoken123" not in out and "other456" not in out
    assert out.count(MASK) == 4 and "gitlab.example/x.git" in out
    assert redact("nothing secret here: https://gitlab.example/x.git") == "nothing secret here: https://gitlab.example/x.git"
    register("")  # nothing to register: no effect
    register("ab")  # too short to mask safely
    assert redact("ab cd") == "ab cd"
