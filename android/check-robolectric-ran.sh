#!/usr/bin/env bash
# After `mvn -f android/pom.xml test`: fails unless every Robolectric test class in
# carepass/src/androidUnitTest ran, all its tests passed and none was skipped. A Robolectric
# test that the build did not pick up (misnamed, wrong runner, engine missing) would otherwise
# pass CI silently. Prints "Robolectric: N passed, 0 failed" on success.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/carepass/src/androidUnitTest/kotlin"
reports="$here/target/surefire-reports"

status=0
classes=0
tests=0
attr() { sed -n "s/.*<testsuite [^>]*$1=\"\([0-9]*\)\".*/\1/p" "$2" | sed -n 1p; }

while IFS= read -r file; do
  pkg="$(sed -n 's/^package \([A-Za-z0-9_.]*\).*/\1/p' "$file" | sed -n 1p)"
  # The class right after @RunWith(RobolectricTestRunner::class), whatever annotations between.
  name="$(awk '/@RunWith\(RobolectricTestRunner::class\)/ { found = 1 }
               found && match($0, /^class [A-Za-z0-9_]+/) { print substr($0, 7, RLENGTH - 6); exit }' "$file")"
  if [ -z "$name" ]; then
    echo "$file: no class after @RunWith(RobolectricTestRunner::class)" >&2
    status=1
    continue
  fi
  case "$name" in
    *RobolectricTest) ;;
    *) echo "$file: $name runs on Robolectric but its name does not end in RobolectricTest, so pom.xml's robolectric execution does not pick it up" >&2
       status=1
       continue ;;
  esac
  report="$reports/TEST-$pkg.$name.xml"
  if [ ! -f "$report" ]; then
    echo "$pkg.$name did not run: no $report" >&2
    status=1
    continue
  fi
  t="$(attr tests "$report")"; f="$(attr failures "$report")"; e="$(attr errors "$report")"; s="$(attr skipped "$report")"
  if [ "${t:-0}" -eq 0 ] || [ "${f:-0}" -ne 0 ] || [ "${e:-0}" -ne 0 ] || [ "${s:-0}" -ne 0 ]; then
    echo "$pkg.$name: tests=${t:-?} failures=${f:-?} errors=${e:-?} skipped=${s:-?}" >&2
    status=1
    continue
  fi
  classes=$((classes + 1))
  tests=$((tests + t))
done < <(grep -rlF --include='*.kt' '@RunWith(RobolectricTestRunner::class)' "$src" | sort)

# The other way round: a *RobolectricTest file without the runner.
while IFS= read -r file; do
  if ! grep -q '@RunWith(RobolectricTestRunner::class)' "$file"; then
    echo "$file: named like a Robolectric test but not @RunWith(RobolectricTestRunner::class)" >&2
    status=1
  fi
done < <(find "$src" -name '*RobolectricTest.kt' | sort)

if [ "$classes" -eq 0 ]; then
  echo "no Robolectric test class ran" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  exit "$status"
fi
echo "Robolectric ($classes classes): $tests passed, 0 failed"
