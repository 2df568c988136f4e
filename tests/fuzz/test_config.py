"""The config loader (director.config.load): a Config or a ConfigError whose lines each read
"FILE[:LINE]: key: reason", nothing else; and what loads goes through the rest of
check-config (host checks, warnings, placed like the loader's lines) without a crash.

Seeds are examples/directord.toml and the documents below, which reach every table, check
type and reader. They are mutated as text (tokens, punctuation, huge numbers, deep nesting,
cut), as bytes (not UTF-8, NULs) and as parsed trees written back as TOML, where a value
of another type, a datetime, or a regex nested deep or with a repeat past the engine's
limit lands on every key.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from director.config.advice import config_warnings
from director.config.host import host_problems
from director.config.load import ConfigError, explain, load_config, parse_config
from director.config.toml_write import dumps
from director.config.toml_write import value as toml_value
from tests.fuzz.mutate import Choose, budget, drawn, locations, mutate_tree, mutated_file, pick, seeded

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directord.toml"
DOCUMENTS = [EXAMPLE.read_text(), """
[global]
router_id = "lb2"
log_level = "debug"
log_format = "json"
vrrp_realtime_priority = 0
metrics_listen = "[::1]:9612"

[ipvs]
timeouts = { tcp = "15m", tcpfin = "2m", udp = "5m" }
sync_daemon = { interface = "eth1", syncid = 7, mcast_group = "224.0.0.81", mcast_port = 8848, mcast_ttl = 2, \
max_packet_size = 1500 }
expire_nodest_conn = true
expire_quiescent_template = false
conntrack = true
on_stop = "remove"

[[vrrp_instance]]
name = "VI_2"
interface = "eth0"
vrid = 52
priority = 255
version = 2
advert_interval = "2s"
preempt = false
virtual_ips = ["192.0.2.20/24", "192.0.2.21"]
unicast_peers = ["192.0.2.2", "192.0.2.3"]
unicast_src = "192.0.2.1"
track_interfaces = ["eth1", { name = "eth2", weight = -20 }]
track_virtual_servers = ["any"]
notify = ["/usr/local/bin/on-vrrp-change", "--all"]
sync_group = "G1"
check_advert_addresses = false

[[vrrp_instance]]
name = "VI_6"
interface = "eth0"
vrid = 53
advert_interval = "150ms"
preempt_delay = "10s"
virtual_ips = ["2001:db8::20/64"]
v3_checksum_as_v2 = false
adopt_master_interval = false
sync_group = "G1"
garp = { repeat = 0, interval = "0s", refresh = "1m" }

[[virtual_server]]
name = "any"
address = "192.0.2.21"
port = 0
protocol = "sctp"
persistence_timeout = "1m"
  [virtual_server.check]
  type = "none"
  [[virtual_server.real_server]]
  address = "10.0.0.51"
""", """
[[virtual_server]]
name = "tls"
address = "192.0.2.20"
port = 443
scheduler = "sh"
scheduler_flags = ["sh-port"]
method = "dr"
persistence_timeout = "600s"
persistence_netmask = 24
quorum = 2
on_failure = "remove"
slow_start = "30s"
drain_timeout = "1h"
sorry_server = { address = "10.0.0.99", port = 443, weight = 1 }
  [virtual_server.check]
  type = "https"
  path = "/ready?full=1"
  host = "www.example.com"
  sni = "www.example.com"
  tls_verify = true
  method = "HEAD"
  expect_status = ["200-299", 301]
  expect_body = "^ok{1,3}$"
  max_body = 4096
  interval = "5s"
  timeout = "2s"
  transition_interval = "1s"
  jitter = 0.25
  initial = "up"
  rise = 1
  fall = 5
  port = 8443
  [[virtual_server.real_server]]
  address = "10.0.0.21"
  weight = 100
  upper_threshold = 1000
  lower_threshold = 800
  [[virtual_server.real_server]]
  address = "10.0.0.22"
  weight = 0

[[virtual_server]]
name = "mail"
address = "192.0.2.20"
port = 25
  [virtual_server.check]
  type = "tcp"
  send = "EHLO lb\\r\\n"
  expect = "^250[ -]\\\\S{1,64}"
  [[virtual_server.real_server]]
  address = "10.0.0.25"
  port = 2525
""", """
[[virtual_server]]
name = "voice"
address = "192.0.2.20"
port = 5060
protocol = "udp"
one_packet = true
scheduler = "mh"
scheduler_flags = ["mh-fallback", "mh-port"]
  [virtual_server.check]
  type = "sip"
  transport = "tcp"
  sip_uri = "sip:ping@10.0.0.31"
  expect_status = 200
  [[virtual_server.real_server]]
  address = "10.0.0.31"

