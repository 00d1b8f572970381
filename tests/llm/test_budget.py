"""The hard budget: reservations refuse what could overshoot, commits record true usage, threads cannot race it."""

import threading

import pytest

from mcbo.llm.budget import Budget, BudgetExceeded, Reservation


def test_reservation_refused_when_the_worst_case_could_pass_a_limit():
    b = Budget(max_usd=1.0)
    r = b.reserve(tokens=100, usd=0.6)
    with pytest.raises(BudgetExceeded, match="money"):
        b.reserve(tokens=100, usd=0.5)  # 0.6 held + 0.5 > 1.0
    b.commit(r, 50, 10, 0.2)  # the call really cost 0.2
    assert b.usd == pytest.approx(0.2) and b.calls == 1 and b.tokens == 60
    b.reserve(tokens=100, usd=0.5)  # now it fits


def test_release_frees_a_failed_call():
    b = Budget(max_calls=1)
    r = b.reserve(10, 0.0)
    assert not b.can_afford(1, 0, 0.0)
    b.release(r)
    assert b.can_afford(1, 0, 0.0) and b.calls == 0


def test_each_limit_is_enforced():
    b = Budget(max_calls=2, max_tokens=100)
    b.commit(b.reserve(40, 0), 30, 10, 0)
    with pytest.raises(BudgetExceeded, match="tokens"):
        b.reserve(61, 0)
    b.commit(b.reserve(60, 0), 30, 10, 0)
    with pytest.raises(BudgetExceeded, match="calls"):
        b.reserve(1, 0)
    assert Budget().can_afford(10**9, 10**12, 1e9)  # no limits


def test_concurrent_reservations_never_overshoot():
    b = Budget(max_usd=1.0)
    granted = []

    def worker():
        for _ in range(50):
            try:
                r = b.reserve(1, 0.01)
            except BudgetExceeded:
                return
            granted.append(r)
            b.commit(r, 1, 0, 0.01)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 100 and b.usd == pytest.approx(1.0)


@pytest.mark.parametrize("kw", [{"max_calls": -1}, {"max_tokens": 1.5}, {"max_usd": -0.1}, {"max_usd": float("nan")}])
def test_bad_limits_are_rejected(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        Budget(**kw)


def test_nonsense_commits_never_make_the_spend_negative(caplog):
    b = Budget(max_usd=1.0, max_tokens=1000)
    b.commit(b.reserve(100, 0.1), -50, -7, -9.0)
    b.commit(b.reserve(100, 0.1), 10, 5, float("nan"))
    assert b.usd == 0.0 and b.tokens == 15 and b.calls == 2
    assert "nonsense usage" in caplog.text


def test_a_commit_above_its_reservation_is_recorded_and_stops_every_further_call(caplog):
    b = Budget(max_usd=10.0)
    first, second = b.reserve(100, 0.01), b.reserve(100, 0.01)  # two calls in flight
    b.commit(first, 100, 0, 1.80)
    assert b.usd == pytest.approx(1.80) and "more usage than a call can cost" in b.overrun
    with pytest.raises(BudgetExceeded, match="budget stopped: the server reported more usage"):
        b.reserve(1, 0.0)
    assert not b.can_afford(1, 0, 0.0)
    b.commit(second, 100, 0, 0.005)  # the call in flight still settles
    assert b.usd == pytest.approx(1.805) and b.reserved == Reservation(0, 0, 0.0)
    assert b.summary()["overrun"] == b.overrun


def test_a_calls_only_budget_ignores_usage():
    b = Budget(max_calls=3)
    b.commit(b.reserve(10, 0.0), 10_000, 10_000, 5.0)
    assert b.overrun is None and b.can_afford(1, 10, 0.0)


def test_a_reached_limit_refuses_even_a_call_that_reserves_nothing():
    for b, commit in ((Budget(max_usd=0.5), (1, 1, 0.5)), (Budget(max_tokens=20), (10, 10, 0.0))):
        b.commit(b.reserve(20, 0.5), *commit)
        with pytest.raises(BudgetExceeded):
            b.reserve(0, 0.0)
    with pytest.raises(BudgetExceeded, match="money"):
        Budget(max_usd=0.0).reserve(0, 0.0)


def test_reservations_add_up_to_exactly_zero_when_no_call_is_in_flight():
    b = Budget(max_usd=1.0)
    held = [b.reserve(1, u) for u in (0.1, 0.2, 0.3, 1e-17)]
    for r in held:
        b.release(r)
    assert b.reserved == Reservation(0, 0, 0.0)
