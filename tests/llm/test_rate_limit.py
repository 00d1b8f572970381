"""Token buckets on requests and tokens per minute, on a fake clock."""

import pytest

from mcbo.llm.rate_limit import RateLimiter


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_requests_per_minute_allow_a_burst_then_space_out():
    t = FakeTime()
    rl = RateLimiter(requests_per_minute=120, clock=t.clock, sleep=t.sleep)
    for _ in range(120):
        assert rl.acquire() == 0.0  # a full bucket: a minute's allowance at once
    assert rl.acquire() == pytest.approx(0.5)
    assert rl.acquire() == pytest.approx(0.5)
    assert t.now == pytest.approx(1.0)


def test_tokens_per_minute_delay_big_requests():
    t = FakeTime()
    rl = RateLimiter(tokens_per_minute=600, clock=t.clock, sleep=t.sleep)
    rl.acquire(600)
    assert rl.acquire(100) == pytest.approx(10.0)  # 10 tokens per second
    assert rl.acquire(5000) == pytest.approx(60.0)  # larger than a minute: waits for a full bucket, then goes
    assert rl.waited == pytest.approx(70.0)


def test_bad_limits():
    with pytest.raises(ValueError, match="requests_per_minute"):
        RateLimiter(requests_per_minute=0)
