"""The one check-character function (GB 11643 / ISO 7064 MOD 11-2)."""

import pytest

from terminal import resident_id


@pytest.mark.parametrize(
    "number, ok",
    [
        ("11010519491231002X", True),
        ("11010519491231002x", True),
        ("110105194912310021", False),
        ("440308199901010012", True),
        ("440308199901010013", False),
        ("1101051949123100", False),
        ("11010519491231002Y", False),
        ("１１010519491231002X", False),  # full-width digits are not digits here
    ],
)
def test_mod_11_2_check(number: str, ok: bool) -> None:
    assert resident_id.is_valid(number) is ok


def test_check_char_matches_iso_7064_by_hand() -> None:
    first17 = "44030819990101001"
    total = sum(
        int(d) * w
        for d, w in zip(first17, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), strict=True)
    )
    expected = "10X98765432"[total % 11]
    assert resident_id.check_char(first17) == expected
    assert resident_id.is_valid(first17 + expected)
