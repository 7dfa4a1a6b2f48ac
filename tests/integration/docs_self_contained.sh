#!/usr/bin/env bash
# The documentation stands alone and stays true to the tree:
#  - README.md, docs/*.md and the man pages never send a reader outside the
#    repository (no ../ paths, no link to a file that is not in it);
#  - every source path they name in backquotes (lib/x.c, agent/export/,
#    tests/integration/y.sh ...) exists, so a moved or deleted file cannot
#    leave a stale reference behind;
#  - the README's Layout section names every source folder: each top-level
#    folder and each folder under lib/, agent/, tools/ and tests/ that holds
#    sources.
# Runs once per build but checks only the source tree.
set -uo pipefail
src=${SPANRING_TEST_SRC:?}
cd "$src" || { echo "FAIL: cd $src"; exit 1; }
bad=0
fail() { echo "FAIL: $*"; bad=1; }

docs=(README.md docs/*.md)
pages=("${docs[@]}" man/*.[0-9])

# 1. nothing outside the repository
tmp_flag=$(mktemp); trap 'rm -f "$tmp_flag"' EXIT
for f in "${pages[@]}"; do
	if grep -n '\.\./shared\|\.\./\.\./' "$f"; then fail "$f points outside the repository"; fi
done

# 2. markdown links: relative targets exist (anchors and URLs skipped)
for f in "${docs[@]}"; do
	dir=$(dirname "$f")
	grep -o '\]([^)#]*' "$f" | sed 's/^](//' | while IFS= read -r t; do
		case "$t" in ''|http://*|https://*|mailto:*) continue ;; esac
		[ -e "$dir/$t" ] || echo "$f: link to $t: no such file in the repository"
	done
done >"$tmp_flag"
if [ -s "$tmp_flag" ]; then fail "broken links:"; sed 's/^/    /' "$tmp_flag"; fi

# 3. source paths named in backquotes exist
for f in "${pages[@]}"; do
	grep -o '`\(lib\|agent\|tools\|tests\|include\|proto\|docs\|man\)/[A-Za-z0-9_./*-]*`' "$f" |
		tr -d '`' | sort -u | while IFS= read -r p; do
		p=${p%/}
		# a glob (tests/unit/test_*.c) must match something
		# shellcheck disable=SC2086
		# a program is named by its source without the extension
		compgen -G "$p" >/dev/null || compgen -G "$p.[chs]*" >/dev/null ||
			compgen -G "$p.py" >/dev/null || echo "$f: names $p, which does not exist"
	done
done >"$tmp_flag"
if [ -s "$tmp_flag" ]; then fail "stale paths:"; sed 's/^/    /' "$tmp_flag"; fi

# 4. the README's Layout section names every source folder
layout=$(sed -n '/^## Layout/,/^## [^L]/p' README.md)
[ -n "$layout" ] || fail "README.md has no Layout section"
srcdirs=$( { ls -d */ | tr -d /; for top in lib agent tools tests; do
	find "$top" -mindepth 1 -maxdepth 1 -type d ! -name node_modules ! -name regressions \
		-exec sh -c 'ls "$1" | grep -q "\.\(c\|h\|sh\|js\|py\)$"' _ {} \; -print
done; } | grep -v '^build$' | sort -u)
for d in $srcdirs; do
	name=${d##*/}
	# a folder is named as "lib/preload/" in the left column, or as "name/" in
	# the description of its parent's line ("unit/ (cmocka)")
	grep -q "^$d/\|[ (,]$name/" <<<"$layout" || fail "README Layout does not name $d/"
done
[ $bad -eq 0 ] && echo "docs are self-contained: ${#pages[@]} pages, $(wc -w <<<"$srcdirs") source folders named"
exit $bad
