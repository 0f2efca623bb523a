"""SMS encoding and segments: GSM-7 160/153, UCS-2 70/67, Korean and Chinese are UCS-2."""

from hypothesis import given
from hypothesis import strategies as st

from notify.domain.sms import Encoding, compose, encoding_of, length, segment


def test_plain_text_is_gsm7_in_one_segment_up_to_160_characters():
    assert encoding_of("Outbid on lot 2: now $130.00") is Encoding.GSM7
    assert segment("a" * 160).count == 1
    parts = segment("a" * 161)
    assert parts.count == 2
    assert [len(p) for p in parts.parts] == [153, 8]


def test_extension_characters_take_two_septets_and_are_never_split():
    assert length("€") == 2
    assert segment("€" * 80).count == 1  # 160 septets
    parts = segment("a" + "€" * 80)  # 161 septets: 1 + 76*2 = 153 in part one, the rest after
    assert parts.count == 2
    assert [length(p) for p in parts.parts] == [153, 8]


def test_korean_and_chinese_are_ucs2_with_70_then_67_per_part():
    korean = "상위 입찰" * 14  # 70 characters
    assert encoding_of(korean) is Encoding.UCS2
    assert segment(korean).count == 1
    assert segment(korean + "가").count == 2
    chinese = "已被超越" * 34  # 136 characters: 67 + 67 + 2
    assert [len(p) for p in segment(chinese).parts] == [67, 67, 2]


def test_an_emoji_is_a_surrogate_pair_kept_whole():
    text = "a" * 66 + "🎉"
    assert length(text) == 68
    assert segment(text).count == 1
    parts = segment("a" * 70 + "🎉")
    assert [p[-1] for p in parts.parts] == ["a", "🎉"]


def test_a_french_accent_outside_gsm7_makes_the_message_ucs2():
    assert encoding_of("Enchères rétablies") is Encoding.GSM7  # è and é are GSM-7
    assert encoding_of("Votre lot est prêt") is Encoding.UCS2  # ê is not


def test_compose_puts_the_link_after_the_text_on_one_line():
    assert compose("Outbid  on\nlot 2", "https://g.example/lots/1") == "Outbid on lot 2 https://g.example/lots/1"


@given(st.text(min_size=1, max_size=600))
def test_parts_rejoin_to_the_text_and_each_fits_its_encoding(text):
    parts = segment(text)
    assert "".join(parts.parts) == text
    limit = 153 if parts.encoding is Encoding.GSM7 else 67
    if parts.count > 1:
        assert all(length(p) <= limit for p in parts.parts)
    else:
        assert length(text) <= (160 if parts.encoding is Encoding.GSM7 else 70)
