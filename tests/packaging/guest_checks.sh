#!/bin/bash
# Runs inside the booted guest (tests/packaging/test_deb_system.py), as a oneshot unit
# after multi-user.target, on a Debian 12 root where `apt install ./directord_*.deb` ran.
# It does what an admin does after the install (README quick start), then remove and
# purge. Each check writes one line to $OUT: `ok NAME` or `fail NAME: detail`; the
# test on the host asserts every expected name is ok. Artifacts (for the release note)
# go to $ART. It powers the guest off at the end, whatever happened.
set -u
OUT=/root/results.txt
ART=/root/artifacts
CONF=/etc/directord/directord.toml
mkdir -p "$ART"
: > "$OUT"
trap 'sync; systemctl poweroff --no-block' EXIT

ok() { echo "ok $1" >> "$OUT"; sync; }
fail() { echo "fail $1: $(echo "$2" | tr '\n' ' ' | cut -c1-600)" >> "$OUT"; sync; }
# check NAME CMD...: ok when CMD exits 0, else fail with its output.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$out"; fi
}
# wait_for SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local end=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.5
  done
}
active() { [[ $(systemctl is-active directord) == "$1" ]]; }

# --- the installed files
dpkg -L directord > "$ART/dpkg-L.txt"
check version bash -c 'directord --version | grep -qx "directord [0-9][0-9.]*"'
files=(/usr/bin/directord /lib/systemd/system/directord.service /etc/directord/directord.toml
       /usr/share/man/man8/directord.8.gz /usr/share/man/man5/directord.toml.5.gz
       /usr/share/doc/directord/README.md /usr/share/doc/directord/copyright
       /usr/share/doc/directord/docs/configuration.md
       /usr/share/bash-completion/completions/directord /usr/share/zsh/vendor-completions/_directord)
missing=$(for f in "${files[@]}"; do grep -qx "$f" "$ART/dpkg-L.txt" && [[ -e $f ]] || echo "$f"; done)
[[ -z $missing ]] && ok files || fail files "not installed: $missing"
check conffile bash -c "dpkg-query -W -f='\${Conffiles}' directord | grep -q ' /etc/directord/directord.toml '"
check config-mode bash -c "[[ \$(stat -c '%a %U' $CONF) == '600 root' ]]"
check man-link bash -c "systemctl show -p Documentation directord | grep -q 'man:directord(8)'"
check not-enabled bash -c '[[ $(systemctl is-enabled directord) == disabled ]] && ! systemctl is-active -q directord'

# --- the commands an admin runs before going live
check check-config-example directord check-config --no-host-checks -c "$CONF"
check import bash -c 'directord import --from keepalived /root/samples/keepalived.conf -o /root/imported.toml &&
                      directord check-config --no-host-checks -c /root/imported.toml'
