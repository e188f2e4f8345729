#!/usr/bin/env bash
# Installs what banjia's server-backed tests need, from Debian's packages:
# Dovecot (IMAP and POP3) for the mail tests, and Chromium for the web
# portal's browser tests (driven over the DevTools protocol by chromedp, so
# no chromium-driver), with a small Chinese font so that screenshots of the
# Chinese pages show characters, not boxes. Idempotent: does nothing when
# all of it is there.
set -euo pipefail

have_dovecot() { [ -x /usr/sbin/dovecot ] && [ -x /usr/bin/doveadm ]; }
have_chromium() { [ -x /usr/bin/chromium ]; }
cjk_font=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
have_cjk_font() { [ -f "$cjk_font" ]; }

missing=()      # what is missing, for messages
packages=()     # the Debian packages that install it
if ! have_dovecot; then
  missing+=("Dovecot")
  packages+=(dovecot-imapd dovecot-pop3d)
fi
if ! have_chromium; then
  missing+=("Chromium")
  packages+=(chromium)
fi
if ! have_cjk_font; then
  missing+=("a Chinese font")
  packages+=(fonts-wqy-microhei)
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
what=$(IFS=,; echo "${missing[*]}")
what="${what//,/ and }"

if [ "$(id -u)" != 0 ]; then
  echo "Not installed: $what. As root, run:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "Not installed: $what, and apt-get is missing: install by hand Dovecot 2.3 (imapd and pop3d), Chromium (at /usr/bin/chromium) and a Chinese font" >&2
  exit 1
fi
echo "installing $what from Debian's packages (${packages[*]})..." >&2
apt-get update
# Dovecot's postinst may start the system-wide Dovecot; the tests run
# private instances on their own ports and leave that one alone.
DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"

failed=0
if ! have_dovecot; then
  echo "apt-get finished but /usr/sbin/dovecot or /usr/bin/doveadm is still missing" >&2
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
