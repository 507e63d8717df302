#!/usr/bin/env bash
# make build: the man pages and shell completions, made by the binaries
# themselves from their command definitions, next to them in BIN:
#   BIN/man/man8/*.8            ipvsman(8), one page per subcommand, ipvsmand(8)
#   BIN/completions/ipvsman.bash, _ipvsman (zsh), ipvsman.fish
# make install and make package take them from there, so a page or a
# completion is generated in one place only.
# Environment: BIN (the built binaries; default bin).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
for b in ipvsman ipvsmand; do
	[ -x "$BIN/$b" ] || { echo "gendocs: $BIN/$b missing: build the binaries first (make build)" >&2; exit 1; }
done

# The page date is the last commit's, so the same commit gives the same
# pages (and the same .deb).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

# Regenerated whole: a page of a subcommand that no longer exists must not
# survive from an earlier build into an install or a package.
man="$BIN/man/man8"
rm -rf "$BIN/man" "$BIN/completions"
mkdir -p "$man" "$BIN/completions"
"$BIN/ipvsman" gen-man "$man"
"$BIN/ipvsmand" --gen-man "$man"

"$BIN/ipvsman" completion bash >"$BIN/completions/ipvsman.bash"
"$BIN/ipvsman" completion zsh >"$BIN/completions/_ipvsman"
"$BIN/ipvsman" completion fish >"$BIN/completions/ipvsman.fish"
echo "gendocs: $(ls "$man" | wc -l) man pages in $man, completions in $BIN/completions"
