"""The SCSC: QoS telemetry in, forwarding policies out (DMSC type-4 signaling).

schedule  -- the decisions: thresholds, the best replica, the path, hysteresis (pure)
service   -- the process: telemetry service, LSDB from the agents, policy pushes
auth      -- type-4 messages signed with the domain key

SG probes (controller/agent/probes.py) --Report--> SCSC --SetPolicies--> agents
--> the P4 policy stage (controller/switch/tables.py). docs/scsc.md.
"""