[[virtual_server]]
name = "app"
fwmark = 10
family = "ipv6"
method = "tun"
sorry_server = "[2001:db8::99]:8080"
  [virtual_server.check]
  type = "exec"
  command = ["/usr/local/bin/check-app", "--fast"]
  dynamic_weight = true
  [[virtual_server.real_server]]
  address = "2001:db8::41"
  tunnel_type = "gue"
  tunnel_port = 6080
  tunnel_checksum = "remcsum"
  [[virtual_server.real_server]]
  address = "2001:db8::42"
  method = "dr"

[[virtual_server]]
name = "web"
address = "192.0.2.30"
port = 80
  [virtual_server.check]
  type = "http"
  expect_body = "(?i)<title>(ok|ready)</title>"
  [[virtual_server.real_server]]
  address = "10.0.0.61"
  port = 8080
"""]
TREES = [tomllib.loads(text) for text in DOCUMENTS]
# re warns of "[[:alpha:]]" (a set inside a set may mean something else one day); check-config shows it
pytestmark = pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
HOST_ADDRESSES = {"eth0": [ipaddress.ip_interface("192.0.2.1/24"), ipaddress.ip_interface("fe80::1/64")],
                  "eth1": [ipaddress.ip_interface("10.0.0.1/24")]}

# Values of TOML types no key expects (datetimes, non-finite floats) and the edges of integers.
ODD_VALUES: list[Any] = [
    "", "x", "\n", "a b", "\x7f", "x" * 5000, 0, -1, 1, 2**31, 2**63 - 1, -(2**63), 65536, 256, 1.5, -0.0, 1e308,
    5e-324, float("nan"), float("inf"), True, False, [], [""], [1], [{}], {}, {"name": "x"}, {"": 1},
    datetime.datetime(1979, 5, 27, 7, 32, tzinfo=datetime.UTC), datetime.date(1979, 5, 27), datetime.time(7, 32),
]
ODD = st.one_of(st.sampled_from(ODD_VALUES), st.integers(), st.floats(), st.text(max_size=8))
# Strings each reader parses, at its edges: regexes nested past the recursion limit or with a
# repeat count the engine refuses, durations past a float, addresses and endpoints almost right.
REGEXES = ["a{4294967296}", "a{1,99999999999}", *("(" * n + "a" + ")" * n for n in (350, 700, 800, 900, 1100)),
           "(a+)+$", "[", "(?P<x>a)(?P=y)", "\\", "a**", "(?<=a+)b", "(?(1)a|b)", "\\N{bogus}", "[[:alpha:]]"]
DURATIONS = ["0s", "1e400s", "9" * 400 + "s", "0.0000001ms", "99999999h", "1m1m", "1 s", "-1s", "infs", "1.5", "10ms"]
ADDRESSES = ["0.0.0.0", "::", "192.0.2.999", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3", "10.0.0.1/24", "2001:db8::1"]
ENDPOINTS = ["[::1]:0", "10.0.0.1:99999", "10.0.0.1:8_0", "[::1]", "[::1]x", "10.0.0.1:" + "9" * 5000, ":80", "[]:80",
             "10.0.0.1: 80", "10.0.0.1:٨٠", "[10.0.0.1]:80", "2001:db8::1:80"]
INTERFACES = [["10.0.0.1/33"], ["::/0"], ["10.0.0.1/255.255.255.0"], ["10.0.0.1/0.0.0.255"], ["1/1"],
              ["2001:db8::1/129"]]
ARGV = [["/bin/x", ""], [""], "/bin/x y", "", "relative", ["/bin/x\x00"], ["/" * 5000]]
# (keys, values): each kind of string a reader parses, and the keys that hold it
KINDS: list[tuple[frozenset[str], list[Any]]] = [
    (frozenset({"expect", "expect_body"}), REGEXES),
    (frozenset({"reconcile_interval", "tcp", "tcpfin", "udp", "advert_interval", "preempt_delay", "interval", "refresh",
                "persistence_timeout", "slow_start", "drain_timeout", "timeout", "transition_interval"}), DURATIONS),
    (frozenset({"address", "mcast_group", "unicast_src"}), ADDRESSES),
    (frozenset({"unicast_peers"}), [[a] for a in ADDRESSES]),
    (frozenset({"sorry_server", "metrics_listen"}), ENDPOINTS + ADDRESSES),
    (frozenset({"virtual_ips"}), INTERFACES),
    (frozenset({"command", "notify"}), ARGV),
    (frozenset({"path", "host", "sip_uri", "sni"}), ["", "/", "sip:", "sips:x y", "/\x00", "é"]),
    (frozenset({"expect_status"}), ["099", "700", "299-200", "2xx", [], ["200-"], 200.0, [True]]),
    (frozenset({"interface", "name", "scheduler", "method", "protocol", "type", "family", "tunnel_type"}),
     ["", "eth0:1", "a/b", "x" * 16, "é", " ", "WLC", "ipv5", "tcp "]),
]


def set_known(doc: Any, choose: Choose) -> None:
    """Give a key of one kind (picked first, so that rare kinds are not drowned by common
    ones) one of the edge values of its reader."""
    keys, values = pick(choose, KINDS)
    places = [place for place in locations(doc) if place[-1] in keys]
    if not places:
        return
    *parent_path, key = pick(choose, places)
    parent = doc
    for step in parent_path:
        parent = parent[step]
    parent[key] = copy.deepcopy(pick(choose, values))


def raw_toml(value: Any) -> str | None:
    """TOML for the values toml_write does not write (it has no use for them), else None."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat().replace("+00:00", "Z")
    return None


