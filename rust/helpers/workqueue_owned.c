// SPDX-License-Identifier: GPL-2.0

#include <linux/workqueue.h>

/*
 * alloc_workqueue() with the name as an argument, not a format: a macro in
 * 7.3 (alloc_hooks), which bindgen cannot reach; a variadic function in 6.12.
 */
struct workqueue_struct *rust_helper_alloc_workqueue_named(const char *name,
							   unsigned int flags,
							   int max_active)
{
	return alloc_workqueue("%s", flags, max_active, name);
}
