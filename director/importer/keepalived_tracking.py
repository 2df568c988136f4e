"""keepalived's tracked scripts, files and processes -> directord's `[[vrrp_script]]`,
`[[track_file]]` and `[[track_process]]`.

Read as keepalived 2.2 reads them (checked against Debian's keepalived 2.2.7):

- `script "..."` is split into argv on unquoted blanks, single quotes grouping, and run
  without a shell; a bare program name is looked up on PATH. So the argv imports as is.
  Shell syntax in it (`|`, `&&`, `>`, `$VAR`, ...) reaches the program as plain arguments in
  keepalived too, which is seldom what its author meant: such a script is imported as
  split and flagged, never wrapped in `sh -c` behind the user's back.
- an instance's `track_script` / `track_file` line is `NAME [weight N]`; a name keepalived
  does not know yet (defined later, or not at all), a name listed twice, or a line with
  anything else on it (`chk_a chk_b` on one line) is ignored by keepalived, and flagged here.
- in a member of a `vrrp_sync_group` (unless the group says `sync_group_tracking_weight`),
  keepalived 2.2.7 ignores a track_script that has a weight and sets a track_file's weight
  to 0: the import does the same, with a note.
- a track file's `weight` beyond -254..254 acts as ±254 (the value x weight is kept within
  -254..253 either way), and a relative `file` is relative to keepalived's working
  directory, /.
- `vrrp_track_process`: `process NAME [ARG...]` matches the name, or argv[0] and the
  arguments once there are any (or `param_match` is given: alone it means exact),
  `full_command` argv[0]; `delay` sets both delays. keepalived follows the kernel's process
  events, directord reads /proc every `interval`: the counting carries over. What keepalived
  does with a weighted track_process in a sync group member could not be observed (its
  process events are unavailable here), so that case is imported with its weight and flagged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from director.importer import seconds
from director.importer.common import present, to_int
from director.importer.keepalived_keywords import unknown
from director.importer.lexer import Node
from director.importer.table import NO_EQUIVALENT, Table

if TYPE_CHECKING:
    from director.importer.keepalived import _Keepalived

TRACK_WEIGHT = 254
KEEPALIVED_SCRIPT_WEIGHT = 253  # keepalived turns a track_script weight of ±254 into ±253
_SHELL_ONLY = "|&;<>()`"


@dataclass
class Tracked:
    """The vrrp_script and track_file blocks read so far (keepalived resolves names as it reads)."""

    scripts: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> [[vrrp_script]] entry
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> [[track_file]] entry
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> [[track_process]] entry
    script_nodes: dict[str, Node] = field(default_factory=dict)
    default_user: list[str] | None = None  # global_defs script_user USER [GROUP]


@dataclass
class _Script:
    node: Node
    entry: dict[str, Any]


SCRIPT: Table[_Keepalived, Node, _Script] = Table(fallback=unknown(NO_EQUIVALENT))
TRACK_FILE: Table[_Keepalived, Node, dict[str, Any]] = Table(fallback=unknown(NO_EQUIVALENT))
TRACK_PROCESS: Table[_Keepalived, Node, dict[str, Any]] = Table(fallback=unknown(NO_EQUIVALENT))


def shell_feature(text: str) -> str | None:
    """The first piece of shell syntax in `text` outside single quotes (keepalived's grouping),
    or None: operators and redirections, command substitution, variables, globs."""
    quoted = False
    for index, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char in _SHELL_ONLY:
            pair = text[index:index + 2]
            return pair if pair in ("&&", "||", ">>", "<<", "2>", "$(") else char
        elif char == "$" and index + 1 < len(text) and (text[index + 1].isalnum() or text[index + 1] in "_{("):
            return text[index:index + 2]
        elif char in "*?" or (char == "~" and (index == 0 or text[index - 1] == " ")):
            return char
    return None


# --- vrrp_script ---------------------------------------------------------------------------------


def vrrp_script(k: _Keepalived, node: Node, tracked: Tracked) -> None:
    name = node.args[0] if node.args else None
    if name is None:
        k.bad(node, "needs a name")
        return
    script = _Script(node, {"name": name})
    for child in k.block(node):
        SCRIPT.read(k, child, script)
    if "command" not in script.entry:
        k.skip(node, "no script line: keepalived drops this vrrp_script, and so does the import")
        return
    if name in tracked.scripts:
        k.skip(node, f"a second vrrp_script {name}: keepalived keeps the first")
        return
    tracked.scripts[name], tracked.script_nodes[name] = script.entry, node


@SCRIPT.on("script")
def _script(k: _Keepalived, node: Node, script: _Script) -> None:
    argv = k.command(node)
    if argv is None:
        return
    script.entry["command"] = argv
    feature = shell_feature(" ".join(node.args))
    if feature is not None:
        k.skip(node, f"uses shell syntax ({feature!r}), but keepalived 2 runs no shell and neither does "
                     f"directord: imported split into argv {argv!r}, where {feature!r} reaches the program as a "
                     "plain argument; if a shell was meant, write command = [\"/bin/sh\", \"-c\", \"...\"]")


@SCRIPT.on("interval", "timeout")
def _script_time(k: _Keepalived, node: Node, script: _Script) -> None:
    value = k.number(node)
    if value is not None and value > 0:
        script.entry[node.keyword] = seconds(value)
    elif value is not None:
        k.skip(node, f"{node.keyword} {value:g} ignored: keepalived keeps its default")


@SCRIPT.on("weight")
def _script_weight(k: _Keepalived, node: Node, script: _Script) -> None:
    weight = _weight(k, node, KEEPALIVED_SCRIPT_WEIGHT, script.entry)
    if weight is not None:
        script.entry["weight"] = weight


@SCRIPT.on("rise", "fall")
def _rise_fall(k: _Keepalived, node: Node, script: _Script) -> None:
    value = k.integer(node)
    if value is not None and value >= 1:
        script.entry[node.keyword] = value
    elif value is not None:
        k.skip(node, f"{node.keyword} {value} ignored: keepalived needs at least 1")


@SCRIPT.on("user")
def _user(k: _Keepalived, node: Node, script: _Script) -> None:
    if not 1 <= len(node.args) <= 2:
        k.bad(node, "needs USER [GROUP]")
        return
    script.entry["user"] = node.args[0]
    if len(node.args) == 2:
        script.entry["group"] = node.args[1]


@SCRIPT.on("init_fail")
def _init_fail(k: _Keepalived, node: Node, script: _Script) -> None:
    script.entry["init_fail"] = True


# keepalived 2.2.7 takes `noreverse` on an instance's tracking lines only (its man page also
# spells it `no_reverse`, which it reports as unknown), and `reverse` on the objects too
REVERSE_WORDS = {"reverse": True, "noreverse": False}


def _weight(k: _Keepalived, node: Node, limit: int, entry: dict[str, Any] | None = None,
            words: tuple[str, ...] = ("reverse",)) -> int | None:
    """`weight N [reverse]` (`noreverse` too where `words` has it): N within
    -limit..limit, None (noted) otherwise; the reverse word goes into `entry["reverse"]`."""
    if not node.args:
        k.bad(node, "needs a number")
        return None
    weight = to_int(node.args[0])
    if weight is None:
        k.bad(node, f"{node.args[0]!r} is not an integer")
        return None
    rest = node.args[1:]
    if len(rest) == 1 and rest[0] in words and entry is not None:
        entry["reverse"] = REVERSE_WORDS[rest[0]]
    elif rest:
        k.skip(node, f"{' '.join(rest)!r} is not an option keepalived knows here ({' or '.join(words)}): "
                     "the weight is imported without it")
    return max(-limit, min(limit, weight))


def script_user(k: _Keepalived, node: Node, tracked: Tracked) -> None:
    """global_defs script_user USER [GROUP]: the user of every vrrp_script that names none."""
    if not 1 <= len(node.args) <= 2:
        k.bad(node, "needs USER [GROUP]")
        return
    tracked.default_user = list(node.args)


def settle(k: _Keepalived, tracked: Tracked, notify_or_misc: list[Node], script_user_node: Node | None) -> None:
    """Write the scripts and files out once everything is read: script_user fills in users."""
    if tracked.default_user is not None:
        for entry in tracked.scripts.values():
            if "user" not in entry:
                entry["user"] = tracked.default_user[0]
                if len(tracked.default_user) > 1:
                    entry["group"] = tracked.default_user[1]
        as_root = all(name == "root" for name in tracked.default_user)  # as directord runs them: nothing differs
        if notify_or_misc and script_user_node is not None and not as_root:
            k.skip(script_user_node, "applied to the vrrp_scripts only: directord runs notify programs and exec "
                                     "checks (MISC_CHECK) as root")
    if tracked.scripts:
        k.conv.config["vrrp_script"] = [present(e) for e in tracked.scripts.values()]
    if tracked.files:
        k.conv.config["track_file"] = list(tracked.files.values())
    if tracked.processes:
        k.conv.config["track_process"] = [_process_output(entry) for entry in tracked.processes.values()]


# --- track_file ------------------------------------------------------------------------------------


def track_file(k: _Keepalived, node: Node, tracked: Tracked) -> None:
    _named_block(k, node, TRACK_FILE, "path", "file", tracked.files)


def _named_block(k: _Keepalived, node: Node, table: Table, required: str, line: str,
                 store: dict[str, dict[str, Any]]) -> None:
    """A `KIND NAME { ... }` block read into `store[NAME]`; keepalived drops one without its
    `line` and keeps the first of two with one name."""
    name = node.args[0] if node.args else None
    if name is None:
        k.bad(node, "needs a name")
        return
    entry: dict[str, Any] = {"name": name}
    for child in k.block(node):
        table.read(k, child, entry)
    if required not in entry:
        k.skip(node, f"no {line} line: keepalived drops this {node.keyword}, and so does the import")
    elif name in store:
        k.skip(node, f"a second {node.keyword} {name}: keepalived keeps the first")
    else:
        store[name] = entry


@TRACK_FILE.on("file")
def _file(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    path = k.word(node)
    if path is not None:
        entry["path"] = os.path.normpath(os.path.join("/", path))  # keepalived runs in /


@TRACK_FILE.on("weight")
def _file_weight(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    weight = _weight(k, node, TRACK_WEIGHT, entry)  # beyond ±254 acts as ±254: value x weight is clamped anyway
    if weight is not None:
        entry["weight"] = weight


@TRACK_FILE.on("init_file")
def _init_file(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    """`init_file [VALUE] [overwrite]`: VALUE defaults to 0."""
    args = list(node.args)
    overwrite = bool(args) and args[-1] == "overwrite"
    if overwrite:
        args.pop()
    value = to_int(args[0]) if len(args) == 1 else (0 if not args else None)
    if value is None:
        k.bad(node, "takes [VALUE] [overwrite], VALUE an integer")
        return
    entry["init_file"] = value
    if overwrite:
        entry["init_overwrite"] = True


# --- vrrp_track_process ------------------------------------------------------------------------------


def track_process(k: _Keepalived, node: Node, tracked: Tracked) -> None:
    _named_block(k, node, TRACK_PROCESS, "process", "process", tracked.processes)


def _process_output(entry: dict[str, Any]) -> dict[str, Any]:
    """param_match without params means "exactly no arguments"; params without it, exactly these."""
    out = dict(entry)
    if "param_match" in out or "args" in out:
        out.setdefault("args", [])
    if out.get("param_match") == "exact":
        del out["param_match"]
    return out


@TRACK_PROCESS.on("process")
def _process(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    if not node.args:
        k.bad(node, "needs a process name")
        return
    entry["process"] = node.args[0]
    if len(node.args) > 1:
        entry["args"] = node.args[1:]


@TRACK_PROCESS.on("param_match")
def _param_match(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    if len(node.args) > 1 or (node.args and node.args[0] not in ("initial", "partial")):
        k.bad(node, "takes initial or partial (or nothing, for an exact match)")
        return
    entry["param_match"] = node.args[0] if node.args else "exact"


@TRACK_PROCESS.on("weight")
def _process_weight(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    weight = _weight(k, node, TRACK_WEIGHT, entry)
    if weight is not None:
        entry["weight"] = weight


@TRACK_PROCESS.on("quorum", "quorum_max")
def _quorum(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    value = k.integer(node)
    if value is not None and value >= 0:
        entry[node.keyword] = value


@TRACK_PROCESS.on("fork_delay", "terminate_delay", "delay")
def _delay(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    value = k.number(node)
    if value is None or value < 0:
        return
    for key in ("fork_delay", "terminate_delay") if node.keyword == "delay" else (node.keyword,):
        entry[key] = seconds(value)


@TRACK_PROCESS.on("full_command")
def _full_command(k: _Keepalived, node: Node, entry: dict[str, Any]) -> None:
    entry["full_command"] = True


# --- an instance's (or a sync group's) track_script and track_file blocks ---------------------------


def references(k: _Keepalived, node: Node, known: dict[str, dict[str, Any]], kind: str,
               found: list[dict[str, Any]]) -> None:
    """Append the block's `NAME [weight N]` lines to `found`, as {"name", "weight"?, "node"}."""
    limit = KEEPALIVED_SCRIPT_WEIGHT if kind == "vrrp_script" else TRACK_WEIGHT  # track_file, track_process: 254
    for child in k.block(node):
        name, directive = child.keyword, f"{node.keyword} {child.keyword}"

        def note(reason: str, child: Node = child, directive: str = directive) -> None:
            k.conv.note(child.file, child.line, directive, reason)

        if name not in known:
            note(f"no {kind} named {name} is defined before this line: keepalived ignores it")
            continue
        if any(entry["name"] == name for entry in found):
            note(f"{name} is already tracked here: keepalived ignores the second")
            continue
        entry: dict[str, Any] = {"name": name, "node": child, "directive": directive}
        if child.args and child.args[0] == "weight" and len(child.args) >= 2:
            weight = _weight(k, Node(directive, child.args[1:], child.file, child.line), limit, entry,
                             tuple(REVERSE_WORDS))
            if weight is not None:
                entry["weight"] = weight
        elif child.args:
            note(f"keepalived reads {' '.join(child.args)!r} as an unknown option of {name} and tracks "
                 f"nothing on this line: write one {kind} per line, as NAME [weight N]")
            continue
        found.append(entry)


def output(found: list[dict[str, Any]], known: dict[str, dict[str, Any]], default: int,
           group: tuple[_Keepalived, str] | None = None) -> list[Any] | None:
    """The references as directord writes them: "name", or {name, weight} when the weight is the
    instance's own; `default` is the objects' weight when they set none (script 0, file 1).
    `group` (reader, group name): the instance is a sync group member that does not keep weights,
    and keepalived 2.2.7 then drops a weighted track_script and turns a track_file's weight to 0."""
    if not found:
        return None
    result: list[Any] = []
    for entry in found:
        weight = entry.get("weight", known[entry["name"]].get("weight", default))
        if group is not None and weight != 0:
            k, name = group
            node = entry["node"]
            if "process" in known[entry["name"]]:
                k.conv.note(node.file, node.line, entry["directive"],
                            f"imported with its weight ({weight}), but keepalived wants weight 0 for the track_process "
                            f"of a member of sync group {name} (without sync_group_tracking_weight); what it does "
                            "otherwise was not checked: set weight = 0 if the group should fault together")
                result.append({"name": entry["name"], "weight": weight} | _reverse(entry)
                              if "weight" in entry else entry["name"])
            elif "path" in known[entry["name"]]:
                k.conv.note(node.file, node.line, entry["directive"],
                            f"weight {weight} becomes 0, as keepalived sets it for a member of sync group {name} "
                            "(without sync_group_tracking_weight): any value but 0 puts the instance in fault")
                result.append({"name": entry["name"], "weight": 0} | _reverse(entry))
            else:
                k.conv.note(node.file, node.line, entry["directive"],
                            f"not imported: keepalived ignores a track_script with a weight ({weight}) in a member of "
                            f"sync group {name} (without sync_group_tracking_weight)")
        elif "weight" in entry:
            result.append({"name": entry["name"], "weight": weight} | _reverse(entry))
        else:
            result.append(entry["name"])
    return result


def _reverse(entry: dict[str, Any]) -> dict[str, bool]:
    """The reference's own reverse or noreverse, when its line has one."""
    return {"reverse": entry["reverse"]} if "reverse" in entry else {}