def write_tree(doc: dict[str, Any]) -> bytes:
    """`doc` as TOML. Values toml_write refuses, and lists nested deeper than it recurses,
    are written here and put in place of a marker string."""
    raw: list[str] = []

    def marker(text: str) -> str:
        raw.append(text)
        return f"@raw{len(raw) - 1}@"

    def placeholders(value: Any) -> Any:
        depth, inner = 0, value
        while isinstance(inner, list) and len(inner) == 1:
            depth, inner = depth + 1, inner[0]
        if depth > 100:
            return marker("[" * depth + toml_value(placeholders(inner)) + "]" * depth)
        if isinstance(value, dict):
            return {k: placeholders(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholders(v) for v in value]
        text = raw_toml(value)
        return value if text is None else marker(text)

    text = dumps(placeholders(doc))
    for index in reversed(range(len(raw))):  # a deep list's text holds the markers inside it
        text = text.replace(f'"@raw{index}@"', raw[index])
    return text.encode("utf-8", "surrogatepass")


def tree_file(choose: Choose, odd: list[Any]) -> bytes:
    """A seed's tree after a few edits: a mutation anywhere, or a known key's edge value."""
    doc = copy.deepcopy(pick(choose, TREES))
    for _ in range(choose(1, 4)):
        if choose(0, 1):
            doc = mutate_tree(doc, choose, odd)
        else:
            set_known(doc, choose)
    return write_tree(doc if isinstance(doc, dict) else {"x": doc})


@st.composite
def mutated_trees(draw: st.DrawFn) -> bytes:
    odd = [draw(ODD) for _ in range(2)]
    return tree_file(drawn(draw), odd)


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config") / "directord.toml"


def check(path: Path, data: bytes) -> None:
    """What check-config does with the file (host checks on a made-up host): a ConfigError of
    one-line problems, or a config whose host checks and warnings are placed like them."""
    path.write_bytes(data)
    try:
        config = load_config(str(path))
    except ConfigError as exc:
        assert exc.lines and all(one_line(path, text) for text in exc.lines), exc.lines
        return
    problems = host_problems(config, lambda: {"192.0.2.20"})
    warnings = config_warnings(config, lambda: HOST_ADDRESSES)
    for text in explain(str(path), problems) + explain(str(path), warnings, "warning: "):
        assert one_line(path, text), text


def one_line(path: Path, text: str) -> bool:
    """FILE[:LINE]: and a reason with nothing unprintable in it (no line break of any kind)."""
    return bool(re.fullmatch(rf"{re.escape(str(path))}(:\d+)?: .+", text)) and text.isprintable()


@budget(1000)
@given(mutated_file(DOCUMENTS))
def test_mutated_text_loads_or_raises_config_error(path: Path, data: bytes) -> None:
    check(path, data)


@budget(1000)
@given(mutated_trees())
def test_mutated_trees_load_or_raise_config_error(path: Path, data: bytes) -> None:
    check(path, data)


@budget(200)
@given(st.binary(max_size=600))
def test_random_bytes_load_or_raise_config_error(path: Path, data: bytes) -> None:
    check(path, data)


def test_seeds_load(path: Path) -> None:
    """Unmutated, every seed is a valid config: the mutations start from real ones."""
    for text in DOCUMENTS:
        path.write_text(text)
        assert load_config(str(path)).virtual_servers


def test_the_trees_reach_the_validator() -> None:
    """Written back, every mutated tree is TOML, so the tree edits test the validator and not
    the TOML parser; some still load."""
    outcomes: Counter[str] = Counter()
    choose = seeded(17)
    for _ in range(300):
        try:
            parse_config(tomllib.loads(tree_file(choose, [1, "x"]).decode()))
            outcomes["loaded"] += 1
        except ConfigError:
            outcomes["refused"] += 1
    assert outcomes["loaded"] > 15 and outcomes["refused"] > 200, outcomes
