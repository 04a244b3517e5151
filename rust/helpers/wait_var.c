// SPDX-License-Identifier: GPL-2.0

#include <linux/wait_bit.h>

/*
 * Waits until the unsigned long at @var is zero; the side that makes it zero
 * calls rust_helper_wake_up_var_mb() after (wait_var_event() on a Rust
 * atomic). The full barrier orders the caller's earlier stores (a flag it set
 * before waiting) before the first test of the count, which wait_var_event()
 * makes before it queues itself (and its barrier). The test that sees zero is
 * an acquire load: it pairs with the release of the decrement (SeqCst in Rust),
 * so that what the decrementing side wrote before it (a job's result) is seen
 * by the caller after the wait. (READ_ONCE() alone would order nothing after
 * it on weakly ordered CPUs.)
 */
void rust_helper_wait_var_event_zero(unsigned long *var)
{
	/* Earlier stores before the first test of the count (see above). */
	smp_mb();
	/* Acquire: pairs with the release of the decrement (see above). */
	wait_var_event(var, smp_load_acquire(var) == 0);
}

/*
 * Wakes the waiters on @var. The full barrier orders the caller's store to
 * the variable before the waiters' queue is looked at, as wake_up_var()
 * requires. @var is only an address here (a hash key): it may be freed by a
 * waiter as soon as the store is seen. (Named apart from wake_up_var(), which
 * the bindings reach directly.)
 */
void rust_helper_wake_up_var_mb(void *var)
{
	/* The store to @var before the waiters' queue is looked at. */
	smp_mb();
	wake_up_var(var);
}

/*
 * Waits until the bits @mask of the u32 at @var are no longer @value; the side
 * that changes them calls rust_helper_wake_up_var_mb() after (a bio's per-bio
 * header waiting for its end_io to return: kernel/device_mapper/per_bio.rs).
 * Barriers as for rust_helper_wait_var_event_zero().
 */
void rust_helper_wait_var_event_bits_ne(u32 *var, u32 mask, u32 value)
{
	/* Earlier stores before the first test of the bits. */
	smp_mb();
	/* Acquire: pairs with the release of the change of the bits. */
	wait_var_event(var, (smp_load_acquire(var) & mask) != value);
}
