import pytest

from communication.masking import mask_email, mask_phone
from communication.models import Status, can_transition, statuses_that_may_become

FORWARD = [
    ("pending", "sent"),
    ("pending", "failed"),
    ("pending", "delivered"),
    ("sent", "delivered"),
    ("sent", "failed"),
]


@pytest.mark.parametrize("current,new", FORWARD)
def test_forward_moves_are_allowed(current, new):
    assert can_transition(current, new)


@pytest.mark.parametrize(
    "current,new",
    [(c, n) for c in Status.values for n in Status.values if (c, n) not in FORWARD],
)
def test_every_other_move_is_refused(current, new):
    # Includes the important one: a late "sent" never overwrites "delivered".
    assert not can_transition(current, new)


def test_statuses_that_may_become_matches_the_rule():
    assert set(statuses_that_may_become("delivered")) == {"pending", "sent"}
    assert set(statuses_that_may_become("sent")) == {"pending"}


@pytest.mark.parametrize(
    "stored,shown",
    [
        ("+8613800138000", "138****8000"),
        ("+447911123456", "+44 791****3456"),
        ("+8612345", "****45"),
        ("+12015550123", "+1 201****0123"),
        ("not a number 12345678", "123****5678"),
    ],
)
def test_phone_masking(stored, shown):
    assert mask_phone(stored) == shown


@pytest.mark.parametrize("stored,shown", [("zhang@example.com", "z***@example.com"), ("x", "x***")])
def test_email_masking(stored, shown):
    assert mask_email(stored) == shown
