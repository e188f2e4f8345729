#!/usr/bin/env bash
# Installs what banjia's server-backed tests need: Dovecot (IMAP and POP3)
# from Debian's packages. Idempotent: does nothing when Dovecot is there.
set -euo pipefail

if [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Dovecot is not installed. As root, run:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd dovecot-pop3d" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "Dovecot is not installed and apt-get is missing: install Dovecot 2.3 (imapd and pop3d) by hand" >&2
  exit 1
fi
echo "installing Dovecot from Debian's packages..." >&2
apt-get update
# The package's postinst may start the system-wide Dovecot; the tests run
# private instances on their own ports and leave that one alone.
DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-imapd dovecot-pop3d
if ! [ -x /usr/sbin/dovecot ] || ! [ -x /usr/bin/doveadm ]; then
  echo "apt-get finished but /usr/sbin/dovecot or /usr/bin/doveadm is still missing" >&2
  exit 1
fi
