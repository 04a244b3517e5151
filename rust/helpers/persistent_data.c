// SPDX-License-Identifier: GPL-2.0

#include "../../drivers/md/persistent-data/dm-space-map.h"

void rust_helper_dm_sm_destroy(struct dm_space_map *sm)
{
	dm_sm_destroy(sm);
}

int rust_helper_dm_sm_get_nr_blocks(struct dm_space_map *sm, dm_block_t *count)
{
	return dm_sm_get_nr_blocks(sm, count);
}

int rust_helper_dm_sm_get_nr_free(struct dm_space_map *sm, dm_block_t *count)
{
	return dm_sm_get_nr_free(sm, count);
}

int rust_helper_dm_sm_copy_root(struct dm_space_map *sm, void *copy_to_here_le, size_t len)
{
	return dm_sm_copy_root(sm, copy_to_here_le, len);
}
