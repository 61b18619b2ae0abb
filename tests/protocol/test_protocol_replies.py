"""The in-order reply matcher: bytes in, (request, reply) pairs out, and an explicit error the
moment a reply is not the oldest outstanding request's."""

import msgpack
import pytest

from payswitch.protocol import encode_body, encode_frame, error_reply, ok_reply
from payswitch.protocol.replies import InOrderReplies, ReplyMismatch


def frame(reply: dict, codec: str = "msgpack") -> bytes:
    return encode_frame(encode_body(reply, codec))


def matcher(*request_ids) -> InOrderReplies:
    replies = InOrderReplies(1 << 20)
    for request_id in request_ids:
        replies.sent(request_id, f"request {request_id}")
    return replies


def test_pipelined_replies_in_one_read_come_out_in_order_with_their_requests():
    replies = matcher(1, 2, 3)
    data = frame(ok_reply(1, {"a": 1})) + frame(ok_reply(2, {}), "json") + \
        frame(error_reply(3, "not_found", "no such account"))
    pairs = list(replies.feed(data))
    assert [request for request, _ in pairs] == ["request 1", "request 2", "request 3"]
    assert [reply["id"] for _, reply in pairs] == [1, 2, 3]
    assert pairs[2][1]["error"]["code"] == "not_found"
    assert not replies.outstanding


def test_a_reply_split_anywhere_comes_out_once_whole():
    data = frame(ok_reply(7, {"status": "created"})) + frame(ok_reply(8, {}))
    for cut in range(1, len(data)):
        replies = matcher(7, 8)
        pairs = list(replies.feed(data[:cut])) + list(replies.feed(data[cut:]))
        assert [reply["id"] for _, reply in pairs] == [7, 8], cut


def test_a_reply_with_another_id_raises_after_the_replies_before_it():
    replies = matcher(1, 2, 3)
    pairs = []
    with pytest.raises(ReplyMismatch, match="reply id 3 does not match request id 2") as caught:
        for pair in replies.feed(frame(ok_reply(1, {})) + frame(ok_reply(3, {}))):
            pairs.append(pair)
    assert [reply["id"] for _, reply in pairs] == [1]
    assert caught.value.reply["id"] == 3
    assert [request_id for request_id, _ in replies.outstanding] == [2, 3]  # never read as 2's


def test_a_framing_error_answered_with_id_null_is_a_mismatch_naming_the_server_error():
    replies = matcher(1)
    with pytest.raises(ReplyMismatch, match=r"reply id None .* \(server error bad_frame: "
                                            r"garbled\)"):
        list(replies.feed(frame(error_reply(None, "bad_frame", "garbled"))))
    assert [request_id for request_id, _ in replies.outstanding] == [1]


def test_ids_of_another_type_do_not_match():
    with pytest.raises(ReplyMismatch, match="does not match request id '1'"):
        list(matcher("1").feed(frame(ok_reply(1, {}))))
    with pytest.raises(ReplyMismatch, match="does not match request id 1"):
        list(matcher(1).feed(frame({"id": True, "ok": True, "result": {}})))


def test_a_reply_to_no_request_is_a_mismatch():
    with pytest.raises(ReplyMismatch, match="reply 1 to no request"):
        list(matcher().feed(frame(ok_reply(1, {}))))


def test_an_undecodable_reply_or_one_not_a_map_is_a_mismatch():
    with pytest.raises(ReplyMismatch, match="undecodable reply"):
        list(matcher(1).feed(encode_frame(b"\xc1")))
    with pytest.raises(ReplyMismatch, match="not one map"):  # the strict decoder's check
        list(matcher(1).feed(encode_frame(msgpack.packb([1, 2]))))
    lenient = InOrderReplies(1 << 20, decode=msgpack.unpackb)
    lenient.sent(1, "one")
    with pytest.raises(ReplyMismatch, match="reply is a list, not a map"):
        list(lenient.feed(encode_frame(msgpack.packb([1, 2]))))


def test_a_reply_over_the_limit_is_a_mismatch_after_the_whole_ones_before_it():
    replies = InOrderReplies(64)
    replies.sent(1, "small")
    replies.sent(2, "big")
    data = frame(ok_reply(1, {})) + frame(ok_reply(2, {"pad": "x" * 100}))
    pairs = []
    with pytest.raises(ReplyMismatch, match="exceeds the client's limit"):
        for pair in replies.feed(data):
            pairs.append(pair)
    assert [request for request, _ in pairs] == ["small"]


def test_match_checks_one_body_read_elsewhere():
    replies = matcher("a", "b")
    assert replies.match(encode_body(ok_reply("a", {}), "json")) == ("request a", ok_reply("a", {}))
    with pytest.raises(ReplyMismatch):
        replies.match(encode_body(ok_reply("c", {}), "json"))


def test_restarted_framing_drops_a_partial_frame_and_keeps_the_requests():
    replies = matcher(1, 2)
    assert list(replies.feed(frame(ok_reply(1, {}))[:5])) == []
    replies.restart_framing()
    assert [reply["id"] for _, reply in replies.feed(frame(ok_reply(1, {})))] == [1]
    assert [request_id for request_id, _ in replies.outstanding] == [2]


def test_a_lenient_decoder_can_stand_in_for_the_strict_one():
    replies = InOrderReplies(1 << 20, decode=msgpack.unpackb)
    replies.sent(5, "five")
    assert list(replies.feed(frame(ok_reply(5, {})))) == [("five", ok_reply(5, {}))]


def test_requests_sent_together_are_matched_like_requests_sent_one_by_one():
    replies = InOrderReplies(1 << 20)
    replies.sent(1, "one")
    replies.sent_many([(2, "two"), (3, "three")])
    pairs = list(replies.feed(frame(ok_reply(1, {})) + frame(ok_reply(2, {}))))
    assert [request for request, _ in pairs] == ["one", "two"]
    with pytest.raises(ReplyMismatch, match="reply id 4 does not match request id 3"):
        list(replies.feed(frame(ok_reply(4, {}))))
