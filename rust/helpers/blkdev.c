// SPDX-License-Identifier: GPL-2.0

#include <linux/blkdev.h>

sector_t rust_helper_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int rust_helper_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

unsigned int rust_helper_bdev_max_discard_sectors(struct block_device *bdev)
{
	return bdev_max_discard_sectors(bdev);
}

struct request_queue *rust_helper_bdev_get_queue(struct block_device *bdev)
{
	return bdev_get_queue(bdev);
}
