"""prune --dry-run reads the target's listing as duplicity decides, unless the profile's
extra_options change what duplicity sees or when "now" is: then duplicity's own dry run lists
(cfbackup/actions/maintenance.py)."""

from __future__ import annotations

import pytest

from cfbackup.actions.maintenance import _duplicity_chooses_otherwise


@pytest.mark.parametrize(
    ("extra", "duplicity_lists"),
    [
        ([], False),
        (["--num-retries=5", "--volsize", "50"], False),
        (["--current-time=1796539713"], True),
        (["--file-prefix", "host1-"], False),  # read with the listing: duplicity/names.py
        (["--file-prefix-manifest=m-"], False),
        (["--no-check-remote"], True),
    ],
)
def test_options_that_change_duplicity_s_choice_leave_the_listing_to_duplicity(
    extra, duplicity_lists
):
    assert _duplicity_chooses_otherwise({"extra_options": extra}) is duplicity_lists
