// SPDX-License-Identifier: GPL-2.0

#include <linux/bio.h>

void rust_helper_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

void rust_helper_bio_list_add(struct bio_list *bl, struct bio *bio)
{
	bio_list_add(bl, bio);
}

struct bio *rust_helper_bio_list_pop(struct bio_list *bl)
{
	return bio_list_pop(bl);
}

void rust_helper_bio_list_merge(struct bio_list *bl, struct bio_list *bl2)
{
	bio_list_merge(bl, bl2);
}
