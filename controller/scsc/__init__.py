"""The SCSC: QoS telemetry in, forwarding policies out (DMSC type-4 signaling).

schedule      -- the decisions: thresholds, the best replica, the path, hysteresis (pure)
scsc_service  -- the process: telemetry service, LSDB from the agents, policy pushes
                 (over each agent's policy channel, controller/policy_channel.py)

Type-4 messages are signed with keys derived from the domain key (controller/keys.py).
SG probes (controller/agent/probes.py) --Report--> SCSC --SetPolicies--> agents
--> the P4 policy stage (controller/switch/tables.py). docs/scsc.md.
"""
