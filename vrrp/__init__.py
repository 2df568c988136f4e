"""VRRP v2/v3: codec, RFC 5798 state machine, sockets, VIPs and gratuitous ARP.

Two kinds of module. The sans-IO cores take events and the time and return
actions; they open nothing and read no clock, so they run anywhere:

- `vrrp.codec`     encode/decode (`Advert`, `DecodeError.reason`).
- `vrrp.fsm`       the state machine (`Instance`, `SyncGroup`, `Params`, action types).
- `vrrp.handover`  a graceful stop's make-before-break (`Handover`).

The I/O edge needs Linux (raw sockets, rtnetlink, AF_PACKET) and carries the
actions out: `sockets`, `socket_table`, `addresses`/`rtnl`, `garp`, `adverts`,
`notify`, `stop_signals`, with `live` (one instance's record) and `tracking`.
`vrrp.runtime` wires them: `VrrpRuntime(instances, on_transition)` with
`await run(stop)`, `snapshot()`, `failover(name)`, `set_tracked_virtual_server(name, ok)`
and `reconfigure(instances)`. Instances are `director.config.model.VrrpInstanceConfig`,
the one thing of `director` that `vrrp` imports.

`python -m vrrp -c directord.toml` runs only the VRRP part of a config.
"""
