"""Apps: the long-running processes of a running network (Mini-NDN's apps).

Each app has ``start()``, ``ready(deadline)`` (poll until it serves, never a
sleep), ``stop()`` and its own log file; ``DmscNet`` starts them in order and
stops them in reverse order, even when a step fails.

app_base     -- App (a child process with a log) and stop_all (one shared deadline)
bmv2_app     -- Bmv2Process (simple_switch_grpc) and BMv2Switch, its Mininet switch class
agent_app    -- AgentApp: one SG/SR agent (python -m controller.agent), ready when
                its admin service answers; AgentHostApp: agents sharing a process;
                agent_timers picks hello/dead intervals
central_app  -- CentralApp: the centralized mode's controller (controller.central)
spa_app      -- SpaApp: the SPA (controller.spa)
scsc_app     -- ScscApp: the SCSC (controller.scsc)
pod_app      -- PodApp: the pod process in the pod's namespace
"""
