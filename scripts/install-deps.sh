#!/usr/bin/env bash
# Installs what banjia's server-backed tests need, from Debian's packages:
# Dovecot (IMAP and POP3) for the mail tests, Cyrus IMAP and Courier-IMAP
# (private test servers with other namespaces, see internal/cyrus and
# internal/courier), and Chromium for the web portal's browser tests (driven
# over the DevTools protocol by chromedp, so no chromium-driver), with a
# small Chinese font so that screenshots of the Chinese pages show
# characters, not boxes. Idempotent: does nothing when all of it is there.
#
# cyrus-imapd and courier-imap conflict with dovecot-imapd (all three provide
# imap-server), so only their non-conflicting parts are installed as
# packages (cyrus-common, sasl2-bin; courier-base, courier-authdaemon,
# courier-authlib-userdb; ssmtp stands for the mail transport agent both
# want, without a daemon), and the two IMAP daemons' packages are unpacked
# without dpkg, at the version matching their installed base package, into
#   /opt/banjia-servers/cyrus    (usr/lib/cyrus/bin/imapd, idled)
#   /opt/banjia-servers/courier  (usr/bin/imapd, usr/lib/courier/courier/imaplogin)
# each with a .version file naming what was unpacked for which base. Nothing
# there is run as a system service; the tests start private instances.
set -euo pipefail

servers_dir=/opt/banjia-servers
cyrus_dir=$servers_dir/cyrus
courier_dir=$servers_dir/courier

have_dovecot() { [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ]; }
have_chromium() { [ -x /usr/bin/chromium ]; }
cjk_font=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
have_cjk_font() { [ -f "$cjk_font" ]; }
have_cyrus_base() {
  [ -x /usr/lib/cyrus/bin/master ] && [ -x /usr/sbin/saslpasswd2 ] &&
    dpkg-query -W -f='${Status}\n' cyrus-common 2>/dev/null | grep -q '^install ok installed$'
}
have_courier_base() {
  [ -x /usr/sbin/couriertcpd ] && [ -x /usr/sbin/makeuserdb ] && [ -x /usr/bin/maildirmake.courier ] &&
    [ -x /usr/sbin/authdaemond ] && [ -x /usr/sbin/sendmail ] &&
    dpkg-query -W -f='${Status}\n' courier-base 2>/dev/null | grep -q '^install ok installed$'
}
# matching NAME BASEPKG: the version of package NAME that depends on exactly
# the installed version of BASEPKG (they come from one source package and
# must match; courier-imap's own version differs from courier-base's).
matching() {
  local base v
  base=$(dpkg-query -W -f='${Version}' "$2" 2>/dev/null) || return 1
  [ -n "$base" ] || return 1
  for v in $(apt-cache madison "$1" 2>/dev/null | awk '{print $3}'); do
    if apt-cache show "$1=$v" 2>/dev/null | grep '^Depends:' | grep -qF "$2 (= $base)"; then
      echo "$v"
      return 0
    fi
  done
  return 1
}
# unpacked NAME DIR BASEPKG: DIR holds package NAME built for BASEPKG's
# installed version (recorded in DIR/.version at unpack time).
unpacked() {
  local base
  base=$(dpkg-query -W -f='${Version}' "$3" 2>/dev/null) || return 1
  [ -n "$base" ] && [ -f "$2/.version" ] && [ "$(sed -n 2p "$2/.version")" = "for $3 $base" ]
}
have_cyrus() { have_cyrus_base && unpacked cyrus-imapd "$cyrus_dir" cyrus-common && [ -x "$cyrus_dir/usr/lib/cyrus/bin/imapd" ]; }
have_courier() {
  have_courier_base && unpacked courier-imap "$courier_dir" courier-base &&
    [ -x "$courier_dir/usr/bin/imapd" ] && [ -x "$courier_dir/usr/lib/courier/courier/imaplogin" ]
}

missing=()      # what is missing, for messages
packages=()     # the Debian packages that install it
if ! have_dovecot; then
  missing+=("Dovecot")
  packages+=(dovecot-imapd dovecot-pop3d)
fi
if ! have_cyrus; then
  missing+=("Cyrus IMAP")
  # master and ctl_cyrusdb; saslpasswd2; the PLAIN and LOGIN mechanisms;
  # libwrap0, a dependency of cyrus-imapd's own imapd that dpkg does not see.
  # (cyrus-admin's cyradm is not needed: the tests' admin speaks IMAP.)
  packages+=(cyrus-common sasl2-bin libsasl2-modules libwrap0)
fi
if ! have_courier; then
  missing+=("Courier-IMAP")
  # couriertcpd and maildirmake; authdaemond; makeuserdb and authuserdb.
  # (courier-imap's gamin is not needed: IMAP_ENHANCEDIDLE=0.)
  packages+=(courier-base courier-authdaemon courier-authlib-userdb courier-authlib)
fi
if ! have_cyrus || ! have_courier; then
  # Both want a mail transport agent; ssmtp has no daemon. An MTA already
  # there (Dovecot's tests need none) does as well.
  if ! dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | grep '^install ok installed|' | grep -qw mail-transport-agent; then
    packages+=(ssmtp)
  fi
fi
if ! have_chromium; then
  missing+=("Chromium")
  packages+=(chromium)
