#!/usr/bin/env bash
# The source tree keeps the shape docs/DESIGN.md describes:
#  - no header is included through "../" (include paths say where code
#    may reach: see the Makefile);
#  - atomics go through lib/common/atomics.h only: no raw __atomic_*,
#    __sync_* or ck_pr_* elsewhere in lib/, agent/ or tools/;
#  - no function in lib/, agent/ or tools/ is longer than 100 lines unless
#    the comment above it says why it stays whole ("kept whole");
#  - the agent's include graph has no cycle between its core (agent/) and
#    its exporters (agent/export/): of agent/'s headers the exporters
#    include only the layer below both (batch.h, config.h, log.h, loop.h,
#    version.h; not agent.h, registry.h, drain.h, ...), and those include
#    no other header of agent/ and none of agent/export/. What the
#    exporters see of the core is agent/export/exporter.h.
# Checks only the source tree; runs once per build like the other tests.
set -uo pipefail
src=${SPANRING_TEST_SRC:?}
cd "$src" || { echo "FAIL: cd $src"; exit 1; }
bad=0
fail() { echo "FAIL: $*"; bad=1; }
srcs=$(find lib agent tools tests include -name '*.[ch]' ! -path '*/node_modules/*' | sort)

if grep -n '#include "\.\./' $srcs; then fail 'headers included through "../"'; fi

raw=$(grep -n '__atomic_\|__sync_\|ck_pr_' $(grep -v '^tests/\|lib/common/atomics.h' <<<"$srcs") |
	grep -v '^\S*:[0-9]*:\s*\*\|^\S*:[0-9]*:\s*/\*')
[ -z "$raw" ] || { echo "$raw"; fail "atomics outside lib/common/atomics.h"; }

long=$(python3 - $(grep '^\(lib\|agent\|tools\)/.*\.c$' <<<"$srcs") <<'EOF'
import re, sys
LIMIT = 100
for path in sys.argv[1:]:
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        # a function body: "{" alone at column 0 after a signature
        if lines[i] == "{" and i > 0 and "(" in "".join(lines[max(0, i - 4):i]):
            start = i
            j = i + 1
            while j < len(lines) and lines[j] != "}":
                j += 1
            n = j - start - 1
            if n > LIMIT:
                # the signature and the comment block above it
                k = start - 1
                while k > 0 and lines[k - 1].strip() and not lines[k - 1].startswith("}"):
                    k -= 1
                head = "\n".join(lines[k:start]).lower()
                sig = " ".join(l.strip() for l in lines[max(0, start - 3):start])
                name = re.findall(r"(\w+)\s*\(", sig)
                if "kept whole" not in head:
                    print(f"{path}:{start}: {name[0] if name else '?'}: {n} lines")
            i = j
        i += 1
EOF
)
[ -z "$long" ] || { echo "$long"; fail "functions over 100 lines without a comment saying why"; }

# The exporters' layer below them in agent/, and the path of each of its
# headers.
below="batch.h config.h log.h loop.h version.h"
base=$(for h in $below; do echo "agent/$h"; done)
# "FILE: HEADER" for each header of folder $1 that a file of $3... includes
# by its name ("HEADER") and the list $2 does not allow.
reach() {
	local dir=$1 allow=$2 f h
	shift 2
	for f in "$@"; do
		for h in $(sed -n 's/^\s*#\s*include\s*"\([^"/]*\)".*/\1/p' "$f"); do
			[ -e "$dir/$h" ] && ! grep -qwF "$h" <<<"$allow" && echo "$f: $h"
		done
	done
	return 0
}
up=$(reach agent "$below" agent/export/*.[ch])
[ -z "$up" ] || { echo "$up"; fail "an exporter includes a core header (agent.h or a module's)"; }
up=$(reach agent "$below" $base)
[ -z "$up" ] || { echo "$up"; fail "a header below the exporters includes a core header"; }
down=$(reach agent/export "" $base)
[ -z "$down" ] || { echo "$down"; fail "a header below the exporters includes an exporter's header"; }

[ $bad -eq 0 ] && echo "code rules hold: $(wc -l <<<"$srcs") files"
exit $bad
