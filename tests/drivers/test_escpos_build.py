"""ESC/POS building byte for byte (python-escpos commands plus the GB18030 layer), and whole
tickets decoded back to what a patient holds."""

from __future__ import annotations

import pytest

from drivers.printer.document import QR, Document, Feed, Rule, Text
from drivers.printer.escpos_build import TicketStyle, build
from drivers.printer.escpos_decode import DecodeError, decode, raster_modules
from drivers.printer.factory import native_qr
from drivers.printer.gb18030 import encode_text, text_width, wrap
from drivers.printer.preview import qr_matrix
from terminal.config import ConfigError

STYLE = TicketStyle(columns=32, encoding="gb18030", cut=True, native_qr=True)


def test_minimal_ticket_byte_for_byte() -> None:
    doc = Document((Text("心内科", align="center"),))
    assert (
        build(doc, STYLE)
        == (
            b"\x1b@"  # ESC @ (hw("INIT"))
            b"\x1c&"  # FS & : Chinese character mode
            b"\x1d!\x00"  # GS ! 0 : normal size (set(custom_size=True, width=1, height=1))
            b"\x1ba\x01"  # ESC a 1 : centre
            + "心内科".encode("gb18030")
            + b"\n"
            + b"\x1ba\x00"  # back to left
            b"\x1bd\x06"  # cut(): ESC d 6, feed the ticket past the cutter ...
            b"\x1dV\x00"  # ... and GS V 0, full cut
        )
    )
    assert "心内科".encode("gb18030") == bytes.fromhex("d0c4 c4da bfc6")


def test_double_size_bold_and_no_cut() -> None:
    doc = Document((Text("B023", double=True, bold=True), Feed(2)))
    out = build(doc, TicketStyle(columns=32, cut=False))
    assert out == (
        b"\x1b@\x1c&"
        b"\x1d!\x11"  # GS ! 0x11: double width and height, Chinese characters included
        b"\x1ba\x00\x1bE\x01B023\n\x1bE\x00\x1d!\x00"
        b"\x1bd\x02"  # Feed(2)
        b"\x1ba\x00\x1bd\x04"  # no cut: feed 4 lines
    )


def test_native_qr_bytes() -> None:
    out = build(Document((QR("AB", size=6),)), STYLE)
    assert (
        out
        == b"\x1b@\x1c&\x1ba\x01"
        + (
            b"\x1d(k\x04\x001A2\x00"  # model 2
            b"\x1d(k\x03\x001C\x06"  # module size 6
            b"\x1d(k\x03\x001E1"  # error correction M
            b"\x1d(k\x05\x001P0AB"  # store 2 bytes (pL = 2 + 3)
            b"\x1d(k\x03\x001Q0"  # print
        )
        + b"\n\x1ba\x00\x1ba\x00\x1bd\x06\x1dV\x00"
    )
    # a lone surrogate cannot crash a ticket; the module size stays within 1..16
    t = decode(build(Document((QR("A\ud800", size=99),)), STYLE))
    assert t.qr == ["A?"]


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


def test_qr_falls_back_to_a_raster_image_with_the_same_modules(capsys) -> None:
    style = TicketStyle(columns=32, native_qr=False)
    t = decode(build(ticket(), style))
    assert t.qr == [] and len(t.images) == 1
    img = t.images[0]
    assert img.width <= 32 * 12
    expected = qr_matrix("CT1:A20261123-0042")
    assert raster_modules(img, len(expected)) == expected
    assert raster_modules(img, len(expected)) != qr_matrix("CT1:A20261123-0043")
    # python-escpos prints a warning on stdout for images on a profile of unknown width;
    # the ticket gives it ours, so `careterm hw test printer` keeps a clean JSON stdout
    assert capsys.readouterr().out == ""
    # a big module size is shrunk to keep the code on the paper
    t = decode(build(Document((QR("x" * 200, size=16),)), style))
    assert t.images[0].width <= 32 * 12


def test_a_profile_without_native_qr_or_cutter_gets_an_image_and_no_cut() -> None:
    style = TicketStyle(columns=32, native_qr=native_qr("ZJ-5870"), profile="ZJ-5870")
    t = decode(build(ticket(), style))
    assert t.qr == [] and len(t.images) == 1 and t.images[0].width <= 384
    assert not t.cut and t.feeds >= 6  # no cutter: the ticket is fed out to be torn off
    assert t.find("B023").double


def test_wrapping_never_splits_a_number_or_a_latin_word() -> None:
    assert wrap("诊室12345号", 8) == ["诊室", "12345号"]
    assert wrap("请到门诊3楼305诊室Cardiology候诊", 12) == [
        "请到门诊3楼",
        "305诊室",
        "Cardiology候",
        "诊",
    ]
    assert wrap("时间09:00-09:30", 10) == ["时间", "09:00-09:30"[:10], "0"]  # wider than a line
    assert wrap("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    t = decode(build(Document((Text("挂号A20261123-0042请保管好", double=True),)), STYLE))
    assert [ln.text for ln in t.lines if ln.text] == ["挂号", "A20261123-0042请", "保管好"]


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
