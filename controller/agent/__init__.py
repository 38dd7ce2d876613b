"""The per-switch agent (one per SG and SR), one job a module.

agent_command       -- ``python -m controller.agent``: arguments, the agent and its servers
router_agent        -- Agent: the composition, and the protocol loop (hellos, LSAs, packet-ins)
switch_session      -- the P4Runtime session: opened, pipeline and base tables
fib_writer          -- the FIB writer thread (no deletes while relearning after a restart)
port_carrier        -- port carrier read from the interfaces
liveness            -- link liveness from the data plane's echoes (hellos the backstop)
gateway             -- an SG's gateway duties: pods' announcements, asked of the SPA
fair_queue          -- the gateway's intake, fair between pods
policies            -- the SCSC's policies, written into the P4 policy stage
probes, probe_loop  -- an SG's path probes: the measurements, and the thread sending them
telemetry_reporter  -- signed reports to the SCSC (FIB counters, path measurements)
no_route_replies    -- ERRORs routed back for requests with no route
state_export        -- the agent's state as GetState answers it
admin_service       -- the operator's admin service (gRPC), admin_client its client
policy_service      -- the SCSC's policy channel, the agent's end (controller/policy_channel.py)
cpuport             -- packet I/O through the switch's CPU-port veth
host                -- several agents in one process (``python -m controller.agent.host``)
"""
