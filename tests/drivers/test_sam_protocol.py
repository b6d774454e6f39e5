"""SPEC 6.3 frames byte for byte: builders, parser, checksum, lengths, UCS-2LE fields, MOD 11-2."""

from __future__ import annotations

import pytest

from drivers.card_reader import sam_protocol as sam


def test_find_request_is_the_spec_example() -> None:
    assert sam.find_request() == bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")


def test_select_and_read_requests_byte_for_byte() -> None:
    # checksum = 00 ^ 03 ^ 20 ^ 02 = 21 ; 00 ^ 03 ^ 30 ^ 01 = 32
    assert sam.select_request() == bytes.fromhex("AA AA AA 96 69 00 03 20 02 21")
    assert sam.read_request() == bytes.fromhex("AA AA AA 96 69 00 03 30 01 32")


def test_find_success_reply_of_the_spec_parses_and_rebuilds() -> None:
    raw = bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
    frame = sam.parse_frame(raw)
    assert frame.status == sam.SW_FIND_OK
    assert frame.data == b"\x00\x00\x00\x00"
    assert sam.response_frame(sam.SW_FIND_OK, b"\x00" * 4) == raw


def test_checksum_is_xor_of_length_and_body() -> None:
    assert sam.checksum(bytes.fromhex("00 03 20 01")) == 0x22
    assert sam.checksum(b"") == 0


@pytest.mark.parametrize(
    "raw, problem",
    [
        (bytes.fromhex("AA AA AA 96 69 00 03 20 01 23"), "checksum"),
        (bytes.fromhex("AA AA AA 96 69 00 04 20 01 22"), "length"),
        (bytes.fromhex("AA AA AA 96 69 00 03 20 01"), "short"),
        (bytes.fromhex("AA AA AA 96 69 00 03 20 01 22 00"), "length"),
        (bytes.fromhex("AA AA 96 69 00 03 20 01 22"), "preamble"),
        (bytes.fromhex("AA AA AA 96 69 00 02 20 22 00"), "range"),
        (bytes.fromhex("AA AA AA 96 69 00"), "short"),
    ],
)
def test_parse_rejects_broken_frames(raw: bytes, problem: str) -> None:
    with pytest.raises(sam.FrameError, match=problem):
        sam.parse_frame(raw)


def _id_fields() -> dict[str, str]:
    return {
        "name": "张三丰",
        "gender": "1",
        "nation": "01",
        "birth": "19491231",
        "address": "北京市东城区景山前街4号",
        "number": "11010519491231002X",
        "issuer": "北京市公安局东城分局",
        "valid_from": "20150101",
        "valid_to": "长期",
    }


def test_read_reply_is_1295_bytes_with_spec_lengths() -> None:
    reply = sam.read_reply(sam.encode_text(_id_fields()))
    assert len(reply) == sam.READ_REPLY_LEN == 1295
    assert reply[5:7] == (1288).to_bytes(2, "big")
    frame = sam.parse_frame(reply)
    assert frame.status == sam.SW_OK
    assert frame.data[:4] == bytes.fromhex("01 00 04 00")  # text 256, photo 1024
    text, photo = sam.split_read_data(frame.data)
    assert len(text) == 256 and len(photo) == 1024


def test_text_fields_are_ucs2le_space_padded_in_card_order() -> None:
    raw = sam.encode_text(_id_fields())
    assert len(raw) == 256
    assert raw[:6] == "张三丰".encode("utf-16-le")
    assert raw[6:30] == (" " * 12).encode("utf-16-le")  # name is 15 characters
    assert raw[30:32] == b"1\x00"  # gender at character 15
    t = sam.decode_text(raw)
    assert (t.name, t.gender, t.nation, t.birth) == ("张三丰", "1", "01", "19491231")
    assert t.address == "北京市东城区景山前街4号"
    assert t.number == "11010519491231002X"
    assert t.issuer == "北京市公安局东城分局"
    assert (t.valid_from, t.valid_to) == ("20150101", "长期")


def test_decode_text_rejects_a_wrong_size_and_keeps_fields_in_place_around_odd_characters() -> None:
    with pytest.raises(sam.FrameError):
        sam.decode_text(b"\x00" * 254)
    fields = _id_fields()
    # a rare character sent as a surrogate pair: the name keeps it, later fields stay in place
    pair = bytearray(sam.encode_text(fields))
    pair[0:4] = "𠀀".encode("utf-16-le")
    t = sam.decode_text(bytes(pair))
    assert t.name == "𠀀丰" and t.number == fields["number"] and t.valid_to == "长期"
    # a broken one (a lone surrogate) becomes U+FFFD: never a string UTF-8 cannot carry
    lone = bytearray(sam.encode_text(fields))
    lone[2:4] = b"\x00\xd8"
    t = sam.decode_text(bytes(lone))
    assert t.name == "张\ufffd丰" and t.number == fields["number"]
    t.name.encode("utf-8")
    # padding with NULs or trailing spaces is not part of a field
    nul = bytearray(sam.encode_text(fields))
    nul[6:30] = b"\x00" * 24
    assert sam.decode_text(bytes(nul)).name == "张三丰"


def test_split_read_data_checks_the_length_header() -> None:
    text = sam.encode_text(_id_fields())
    with pytest.raises(sam.FrameError):
        sam.split_read_data(b"\x00\x80\x04\x00" + text[:128] + b"\x00" * 1024)  # text 128
    with pytest.raises(sam.FrameError):
        sam.split_read_data(b"\x01\x00\x04\x00" + text[:200])  # text cut short
    with pytest.raises(sam.FrameError):
        sam.split_read_data(b"\x01\x00\x04\x00" + text + b"\x00" * 1025)  # more than said
    # the photo (never decoded) may be short or missing, as some modules send it
    assert sam.split_read_data(b"\x01\x00\x04\x00" + text + b"\x00" * 1000)[0] == text
    assert sam.split_read_data(b"\x01\x00\x04\x00" + text) == (text, b"")


def test_stream_parser_resyncs_over_garbage_and_split_reads() -> None:
    p = sam.FrameParser()
    reply = sam.read_reply(sam.encode_text(_id_fields()))
    stream = b"\x00\xaa\xaa" + sam.response_frame(sam.SW_NO_CARD) + b"junk\xaa\xaa\xaa\x96" + reply
    frames = []
    for i in range(0, len(stream), 7):
        frames += p.feed(stream[i : i + 7])
    assert [f.status for f in frames] == [sam.SW_NO_CARD, sam.SW_OK]
    assert len(frames[1].data) == 4 + 256 + 1024


def test_stream_parser_skips_a_frame_with_a_bad_checksum() -> None:
    p = sam.FrameParser()
    bad = bytearray(sam.response_frame(sam.SW_OK, b"\x01\x02"))
    bad[-1] ^= 1
    frames = p.feed(bytes(bad) + sam.response_frame(sam.SW_NO_CARD))
    assert [f.status for f in frames] == [sam.SW_NO_CARD]
    assert p.rejected >= 1


def test_stream_parser_ignores_absurd_lengths() -> None:
    p = sam.FrameParser()
    frames = p.feed(sam.PREAMBLE + b"\xff\xff" + sam.find_request())
    assert [f.body for f in frames] == [sam.CMD_FIND]


def test_expiry() -> None:
    import datetime as dt

    t = sam.decode_text(sam.encode_text({**_id_fields(), "valid_to": "20200101"}))
    assert t.expired(dt.date(2026, 11, 23))
    assert not t.expired(dt.date(2019, 1, 1))
    assert not sam.decode_text(sam.encode_text(_id_fields())).expired(dt.date(2099, 1, 1))
