#!/bin/sh
# SPDX-License-Identifier: MIT
# usage: check-layout.sh LIB_SO CPU_FAMILY [NM]
# The code of a debug exit's paths in the pages lib/arch/arch.h lays out for
# it (issue 17: under nested TCG every page touched after an exit is a TLB
# refill and every jump across pages a lookup of the next translated
# block): each region starts a page (its first function page-aligned) and
# ends in that page. Regions, in link order: the hot one (KVMDBG_HOT, from
# kvmdbg_vcpu_handle_exit: every exit), the hardware points' two-exit
# step-over (KVMDBG_STEP, from kvmdbg_stepover_end_fast), the software
# breakpoint's (KVMDBG_STEP_SW, from swbp_hit_fast). A function that grows
# a region past its page fails here, not only in a bed's ratio.
set -eu
so=$1
cpu=$2
nm=${3:-nm}
n=0
bad=0

ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}
notok() {
	n=$((n + 1))
	bad=1
	echo "not ok $n - $*"
}

syms=$(mktemp)
trap 'rm -f "$syms"' EXIT
# address size name, text symbols only; GCC's clones (.constprop.0, .isra.0)
# under their own names.
"$nm" -n -S "$so" 2>/dev/null | awk 'NF == 4 && ($3 == "t" || $3 == "T") {
	name = $4; sub(/\..*/, "", name); print $1, $2, name }' >"$syms"
if ! grep -q ' kvmdbg_vcpu_handle_exit$' "$syms"; then
	echo "1..0 # SKIP no symbol table in $so (stripped)"
	exit 0
fi

case $cpu in
x86_64)
	hot="kvmdbg_vcpu_handle_exit kvmdbg_vcpu_prepare x86_set_resume_flag"
	step="kvmdbg_stepover_end_fast resume_step_hw kvmdbg_step_back_fast kvmdbg_host_set_guest_debug"
	sw_glue="kvmdbg_host_set_guest_debug_sw"
	;;
aarch64)
	hot="kvmdbg_vcpu_handle_exit kvmdbg_vcpu_prepare kvmdbg_arm64_decode kvmdbg_host_read_exit"
	step="kvmdbg_stepover_end_fast resume_step_hw kvmdbg_step_back_fast wp_hits
	      kvmdbg_arm64_mask_irqs kvmdbg_arm64_restore_irqs kvmdbg_host_set_guest_debug"
	sw_glue="kvmdbg_host_set_guest_debug_sw kvmdbg_arm64_mask_irqs_sw"
	;;
*)
	echo "1..0 # SKIP no layout for $cpu"
	exit 0
	;;
esac
# The software breakpoint's hit and its resume (the first exit) in this
# region alone besides the hot one: the glue's twins of the step-over's calls.
sw="swbp_hit_fast kvmdbg_mutex_lock kvmdbg_mutex_unlock finish_unlift kvmdbg_stepover_lift_fast
    resume_step_sw $sw_glue"

# region NAME FUNCTIONS: the first function page-aligned, every one
# present and ending in the first one's page.
region() {
	name=$1
	shift
	first=$1
	page=
	for f in "$@"; do
		line=$(awk -v f="$f" '$3 == f { print; exit }' "$syms")
		if [ -z "$line" ]; then
			notok "$name: no function $f in $so"
			continue
		fi
		start=$((0x$(echo "$line" | cut -d' ' -f1)))
		size=$((0x$(echo "$line" | cut -d' ' -f2)))
		end=$((start + size - 1))
		if [ "$f" = "$first" ]; then
			page=$((start / 4096))
			if [ $((start % 4096)) -ne 0 ]; then
				notok "$name: $f at $(printf '%#x' "$start"), not at the start of a page"
			else
				ok "$name: $f starts page $(printf '%#x' "$start")"
			fi
		elif [ $((start / 4096)) -ne "$page" ] || [ $((end / 4096)) -ne "$page" ]; then
			notok "$name: $f at $(printf '%#x-%#x' "$start" "$end"), out of the page of $first"
		else
			ok "$name: $f in the page of $first"
		fi
	done
}

# shellcheck disable=SC2086 # the lists split into function names
region hot $hot
# shellcheck disable=SC2086
region step $step
# shellcheck disable=SC2086
region sw $sw
echo "1..$n"
exit $bad
