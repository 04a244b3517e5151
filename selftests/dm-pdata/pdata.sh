#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# persistent-data through the Rust abstractions: a zeroed device is formatted,
# bits set across several commits survive reopening, changes not committed do
# not, a crash between pre-commit and commit (dm-flakey dropping the
# superblock write) leaves the last committed state readable, words written
# whole, a resize in steps and a rewrite read back right, and a metadata
# device full of random bytes is refused with a clear error and no oops.
. "$(dirname "$0")/../lib/dm.sh"

BITS=100000
ktap_print_header
dm_require_modules dm_pdata_test dm_flakey
dm_brd_setup pd- 2 16
ktap_set_plan 24

n=$(dm_sectors /dev/ram0)
up="0 $n flakey /dev/ram0 0 1 0"             # always up: a plain pass-through
down="0 $n flakey /dev/ram0 0 0 1 1 drop_writes" # always down: writes vanish
dmsetup create pd-meta --table "$up"
table="0 8 pdata_test /dev/mapper/pd-meta $BITS"
open() { dmsetup create pd-t --table "$table"; }
close() { dmsetup remove pd-t; }
bits() { dmsetup status pd-t | awk '{ print $4 }'; }
# The set bits, as the target lists them (a message reply), and as expected.
list() { dmsetup message pd-t 0 list; }
has_bits() {
	got=$(list)
	[ "$got" = "$1" ] && [ "$(bits)" = "$(echo "$1" | wc -w)" ] ||
		{ echo "# set bits: '$got', status count $(bits); expected '$1'"; return 1; }
}
# The words that are not zero, as `index:value`, read with an array cursor.
words() { dmsetup message pd-t 0 words; }
has_words() {
	got=$(words)
	[ "$got" = "$1" ] || { echo "# words: '$got'; expected '$1'"; return 1; }
}
msg() { for m in "$@"; do dmsetup message pd-t 0 $m || return 1; done; }
flakey() { dmsetup suspend pd-meta && dmsetup load pd-meta --table "$1" && dmsetup resume pd-meta; }

dm_test "format an all-zero metadata device" open
st=$(dmsetup status pd-t | cut -d' ' -f4-)
echo "# fresh: $st"
dm_test "fresh bitset has no bits set and uses metadata blocks" \
	sh -c "[ '${st%% *}' = 0 ] && [ '$(echo "$st" | cut -d' ' -f2 | cut -d/ -f1)' -gt 0 ]"

msg "set 0" "set 5" "set 99999" commit
msg "set 10" "set 11" "clear 5" commit
msg "set 12" "set 13" # not committed
dm_test "bits set in this session are the ones set" has_bits "0 10 11 12 13 99999"
close
open
dm_test "reopened: two commits kept (0 10 11 99999), uncommitted bits gone" has_bits "0 10 11 99999"

# Crash between pre-commit and commit: the pre-committed blocks reach the
# disk, the superblock does not.
msg "set 20" "set 21" precommit
flakey "$down"
msg commit
close
flakey "$up"
open
dm_test "after a lost commit the last committed state is readable" has_bits "0 10 11 99999"
msg "set 30" commit
close
open
dm_test "and the metadata takes new commits after it" has_bits "0 10 11 30 99999"

# Words: the bitset caches one word. A test of bit 65 reads word 1 into that
# cache (clean: set first, the word flushed by a word write elsewhere); the word
# written whole then (0xff00: bits 72-79) must not be overwritten from the
# cache by the next bit set in it (66). Read back as words (cursor) and as bits.
msg "set 65" "setword 2 0"
t65=$(dmsetup message pd-t 0 test 65)
msg "setword 1 65280" "set 66"
echo "# bit 65 tested as $t65 before its word was written whole"
w0=$(((1 << 0) + (1 << 10) + (1 << 11) + (1 << 30)))
dm_test "a word written whole reads back as words, the bit cache did not clobber it" \
	has_words "0:$w0 1:65284 1562:2147483648"
dm_test "and bit by bit" has_bits "0 10 11 30 66 72 73 74 75 76 77 78 79 99999"
msg commit
close
open
dm_test "words written whole survive a commit and reopening" \
	has_words "0:$w0 1:65284 1562:2147483648"
# 100000 bits: the last word (1562) holds 32 of them.
dm_test "a word with bits past the end, or past the last word, is refused" \
	sh -c '! dmsetup message pd-t 0 setword 1562 4294967296 2>/dev/null &&
		! dmsetup message pd-t 0 setword 1563 1 2>/dev/null'

# Resize, done in steps of 2^20 bits (DiskBitset::resize): grow to 3 * 2^20 + 37
# bits (four steps) with the new words set (bits 100000..100031, in the old last word, stay
# clear: dm-bitset fills whole new words), shrink to 200000, grow to 2200000
# with the new words clear; a commit keeps the length and the bits.
# resized <#set> <bit>=<0|1>...: the status count and the bits, as `test` reads them.
resized() {
	n=$1
	shift
	[ "$(bits)" = "$n" ] || { echo "# $(bits) bits set, expected $n"; return 1; }
	for t in "$@"; do
		got=$(dmsetup message pd-t 0 test "${t%=*}")
		[ "$got" = "${t#*=}" ] || { echo "# bit ${t%=*} is $got, expected ${t#*=}"; return 1; }
	done
}
msg "resize 3145765 1"
dm_test "grown over four steps with new words set: the old bits kept, every new word set" \
	resized $((14 + 3145765 - 100032)) 99999=1 100000=0 100031=0 100032=1 1048575=1 1048576=1 \
	2097152=1 3145764=1 79=1 80=0
