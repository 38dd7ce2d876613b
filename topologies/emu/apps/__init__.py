"""Apps: the long-running processes of a running network (Mini-NDN's apps).

Each app has ``start()``, ``ready(deadline)`` (poll until it serves, never a
sleep), ``stop()`` and its own log file; ``DmscNet`` starts them in order and
stops them in reverse order, even when a step fails.

base   -- App (a child process with a log) and stop_all (one shared deadline)
bmv2   -- Bmv2Process (simple_switch_grpc) and BMv2Switch, its Mininet switch class
agent  -- AgentApp: one SG/SR agent (python -m controller.agent), ready when
          its admin service answers; agent_timers picks hello/dead intervals
pod    -- PodApp: the pod process in the pod's namespace
"""
