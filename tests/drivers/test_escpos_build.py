"""ESC/POS building byte for byte, and whole tickets decoded back to what a patient holds."""

from __future__ import annotations

import pytest

from drivers.printer.document import QR, Document, Feed, Rule, Text
from drivers.printer.escpos_build import (
    TicketStyle,
    build,
    encode_text,
    qr_matrix,
    qr_native,
    text_width,
    wrap,
)
from drivers.printer.escpos_decode import DecodeError, decode, raster_modules
from drivers.printer.factory import native_qr
from terminal.config import ConfigError

STYLE = TicketStyle(columns=32, encoding="gb18030", cut=True, native_qr=True)


def test_minimal_ticket_byte_for_byte() -> None:
    doc = Document((Text("心内科", align="center"),))
    assert (
        build(doc, STYLE)
        == (
            b"\x1b@"  # ESC @
            b"\x1c&"  # FS & : Chinese character mode
            b"\x1ba\x01"  # ESC a 1 : centre
            b"\x1d!\x00"  # GS ! 0 : normal size
            + "心内科".encode("gb18030")
            + b"\n"
            + b"\x1ba\x00"  # back to left
            b"\x1dVA\x03"  # GS V A 3 : feed and cut
        )
    )
    assert "心内科".encode("gb18030") == bytes.fromhex("d0c4 c4da bfc6")


def test_double_size_bold_and_no_cut() -> None:
    doc = Document((Text("B023", double=True, bold=True), Feed(2)))
    out = build(doc, TicketStyle(columns=32, cut=False))
    assert out == (
        b"\x1b@\x1c&\x1ba\x00\x1d!\x11\x1bE\x01B023\n\x1bE\x00\x1d!\x00\x1bd\x02\x1ba\x00\x1bd\x04"
    )


def test_native_qr_bytes() -> None:
    assert qr_native("AB", 6) == (
        b"\x1d(k\x04\x001A2\x00"  # model 2
        b"\x1d(k\x03\x001C\x06"  # module size 6
        b"\x1d(k\x03\x001E1"  # error correction M
        b"\x1d(k\x05\x001P0AB"  # store 2 bytes (pL = 2 + 3)
        b"\x1d(k\x03\x001Q0"  # print
    )


def test_rule_fills_the_paper_width() -> None:
    t = decode(build(Document((Rule(),)), STYLE))
    assert t.lines[0].text == "-" * 32
    t = decode(build(Document((Rule("═"),)), STYLE))
    assert t.lines[0].text == "═" * 16  # a double-byte character prints two columns wide


def test_wrap_counts_wide_characters_as_two_columns() -> None:
    assert wrap("一二三四五六", 8) == ["一二三四", "五六"]
    assert wrap("ab一二三四", 8) == ["ab一二三", "四"]
    assert wrap("hello world again", 11) == ["hello world", "again"]
    assert all(text_width(x) <= 10 for x in wrap("门诊3楼 305诊室 李明医生 09:00-09:30", 10))


def test_ambiguous_width_characters_count_two_columns_on_a_chinese_printer() -> None:
    assert text_width("科室：心内科·①") == 16
    assert text_width("科室：心内科·①", "cp437") == 14  # East Asian Width: · and ① narrow
    assert wrap("诊室：305·李明", 10) == ["诊室：305", "·李明"]


def test_characters_outside_the_printer_font_become_question_marks() -> None:
    assert encode_text("张😀𠀀三", "gb18030") == "张".encode("gb18030") + b"??" + "三".encode(
        "gb18030"
    )
    assert encode_text("a\x1bb", "gb18030") == b"a b"  # no smuggled commands


def ticket() -> Document:
    return Document(
        (
            Text("北京协和医院 挂号凭条", align="center", bold=True),
            Rule(),
            Text("B023", align="center", double=True),
            Text("科室：心内科  诊室：门诊3楼 305诊室  医生：李明  时间：09:00-09:30"),
            QR("CT1:A20261123-0042", size=5),
            Feed(1),
            Text("请留意叫号", align="right"),
        ),
        title="checkin",
    )


def test_whole_ticket_decodes_to_what_the_patient_holds() -> None:
    t = decode(build(ticket(), STYLE))
    assert t.initialized and t.cut
    assert t.lines[0].text == "北京协和医院 挂号凭条"
    assert t.lines[0].align == "center" and t.lines[0].bold and t.lines[0].chinese
    queue = t.find("B023")
    assert queue is not None and queue.double and queue.align == "center"
    body = [ln for ln in t.lines if not ln.double and ln.text and "-" not in ln.text][1:]
    assert all(text_width(ln.text) <= 32 for ln in body)
    assert "".join(ln.text for ln in body).replace(" ", "").startswith("科室：心内科诊室：门诊3楼")
    assert t.qr == ["CT1:A20261123-0042"]
    assert t.find("请留意叫号").align == "right"
    assert not t.images


def test_double_size_lines_wrap_at_half_the_columns() -> None:
    t = decode(build(Document((Text("一二三四五六七八九十一二三四五六七八", double=True),)), STYLE))
    assert [text_width(ln.text) for ln in t.lines if ln.text] == [16, 16, 4]


def test_qr_falls_back_to_a_raster_image_with_the_same_modules() -> None:
    style = TicketStyle(columns=32, native_qr=False)
    t = decode(build(ticket(), style))
    assert t.qr == [] and len(t.images) == 1
    img = t.images[0]
    assert img.width <= 32 * 12
    expected = qr_matrix("CT1:A20261123-0042")
    assert raster_modules(img, len(expected)) == expected
    assert raster_modules(img, len(expected)) != qr_matrix("CT1:A20261123-0043")


def test_profiles_without_native_qr() -> None:
    assert native_qr("") is True
    assert native_qr("default") is True
    assert native_qr("ZJ-5870") is False
    with pytest.raises(ConfigError, match="printer.profile"):
        native_qr("no-such-printer")


def test_decoder_is_strict() -> None:
    with pytest.raises(DecodeError):
        decode(b"\x1b@\x1bz\x00")
    with pytest.raises(DecodeError):
        decode(b"\x1d(k\x05\x001P0A")  # cut short
