import pytest
from hypothesis import given
from hypothesis import strategies as st

from authms.errors import ValidationError
from templates.rendering import MASK, placeholders, render


def test_fills_every_placeholder_allowing_spaces_and_extra_variables():
    rendered = render(
        body="Hi {{ name }}, code {{code}}.",
        subject="For {{name}}",
        variables={"name": "Li", "code": "42", "x": "y"},
    )
    assert rendered.content == rendered.outbound_content == "Hi Li, code 42."
    assert rendered.subject == "For Li"


def test_reports_every_missing_variable_at_once_in_first_use_order():
    with pytest.raises(ValidationError) as error:
        render(body="{{b}} {{a}} {{b}}", subject="{{c}}", variables={})
    assert error.value.message == "Missing template variables: c, b, a."
    assert error.value.errors == {"variables": ["Missing template variables: c, b, a."]}


def test_sensitive_template_stores_masked_text_but_sends_the_real_one():
    rendered = render(body="Your code is {{code}}", variables={"code": "123456"}, sensitive=True)
    assert rendered.content == f"Your code is {MASK}"
    assert rendered.outbound_content == "Your code is 123456"


def test_text_without_placeholders_is_unchanged():
    assert render(body="{ {not} } {{ }}", variables={}).content == "{ {not} } {{ }}"


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text(max_size=20), min_size=1, max_size=5
    )
)
def test_rendering_uses_exactly_the_given_values(variables):
    body = " | ".join("{{" + name + "}}" for name in variables)
    assert render(body=body, variables=variables).content == " | ".join(variables.values())
    assert placeholders(body) == list(variables)
