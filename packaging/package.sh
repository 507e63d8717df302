#!/usr/bin/env bash
# make package: stage what the .deb holds besides the checked-in files (the
# binaries, the man pages and shell completions make build made with them,
# the examples), then build dist/ipvsman_DEBVERSION_amd64.deb with nfpm.
# Environment: VERSION (the Makefile's), BIN (built binaries), GO.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSION:?VERSION is unset (run make package)}"
BIN=${BIN:-bin}
GO=${GO:-go}

# The Makefile's VERSION is 0.8.0+<git describe>, e.g. 0.8.0+78ccb09 or
# 0.8.0+78ccb09-dirty. Debian allows a hyphen in the upstream version only
# when a Debian revision follows, so hyphens become dots; a leading v of a
# tag goes. The result still names the commit the binaries report.
DEB_VERSION=${VERSION#v}
DEB_VERSION=${DEB_VERSION//-/.}
if ! [[ $DEB_VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
	echo "package: VERSION \"$VERSION\" gives Debian version \"$DEB_VERSION\": want a digit, then letters, digits and . + ~" >&2
	exit 1
fi

STAGE=dist/stage # the name packaging/nfpm.yaml uses
rm -rf "$STAGE"
mkdir -p "$STAGE/usr/sbin" "$STAGE/usr/share/man/man8" \
	"$STAGE/usr/share/bash-completion/completions" \
	"$STAGE/usr/share/zsh/vendor-completions" \
	"$STAGE/usr/share/fish/vendor_completions.d" \
	"$STAGE/usr/share/doc/ipvsman"
install -m 0755 "$BIN/ipvsmand" "$BIN/ipvsman" "$STAGE/usr/sbin/"

# Every file's time in the .deb (nfpm reads SOURCE_DATE_EPOCH) is the last
# commit's, as is the date of the man pages make build made (gendocs.sh):
# the same commit gives the same .deb.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
for f in "$BIN/man/man8/ipvsman.8" "$BIN/man/man8/ipvsmand.8" "$BIN/completions/ipvsman.bash"; do
	[ -f "$f" ] || { echo "package: $f missing: make build makes it" >&2; exit 1; }
done
man="$STAGE/usr/share/man/man8"
cp "$BIN"/man/man8/*.8 "$man/"
gzip -9n "$man"/*.8

cp "$BIN/completions/ipvsman.bash" "$STAGE/usr/share/bash-completion/completions/ipvsman"
cp "$BIN/completions/_ipvsman" "$STAGE/usr/share/zsh/vendor-completions/_ipvsman"
cp "$BIN/completions/ipvsman.fish" "$STAGE/usr/share/fish/vendor_completions.d/ipvsman.fish"

cp -R examples "$STAGE/usr/share/doc/ipvsman/examples"
# Documentation is world-readable whatever the checkout's umask was.
find "$STAGE/usr/share/doc/ipvsman/examples" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +

# nfpm lives in its own module (packaging/tools) to stay out of go.mod.
"$GO" -C packaging/tools build -o "$PWD/$BIN/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm

deb="dist/ipvsman_${DEB_VERSION}_amd64.deb"
rm -f dist/ipvsman_*.deb # one package in dist/: the one just built
DEB_VERSION=$DEB_VERSION "$BIN/nfpm" package --config packaging/nfpm.yaml --packager deb --target "$deb" >&2
echo "$deb"
