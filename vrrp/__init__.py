"""VRRP v2/v3: codec, RFC 5798 state machine, sockets, VIPs and gratuitous ARP."""
