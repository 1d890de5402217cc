"""Items made ahead in a thread come in order, bring their maker's errors with them, and stop their maker when the
caller stops."""

import threading

import pytest

from clipforensics.channels import made_ahead


def test_items_made_ahead_come_in_order_from_another_thread():
    makers = []

    def numbers():
        for number in range(10):
            makers.append(threading.current_thread())
            yield number

    assert list(made_ahead(numbers(), 2, "numbers")) == list(range(10))
    assert all(maker is not threading.current_thread() for maker in makers)


def test_an_error_in_making_an_item_is_raised_in_its_place():
    def failing():
        yield 1
        raise ValueError("item 2 is damaged")

    items = made_ahead(failing(), 2, "failing")

    assert next(items) == 1
    with pytest.raises(ValueError, match="item 2 is damaged"):
        next(items)


def test_stopping_early_stops_the_maker_and_closes_its_items():
    closed = threading.Event()

    def endless():
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    items = made_ahead(endless(), 3, "endless")
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()

    assert closed.is_set()
    assert not any(thread.name == "endless" for thread in threading.enumerate())
