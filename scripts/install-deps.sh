#!/usr/bin/env bash
# Installs what banjia's tests need: Dovecot (IMAP and POP3) from Debian's
# packages. Idempotent; does nothing when Dovecot is already there.
set -euo pipefail
if [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Dovecot is not installed; as root run: apt-get update && apt-get install -y dovecot-imapd dovecot-pop3d" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "Dovecot is not installed and apt-get is not available: install dovecot-imapd and dovecot-pop3d by hand" >&2
  exit 1
fi
echo "installing Dovecot from Debian's packages..." >&2
apt-get update -qq
# The package's postinst may start the system-wide Dovecot; the tests use
# private instances on their own ports and leave that one alone.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd dovecot-pop3d >/dev/null
