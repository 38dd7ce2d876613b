"""The agent's tick lateness: counted against the deadline the loop slept for."""
from controller.agent.tick_lateness import PREFIX, TickLateness
from traffic.wire.lateness import Histogram


def test_a_tick_counts_its_delay_past_the_deadline_it_slept_for():
    t = TickLateness()
    t.sleeping_until(10.100, now=10.0)
    t.woke(10.0504)                  # a frame woke it early: nothing yet
    t.woke(10.1003)                  # the deadline: 0.3 ms late
    t.sleeping_until(10.300, now=10.101)
    t.woke(10.340)                   # 40 ms late: starved of CPU
    t.woke(10.500)                   # no new sleep: nothing counted twice
    h = Histogram.from_dict(t.counters(), PREFIX)
    assert h.total == 2
    assert t.counters()[PREFIX + "le_1ms"] == 1 and t.counters()[PREFIX + "le_50ms"] == 1


def test_a_deadline_already_past_counts_from_the_sleep():
    t = TickLateness()
    t.sleeping_until(5.0, now=9.0)   # the loop was behind when it went to sleep
    t.woke(9.0008)
    assert t.counters()[PREFIX + "le_1ms"] == 1 and t.hist.total == 1
