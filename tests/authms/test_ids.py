from authms.ids import new_ids


def test_ids_minted_together_sort_in_order_and_share_the_timestamp():
    ids = new_ids("log", 1000)
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert len({value[4:14] for value in ids}) == 1  # one millisecond prefix


def test_neighbouring_ids_are_not_guessable_from_each_other():
    """A counter from one random start made every other id of a batch known from one."""
    from authms.ids import _CROCKFORD

    def body(value):
        number = 0
        for char in value[14:]:
            number = number * 32 + _CROCKFORD.index(char)
        return number

    ids = new_ids("log", 200)
    gaps = {body(b) - body(a) for a, b in zip(ids, ids[1:], strict=False)}
    assert 1 not in gaps and min(gaps) > 2**40
