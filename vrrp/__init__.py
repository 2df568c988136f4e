"""VRRP v2/v3: codec, RFC 5798 state machine, sockets, VIPs and gratuitous ARP.

Layers, each usable alone:

- `vrrp.codec`   sans-IO encode/decode (`Advert`, `DecodeError.reason`).
- `vrrp.fsm`     sans-IO state machine (`Instance`, `SyncGroup`, action types).
- `vrrp.runtime` the asyncio edge: `VrrpRuntime(instances, on_transition)` with
  `await run(stop)`, `snapshot()`, `failover(name)` and
  `set_tracked_virtual_server(name, ok)`; `run_vrrp(...)` for the simple case.
- `python -m vrrp -c directord.toml` runs only the VRRP part of a config.
"""
