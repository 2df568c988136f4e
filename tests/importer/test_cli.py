"""`directord import` end to end through director.cli.main: exit codes, stderr lines,
--strict, -o, and that the written file passes check-config."""

from __future__ import annotations

import os

import pytest

from director.cli import main
from director.importer.common import MAX_SOURCE_BYTES
from tests.importer.helpers import SAMPLES

SAMPLE_FILES = {"keepalived": "keepalived.conf", "ldirectord": "ldirectord.cf", "piranha": "lvs.cf"}


@pytest.mark.parametrize("source", sorted(SAMPLE_FILES))
def test_import_writes_a_config_that_check_config_accepts(tmp_path, capsys, source: str) -> None:
    out = tmp_path / "directord.toml"
    sample = SAMPLES / SAMPLE_FILES[source]
    assert main(["import", "--from", source, str(sample), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    warnings = captured.err.splitlines()
    assert warnings and all(line.startswith(str(SAMPLES)) and line.count(":") >= 3 for line in warnings)
    text = out.read_text()
    assert text.startswith(f"# Imported by `directord import --from {source}` from {sample}.")
    assert main(["check-config", "--no-host-checks", "-c", str(out)]) == 0


def test_a_control_character_in_the_source_still_writes_toml(tmp_path, capsys) -> None:
    """Found by tests/fuzz/test_importers.py: a stray control byte (a DOS end-of-file ^Z) was
    quoted raw in the header's list of unmapped directives, so the output did not parse and
    the import failed as "does not validate"."""
    source, out = tmp_path / "keepalived.conf", tmp_path / "directord.toml"
    source.write_bytes((SAMPLES / "roundtrip-keepalived.conf").read_bytes() + b"\x1a\n")
    assert main(["import", "--from", "keepalived", str(source), "-o", str(out)]) == 0
    assert f"{source}:" in capsys.readouterr().err
    assert "\\x1a: " in out.read_text()
    assert main(["check-config", "--no-host-checks", "-c", str(out)]) == 0


def test_stdout_when_no_output_file(capsys) -> None:
    assert main(["import", "--from", "piranha", str(SAMPLES / "lvs.cf")]) == 0
    assert "[[virtual_server]]" in capsys.readouterr().out


@pytest.mark.parametrize("source", sorted(SAMPLE_FILES))
def test_strict_fails_on_unmapped_directives_and_writes_nothing(tmp_path, capsys, source: str) -> None:
    out = tmp_path / "directord.toml"
    assert main(["import", "--from", source, str(SAMPLES / SAMPLE_FILES[source]), "-o", str(out), "--strict"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].endswith("have no exact equivalent (--strict)")
    assert not out.exists()


def test_strict_passes_a_fully_mapped_config(tmp_path, capsys) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text("virtual_server 192.0.2.5 80 {\n  lb_algo rr\n  protocol TCP\n  real_server 10.0.0.5 80 {\n"
                      "    weight 2\n    TCP_CHECK {\n      connect_timeout 2\n    }\n  }\n}\n")
    assert main(["import", "--from", "keepalived", str(source), "--strict"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "Every directive was carried over." in captured.out


def test_parse_error_exits_1_with_one_line_per_problem(tmp_path, capsys) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text("vrrp_instance A {\n  advert_int x\n  virtual_router_id y\n}\n")
    assert main(["import", "--from", "keepalived", str(source)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{source}:2: advert_int: 'x' is not a number",
        f"{source}:3: virtual_router_id: 'y' is not an integer",
    ]


def test_missing_file(tmp_path, capsys) -> None:
    assert main(["import", "--from", "ldirectord", str(tmp_path / "nope.cf")]) == 1
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'nope.cf'}: cannot read: no such file"


def test_a_directory_is_not_a_file(tmp_path, capsys) -> None:
    assert main(["import", "--from", "keepalived", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"{tmp_path}: cannot read: not a regular file"


def test_output_that_does_not_validate_is_refused(tmp_path, capsys) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text("virtual_server 192.0.2.5 80 {\n  lb_algo fastest\n}\n")
    out = tmp_path / "out.toml"
    assert main(["import", "--from", "keepalived", str(source), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "does not validate" in err and "scheduler" in err and not out.exists()


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_an_include_of_a_device_or_fifo_is_refused_not_read(tmp_path, capsys, target: str) -> None:
    if target == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)  # nobody writes it: reading would block forever
    source = tmp_path / "keepalived.conf"
    source.write_text(f"include {target}\n")
    assert main(["import", "--from", "keepalived", str(source)]) == 1
    assert capsys.readouterr().err.strip() == f"{target}: cannot read: not a regular file"


def test_a_source_over_the_size_cap_is_refused(tmp_path, capsys) -> None:
    source = tmp_path / "ldirectord.cf"
    source.write_bytes(b"#" * (MAX_SOURCE_BYTES + 1))
    assert main(["import", "--from", "ldirectord", str(source)]) == 1
    assert capsys.readouterr().err.strip() == f"{source}: cannot read: larger than 8 MiB"


@pytest.mark.parametrize("value", ["1e400", "nan", "-inf"])
def test_a_number_that_is_not_finite_is_an_error_line(tmp_path, capsys, value: str) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text(f"virtual_server 192.0.2.5 80 {{\n  delay_loop {value}\n}}\n")
    assert main(["import", "--from", "keepalived", str(source)]) == 1
    assert capsys.readouterr().err.strip() == f"{source}:2: delay_loop: '{value}' is not a number"


def test_a_netmask_of_thousands_of_digits_is_an_error_line(tmp_path, capsys) -> None:
    source = tmp_path / "ldirectord.cf"
    source.write_text(f"virtual=192.0.2.5:80\n\treal=10.0.0.1:80 gate\n\tnetmask={'9' * 5000}\n")
    assert main(["import", "--from", "ldirectord", str(source)]) == 1
    assert capsys.readouterr().err.strip() == f"{source}:3: netmask: is not a netmask"