python3 -m http.server 8080 --bind 127.0.0.1 --directory /root >/dev/null 2>&1 &
web=$!
cat > /root/probe.toml <<'TOML'
[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
[virtual_server.check]
type = "http"
path = "/"
[[virtual_server.real_server]]
address = "127.0.0.1"
port = 8080
TOML
wait_for 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080'
check probe bash -c 'directord probe --json -c /root/probe.toml |
                     python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"up\"] == 1, d"'
kill "$web"

# --- edit the config (one VRRP instance on a dummy link, one virtual server), enable --now
ip link add dummy0 type dummy && ip addr add 192.0.2.2/24 dev dummy0 && ip link set dummy0 up
write_config() {  # $1: the real server's weight
  cat > "$CONF" <<TOML
[global]
router_id = "guest"

[ipvs]
expire_nodest_conn = true

[[vrrp_instance]]
name = "VI_1"
interface = "dummy0"
vrid = 51
priority = 150
virtual_ips = ["192.0.2.10/24"]

[[virtual_server]]
name = "web"
address = "192.0.2.10"
port = 80
method = "nat"
  [virtual_server.check]
  type = "none"
  [[virtual_server.real_server]]
  address = "198.51.100.11"
  port = 80
  weight = $1
TOML
}
# a mistake first: the start fails with the reason in the journal, and systemd gives up
# (StartLimitBurst) rather than retrying forever
printf '[global]\nrouter_id = 7\n' > "$CONF"
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
if systemctl start directord >/dev/null 2>&1; then fail bad-start-refused "start with an invalid config succeeded"
else ok bad-start-refused; fi
# between tries the unit is "activating (auto-restart)"; "failed" means systemd gave up
check bad-start-gives-up wait_for 120 bash -c '[[ $(systemctl show -p ActiveState --value directord) == failed ]] &&
                                              journalctl -q -u directord | grep -q "Start request repeated too quickly"'
check bad-start-tries bash -c '(( $(systemctl show -p NRestarts --value directord) <= 5 ))'
journalctl -q -p err -u directord --since "$since" -o cat > "$ART/journal-err-start.txt" 2>&1
check bad-start-journal grep -q "global.router_id" "$ART/journal-err-start.txt"
systemctl status --no-pager directord > "$ART/systemctl-status-failed.txt" 2>&1
systemctl reset-failed directord

write_config 10
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
check enable-now bash -c 'systemctl enable --now directord && systemctl is-active -q directord'
check vip wait_for 30 bash -c 'ip -o addr show dev dummy0 | grep -q "inet 192.0.2.10/24"'
check ipvs wait_for 30 bash -c 'ipvsadm -Ln | grep -q "198.51.100.11:80 *Masq *10 "'
check sysctl-written wait_for 30 bash -c '[[ $(cat /proc/sys/net/ipv4/vs/expire_nodest_conn) == 1 ]]'
check status bash -c 'directord status > /root/artifacts/directord-status.txt'
systemctl status --no-pager directord > "$ART/systemctl-status.txt" 2>&1
check systemctl-status grep -q "Active: active (running)" "$ART/systemctl-status.txt"
check no-errors-at-start bash -c "[[ -z \$(journalctl -q -p err -u directord --since '$since' -o cat) ]] ||
                                  { journalctl -q -p err -u directord --since '$since' -o cat; false; }"

# --- reload: a good edit is applied, a bad one refused with one err line, daemon kept
pid=$(systemctl show -p MainPID --value directord)
write_config 20
check reload systemctl reload directord
check reload-applied wait_for 30 bash -c 'ipvsadm -Ln | grep -q "198.51.100.11:80 *Masq *20 "'
since=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
cp "$CONF" /root/good.toml
printf '[global]\nrouter_id = 7\n' > "$CONF"
if systemctl reload directord >/dev/null 2>&1; then fail bad-reload-refused "reload of an invalid config succeeded"
else ok bad-reload-refused; fi
check kept-running bash -c "systemctl is-active -q directord && [[ \$(systemctl show -p MainPID --value directord) == $pid ]]"
journalctl -q -p err -u directord --since "$since" -o cat > "$ART/journal-err.txt" 2>&1
check journal-err-has-reason grep -q "global.router_id" "$ART/journal-err.txt"
# ExecReload's own lines: the header and the reason below it, both at err
check journal-err-reload-client grep -q "^$CONF:2: global.router_id" "$ART/journal-err.txt"
check journal-err-only-errors bash -c '! grep -Eiq "(^| )(level=)?(info|debug|warning)( |$)" /root/artifacts/journal-err.txt'
journalctl -q -u directord -o short-monotonic --no-pager > "$ART/journal.txt" 2>&1
cp /root/good.toml "$CONF"

# --- the sandbox
systemd-analyze security --no-pager directord.service > "$ART/security.txt" 2>&1
grep "Overall exposure level" "$ART/security.txt" > "$ART/exposure.txt"
check exposure bash -c "grep -oE '[0-9]+\.[0-9]+' $ART/exposure.txt | python3 -c 'import sys; assert float(sys.stdin.read()) <= 2.8'"

# --- stop, then remove (stops a running unit, keeps config and state) and purge
check stop bash -c 'systemctl stop directord && ! systemctl is-active -q directord &&
                    [[ $(systemctl show -p Result --value directord) == success ]]'
systemctl start directord
check remove bash -c 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -q directord >/root/artifacts/remove.log 2>&1 &&
                      ! systemctl is-active -q directord && [[ -f /etc/directord/directord.toml ]] &&
                      [[ -d /var/lib/directord ]] && [[ ! -e /lib/systemd/system/directord.service ]] &&
                      [[ ! -e /usr/bin/directord ]]'
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q directord > "$ART/purge.log" 2>&1
left=$(ls -d /etc/directord /var/lib/directord /run/directord 2>/dev/null
       find /etc/systemd /lib/systemd /run/systemd/system -name "directord.*" 2>/dev/null
       dpkg-query -W -f='${Status}\n' directord 2>/dev/null | grep -v not-installed)
[[ -z $left ]] && ok purge || fail purge "left after apt purge: $left"
echo done >> "$OUT"
