"""The service-mesh baseline (`--mode mesh`, docs/mesh.md): what the draft says DMSC
replaces. Pods behind sidecar proxies (HAProxy) on an IPv4 network of the same P4
switches, routed by SPF over the same graph (ipv4_routes), and one mesh control
plane in istiod's role (control_plane) pushing endpoints to every sidecar
(sidecar, haproxy). Nothing in DMSC's own control plane imports this package.
"""
