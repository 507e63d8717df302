# Sourced by e2e.sh (and driven by test/runners): lab_count OUTPUT STATUS
# prints "lab: N passed, N failed" from the lab binary's -test.v output and
# returns the suite's status. A run in which no test passed or failed is a
# failure whatever the binary said: a -test.run filter that matches nothing
# exits 0 with "no tests to run", which must not read as a passing lab.
lab_count() {
	local out=$1 status=$2 passed failed
	passed=$(grep -c '^--- PASS' "$out" 2>/dev/null || true)
	failed=$(grep -c '^--- FAIL' "$out" 2>/dev/null || true)
	passed=${passed:-0} failed=${failed:-0}
	if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi # the VM or the binary died
	echo "lab: $passed passed, $failed failed"
	if [ $((passed + failed)) -eq 0 ]; then
		echo "lab: no test ran (a -test.run filter that matches nothing, or no output): a failure" >&2
		return 1
	fi
	return "$status"
}
