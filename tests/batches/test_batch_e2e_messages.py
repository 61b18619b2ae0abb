"""A refused batch id says why, naming what differs, over a real switch."""
from batches.batch_e2e_support import Session, csv_file

ROWS = [("m-1", "a-1", "b-1", 10, "USD", None), ("m-2", "a-1", "b-1", 20, "USD", None)]


def test_a_reused_batch_id_names_the_fields_that_differ(world):
    switch, tokens = world
    content = csv_file(ROWS)
    with Session(switch, "bank-a", tokens["bank-a"]) as bank_a, \
            Session(switch, "bank-b", tokens["bank-b"]) as bank_b:
        assert bank_a.submit("M-1", "csv", content=content, count=2, total=30)["ok"]
        bank_a.wait("M-1")
        error = bank_a.submit("M-1", "csv", content=csv_file(ROWS[:1]), count=1, total=10,
                              mode="atomic")["error"]
        assert error["code"] == "exists_with_different_fields"
        assert error["message"].startswith(
            "batch M-1 was submitted before with other fields: mode stored 'partial', sent "
            "'atomic'; control_count stored 2, sent 1; control_sum stored 30, sent 10; content "
            "differs (SHA-256 stored ")
        # The same submission again is fine; another participant only learns the id is taken.
        assert bank_a.submit("M-1", "csv", content=content, count=2, total=30)["ok"]
        assert bank_b.submit("M-1", "csv", content=content, count=2, total=30)["error"] == {
            "code": "exists_with_different_fields",
            "message": "batch id M-1 is already taken; choose another id"}
        assert bank_a.fail("upload_batch_part", {"batch_id": "M-1", "seq": 0,
                                                 "data": bank_a.wire_bytes(b"x")}) == {
            "code": "exists_with_different_fields", "message":
            "batch M-1 is already submitted, so no more parts can be uploaded under its id; "
            "choose another id"}
        bank_a.upload("M-2", b"abc", 3)
        assert bank_a.fail("upload_batch_part", {"batch_id": "M-2", "seq": 0,
                                                 "data": bank_a.wire_bytes(b"abcd")}) == {
            "code": "exists_with_different_fields",
            "message": "part 0 of batch M-2 was uploaded before with other bytes (3 stored, 4 sent)"}
