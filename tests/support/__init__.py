"""Test support: a fake P4Runtime server, a simulated network of routers."""
