"""Whatever arrives in the query string, the list endpoints answer 200 or 400 in the envelope."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PARAMS = {
    "/api/v1/communication/logs": ["page", "page_size", "user_id", "channel", "status", "batch_id", "created_after", "created_before"],
    "/api/v1/admin/communication/logs": ["page", "page_size", "user_id", "tenant_id", "recipient", "provider", "channel", "status", "created_after"],
    "/api/v1/notifications": ["page", "page_size", "unread_only", "type", "priority"],
}  # fmt: skip

values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "1",
            "true",
            "FALSE",
            "sms",
            "failed",
            "2026-02-30T25:00:00Z",
            "9" * 400,
            "é",
            "%",
            "[]",
        ]
    ),
)


@pytest.mark.parametrize("path", sorted(PARAMS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_query_strings_never_cause_a_500(client_for, ada, path, data):
    names = data.draw(st.lists(st.sampled_from(PARAMS[path]), max_size=4, unique=True))
    params = {name: data.draw(values) for name in names}
    response = client_for(ada).get(path, params)
    assert response.status_code in (200, 400), (params, response.content[:300])
    body = response.json()
    assert body["code"] == response.status_code and body["message"] and body["timestamp"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
BODIES = {
    "/api/v1/communication/bulk": ["channel", "content", "recipients", "subject", "template", "user_id", "variables"],
    "/api/v1/admin/notifications": ["audience", "user_id", "user_ids", "tenant_id", "type", "event_type", "priority", "title", "content", "action_url", "metadata"],
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(BODIES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_json_bodies_never_cause_a_500(client_for, ada, recording_provider, path, data):
    body = {
        name: data.draw(json_values)
        for name in data.draw(st.lists(st.sampled_from(BODIES[path]), unique=True))
    }
    response = client_for(ada).post(path, body, format="json")
    assert response.status_code < 500, (body, response.content[:300])
    assert response.json()["code"] == response.status_code


def test_non_standard_json_constants_are_400(client_for, ada):
    response = client_for(ada).post(
        "/api/v1/admin/notifications", '{"metadata": {"x": NaN}}', content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == 400
