"""The SPA: service prefix authentication (DMSC type-3 signaling).

registry  -- the registry file: keys and authorizations (prefix, max depth, keys)
validate  -- verdicts: signature, freshness, replay, then RFC 6811 states
service   -- the gRPC service on 127.0.0.1 (``python -m controller.spa``)
client    -- SpaClient: what SG agents and ``dmsc spa`` use, with failover

An announcement enters an LSA only after the SPA says ``valid``:
pod --announce--> SG agent (controller/agent/gateway.py) --Check--> SPA.
docs/spa.md describes identity, the registry and the verdicts.
"""
