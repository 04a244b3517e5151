#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make series: write the mainline patch series (Linux 7.3) to $SERIES_OUT
# (default $DMC_CACHE/series/7.3), as `git format-patch --cover-letter` names
# it: 0000-cover-letter.patch, 0001-....patch, ... The split into patches is
# tools/series/steps.py; tools/series/series.py builds the commits in a scratch
# repository over the pristine 7.3 files the series changes and formats them.
# Author and Signed-off-by: `git config user.name` / `user.email` of the runner.
# Usage: series.sh [output directory]
source "$(dirname "$0")/lib.sh"

out=${1:-$SERIES_OUT}
dmc_series_identity
pristine=$(dmc_series_pristine)
date=$(dmc_series_date)
dmc_log "series: patches over linux $(dmc_kernel_pkg_version) into $out (dated $date)"
python3 "$DMC_TOP/tools/series/series.py" generate --pristine "$pristine" --out "$out" \
	--date "$date" --name "$DMC_SERIES_NAME" --email "$DMC_SERIES_EMAIL"
(cd "$out" && ls)
