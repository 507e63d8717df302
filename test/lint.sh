#!/usr/bin/env bash
# make lint: gofmt over every Go file git tracks, then go vet under the
# default build and under every set of build tags a file's //go:build line
# asks for (its positive tags: "lab && labbench" is vetted as lab,labbench),
# so that build-tagged code is compiled and vetted too, including tags added
# later. An empty or failed listing fails: it would check nothing.
set -euo pipefail
GO=${GO:-go}

files=$(git ls-files '*.go') || { echo "lint: git ls-files failed: no Go files to check" >&2; exit 1; }
[ -n "$files" ] || { echo "lint: git ls-files listed no Go files: nothing to check" >&2; exit 1; }
# shellcheck disable=SC2086 # one word per file: git's paths here have no spaces
unformatted=$(gofmt -l $files)
if [ -n "$unformatted" ]; then
	echo "$unformatted"
	echo "gofmt: files above need formatting"
	exit 1
fi

# shellcheck disable=SC2086
sets=$(grep -h '^//go:build' $files | while read -r _ expr; do
	grep -o '!\?[A-Za-z0-9_.]\+' <<<"$expr" | grep -v '^!' | sort -u | paste -sd, - || true
done | grep -v '^$' | sort -u || true)

echo "lint: go vet ./..."
"$GO" vet ./...
n=1
for tags in $sets; do
	echo "lint: go vet -tags $tags ./..."
	"$GO" vet -tags "$tags" ./...
	n=$((n + 1))
done
echo "lint: $(wc -l <<<"$files") files formatted; vetted under $n tag sets (default, $(paste -sd' ' - <<<"$sets"))"