fi
if ! have_cjk_font; then
  missing+=("a Chinese font")
  packages+=(fonts-wqy-microhei)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
what=$(IFS=,; echo "${missing[*]}")
what="${what//,/ and }"

if [ "$(id -u)" != 0 ]; then
  echo "Not installed: $what. As root, run: bash scripts/install-deps.sh" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "Not installed: $what, and apt-get is missing: install by hand Dovecot 2.3 (imapd and pop3d), Cyrus IMAP 3.6 (imapd in $cyrus_dir), Courier-IMAP 5 (in $courier_dir), Chromium (at /usr/bin/chromium) and a Chinese font" >&2
  exit 1
fi

# Another apt-get or dpkg (an earlier run of this script in the background,
# say) may hold dpkg's lock: apt-get waits for it rather than fail.
apt_opts=(-o DPkg::Lock::Timeout=1200)

echo "installing $what from Debian's packages${packages:+ (${packages[*]})}..." >&2
# apt-get update takes the lists lock, which DPkg::Lock::Timeout does not
# cover: retry while another apt-get holds it (and only then).
for i in $(seq 120); do
  if out=$(apt-get "${apt_opts[@]}" update 2>&1); then
    printf '%s\n' "$out"
    break
  fi
  printf '%s\n' "$out" >&2
  if [ "$i" = 120 ] || ! grep -qi 'lock' <<<"$out"; then
    echo "apt-get update failed" >&2
    exit 1
  fi
  echo "waiting for another apt-get to release its lock..." >&2
  sleep 10
done
# The postinst scripts may try to start system-wide Dovecot, Cyrus or
# Courier daemons; the tests run private instances on their own ports, and
# system Cyrus and Courier daemons are stopped below.
general=() servers=()
for p in "${packages[@]}"; do
  case $p in
    dovecot-*|chromium|fonts-*) general+=("$p") ;;
    *) servers+=("$p") ;;
  esac
done
if [ ${#general[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y "${general[@]}"
fi
if [ ${#servers[@]} -gt 0 ]; then
  # Without recommends: they would bring expect, tcl and more, unused here.
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends "${servers[@]}"
fi

# unpack NAME DIR BASEPKG: download the package NAME that matches the
# installed BASEPKG and unpack it into DIR.
unpack() {
  local name=$1 dir=$2 base=$3 version tmp deb
  if unpacked "$name" "$dir" "$base"; then
    return 0
  fi
  if ! version=$(matching "$name" "$base"); then
    echo "no $name in the package lists matches the installed $base $(dpkg-query -W -f='${Version}' "$base")" >&2
    return 1
  fi
  tmp=$(mktemp -d)
  # apt-get download drops privileges to _apt, which may not write to tmp.
  (cd "$tmp" && apt-get -o APT::Sandbox::User=root download "$name=$version")
  deb=$(ls "$tmp"/"${name}"_*.deb)
  rm -rf "$dir.new"
  mkdir -p "$dir.new"
  dpkg-deb -x "$deb" "$dir.new"
  printf '%s %s\nfor %s %s\n' "$name" "$version" "$base" "$(dpkg-query -W -f='${Version}' "$base")" >"$dir.new/.version"
  rm -rf "$dir"
  mv "$dir.new" "$dir"
  rm -rf "$tmp"
  echo "unpacked $name $version into $dir" >&2
}
mkdir -p "$servers_dir"
chmod 755 "$servers_dir"
if have_cyrus_base; then unpack cyrus-imapd "$cyrus_dir" cyrus-common || true; fi
if have_courier_base; then unpack courier-imap "$courier_dir" courier-base || true; fi

# Leave no system-wide Cyrus or Courier daemon running (a machine whose
# policy-rc.d allows starts would have them now): stop them through their own
# service scripts, never by process name, and keep them from starting at
# boot (cyrus-common's would listen on port 143 with a config of its own).
# The system Dovecot is left alone.
for svc in cyrus-imapd courier-authdaemon; do
  [ -x "/etc/init.d/$svc" ] || continue
  if "/etc/init.d/$svc" status >/dev/null 2>&1; then
    echo "stopping the system-wide $svc that its package started" >&2
    "/etc/init.d/$svc" stop || true
  fi
  if command -v update-rc.d >/dev/null; then
    update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
  if command -v systemctl >/dev/null; then
    systemctl disable --quiet "$svc.service" >/dev/null 2>&1 || true
  fi
done

failed=0
if ! have_dovecot; then
  echo "apt-get finished but /usr/sbin/dovecot or /usr/bin/doveadm is still missing" >&2
  failed=1
fi
if ! have_cyrus; then
  echo "Cyrus IMAP is still incomplete: cyrus-common, cyrus-admin and sasl2-bin installed, and cyrus-imapd unpacked in $cyrus_dir?" >&2
  failed=1
fi
if ! have_courier; then
  echo "Courier-IMAP is still incomplete: courier-base, courier-authdaemon and courier-authlib-userdb installed, and courier-imap unpacked in $courier_dir?" >&2
  failed=1
fi
if ! have_chromium; then
  echo "apt-get finished but /usr/bin/chromium is still missing" >&2
  failed=1
fi
if ! have_cjk_font; then
  echo "apt-get finished but $cjk_font is still missing" >&2
  failed=1
fi
exit $failed