msg "resize 200000 0" "resize 2200000 0"
dm_test "shrunk over four steps, grown again over two with new words clear" \
	resized $((14 + 200000 - 100032)) 199999=1 200000=0 1048576=0 2199999=0 100032=1 99999=1
msg commit
close
BITS=2200000
table="0 8 pdata_test /dev/mapper/pd-meta $BITS"
open
dm_test "the resized bitset survives a commit and reopening" \
	resized $((14 + 200000 - 100032)) 199999=1 200000=0 2199999=0 100031=0 100032=1
# A bit set in the last word (cached, dirty), then a shrink past it and a grow
# back: the bit must read clear (a new word) and the commit must work (the
# resize writes and forgets the one-word cache first).
msg "set 2199999" "resize 200000 0" "resize 2200000 0"
dm_test "a bit cached past a shrunk end is gone after the grow back, and the commit works" \
	sh -c "[ \"\$(dmsetup message pd-t 0 test 2199999)\" = 0 ] && dmsetup message pd-t 0 commit"
close

dm_refused "reopening with another number of bits is refused" \
	"pdata_test: Number of bits does not match the metadata" pd-t "0 8 pdata_test /dev/mapper/pd-meta 64"

# Rewrite (DiskBitset::rewrite: the array emptied in steps, deleted and made
# anew by dm_array_new from a function of the word index), on a fresh bitset of
# 100000 bits: 1563 words in 4 array blocks, the last word holding 32 bits.
dd if=/dev/zero of=/dev/ram1 bs=1M count=1 oflag=direct 2>/dev/null
wtable="0 8 pdata_test /dev/ram1 100000"
dmsetup create pd-w --table "$wtable" || ktap_exit_fail_msg "cannot make the rewrite bitset"
wstat() { dmsetup status pd-w | awk -v f="$1" '{ split($5, u, "/"); print (f == "set" ? $4 : u[1]) }'; }
wmsg() { for m in "$@"; do dmsetup message pd-w 0 $m || return 1; done; }
wtest() { for b in "$@"; do dmsetup message pd-w 0 test "$b" || return 1; done | tr -d '\n'; }
is() { [ "$1" = "$2" ] || { echo "# got '$1', expected '$2'"; return 1; }; }
used0=$(wstat used)
# All ones after a bit set in the one-word cache: every bit set, none past the
# end (the last word masked to its 32 bits: a count of 100000 exactly).
wmsg "set 5" "rewrite 0 18446744073709551615"
dm_test "rewritten all ones: exactly the 100000 bits set, the last word masked to 32 bits" \
	is "$(wstat set) $(dmsetup message pd-w 0 word 0) $(dmsetup message pd-w 0 word 1562)" \
	"100000 18446744073709551615 4294967295"
# All zeros after a bit set in the cache: the cached word must not come back
# at the commit (the rewrite writes and forgets the cache first).
wmsg "set 7" "rewrite 0 0" commit
dm_test "rewritten all zeros over a cached bit, committed: no bit set" is "$(wstat set)" 0
# Word i = 3i: the words read back with a cursor (the first 32 that are not
# zero) and bit by bit in the last array block (word 1562 = 4686 = 0x124e).
expect=$(i=1; while [ $i -le 32 ]; do printf '%s%d:%d' "${sep:-}" $i $((3 * i)); sep=' '; i=$((i + 1)); done)
wmsg "rewrite 3 0" commit
dmsetup remove pd-w && dmsetup create pd-w --table "$wtable"
dm_test "rewritten to word i = 3i, committed and reopened: the words read back" \
	is "$(dmsetup message pd-w 0 words)" "$expect"
dm_test "and the last word's bits (4686) read back one by one" \
	is "$(wtest 99969 99968 99980 99981)" 1010
# Three more rewrites, each committed: the old array's blocks are freed by
# each commit (the metadata uses as many blocks as the fresh bitset did).
wmsg "rewrite 5 1" commit "rewrite 0 0" commit "rewrite 7 0" commit
used1=$(wstat used)
echo "# metadata blocks used: $used0 fresh, $used1 after five rewrites"
dm_test "rewrites leak no metadata block" [ "$used0" = "$used1" ]
dmsetup remove pd-w

# Random bytes: the superblock check fails.
dd if=/dev/urandom of=/dev/ram1 bs=1M count=16 oflag=direct 2>/dev/null
dm_refused "random bytes on the metadata device are refused" "pdata_test: Bad superblock" \
	pd-r "0 8 pdata_test /dev/ram1 $BITS"
# Truncated metadata: only the superblock block of a formatted device (it
# checks, the blocks it points to are past the end), and a device
# too small to format.
dmsetup create pd-short --table "0 8 linear /dev/mapper/pd-meta 0" &&
	[ "$(dm_sectors /dev/mapper/pd-short)" = 8 ] || ktap_exit_fail_msg "cannot make the truncated device"
dm_refused "truncated metadata is refused" "pdata_test: Cannot open the space map" \
	pd-t "0 8 pdata_test /dev/mapper/pd-short $BITS"
dmsetup remove pd-short
dd if=/dev/zero of=/dev/ram1 bs=1M count=1 oflag=direct 2>/dev/null
dmsetup create pd-tiny --table "0 8 linear /dev/ram1 0" ||
	ktap_exit_fail_msg "cannot make the tiny device"
dm_refused "a metadata device too small to format is refused" "pdata_test: Cannot format metadata" \
	pd-r "0 8 pdata_test /dev/mapper/pd-tiny $BITS"
dmsetup remove pd-tiny
dmsetup remove pd-meta
left() { devs=$(command dmsetup ls) || return 1; ! echo "$devs" | grep -q '^pd-'; }
dm_test "no device left behind" left
ktap_finished
