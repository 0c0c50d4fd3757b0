"""The SSE parser against the WHATWG event-stream rules, and the framing problems it reports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.core.sse import SSEComment, SSEEvent, SSEParser, encode_comment, encode_event, parse_stream


def events(data: bytes) -> list[SSEEvent]:
    items, problems = parse_stream(data)
    assert problems == [], problems
    return [i for i in items if isinstance(i, SSEEvent)]


def feed_in_pieces(pieces: list[bytes]) -> tuple[list[SSEEvent | SSEComment], SSEParser]:
    parser = SSEParser()
    items: list[SSEEvent | SSEComment] = []
    for piece in pieces:
        items.extend(parser.feed(piece))
    items.extend(parser.close())
    return items, parser


def kinds(parser: SSEParser) -> list[str]:
    return [p.kind for p in parser.problems]


# -- line ends ----------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_ends(end):
    stream = b"data: a" + end + b"data: b" + end + end + b"data: c" + end + end
    assert [e.data for e in events(stream)] == ["a\nb", "c"]


def test_mixed_line_ends():
    assert [e.data for e in events(b"data: a\r\ndata: b\rdata: c\n\r\n")] == ["a\nb\nc"]


def test_crlf_split_across_feeds_is_one_line_end():
    items, parser = feed_in_pieces([b"data: a\r", b"\ndata: b\r\n\r\n"])
    assert [i.data for i in items] == ["a\nb"]  # the LF did not end the event as a blank line
    assert parser.problems == []


def test_cr_at_end_of_feed_then_text():
    items, parser = feed_in_pieces([b"data: a\r", b"data: b\r", b"\r"])
    assert [i.data for i in items] == ["a\nb"]
    assert parser.problems == []


def test_cr_at_end_of_feed_then_lf_in_a_later_feed_after_an_empty_one():
    items, _ = feed_in_pieces([b"data: a\r", b"", b"\n", b"\n"])
    assert [i.data for i in items] == ["a"]


def test_events_come_out_as_soon_as_complete():
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    [event] = parser.feed(b"\ndata: tw")
    assert event.data == "one"
    assert [e.data for e in parser.feed(b"o\n\n")] == ["two"]


# -- fields -------------------------------------------------------------------------------


def test_multi_line_data():
    assert [e.data for e in events(b'data: {\ndata:   "a": 1\ndata: }\n\n')] == ['{\n  "a": 1\n}']


def test_comments_are_reported_not_dispatched():
    items, problems = parse_stream(b": ping\n:no space\n\ndata: x\n\n")
    assert items[:2] == [SSEComment("ping", 0), SSEComment("no space", 7)]
    assert [i.data for i in items if isinstance(i, SSEEvent)] == ["x"] and problems == []


def test_event_type_applies_to_one_event():
    first, second = events(b"event: delta\ndata: 1\n\ndata: 2\n\n")
    assert (first.event, second.event) == ("delta", "message")


def test_id_persists_to_later_events_and_empty_id_resets():
    first, second, third = events(b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert (first.id, second.id, third.id) == ("7", "7", "")


def test_id_with_null_is_ignored():
    items, problems = parse_stream(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [i.id for i in items] == ["1", "1"]
    assert [p.kind for p in problems] == ["bad_id"]


def test_retry():
    [event] = events(b"retry: 3000\ndata: a\n\n")
    assert event.retry == 3000
    items, problems = parse_stream(b"retry: 3s\ndata: a\n\nretry: -1\ndata: b\n\n")
    assert [i.retry for i in items] == [None, None]
    assert [p.kind for p in problems] == ["bad_retry", "bad_retry"]


def test_field_with_no_colon_has_an_empty_value():
    [event] = events(b"data\n\n")
    assert event.data == ""
    [event] = events(b"data\ndata\n\n")
    assert event.data == "\n"
    [event] = events(b"event\ndata: x\n\n")
    assert event.event == "message"


def test_only_one_space_after_the_colon_is_removed():
    assert [e.data for e in events(b"data:a\n\ndata:  b\n\ndata:\n\n")] == ["a", " b", ""]


def test_value_may_hold_colons():
    assert events(b'data: {"a": "b:c"}\n\n')[0].data == '{"a": "b:c"}'


def test_unknown_field_is_ignored_and_reported():
    items, problems = parse_stream(b"foo: bar\ndata: a\n\n")
    assert [i.data for i in items] == ["a"]
    assert [(p.kind, p.offset) for p in problems] == [("unknown_field", 0)]


# -- BOM and encoding -------------------------------------------------------------------------


def test_leading_bom_is_stripped():
    assert [e.data for e in events(b"\xef\xbb\xbfdata: a\n\n")] == ["a"]


def test_bom_split_across_feeds_is_stripped():
    items, parser = feed_in_pieces([b"\xef", b"\xbb", b"\xbfdata: a\n\n"])
    assert [i.data for i in items] == ["a"] and parser.problems == []


def test_bom_only_stripped_once_at_the_start():
    items, problems = parse_stream(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n")
    assert items == [] and [p.kind for p in problems] == ["unknown_field"]  # field name "\ufeffdata"
    assert events("data: \ufeffa\n\n".encode())[0].data == "\ufeffa"


def test_multibyte_utf8_split_across_feeds():
    stream = "data: 18 °C ☀ 😀\n\n".encode()
    for cut in range(1, len(stream)):
        items, parser = feed_in_pieces([stream[:cut], stream[cut:]])
        assert [i.data for i in items] == ["18 °C ☀ 😀"], cut
        assert parser.problems == []


def test_invalid_utf8_reports_its_offset():
    items, problems = parse_stream(b"data: ok\n\ndata: a\xffb\n\n")
    [problem] = problems
    assert (problem.kind, problem.offset) == ("invalid_utf8", 17)  # the 0xff itself
    assert str(problem).startswith("byte 17: ")
    assert [i.data for i in items] == ["ok", "a\ufffdb"]  # lenient from there on, as a browser is


def test_invalid_utf8_offset_in_a_later_feed():
    _, parser = feed_in_pieces([b"data: ok\n\n", b"data: \xc3", b"(\n\n"])
    assert [(p.kind, p.offset) for p in parser.problems] == [("invalid_utf8", 16)]


# -- dispatch -------------------------------------------------------------------------------


def test_empty_data_buffer_dispatches_nothing():
    items, problems = parse_stream(b"event: ping\n\n\n\nid: 3\n\n")
    assert items == [] and problems == []


def test_event_offsets():
    first, second = events(b"data: a\n\n: c\n\nevent: e\ndata: b\n\n")
    assert (first.offset, second.offset) == (0, 14)


def test_encoder_round_trip():
    stream = encode_comment("ping") + encode_event("a\nb", event="delta", id="9", retry=100) + encode_event("[DONE]")
    items, problems = parse_stream(stream)
    assert problems == []
    assert items[0] == SSEComment("ping", 0)
    assert (items[1].data, items[1].event, items[1].id, items[1].retry) == ("a\nb", "delta", "9", 100)
    assert items[2].data == "[DONE]"


# -- malformed streams --------------------------------------------------------------------------


def test_unterminated_last_event_is_reported_and_not_dispatched():
    items, problems = parse_stream(b"data: a\n\ndata: b\n")
    assert [i.data for i in items] == ["a"]
    assert [(p.kind, p.offset) for p in problems] == [("unterminated_event", 9)]


def test_stream_ending_mid_line():
    items, problems = parse_stream(b'data: a\n\ndata: {"par')
    assert [i.data for i in items] == ["a"]
    assert [p.kind for p in problems] == ["unterminated_line", "unterminated_event"]
    assert problems[0].offset == 9


def test_bytes_after_done():
    parser = SSEParser()
    items = parser.feed(b"data: [DONE]\n\n: bye\n\n")
    assert parser.done and parser.problems == []  # comments and blank lines after it are fine
    items += parser.feed(b"data: late\n\n")
    parser.close()
    assert [p.kind for p in parser.problems] == ["after_terminator"]
    assert parser.problems[0].offset == 21


def test_no_terminator_configured():
    parser = SSEParser(terminator=None)
    parser.feed(b"data: [DONE]\n\ndata: more\n\n")
    assert not parser.done and parser.problems == []


def test_feed_after_close_is_a_usage_error():
    parser = SSEParser()
    parser.close()
    with pytest.raises(RuntimeError):
        parser.feed(b"data: x\n\n")


# -- any chunking gives the same result -----------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=12)
_line_end = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def valid_streams(draw) -> bytes:
    out = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    for _ in range(draw(st.integers(0, 5))):
        end = draw(_line_end)
        if draw(st.booleans()):
            out += b":" + draw(_text).encode() + end
        if draw(st.booleans()):
            out += b"event: " + draw(_text).replace(":", "").encode() + end
        if draw(st.booleans()):
            out += b"id: " + draw(_text).encode() + end
        for _ in range(draw(st.integers(1, 3))):
            out += b"data:" + draw(_text).encode() + end
        out += end
    return out + b"data: [DONE]\n\n"


@settings(max_examples=60, deadline=None)
@given(stream=valid_streams(), data=st.data())
def test_any_chunking_gives_the_same_events(stream, data):
    whole, whole_problems = parse_stream(stream)
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    chunked, parser = feed_in_pieces(pieces)
    assert chunked == whole
    assert parser.problems == whole_problems == []
    assert parser.done


@settings(max_examples=15, deadline=None)
@given(stream=valid_streams())
def test_byte_at_a_time_gives_the_same_events(stream):
    whole, _ = parse_stream(stream)
    chunked, parser = feed_in_pieces([stream[i : i + 1] for i in range(len(stream))])
    assert chunked == whole and parser.problems == []


def test_stream_ending_inside_a_multibyte_character():
    items, problems = parse_stream(b"data: a\n\ndata: \xc3")
    assert [i.data for i in items] == ["a"]
    assert [(p.kind, p.offset) for p in problems] == [
        ("invalid_utf8", 15),
        ("unterminated_line", 9),
        ("unterminated_event", 9),
    ]
