#!/usr/bin/env bash
# make install: what the .deb installs, for hosts that take no .deb, under
# DESTDIR and PREFIX (default /usr/local):
#   PREFIX/sbin/ipvsmand, PREFIX/sbin/ipvsman
#   PREFIX/share/man/man8/*.8.gz                    (made by make build)
#   PREFIX/share/bash-completion/completions/ipvsman
#   ZSHDIR/_ipvsman               (default PREFIX/share/zsh/site-functions)
#   PREFIX/share/fish/vendor_completions.d/ipvsman.fish
#   UNITDIR/ipvsmand.service      (default PREFIX/lib/systemd/system)
#   PREFIX/lib/modules-load.d/ipvsman.conf
#   PREFIX/share/doc/ipvsman/     (LICENSE, copyright, examples)
#   /etc/default/ipvsmand, /etc/ipvsman (0700), /etc/ipvsman/checks (0755),
#                                 each only if absent: they are the operator's
# The unit's and the man pages' /usr/sbin become PREFIX/sbin. Like the
# package it never enables or starts the daemon (and runs no systemctl: a
# DESTDIR install is for another root). The paths under /etc are fixed:
# the unit and the daemon's defaults name them.
# Environment: BIN, PREFIX, DESTDIR, UNITDIR, ZSHDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
ZSHDIR=${ZSHDIR:-$PREFIX/share/zsh/site-functions}

case $PREFIX in
/*) ;;
*) echo "install: PREFIX \"$PREFIX\": want an absolute path such as /usr/local or /usr" >&2; exit 1 ;;
esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || { echo "install: PREFIX \"/\": want /usr, not the root (binaries would go to /sbin)" >&2; exit 1; }
for f in "$BIN/ipvsmand" "$BIN/ipvsman" "$BIN/man/man8/ipvsman.8" "$BIN/man/man8/ipvsmand.8" "$BIN/completions/ipvsman.bash"; do
	[ -e "$f" ] || { echo "install: $f missing: run make build first" >&2; exit 1; }
done

d=$DESTDIR
install -d "$d$PREFIX/sbin" "$d$PREFIX/share/man/man8" "$d$PREFIX/share/bash-completion/completions" \
	"$d$ZSHDIR" "$d$PREFIX/share/fish/vendor_completions.d" "$d$UNITDIR" \
	"$d$PREFIX/lib/modules-load.d" "$d$PREFIX/share/doc/ipvsman"
install -m 0755 "$BIN/ipvsmand" "$BIN/ipvsman" "$d$PREFIX/sbin/"

# Man pages compressed, as man-db expects them; "-n" keeps the build time
# out of the file. FILES and EXAMPLE name /usr/sbin and /usr/share/doc: the
# installed paths.
for page in "$BIN"/man/man8/*.8; do
	sed -e "s|/usr/sbin/|$PREFIX/sbin/|g" -e "s|/usr/share/doc/ipvsman|$PREFIX/share/doc/ipvsman|g" "$page" |
		gzip -9n >"$d$PREFIX/share/man/man8/$(basename "$page").gz"
	chmod 0644 "$d$PREFIX/share/man/man8/$(basename "$page").gz"
done
install -m 0644 "$BIN/completions/ipvsman.bash" "$d$PREFIX/share/bash-completion/completions/ipvsman"
install -m 0644 "$BIN/completions/_ipvsman" "$d$ZSHDIR/_ipvsman"
install -m 0644 "$BIN/completions/ipvsman.fish" "$d$PREFIX/share/fish/vendor_completions.d/ipvsman.fish"

sed -e "s|/usr/sbin/ipvsmand|$PREFIX/sbin/ipvsmand|g" -e "s|file:/usr/share/doc/ipvsman|file:$PREFIX/share/doc/ipvsman|g" \
	packaging/systemd/ipvsmand.service >"$d$UNITDIR/ipvsmand.service"
chmod 0644 "$d$UNITDIR/ipvsmand.service"
install -m 0644 packaging/modules-load.conf "$d$PREFIX/lib/modules-load.d/ipvsman.conf"

install -m 0644 LICENSE packaging/copyright "$d$PREFIX/share/doc/ipvsman/"
rm -rf "$d$PREFIX/share/doc/ipvsman/examples"
cp -R examples "$d$PREFIX/share/doc/ipvsman/examples"
find "$d$PREFIX/share/doc/ipvsman/examples" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

# The operator's files: made once, never overwritten (a reinstall keeps
# IPVSMAND_OPTS and the check programs).
if [ ! -e "$d/etc/default/ipvsmand" ]; then
	install -D -m 0644 packaging/default/ipvsmand "$d/etc/default/ipvsmand"
fi
if [ ! -d "$d/etc/ipvsman" ]; then
	install -d -m 0700 "$d/etc/ipvsman"
fi
if [ ! -d "$d/etc/ipvsman/checks" ]; then
	install -d -m 0755 "$d/etc/ipvsman/checks"
fi
echo "install: ipvsman in $d$PREFIX (unit in $d$UNITDIR); not enabled: put the cluster token in /etc/ipvsman/token (0600), set IPVSMAND_OPTS in /etc/default/ipvsmand, then systemctl daemon-reload && systemctl enable --now ipvsmand"
