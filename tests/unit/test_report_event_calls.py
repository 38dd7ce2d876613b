"""The report's calls after each event (dmsc/experiment/report.py,
event_calls): how long until a slowed or killed pod's calls moved and how many
were lost, how long until an announced instance answered, the same for every mode."""
from __future__ import annotations

from dmsc.experiment.report import event_call_cell, event_calls

INSTANCES = {"pod1": ["/A/1", "/B/1"], "pod4": ["/A/4", "/B/4"]}


def calls(spec):
    """[(t, status, responder)] -> call records."""
    return [{"t": t, "status": s, "responder": r, "flow": "flow1"} for t, s, r in spec]


def ev(t, do, **params):
    return {"t": t, "do": do, "label": f"{do} {params}", "params": params}


def test_calls_moved_off_a_slowed_pod_after_its_last_answer_and_the_lost_ones_counted():
    cs = calls([(0.9, "ok", "/B/1"), (1.0, "ok", "/B/1"), (1.1, "timeout", None),
                (1.2, "ok", "/B/1"), (1.3, "ok", "/B/4")] + [(1.4 + i / 10, "ok", "/B/4")
                                                            for i in range(30)])
    events = [ev(0, "traffic"), ev(1.0, "degrade", pod="pod1", service_ms=200),
              ev(5.0, "degrade", pod="pod1", service_ms=0)]
    x, restore = event_calls(events, cs, INSTANCES, t_end=6.0)
    assert (x["scheduled"], x["failed"], x["pod_answered"]) == (34, 1, 2)
    assert x["moved_ms"] == 200.0 and not x["not_moved"]
    assert "moved_ms" not in restore            # 0 ms restores: nothing to move
    assert event_call_cell(x) == "moved after 200 ms; 1 lost; 33 of 34 answered"


def test_calls_retried_elsewhere_after_paying_for_the_slowed_pod_have_not_moved_yet():
    # a mesh: every call to the slowed /B/1 times out per try (100 ms) and is
    # answered by /B/4, until the health checks eject /B/1 at 2.0 s
    cs = [{"t": 1.0 + i / 20, "status": "ok", "responder": "/B/4", "flow": "flow1",
           "latency_ms": 105.0 if i % 2 == 0 and 1.0 + i / 20 < 2.0 else 2.0}
          for i in range(60)]
    x = event_calls([ev(1.0, "degrade", pod="pod1", service_ms=200)], cs, INSTANCES, 4.0)[0]
    assert x["pod_answered"] == 0 and x["failed"] == 0
    assert x["moved_ms"] == 900.0            # the last call that paid 100 ms or more


def test_a_pod_still_answering_or_calls_still_failing_at_the_next_event_is_not_moved():
    events = [ev(1.0, "degrade", pod="pod1", service_ms=200), ev(3.0, "link_up")]
    still = calls([(1 + i / 10, "ok", "/B/1") for i in range(20)])
    x = event_calls(events, still, INSTANCES, 4.0)[0]
    assert x["not_moved"] and x["moved_ms"] is None and x["pod_answered"] == 20
    assert event_call_cell(x).startswith("not moved by the next event (20 answered by the pod)")
    dead = calls([(1 + i / 10, "timeout", None) for i in range(20)])
    y = event_calls([ev(1.0, "kill_pod", pod="pod1"), ev(3.0, "start_pod", pod="pod1")],
                    dead, INSTANCES, 4.0)[0]
    assert y["not_moved"] and y["failed"] == 20


def test_an_announced_instance_is_callable_from_its_first_answer():
    cs = calls([(10.0, "http_503", None), (10.1, "http_503", None), (10.25, "ok", "/B/7"),
                (10.3, "ok", "/B/7")])
    events = [ev(10.0, "announce", pod="pod4", prefix="/B/7")]
    x = event_calls(events, cs, INSTANCES, 11.0)[0]
    assert x["callable_ms"] == 250.0
    assert event_call_cell(x) == "callable after 250 ms; 2 of 4 answered"
    never = event_calls(events, cs[:2], INSTANCES, 11.0)[0]
    assert never["callable_ms"] is None and event_call_cell(never).startswith("never callable")
